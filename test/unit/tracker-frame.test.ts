import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { fileURLToPath } from "node:url";
import test from "ava";
import fc from "fast-check";
import protobuf from "protobufjs";
import { blockHashes, pieceHash } from "../../src/transfer/piece-hash.js";
import { FrameDecoder } from "../../src/wire/framing.js";
import { CHUNK_SIZE, CHUNKS_PER_BLOCK, CHUNKS_PER_PIECE, MAX_FRAME_BYTES } from "../../src/wire/limits.js";
import {
  type CheckedManifest,
  checkManifest,
  decodeTrackerFrame,
  encodeTrackerFrame,
  encodeUpdatesFrame,
  type FrameBody,
  isManifestProblem,
  type Manifest,
  manifestToWire,
  RefusalReason,
  TRACKER_PROTOCOL_VERSION,
  udpswarm,
} from "../../src/wire/tracker-frame.js";
import { checkProperty } from "../helpers/property.js";

const PIECE_BYTES = CHUNK_SIZE * CHUNKS_PER_PIECE;
const sha256 = (b: Uint8Array): Buffer => createHash("sha256").update(b).digest();
/** The manifest's piece hash: SHA-256 over the SHA-256 of each 2048-byte block (the last may be shorter). */
const pieceHashOf = (piece: Uint8Array): Buffer => {
  const blocks: Buffer[] = [];
  for (let at = 0; at < piece.length; at += 2048) blocks.push(sha256(piece.subarray(at, at + 2048)));
  return sha256(Buffer.concat(blocks));
};

/** Real content: two full pieces and a last piece of 700 bytes (2 chunks). */
const CONTENT = Buffer.alloc(2 * PIECE_BYTES + 700);
for (let i = 0; i < CONTENT.length; i++) CONTENT[i] = (i * 7919) % 251;

function manifestOf(name: string, content: Buffer): Manifest {
  const pieceSha256: Buffer[] = [];
  for (let at = 0; at < content.length; at += PIECE_BYTES)
    pieceSha256.push(pieceHashOf(content.subarray(at, at + PIECE_BYTES)));
  return {
    name,
    size: content.length,
    chunkSize: CHUNK_SIZE,
    chunksPerPiece: CHUNKS_PER_PIECE,
    chunksPerBlock: 4,
    sha256: sha256(content),
    pieceSha256,
    mtimeMs: 1_700_000_000_123,
    ancestry: [sha256(Buffer.from(`${name} before`))],
    deltaBase: sha256(Buffer.from(`${name} base`)),
    deltaPieces: pieceSha256.length,
    deltaIndices: [0],
  };
}

const MANIFEST = manifestOf("report.pdf", CONTENT);
const LIMIT = 64 * 1024 * 1024;

/**
 * A decoded protobufjs message as plain data: own fields only (defaults live on the
 * prototype), Long as number, bytes as hex, keys sorted.
 */
function plain(v: unknown): unknown {
  if (v instanceof Uint8Array) return `hex:${Buffer.from(v).toString("hex")}`;
  if (Array.isArray(v)) return v.map(plain);
  if (v !== null && typeof v === "object") {
    if (typeof (v as { toNumber?: unknown }).toNumber === "function") return Number(v);
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(v).sort()) {
      if (!key.startsWith("$")) out[key] = plain((v as Record<string, unknown>)[key]);
    }
    return out;
  }
  return v;
}

