import { createCipheriv } from "node:crypto";
import test from "ava";
import fc from "fast-check";
import {
  applyPieceDelta,
  diffPieces,
  type PieceDelta,
  pieceDelta,
  reusedChunkRuns,
} from "../../src/sync/piece-diff.js";
import { Bitmap } from "../../src/transfer/bitmap.js";
import { pieceHash } from "../../src/transfer/piece-hash.js";
import { CHUNK_SIZE, CHUNKS_PER_PIECE, chunkCount } from "../../src/wire/limits.js";
import { checkProperty } from "../helpers/property.js";

const PIECE = CHUNK_SIZE * CHUNKS_PER_PIECE;
const MiB = 1024 * 1024;

/** Piece hashes exactly as a manifest carries them. */
function hashes(data: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let off = 0; off < data.length; off += PIECE) out.push(pieceHash(data.subarray(off, off + PIECE)));
  return out;
}

/** Deterministic pseudo-random bytes (an AES-CTR keystream of the seed): fast, and the same every run. */
function random(bytes: number, seed: number): Buffer {
  const key = Buffer.alloc(16);
  key.writeUInt32BE(seed);
  return createCipheriv("aes-128-ctr", key, Buffer.alloc(16)).update(Buffer.alloc(bytes));
}

const BIG = random(64 * MiB, 11);
const BIG_HASHES = hashes(BIG);

function edited(at: number, length: number): Buffer {
  const copy = Buffer.from(BIG);
  for (let i = at; i < at + length; i++) copy[i] = (copy[i] ?? 0) ^ 0xff;
  return copy;
}

test("an in-place 4 KiB edit of a 64 MiB file fetches one piece and reuses the other 1023", (t) => {
  const next = hashes(edited(10 * MiB + 5000, 4096));
  const diff = diffPieces(BIG_HASHES, next);
  t.is(diff.pieces, 1024);
  t.is(diff.fetch, 1);
  t.is(diff.reuse.count, 1023);
  t.false(diff.reuse.has(Math.floor((10 * MiB + 5000) / PIECE)));
});

test("a 4 KiB edit across a piece boundary fetches two pieces", (t) => {
  const boundary = 300 * PIECE;
  const diff = diffPieces(BIG_HASHES, hashes(edited(boundary - 2048, 4096)));
  t.is(diff.fetch, 2);
  t.false(diff.reuse.has(299));
  t.false(diff.reuse.has(300));
  t.true(diff.reuse.has(298));
  t.true(diff.reuse.has(301));
});

test("the same content reuses everything; a different file of the same size reuses nothing", (t) => {
  t.is(diffPieces(BIG_HASHES, BIG_HASHES).fetch, 0);
  const small = random(5 * PIECE + 100, 1);
  const other = random(5 * PIECE + 100, 2);
  t.is(diffPieces(hashes(small), hashes(other)).fetch, 6);
});

test("an append changes the short last piece and adds new ones", (t) => {
  const before = random(3 * PIECE + 1000, 3);
  const after = Buffer.concat([before, random(2 * PIECE, 4)]);
  const diff = diffPieces(hashes(before), hashes(after));
  t.is(diff.pieces, 6);
  t.deepEqual(diff.reuse.runs(), [[0, 3]]);
  t.is(diff.fetch, 3);
});

test("an append that fills only the short last piece fetches just that piece", (t) => {
  const before = random(2 * PIECE + 10, 5);
  const after = Buffer.concat([before, Buffer.from("more log lines\n")]);
  const diff = diffPieces(hashes(before), hashes(after));
  t.deepEqual(diff.reuse.runs(), [[0, 2]]);
  t.is(diff.fetch, 1);
});

