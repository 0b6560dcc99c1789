import { createHash } from "node:crypto";
import test from "ava";
import fc from "fast-check";
import {
  decodeStagingRecord,
  encodeStagingRecord,
  piecesOf,
  type StagingRecord,
  sameIdentity,
  stagingKey,
} from "../../src/peer/staging-record.js";
import { Bitmap } from "../../src/transfer/bitmap.js";
import { udpswarm } from "../../src/wire/gen/swarm.js";
import { checkProperty } from "../helpers/property.js";

function record(size: number, verified: readonly number[], name = "report.pdf", tag = ""): StagingRecord {
  const bits = new Bitmap(piecesOf(size, 128));
  for (const p of verified) bits.set(p);
  return {
    identity: { name, size, sha256: createHash("sha256").update(name).digest(), tag },
    chunksPerPiece: 128,
    chunksPerBlock: 4,
    verified: bits,
  };
}

function roundTrip(r: StagingRecord): StagingRecord {
  const d = decodeStagingRecord(encodeStagingRecord(r));
  if (!d.ok) throw new Error(`refused: ${d.reason}`);
  return d.record;
}

/** Re-frames a body (valid magic, length and checksum) so that only the body is wrong. */
function frame(body: Uint8Array): Buffer {
  const head = Buffer.alloc(8);
  head.write("USWR", 0, "latin1");
  head.writeUInt32BE(body.length, 4);
  const sum = createHash("sha256")
    .update(Buffer.concat([head, body]))
    .digest()
    .subarray(0, 16);
  return Buffer.concat([head, body, sum]);
}

test("round trip keeps the identity and exactly the verified pieces", (t) => {
  const r = record(64 * 1024 * 1024 + 5, [0, 1, 7, 8, 1023, 1024], "é x.bin", "sync:1700000000000");
  const back = roundTrip(r);
  t.true(sameIdentity(back.identity, r.identity));
  t.is(back.chunksPerPiece, 128);
  t.is(back.chunksPerBlock, 4);
  t.is(back.verified.size, 1025);
  t.deepEqual(back.verified.runs(), [
    [0, 2],
    [7, 2],
    [1023, 2],
  ]);
});

test("an empty file and a file with no piece yet round-trip", (t) => {
  t.is(roundTrip(record(0, [])).verified.size, 0);
  t.is(roundTrip(record(70_000, [])).verified.count, 0);
});

test("fixed bytes: the framing is magic, big-endian length, body, 16-byte checksum", (t) => {
  const bytes = encodeStagingRecord(record(1000, [0]));
  t.is(bytes.subarray(0, 4).toString("latin1"), "USWR");
  t.is(bytes.readUInt32BE(4), bytes.length - 8 - 16);
  const sum = createHash("sha256")
    .update(bytes.subarray(0, bytes.length - 16))
    .digest()
    .subarray(0, 16);
  t.true(bytes.subarray(bytes.length - 16).equals(sum));
});

test("every truncation is refused", (t) => {
  const bytes = encodeStagingRecord(record(10 * 1024 * 1024, [3, 4, 5]));
  for (let n = 0; n < bytes.length; n++) {
    const d = decodeStagingRecord(bytes.subarray(0, n));
    t.false(d.ok, `a record cut to ${n} of ${bytes.length} bytes was accepted`);
  }
});

test("trailing bytes are refused", (t) => {
  const bytes = encodeStagingRecord(record(1000, [0]));
  t.deepEqual(decodeStagingRecord(Buffer.concat([bytes, Buffer.from([0])])), {
    ok: false,
    reason: "trailing bytes",
  });
});

test("every single flipped bit is refused", (t) => {
  const bytes = encodeStagingRecord(record(3 * 1024 * 1024, [1, 2, 40]));
  for (let i = 0; i < bytes.length; i++) {
    for (let bit = 0; bit < 8; bit++) {
      const copy = Buffer.from(bytes);
      copy[i] = (copy[i] ?? 0) ^ (1 << bit);
      if (decodeStagingRecord(copy).ok) {
        t.fail(`flipping bit ${bit} of byte ${i} was accepted`);
        return;
      }
    }
  }
  t.pass();
});

test("random bytes are refused, and decoding never throws", (t) => {
  checkProperty(
    t,
    fc.property(fc.uint8Array({ maxLength: 400 }), (bytes) => !decodeStagingRecord(bytes).ok),
  );
  checkProperty(
    t,
    fc.property(fc.uint8Array({ maxLength: 400 }), (body) => {
      decodeStagingRecord(frame(body));
      return true;
    }),
  );
});

test("another format version is refused", (t) => {
  const r = record(1000, [0]);
  const body = udpswarm.StagingRecord.encode({
    format: 2,
    name: r.identity.name,
    size: r.identity.size,
    sha256: r.identity.sha256,
    chunksPerPiece: 128,
    chunksPerBlock: 4,
    verified: r.verified.toBytes(),
  }).finish();
  t.deepEqual(decodeStagingRecord(frame(body)), { ok: false, reason: "format 2, expected 1" });
});

test("well-framed records with impossible contents are refused", (t) => {
  const base = {
    format: 1,
    name: "a.bin",
    size: 150_000, // 293 chunks: 3 pieces
    sha256: Buffer.alloc(32, 1),
    chunksPerPiece: 128,
    chunksPerBlock: 4,
    verified: new Uint8Array([0b111]),
  };
  const cases: Array<[string, Partial<typeof base>]> = [
    ["name with a separator", { name: "../x" }],
    ["hidden name", { name: ".x" }],
    ["short hash", { sha256: Buffer.alloc(31) }],
    ["zero piece size", { chunksPerPiece: 0 }],
    ["block larger than a piece", { chunksPerBlock: 256 }],
    ["bitmap too long", { verified: new Uint8Array([1, 0]) }],
    ["bitmap too short", { verified: new Uint8Array() }],
    ["bit past the last piece", { verified: new Uint8Array([0b1000]) }],
  ];
  t.true(decodeStagingRecord(frame(udpswarm.StagingRecord.encode(base).finish())).ok, "the base case is valid");
  for (const [what, change] of cases) {
    const d = decodeStagingRecord(frame(udpswarm.StagingRecord.encode({ ...base, ...change }).finish()));
    t.false(d.ok, what);
  }
});

test("the staging key depends on every part of the identity and is a safe file name", (t) => {
  const base = record(1000, []).identity;
  const key = stagingKey(base);
  t.regex(key, /^[0-9a-f]{32}$/);
  t.is(stagingKey({ ...base }), key);
  t.not(stagingKey({ ...base, name: "other.pdf" }), key);
  t.not(stagingKey({ ...base, size: 1001 }), key);
  t.not(stagingKey({ ...base, sha256: Buffer.alloc(32) }), key);
  t.not(stagingKey({ ...base, tag: "client" }), key);
});