/** One frame of each kind, every field set to a non-default value (defaults are not sent). */
type Kind = NonNullable<udpswarm.TrackerFrame["body"]>;
const FRAMES: ReadonlyArray<readonly [Kind, FrameBody]> = [
  [
    "hello",
    {
      hello: {
        udpPort: 40001,
        offers: [MANIFEST],
        addresses: ["192.0.2.7", "10.1.2.3"],
        sync: true,
        resumePeerId: 7,
        resumeSecret: Buffer.alloc(16, 0x5a),
      },
    },
  ],
  ["update", { update: { manifest: MANIFEST } }],
  ["withdraw", { withdraw: { fileId: 12 } }],
  [
    "have",
    {
      have: {
        fileId: 3,
        runs: [0, 10, 20, 5],
        receipts: Buffer.from("00000000000000020102030405060708" + "00", "hex"),
      },
    },
  ],
  ["readyToLeave", { readyToLeave: {} }],
  ["goodbye", { goodbye: {} }],
  ["ping", { ping: { nonce: 123456789012 } }],
  ["pong", { pong: { nonce: 42 } }],
  [
    "stats",
    {
      stats: {
        bytesSent: 1e10,
        bytesReceived: 5,
        chunksSent: 3,
        chunksReceived: 4,
        retransmissions: 6,
        requestsSent: 7,
        srttMs: 0.25,
      },
    },
  ],
  [
    "welcome",
    {
      welcome: {
        peerId: 7,
        files: [{ fileId: 1, manifest: MANIFEST }],
        peers: [
          {
            peerId: 2,
            host: "127.0.0.1",
            udpPort: 5000,
            expectedAuth: Buffer.from("0123456789abcdef", "hex"),
            aliases: ["127.0.0.1", "192.0.2.9"],
            groups: [],
          },
        ],
        holders: [{ peerId: 2, fileId: 1, runs: [0, 3], complete: true }],
        refused: [{ reason: udpswarm.RefusalReason.REASON_NAME_CONFLICT, detail: "taken", fileName: "a.txt" }],
        accepted: [{ fileId: 9, manifest: manifestOf("b.bin", Buffer.from("hello")) }],
        secret: Buffer.from("00112233445566778899aabbccddeeff", "hex"),
        resumable: [{ peerId: 4, fileId: 2, runs: [0, 128], complete: true }],
      },
    },
  ],
  [
    "updates",
    {
      updates: {
        joined: [
          {
            peerId: 9,
            host: "::1",
            udpPort: 6000,
            expectedAuth: Buffer.from("fedcba9876543210", "hex"),
            aliases: ["::1", "10.0.0.9"],
            groups: ["team", "g'2"],
          },
        ],
        added: [{ fileId: 4, manifest: MANIFEST }],
        holders: [{ peerId: 2, fileId: 1, runs: [5, 2, 9, 1], complete: true }],
        left: [3, 5],
        removed: [7],
        accepted: [{ fileId: 8, manifest: manifestOf("b.bin", Buffer.from("hello")) }],
      },
    },
  ],
  ["leaveGranted", { leaveGranted: {} }],
  ["refusal", { refusal: { reason: udpswarm.RefusalReason.REASON_VERSION, detail: "version 2 not supported" } }],
  // ACCOUNTS (§10)
  ["clientHello", { clientHello: { accountsVersion: 1, udpPort: 40002, addresses: ["192.0.2.8"] } }],
  ["accountRequest", { accountRequest: { requestId: 3, uploadFile: { group: "team", manifest: MANIFEST } } }],
  [
    "accountReply",
    {
      accountReply: {
        requestId: 3,
        status: udpswarm.AccountStatus.STATUS_OK,
        message: "uploaded",
        user: "alice",
        sessionToken: Buffer.alloc(32, 1),
        groups: [{ name: "team", owner: "alice", members: 2, role: "owner", files: 1 }],
        requests: [{ user: "bob", requestedAtMs: 1_700_000_000_000 }],
        files: [{ name: "a.bin", size: 5, sharers: 2, online: 1, uploader: "alice" }],
        file: { fileId: 4, manifest: MANIFEST },
        retryAfterMs: 2500,
        sharers: 1,
      },
    },
  ],
];

test("FRAMES covers every case of TrackerFrame.body in proto/swarm.proto", (t) => {
  const root = protobuf.loadSync(fileURLToPath(new URL("../../../proto/swarm.proto", import.meta.url)));
  const oneof = root.lookupType("udpswarm.TrackerFrame").oneofs?.body?.oneof ?? [];
  const kinds = FRAMES.map(([kind]) => kind);
  t.is(oneof.length, 16);
  t.deepEqual([...kinds].sort(), [...oneof].sort());
});

