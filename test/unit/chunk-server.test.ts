/**
 * Serving alone: what a request gets back, the amplification budget of an unproven
 * address (RFC 9000 §8: 3× what it sent), the hash-reply token bucket, and the one drop
 * reason of a request that gets nothing.
 */
import test from "ava";
import { AMPLIFICATION_LIMIT, ChunkServer, ServedClient } from "../../src/transfer/chunk-server.js";
import { newCounters } from "../../src/transfer/counters.js";
import { FileState } from "../../src/transfer/file-state.js";
import { TokenBucket } from "../../src/util/token-bucket.js";
import { CHUNK_SIZE } from "../../src/wire/limits.js";
import {
  CHUNK_HEADER_BYTES,
  decodePeerDatagram,
  type HashRequestDatagram,
  type RequestDatagram,
} from "../../src/wire/peer-datagram.js";
import type { CheckedManifest } from "../../src/wire/tracker-frame.js";

const AUTH = Buffer.from("0123456789abcdef", "hex");
const WRONG = Buffer.from("ffffffffffffffff", "hex");

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

function setup(options: { mode?: "seeding" | "downloading"; chunks?: number } = {}) {
  const counters = newCounters();
  const file = new FileState(7, manifest(options.chunks ?? 300, 100), options.mode ?? "seeding");
  const sent: Buffer[] = [];
  const reads: Array<[number, number]> = [];
  let now = 0;
  const server = new ChunkServer(
    {
      store: {
        read: (_id, first, count) => {
          reads.push([first, count]);
          return Buffer.alloc(count * CHUNK_SIZE, first & 0xff);
        },
        writePiece: () => {},
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
  const client = new ServedClient("10.0.0.1", 5000, AUTH);
  return { counters, file, sent, reads, server, client, advance: (ms: number) => (now += ms) };
}

function request(chunks: number[], auth: Uint8Array = AUTH, fileId = 7): RequestDatagram {
  return { kind: "request", seq: 5, fileId, first: chunks[0] ?? 0, chunks, token: 9, auth };
}

function hashRequest(piece: number, auth: Uint8Array = AUTH): HashRequestDatagram {
  return { kind: "hash-request", seq: 6, fileId: 7, piece, token: 10, auth };
}

test("server: a proven request gets one datagram per chunk, one read per run of chunks", (t) => {
  const s = setup();
  t.is(s.server.onRequest(s.client, request([1, 2, 3, 10, 299]), 40), undefined);
  t.deepEqual(s.reads, [
    [1, 3],
    [10, 1],
    [299, 1],
  ]);
  const answers = s.sent.map((b) => decodePeerDatagram(b));
  t.deepEqual(
    answers.map((a) => (a.kind === "chunk" ? [a.chunk, a.requestSeq, a.token, a.data.length] : a.kind)),
    [
      [1, 5, 9, 512],
      [2, 5, 9, 512],
      [3, 5, 9, 512],
      [10, 5, 9, 512],
      [299, 5, 9, 100],
    ],
  );
  t.true(s.client.proven);
  t.is(s.counters.chunksSent, 5);
  t.is(s.counters.unprovenRequests, 0);
});

test("server: an unproven address gets at most 3x what it sent, counted across its requests", (t) => {
  const s = setup();
  const size = CHUNK_HEADER_BYTES + CHUNK_SIZE;
  // 200 bytes in: 600 bytes of budget, one chunk datagram (536 bytes).
  t.is(s.server.onRequest(s.client, request([0, 1, 2], WRONG), 200), undefined, "answered in part: not a drop");
  t.is(s.sent.length, 1);
  t.true(AMPLIFICATION_LIMIT * 200 >= size && AMPLIFICATION_LIMIT * 200 < 2 * size);
  // 200 more: 1200 - 536 = 664 left, one more chunk.
  t.is(s.server.onRequest(s.client, request([0, 1, 2], WRONG), 200), undefined);
  t.is(s.sent.length, 2);
  // 10 bytes: 30 more, 158 left: nothing fits, the request is dropped for the budget.
  t.is(s.server.onRequest(s.client, request([3], WRONG), 10), "amplification");
  t.is(s.sent.length, 2);
  t.is(s.counters.unprovenRequests, 3);
  t.false(s.client.proven);
  t.is(s.server.onRequest(s.client, request([3]), 10), undefined, "a proven request is not limited");
});

test("server: a request that gets nothing is one drop under one reason, however many chunks it names", (t) => {
  const s = setup({ mode: "downloading" });
  t.is(s.server.onRequest(s.client, request([0, 1, 2, 3]), 40), "not-held", "no piece held");
  t.is(s.server.onRequest(s.client, request([0], AUTH, 8), 40), "not-held", "unknown file");
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

test("server: an unproven hash request is refused when the reply exceeds the budget", (t) => {
  const s = setup();
  t.is(s.server.onHashRequest(s.client, hashRequest(0, WRONG), 30), "amplification");
  t.is(s.sent.length, 0);
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
