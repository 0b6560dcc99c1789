/**
 * Serving alone: what a request gets back, request proofs (bound to the request, each
 * sequence number once), return routability (an address not validated gets a cookie within
 * 3× what it sent, RFC 9000 §8; echoing it validates the address), the hash-reply token
 * bucket, and the one drop reason of a request that gets nothing.
 */
import test from "ava";
import {
  AMPLIFICATION_LIMIT,
  ChunkServer,
  COOKIE_WINDOW_MS,
  SEED_CHECK_MS,
  ServedClient,
} from "../../src/transfer/chunk-server.js";
import { newCounters } from "../../src/transfer/counters.js";
import { FileState } from "../../src/transfer/file-state.js";
import { TokenBucket } from "../../src/util/token-bucket.js";
import { PROOF_HASH_REQUEST, PROOF_REQUEST, requestProof } from "../../src/wire/auth.js";
import { CHUNK_SIZE } from "../../src/wire/limits.js";
import {
  CHUNK_HEADER_BYTES,
  decodePeerDatagram,
  type HashRequestDatagram,
  type RequestDatagram,
} from "../../src/wire/peer-datagram.js";
import type { CheckedManifest } from "../../src/wire/tracker-frame.js";

const KEY = Buffer.from("0123456789abcdef", "hex");
const WRONG = Buffer.from("ffffffffffffffff", "hex");
const EMPTY = new Uint8Array(0);

function manifest(chunks: number, lastBytes = CHUNK_SIZE): CheckedManifest {
  return {
    name: "f",
    size: (chunks - 1) * CHUNK_SIZE + lastBytes,
    chunks,
    chunksPerPiece: 128,
    chunksPerBlock: 4,
    sha256: Buffer.alloc(32),
    pieceSha256: Array.from({ length: Math.ceil(chunks / 128) }, () => Buffer.alloc(32)),
  };
}

function setup(
  options: {
    mode?: "seeding" | "downloading";
    chunks?: number;
    unvalidated?: boolean;
    changed?: () => string | undefined;
    readFails?: boolean;
    /** The file's bytes: reads return them as a real store does (the last chunk short). */
    content?: Buffer;
  } = {},
) {
  const withdrawn: string[] = [];
  const counters = newCounters();
  const file = new FileState(7, manifest(options.chunks ?? 300, 100), options.mode ?? "seeding");
  const sent: Buffer[] = [];
  const reads: Array<[number, number]> = [];
  let now = 0;
  const server = new ChunkServer(
    {
      store: {
        read: (_id, first, count) => {
          if (options.readFails === true) throw new Error("file is shorter than expected");
          reads.push([first, count]);
          if (options.content !== undefined)
            return options.content.subarray(first * CHUNK_SIZE, (first + count) * CHUNK_SIZE);
          return Buffer.alloc(count * CHUNK_SIZE, first & 0xff);
        },
        writePiece: () => {},
        ...(options.changed !== undefined && { seedChanged: options.changed }),
      },
      withdraw: (f, why) => {
        f.mode = "ignored";
        withdrawn.push(why);
      },
      counters,
      file: (id) => (id === 7 ? file : undefined),
      send: (bytes) => sent.push(bytes),
      now: () => now,
      fatal: (err) => {
        throw err;
      },
    },
    1000,
  );
  const client = new ServedClient("10.0.0.1", 5000, KEY);
  client.validated = options.unvalidated !== true;
  return { counters, file, sent, reads, server, client, withdrawn, advance: (ms: number) => (now += ms) };
}

let nextSeq = 5;

/** A request with a valid proof and a fresh sequence number (unless given). */
function request(
  chunks: number[],
  opts: { auth?: Uint8Array; fileId?: number; seq?: number; cookie?: Uint8Array } = {},
): RequestDatagram {
  const seq = opts.seq ?? nextSeq++;
  const fileId = opts.fileId ?? 7;
  const auth = opts.auth ?? requestProof(KEY, PROOF_REQUEST, seq, 9, fileId);
  return { kind: "request", seq, fileId, first: chunks[0] ?? 0, chunks, token: 9, auth, cookie: opts.cookie ?? EMPTY };
}

function hashRequest(piece: number, auth?: Uint8Array): HashRequestDatagram {
  const seq = nextSeq++;
  return {
    kind: "hash-request",
    seq,
    fileId: 7,
    piece,
    token: 10,
    auth: auth ?? requestProof(KEY, PROOF_HASH_REQUEST, seq, 10, 7),
    cookie: EMPTY,
  };
}