for (const [kind, body] of FRAMES) {
  test(`${kind}: encodeTrackerFrame → FrameDecoder → decodeTrackerFrame round-trips`, (t) => {
    const wire = encodeTrackerFrame(body);
    const decoder = new FrameDecoder(MAX_FRAME_BYTES);
    const frames = decoder.push(wire);
    t.is(frames.length, 1);
    t.is(decoder.bufferedBytes, 0);
    const decoded = decodeTrackerFrame(frames[0] ?? Buffer.alloc(0));
    if (!decoded.ok) {
      t.fail(`decode failed: ${decoded.reason}`);
      return;
    }
    t.is(decoded.frame.version, TRACKER_PROTOCOL_VERSION);
    t.is(decoded.frame.body, kind);
    t.deepEqual(plain(decoded.frame), plain({ version: TRACKER_PROTOCOL_VERSION, ...body }));
  });
}

test("round-trip keeps the values themselves (not only their shape)", (t) => {
  const one = (body: FrameBody): udpswarm.TrackerFrame => {
    const frames = new FrameDecoder(MAX_FRAME_BYTES).push(encodeTrackerFrame(body));
    const decoded = decodeTrackerFrame(frames[0] ?? Buffer.alloc(0));
    assert.ok(decoded.ok);
    return decoded.frame;
  };
  t.is(Number(one({ ping: { nonce: 123456789012 } }).ping?.nonce), 123456789012);
  const hello = one({ hello: { udpPort: 40001, offers: [MANIFEST] } }).hello;
  t.is(hello?.udpPort, 40001);
  t.is(hello?.offers?.[0]?.name, "report.pdf");
  t.is(Number(hello?.offers?.[0]?.size), CONTENT.length);
  t.is(hello?.offers?.[0]?.chunksPerBlock, 4);
  const pieceHex = [
    pieceHashOf(CONTENT.subarray(0, PIECE_BYTES)).toString("hex"),
    pieceHashOf(CONTENT.subarray(PIECE_BYTES, 2 * PIECE_BYTES)).toString("hex"),
    pieceHashOf(CONTENT.subarray(2 * PIECE_BYTES)).toString("hex"),
  ];
  // Fixed vectors (computed with Python's hashlib): the block-hash definition, not SHA-256 of the piece.
  t.deepEqual(pieceHex, [
    "c043b943433aefba7fa843cea92243bad94f0d1b73107fa501483f9fd0d8559a",
    "a33105c47d56c148d22a64f116eeb7aad482f3eb8d6f6b2e4863deb4d51fdaec",
    "e7b74d7e838ac618e0067a493d88127f6191ce4736fb93b05db4339cf87c61e5",
  ]);
  t.deepEqual(
    hello?.offers?.[0]?.pieceSha256?.map((h) => Buffer.from(h).toString("hex")),
    pieceHex,
  );
  t.deepEqual(one({ have: { fileId: 3, runs: [0, 10, 20, 5] } }).have?.runs, [0, 10, 20, 5]);
  const welcome = one({
    welcome: {
      peerId: 3,
      peers: [{ peerId: 2, host: "10.0.0.2", udpPort: 7002, expectedAuth: Buffer.from("0102030405060708", "hex") }],
      secret: Buffer.from("000102030405060708090a0b0c0d0e0f", "hex"),
    },
  }).welcome;
  t.is(Buffer.from(welcome?.secret ?? []).toString("hex"), "000102030405060708090a0b0c0d0e0f");
  t.is(Buffer.from(welcome?.peers?.[0]?.expectedAuth ?? []).toString("hex"), "0102030405060708");
  const joined = one({
    updates: { joined: [{ peerId: 4, host: "h", udpPort: 1, expectedAuth: Buffer.from("a1a2a3a4a5a6a7a8", "hex") }] },
  }).updates?.joined?.[0];
  t.is(Buffer.from(joined?.expectedAuth ?? []).toString("hex"), "a1a2a3a4a5a6a7a8");
});

