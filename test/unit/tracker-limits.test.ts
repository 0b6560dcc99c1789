import test from "ava";
import { DEFAULT_LIMITS, limitsFrom, manifestBytes, manifestBytesFor } from "../../src/tracker/limits.js";
import { DEFAULT_MAX_FILE_SIZE, MAX_FRAME_BYTES } from "../../src/wire/limits.js";
import { checkManifest, isManifestProblem } from "../../src/wire/tracker-frame.js";

test("limits: the defaults are consistent: the largest file's manifest fits a peer's budget, the swarm's, a Welcome", (t) => {
  const biggest = manifestBytesFor(DEFAULT_MAX_FILE_SIZE);
  t.true(biggest <= DEFAULT_LIMITS.maxManifestBytesPerPeer, `${biggest}`);
  t.true(DEFAULT_LIMITS.maxManifestBytesPerPeer <= DEFAULT_LIMITS.maxManifestBytes);
  t.true(DEFAULT_LIMITS.maxManifestBytes < MAX_FRAME_BYTES);
  t.deepEqual(limitsFrom(new Map(), DEFAULT_MAX_FILE_SIZE), DEFAULT_LIMITS);
});

test("limits: flags set them (seconds to ms for the Hello deadline) and bad values are refused with the value", (t) => {
  const l = limitsFrom(
    new Map<string, number>([
      ["hello-timeout", 2.5],
      ["max-files-per-peer", 7],
    ]),
    DEFAULT_MAX_FILE_SIZE,
  );
  t.is(l.helloTimeoutMs, 2500);
  t.is(l.maxFilesPerPeer, 7);
  t.throws(() => limitsFrom(new Map([["max-connections", 0]]), DEFAULT_MAX_FILE_SIZE), {
    message: "--max-connections must be an integer >= 1, got 0",
  });
  t.throws(() => limitsFrom(new Map([["max-frame", 1.5e6 + 0.5]]), DEFAULT_MAX_FILE_SIZE), { message: /an integer/ });
  t.throws(() => limitsFrom(new Map([["max-manifest-bytes-per-peer", 1000]]), DEFAULT_MAX_FILE_SIZE), {
    message: /limits disagree/,
  });
  t.throws(() => limitsFrom(new Map([["max-manifest-bytes", MAX_FRAME_BYTES]]), DEFAULT_MAX_FILE_SIZE), {
    message: /does not fit in a Welcome frame/,
  });
});

test("limits: manifestBytes is the encoded size; manifestBytesFor bounds it for a size", (t) => {
  const size = 3 * 128 * 512 + 1;
  const pieces = 4;
  const m = checkManifest(
    {
      name: "x".repeat(255),
      size,
      chunkSize: 512,
      chunksPerPiece: 128,
      chunksPerBlock: 4,
      sha256: Buffer.alloc(32),
      pieceSha256: Array.from({ length: pieces }, () => Buffer.alloc(32, 1)),
    },
    1 << 30,
  );
  if (isManifestProblem(m)) return t.fail(m.detail);
  t.true(manifestBytes(m) <= manifestBytesFor(size));
  t.true(manifestBytesFor(size) - manifestBytes(m) < 16);
});