test("server: a proven request gets one datagram per chunk, one read per run of chunks", (t) => {
  const s = setup();
  t.is(s.server.onRequest(s.client, request([1, 2, 3, 10, 299], { seq: 77 }), 40), undefined);
  t.deepEqual(s.reads, [
    [1, 3],
    [10, 1],
    [299, 1],
  ]);
  const answers = s.sent.map((b) => decodePeerDatagram(b));
  t.deepEqual(
    answers.map((a) => (a.kind === "chunk" ? [a.chunk, a.requestSeq, a.token, a.data.length] : a.kind)),
    [
      [1, 77, 9, 512],
      [2, 77, 9, 512],
      [3, 77, 9, 512],
      [10, 77, 9, 512],
      [299, 77, 9, 100],
    ],
  );
  t.true(s.client.proven);
  t.is(s.counters.chunksSent, 5);
  t.is(s.counters.unprovenRequests, 0);
});

test("server: each datagram of a run carries its own chunk's bytes, the file's short last chunk too", (t) => {
  const content = Buffer.from(Array.from({ length: 299 * CHUNK_SIZE + 100 }, (_, i) => (i * 7 + (i >> 9)) & 0xff));
  const s = setup({ content });
  const chunks = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 290, 291, 292, 293, 294, 295, 296, 297, 298, 299];
  t.is(s.server.onRequest(s.client, request(chunks), 40), undefined);
  t.deepEqual(s.reads, [
    [0, 10],
    [290, 10],
  ]);
  t.deepEqual(
    s.sent.map((b) => {
      const d = decodePeerDatagram(b);
      return d.kind === "chunk"
        ? [d.chunk, d.data.equals(content.subarray(d.chunk * CHUNK_SIZE, (d.chunk + 1) * CHUNK_SIZE))]
        : d.kind;
    }),
    chunks.map((c) => [c, true]),
  );
  t.is(s.sent.at(-1)?.length, CHUNK_HEADER_BYTES + 100);
});

test("server: a wrong proof, a proof of another request, and a replay get nothing", (t) => {
  const s = setup();
  t.is(s.server.onRequest(s.client, request([0], { auth: WRONG }), 40), "bad-proof");
  const other = request([0], { seq: 1000 });
  t.is(s.server.onRequest(s.client, { ...other, seq: 1001 }, 40), "bad-proof", "proof bound to the seq");
  t.is(s.server.onRequest(s.client, { ...other, token: 8 }, 40), "bad-proof", "proof bound to the token");
  t.is(s.server.onRequest(s.client, other, 40), undefined);
  t.is(s.server.onRequest(s.client, other, 40), "replay", "each seq once");
  t.is(s.server.onRequest(s.client, request([0], { seq: 999 }), 40), undefined, "late but new: accepted");
  t.is(s.server.onRequest(s.client, request([0], { seq: 1000 - 5000 }), 40), "replay", "older than the window");
  t.is(s.sent.length, 2);
});

test("server: an address not validated gets a cookie within 3x what it sent; echoing it gets it served", (t) => {
  const s = setup({ unvalidated: true });
  // 5 bytes in: 15 of budget, less than a cookie: nothing at all.
  t.is(s.server.onRequest(s.client, request([0]), 5), "amplification");
  t.is(s.sent.length, 0);
  t.is(s.server.onRequest(s.client, request([0, 1, 2]), 40), "unvalidated");
  t.is(s.sent.length, 1);
  const answer = decodePeerDatagram(s.sent[0] ?? Buffer.alloc(0));
  if (answer.kind !== "cookie") throw new Error(`answer is ${answer.kind}`);
  t.true(s.client.unvalidatedOut <= AMPLIFICATION_LIMIT * s.client.unvalidatedIn);
  t.is(s.counters.unprovenRequests, 2);
  // A cookie made for another address does not validate this one.
  const other = new ServedClient("10.0.0.2", 5000, KEY);
  const foreign = s.server.cookieFor(other, 0);
  t.is(s.server.onRequest(s.client, request([0], { cookie: foreign }), 40), "unvalidated");
  t.false(s.client.validated);
  t.is(s.server.onRequest(s.client, request([0, 1, 2], { cookie: answer.cookie }), 40), undefined);
  t.true(s.client.validated);
  t.is(s.sent.filter((b) => decodePeerDatagram(b).kind === "chunk").length, 3);
  t.is(s.server.onRequest(s.client, request([3]), 10), undefined, "validated: no cookie needed any more");
});