test("encodeUpdatesFrame: a shared part and a receiver's own part decode as one Updates, lists appended", (t) => {
  const shared = udpswarm.Updates.encode({ left: [3], holders: [{ peerId: 2, fileId: 1, complete: true }] }).finish();
  const own = udpswarm.Updates.encode({ left: [4], joined: [{ peerId: 9, host: "h", udpPort: 1 }] }).finish();
  const frames = new FrameDecoder(MAX_FRAME_BYTES).push(encodeUpdatesFrame(shared, own));
  t.is(frames.length, 1);
  const decoded = decodeTrackerFrame(frames[0] ?? Buffer.alloc(0));
  if (!decoded.ok) return t.fail(decoded.reason);
  t.is(decoded.frame.version, TRACKER_PROTOCOL_VERSION);
  t.deepEqual(plain(decoded.frame.updates), {
    left: [3, 4],
    holders: [{ peerId: 2, fileId: 1, runs: [], complete: true }],
    joined: [{ peerId: 9, host: "h", udpPort: 1, aliases: [], groups: [] }],
    added: [],
    removed: [],
    accepted: [],
  });
  const alone = decodeTrackerFrame(
    new FrameDecoder(MAX_FRAME_BYTES).push(encodeUpdatesFrame(shared, new Uint8Array(0)))[0] ?? Buffer.alloc(0),
  );
  t.deepEqual(alone.ok ? alone.frame.updates?.left : [], [3]);
});

test("every kind, concatenated and fed one byte at a time, decodes in order", (t) => {
  const stream = Buffer.concat(FRAMES.map(([, body]) => encodeTrackerFrame(body)));
  const decoder = new FrameDecoder(MAX_FRAME_BYTES);
  const kinds: unknown[] = [];
  for (const byte of stream) {
    for (const f of decoder.push(Uint8Array.of(byte))) {
      const decoded = decodeTrackerFrame(f);
      kinds.push(decoded.ok ? decoded.frame.body : `error ${decoded.reason}`);
    }
  }
  t.deepEqual(
    kinds,
    FRAMES.map(([kind]) => kind),
  );
});

test("decodeTrackerFrame: another version is refused with reason 'version' and the version seen", (t) => {
  const v2 = udpswarm.TrackerFrame.encode({ version: 2, ping: { nonce: 1 } }).finish();
  t.deepEqual(decodeTrackerFrame(v2), { ok: false, reason: "version", version: 2 });
  const v0 = udpswarm.TrackerFrame.encode({ hello: { udpPort: 1 } }).finish();
  t.deepEqual(decodeTrackerFrame(v0), { ok: false, reason: "version", version: 0 });
  // an explicit version in the body cannot sneak past encodeTrackerFrame's typed API, but
  // a raw frame with a huge version is still just "version"
  const vMax = udpswarm.TrackerFrame.encode({ version: 0xffffffff, goodbye: {} }).finish();
  t.deepEqual(decodeTrackerFrame(vMax), { ok: false, reason: "version", version: 0xffffffff });
});

test("decodeTrackerFrame: a frame with no body is 'empty'; garbage is 'malformed'", (t) => {
  t.deepEqual(decodeTrackerFrame(udpswarm.TrackerFrame.encode({ version: TRACKER_PROTOCOL_VERSION }).finish()), {
    ok: false,
    reason: "empty",
  });
  t.deepEqual(decodeTrackerFrame(Uint8Array.of(0xff)), { ok: false, reason: "malformed" });
  // hello with a length running past the end
  t.deepEqual(decodeTrackerFrame(Uint8Array.of(0x08, TRACKER_PROTOCOL_VERSION, 0x12, 0x10, 0x08)), {
    ok: false,
    reason: "malformed",
  });
  // a name that is not valid UTF-8 (hello.offers[0].name = ff fe)
  t.deepEqual(
    decodeTrackerFrame(Uint8Array.of(0x08, TRACKER_PROTOCOL_VERSION, 0x12, 0x06, 0x12, 0x04, 0x0a, 0x02, 0xff, 0xfe)),
    {
      ok: false,
      reason: "malformed",
    },
  );
});

const REASONS = new Set(["malformed", "version", "empty"]);