test("a truncation reuses the pieces before the cut; an insertion at the start reuses nothing", (t) => {
  const before = random(6 * PIECE, 6);
  t.deepEqual(diffPieces(hashes(before), hashes(before.subarray(0, 4 * PIECE + 7))).reuse.runs(), [[0, 4]]);
  const shifted = Buffer.concat([Buffer.from("x"), before]);
  t.is(diffPieces(hashes(before), hashes(shifted)).reuse.count, 0);
});

test("empty files: nothing to reuse or fetch; growing from empty fetches everything", (t) => {
  t.deepEqual(diffPieces([], []), { pieces: 0, reuse: new Bitmap(0), fetch: 0 });
  t.is(diffPieces([], hashes(random(PIECE + 1, 7))).fetch, 2);
  t.is(diffPieces(hashes(random(PIECE, 7)), []).pieces, 0);
});

test("reusedChunkRuns: whole pieces as chunk runs, the last one short", (t) => {
  const size = 3 * PIECE + 3 * CHUNK_SIZE + 1; // 4 pieces, the last of 4 chunks
  const chunks = chunkCount(size);
  const reuse = new Bitmap(4);
  reuse.set(0);
  reuse.set(2);
  reuse.set(3);
  t.deepEqual(reusedChunkRuns(reuse, chunks), [
    [0, CHUNKS_PER_PIECE],
    [2 * CHUNKS_PER_PIECE, CHUNKS_PER_PIECE + 4],
  ]);
  t.deepEqual(reusedChunkRuns(new Bitmap(4), chunks), []);
});

test("pieceDelta of a 4 KiB edit of 64 MiB carries one hash; applying it gives the new list", (t) => {
  const next = hashes(edited(40 * MiB, 4096));
  const delta = pieceDelta(BIG_HASHES, next);
  t.is(delta.pieces, 1024);
  t.deepEqual(delta.indices, [640]);
  t.deepEqual(applyPieceDelta(BIG_HASHES, delta), next);
});

test("pieceDelta/applyPieceDelta round-trip for any two hash lists (property)", (t) => {
  const hash = fc.constantFrom(...[0, 1, 2, 3].map((i) => pieceHash(Buffer.from([i]))));
  checkProperty(
    t,
    fc.property(fc.array(hash, { maxLength: 12 }), fc.array(hash, { maxLength: 12 }), (from, to) => {
      const applied = applyPieceDelta(from, pieceDelta(from, to));
      return (
        Array.isArray(applied) &&
        applied.length === to.length &&
        applied.every((h, i) => h.equals(to[i] ?? Buffer.alloc(0)))
      );
    }),
  );
});

const h = (i: number) => pieceHash(Buffer.from([i]));
const FROM = [h(0), h(1)];
const MALFORMED: ReadonlyArray<readonly [PieceDelta, string]> = [
  [{ pieces: 3, indices: [0], hashes: [h(9)] }, "piece 2 is new but the delta has no hash for it"],
  [{ pieces: 2, indices: [1, 0], hashes: [h(9), h(8)] }, "piece indices out of order or out of range"],
  [{ pieces: 2, indices: [5], hashes: [h(9)] }, "piece indices out of order or out of range"],
  [{ pieces: 2, indices: [1, 1], hashes: [h(9), h(9)] }, "piece indices out of order or out of range"],
  [{ pieces: 2, indices: [0], hashes: [] }, "piece indices and hashes differ in number"],
  [{ pieces: 2, indices: [0], hashes: [Buffer.alloc(5)] }, "bad piece hash"],
  [{ pieces: -1, indices: [], hashes: [] }, "bad piece count"],
];

for (const [delta, reason] of MALFORMED) {
  test(`applyPieceDelta refuses ${JSON.stringify({ ...delta, hashes: delta.hashes.length })}: ${reason}`, (t) => {
    t.is(applyPieceDelta(FROM, delta), reason);
  });
}

test("applyPieceDelta: a shrinking version with no changed piece needs no hash", (t) => {
  t.deepEqual(applyPieceDelta(FROM, { pieces: 1, indices: [], hashes: [] }), [h(0)]);
});