test("server: a cookie expires after two time windows", (t) => {
  const s = setup({ unvalidated: true });
  s.server.onRequest(s.client, request([0]), 40);
  const answer = decodePeerDatagram(s.sent[0] ?? Buffer.alloc(0));
  if (answer.kind !== "cookie") throw new Error(`answer is ${answer.kind}`);
  s.advance(2 * COOKIE_WINDOW_MS);
  t.is(s.server.onRequest(s.client, request([0], { cookie: answer.cookie }), 400), "unvalidated");
  t.false(s.client.validated);
});

test("server: a request that gets nothing is one drop under one reason, however many chunks it names", (t) => {
  const s = setup({ mode: "downloading" });
  t.is(s.server.onRequest(s.client, request([0, 1, 2, 3]), 40), "not-held", "no piece held");
  t.is(s.server.onRequest(s.client, request([0], { fileId: 8 }), 40), "not-held", "unknown file");
  t.is(s.server.onRequest(s.client, request([299, 300]), 40), "range", "past the end of the file");
  t.is(s.sent.length, 0);
  t.is(s.counters.requestsReceived, 3);
  // The server returns reasons; it counts no drop itself (the engine does, once).
  t.deepEqual(
    Object.values(s.counters.drops).reduce((a, b) => a + b, 0),
    0,
  );
});

test("server: a request for held and missing chunks is answered for the held ones, not a drop", (t) => {
  const s = setup({ mode: "downloading" });
  s.file.done.set(1); // chunks 128..255
  t.is(s.server.onRequest(s.client, request([126, 127, 128, 129]), 40), undefined);
  t.is(s.sent.length, 2);
});

test("server: hash replies follow the token bucket (10 at start, 50 per second)", (t) => {
  const s = setup();
  const results = Array.from({ length: 12 }, () => s.server.onHashRequest(s.client, hashRequest(0), 30));
  t.deepEqual(results, [...Array(10).fill(undefined), "rate-limited", "rate-limited"]);
  s.advance(100); // 5 more tokens
  const later = Array.from({ length: 6 }, () => s.server.onHashRequest(s.client, hashRequest(0), 30));
  t.deepEqual(later, [...Array(5).fill(undefined), "rate-limited"]);
  t.is(s.counters.hashRepliesSent, 15);
  t.is(s.server.onHashRequest(s.client, hashRequest(3), 30), "not-held", "no such piece");
});

test("server: a hash request of an address not validated gets a cookie only", (t) => {
  const s = setup({ unvalidated: true });
  t.is(s.server.onHashRequest(s.client, hashRequest(0), 30), "unvalidated");
  t.deepEqual(
    s.sent.map((b) => decodePeerDatagram(b).kind),
    ["cookie"],
  );
});

test("server: a seed that changed on disk is withdrawn, checked at most every SEED_CHECK_MS", (t) => {
  let checks = 0;
  let changed: string | undefined;
  const s = setup({
    changed: () => {
      checks++;
      return changed;
    },
  });
  t.is(s.server.onRequest(s.client, request([0]), 40), undefined);
  t.is(s.server.onRequest(s.client, request([1]), 40), undefined);
  t.is(checks, 1, "not per request");
  changed = "size 153700 -> 1000";
  t.is(s.server.onRequest(s.client, request([2]), 40), undefined, "not checked yet");
  s.advance(SEED_CHECK_MS);
  t.is(s.server.onRequest(s.client, request([3]), 40), "not-held");
  t.deepEqual(s.withdrawn, ["size 153700 -> 1000"]);
  t.is(s.server.onHashRequest(s.client, hashRequest(0), 30), "not-held");
});

test("server: a seed that cannot be read is withdrawn, not fatal", (t) => {
  const s = setup({ readFails: true });
  t.is(s.server.onRequest(s.client, request([0, 1]), 40), "not-held");
  t.is(s.withdrawn.length, 1);
  t.regex(s.withdrawn[0] ?? "", /shorter than expected/);
  t.is(s.server.onRequest(s.client, request([0, 1]), 40), "not-held");
  t.is(s.withdrawn.length, 1);
});

test("token bucket: starts with what it is given, refills at its rate, never above its burst", (t) => {
  const b = new TokenBucket(50, 50, 2, 0);
  t.true(b.take(0));
  t.true(b.take(0));
  t.false(b.take(0));
  t.false(b.take(19)); // 0.95 tokens
  t.true(b.take(40));
  t.is(b.available(10_000), 50);
});