function decodeChecked(bytes: Uint8Array): void {
  const result = decodeTrackerFrame(bytes);
  if (result.ok) {
    assert.equal(result.frame.version, TRACKER_PROTOCOL_VERSION);
    assert.notEqual(result.frame.body, undefined);
  } else {
    assert.ok(REASONS.has(result.reason), `unknown reason ${result.reason}`);
  }
}

test("property: decodeTrackerFrame never throws on random bytes", (t) => {
  checkProperty(t, fc.property(fc.uint8Array({ maxLength: 400 }), decodeChecked), { numRuns: 2000 });
});

test("property: decodeTrackerFrame never throws on truncated or bit-flipped frames", (t) => {
  const bodies = FRAMES.map(([, body]) => {
    const frames = new FrameDecoder(MAX_FRAME_BYTES).push(encodeTrackerFrame(body));
    return frames[0] ?? Buffer.alloc(0);
  });
  checkProperty(
    t,
    fc.property(
      fc.constantFrom(...bodies),
      fc.nat(),
      fc.array(fc.tuple(fc.nat(), fc.nat({ max: 7 })), { maxLength: 4 }),
      (body, rawCut, flips) => {
        const bytes = Buffer.from(body.subarray(0, rawCut % (body.length + 1)));
        for (const [pos, bit] of flips) {
          if (bytes.length === 0) break;
          const i = pos % bytes.length;
          bytes[i] = (bytes[i] ?? 0) ^ (1 << bit);
        }
        decodeChecked(bytes);
      },
    ),
    { numRuns: 2000 },
  );
});

// ------------------------------------------------------------------ checkManifest

/** What checkManifest says of a malformed manifest: the reason code and the line for people. */
const malformed = (detail: string) => ({ reason: RefusalReason.REASON_BAD_MESSAGE, detail });

const EXPECTED_CHECKED: CheckedManifest = {
  name: "report.pdf",
  size: CONTENT.length,
  chunks: 258,
  chunksPerPiece: 128,
  chunksPerBlock: 4,
  sha256: sha256(CONTENT),
  pieceSha256: [
    pieceHashOf(CONTENT.subarray(0, PIECE_BYTES)),
    pieceHashOf(CONTENT.subarray(PIECE_BYTES, 2 * PIECE_BYTES)),
    pieceHashOf(CONTENT.subarray(2 * PIECE_BYTES)),
  ],
};

test("checkManifest: accepts a manifest built from real bytes", (t) => {
  t.is(CONTENT.length, 131772);
  t.deepEqual(checkManifest(MANIFEST, LIMIT), EXPECTED_CHECKED);
});

test("checkManifest: accepts the manifest after a trip over the wire (size decoded as a 64-bit value)", (t) => {
  const frames = new FrameDecoder(MAX_FRAME_BYTES).push(encodeTrackerFrame({ hello: { offers: [MANIFEST] } }));
  const decoded = decodeTrackerFrame(frames[0] ?? Buffer.alloc(0));
  if (!decoded.ok) return t.fail(decoded.reason);
  const offer = decoded.frame.hello?.offers?.[0];
  if (offer === undefined) return t.fail("no offer");
  t.deepEqual(checkManifest(offer, LIMIT), EXPECTED_CHECKED);
});

test("checkManifest: manifestToWire gives back an equivalent manifest", (t) => {
  const checked = checkManifest(MANIFEST, LIMIT);
  if (isManifestProblem(checked)) return t.fail(checked.detail);
  t.deepEqual(checkManifest(manifestToWire(checked), LIMIT), EXPECTED_CHECKED);
});

test("checkManifest: one-chunk and exact-piece files", (t) => {
  const tiny = checkManifest(manifestOf("tiny", Buffer.from("x")), LIMIT);
  t.like(tiny, { size: 1, chunks: 1 });
  t.is(isManifestProblem(tiny) ? -1 : tiny.pieceSha256.length, 1);
  const exact = checkManifest(manifestOf("exact", Buffer.alloc(PIECE_BYTES, 1)), LIMIT);
  t.like(exact, { size: PIECE_BYTES, chunks: 128 });
  t.is(isManifestProblem(exact) ? -1 : exact.pieceSha256.length, 1);
});

