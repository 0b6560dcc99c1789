import test from "ava";
import fc from "fast-check";
import {
  CHUNK_SIZE,
  CHUNKS_PER_BLOCK,
  CHUNKS_PER_PIECE,
  chunkCount,
  chunkLength,
  DEFAULT_MAX_FILE_SIZE,
  MAX_CHUNKS_PER_REQUEST,
  MAX_DATAGRAM_BYTES,
  MAX_FRAME_BYTES,
  MAX_NAME_BYTES,
  pieceCount,
  SHA256_BYTES,
} from "../../src/wire/limits.js";
import { checkProperty } from "../helpers/property.js";

test("constants", (t) => {
  t.is(CHUNK_SIZE, 512);
  t.is(CHUNKS_PER_PIECE, 128);
  t.is(MAX_CHUNKS_PER_REQUEST, 64);
  t.is(MAX_DATAGRAM_BYTES, 1200);
  t.is(CHUNKS_PER_BLOCK, 4);
  t.is(MAX_FRAME_BYTES, 64 * 1024 * 1024);
  t.is(DEFAULT_MAX_FILE_SIZE, 64 * 1024 * 1024 * 1024);
  t.is(MAX_NAME_BYTES, 255);
  t.is(SHA256_BYTES, 32);
});

test("chunkCount", (t) => {
  t.is(chunkCount(0), 0);
  t.is(chunkCount(1), 1);
  t.is(chunkCount(511), 1);
  t.is(chunkCount(512), 1);
  t.is(chunkCount(513), 2);
  t.is(chunkCount(1024), 2);
  t.is(chunkCount(1025), 3);
  t.is(chunkCount(DEFAULT_MAX_FILE_SIZE), 2 ** 27);
});

test("pieceCount", (t) => {
  t.is(pieceCount(0), 0);
  t.is(pieceCount(1), 1);
  t.is(pieceCount(128), 1);
  t.is(pieceCount(129), 2);
  t.is(pieceCount(256), 2);
  t.is(pieceCount(257), 3);
  t.is(pieceCount(10, 4), 3);
});

test("chunkLength: full chunks are 512, the last is the remainder", (t) => {
  t.is(chunkLength(1, 0), 1);
  t.is(chunkLength(511, 0), 511);
  t.is(chunkLength(512, 0), 512);
  t.is(chunkLength(513, 0), 512);
  t.is(chunkLength(513, 1), 1);
  t.is(chunkLength(1024, 1), 512);
  t.is(chunkLength(1300, 2), 276);
  t.is(chunkLength(DEFAULT_MAX_FILE_SIZE, 2 ** 27 - 1), 512);
  t.is(chunkLength(DEFAULT_MAX_FILE_SIZE + 5, 2 ** 27), 5);
});

test("property: chunk lengths are in [1, 512], only the last is short, and they add up to the size", (t) => {
  checkProperty(
    t,
    fc.property(fc.integer({ min: 1, max: 200_000 }), (size) => {
      const n = chunkCount(size);
      let total = 0;
      for (let i = 0; i < n; i++) {
        const len = chunkLength(size, i);
        if (len < 1 || len > CHUNK_SIZE) return false;
        if (i < n - 1 && len !== CHUNK_SIZE) return false;
        total += len;
      }
      return total === size;
    }),
    { numRuns: 300 },
  );
});