const BAD_NAMES: ReadonlyArray<readonly [string, string]> = [
  ["../../escape", "name contains a path separator"],
  ["a/b", "name contains a path separator"],
  ["a\\b", "name contains a path separator"],
  ["/etc/passwd", "name contains a path separator"],
  ["..", "name is . or .."],
  [".", "name is . or .."],
  [".hidden", "hidden name"],
  ["a\u0000b", "name contains a control character"],
  ["a\nb", "name contains a control character"],
  ["x".repeat(256), "name longer than 255 bytes"],
  ["", "empty name"],
];

for (const [name, reason] of BAD_NAMES) {
  test(`checkManifest: refuses the name ${JSON.stringify(name.length > 20 ? `${name.slice(0, 8)}…(${name.length})` : name)}`, (t) => {
    t.deepEqual(checkManifest({ ...MANIFEST, name }, LIMIT), {
      reason: RefusalReason.REASON_BAD_NAME,
      detail: `bad file name: ${reason}`,
    });
  });
}

test("checkManifest: a 255-byte name is accepted", (t) => {
  t.like(checkManifest({ ...MANIFEST, name: "x".repeat(255) }, LIMIT), { name: "x".repeat(255) });
});

test("checkManifest: refuses a size above the limit, accepts one equal to it", (t) => {
  t.deepEqual(checkManifest(MANIFEST, CONTENT.length - 1), {
    reason: RefusalReason.REASON_TOO_LARGE,
    detail: "size 131772 exceeds the limit of 131771 bytes",
  });
  t.like(checkManifest(MANIFEST, CONTENT.length), { size: CONTENT.length });
});

test("checkManifest: refuses a size beyond 2^53 sent over the wire", (t) => {
  const huge = udpswarm.Manifest.decode(udpswarm.Manifest.encode({ ...MANIFEST, size: 2 ** 60 }).finish());
  t.deepEqual(checkManifest(huge, Number.MAX_VALUE), malformed("bad size"));
  // Above any sane limit it is "too large" (REASON_TOO_LARGE), not a malformed message.
  t.deepEqual(checkManifest(huge, LIMIT), {
    reason: RefusalReason.REASON_TOO_LARGE,
    detail: `size ${2 ** 60} exceeds the limit of ${LIMIT} bytes`,
  });
  t.deepEqual(checkManifest({ ...MANIFEST, size: -1 }, LIMIT), malformed("bad size"));
  t.deepEqual(checkManifest({ ...MANIFEST, size: 1.5 }, LIMIT), malformed("bad size"));
});

test("checkManifest: refuses a wrong piece count", (t) => {
  const hashes = MANIFEST.pieceSha256 ?? [];
  t.deepEqual(
    checkManifest({ ...MANIFEST, pieceSha256: hashes.slice(0, 2) }, LIMIT),
    malformed("manifest has 2 piece hashes, expected 3"),
  );
  t.deepEqual(
    checkManifest({ ...MANIFEST, pieceSha256: [...hashes, sha256(Buffer.alloc(0))] }, LIMIT),
    malformed("manifest has 4 piece hashes, expected 3"),
  );
  t.deepEqual(
    checkManifest({ ...MANIFEST, pieceSha256: [] }, LIMIT),
    malformed("manifest has 0 piece hashes, expected 3"),
  );
  // size one byte into a fourth piece
  t.deepEqual(
    checkManifest({ ...MANIFEST, size: 3 * PIECE_BYTES + 1 }, LIMIT),
    malformed("manifest has 3 piece hashes, expected 4"),
  );
});

test("checkManifest: refuses wrong hash lengths", (t) => {
  const hashes = MANIFEST.pieceSha256 ?? [];
  t.deepEqual(checkManifest({ ...MANIFEST, sha256: new Uint8Array(31) }, LIMIT), malformed("bad file hash"));
  t.deepEqual(checkManifest({ ...MANIFEST, sha256: new Uint8Array(33) }, LIMIT), malformed("bad file hash"));
  t.deepEqual(checkManifest({ ...MANIFEST, sha256: null }, LIMIT), malformed("bad file hash"));
  const { sha256: _omit, ...noHash } = MANIFEST;
  t.deepEqual(checkManifest(noHash, LIMIT), malformed("bad file hash"));
  t.deepEqual(
    checkManifest(
      {
        ...MANIFEST,
        pieceSha256: [hashes[0] ?? new Uint8Array(32), new Uint8Array(33), hashes[2] ?? new Uint8Array(32)],
      },
      LIMIT,
    ),
    malformed("bad piece hash"),
  );
  t.deepEqual(
    checkManifest({ ...MANIFEST, pieceSha256: [new Uint8Array(0), ...hashes.slice(1)] }, LIMIT),
    malformed("bad piece hash"),
  );
});

test("checkManifest: refuses another chunk size, piece size or block size", (t) => {
  t.is(CHUNKS_PER_BLOCK, 4);
  t.deepEqual(checkManifest({ ...MANIFEST, chunkSize: 1024 }, LIMIT), malformed("chunk size 1024 is not 512"));
  t.deepEqual(checkManifest({ ...MANIFEST, chunksPerPiece: 64 }, LIMIT), malformed("piece size 64 is not 128 chunks"));
  t.deepEqual(checkManifest({ ...MANIFEST, chunksPerBlock: 8 }, LIMIT), malformed("block size 8 is not 4 chunks"));
  t.deepEqual(checkManifest({ ...MANIFEST, chunksPerBlock: 1 }, LIMIT), malformed("block size 1 is not 4 chunks"));
  t.deepEqual(checkManifest({ ...MANIFEST, chunksPerBlock: 128 }, LIMIT), malformed("block size 128 is not 4 chunks"));
});

test("checkManifest: a manifest without chunks_per_block (the old protocol) is refused after a trip over the wire", (t) => {
  const { chunksPerBlock: _omit, ...old } = MANIFEST;
  const frames = new FrameDecoder(MAX_FRAME_BYTES).push(encodeTrackerFrame({ hello: { offers: [old] } }));
  const decoded = decodeTrackerFrame(frames[0] ?? Buffer.alloc(0));
  if (!decoded.ok) return t.fail(decoded.reason);
  const offer = decoded.frame.hello?.offers?.[0];
  if (offer === undefined) return t.fail("no offer");
  t.is(offer.chunksPerBlock, 0);
  t.deepEqual(checkManifest(offer, LIMIT), malformed("block size 0 is not 4 chunks"));
});

test("piece hashes: src/transfer/piece-hash computes the manifest's definition", (t) => {
  const pieces = [
    CONTENT.subarray(0, PIECE_BYTES), // 32 full blocks
    CONTENT.subarray(2 * PIECE_BYTES), // 700 bytes: one short block
    CONTENT.subarray(5, 5 + 2048), // exactly one block
    CONTENT.subarray(7, 7 + 2049), // one block and one byte
    CONTENT.subarray(3, 3 + 2048 * 3 + 1000),
  ];
  for (const piece of pieces) {
    const blocks: Buffer[] = [];
    for (let at = 0; at < piece.length; at += 2048) blocks.push(sha256(piece.subarray(at, at + 2048)));
    t.is(blockHashes(piece).toString("hex"), Buffer.concat(blocks).toString("hex"), `${piece.length} bytes`);
    t.is(pieceHash(piece).toString("hex"), pieceHashOf(piece).toString("hex"), `${piece.length} bytes`);
  }
  t.is(blockHashes(CONTENT.subarray(0, PIECE_BYTES)).length, 32 * 32);
  t.is(blockHashes(CONTENT.subarray(7, 7 + 2049)).length, 2 * 32);
  // Not the old definition (SHA-256 of the piece itself).
  t.not(
    pieceHashOf(CONTENT.subarray(0, PIECE_BYTES)).toString("hex"),
    sha256(CONTENT.subarray(0, PIECE_BYTES)).toString("hex"),
  );
});
