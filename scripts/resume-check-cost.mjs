// How long a restart spends checking kept pieces (docs/resume.md): builds a partial of
// SIZE MiB (default 64) with every other piece written and recorded, then times
// FileStore.resumeDownload, which hashes every recorded piece again.
// Usage (after make): node scripts/resume-check-cost.mjs [SIZE_MIB] [TMPDIR]
import { createHash, randomFillSync } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { FileStore } from "../dist/src/peer/store.js";
import { pieceHash } from "../dist/src/transfer/piece-hash.js";

const mib = Number(process.argv[2] ?? 64);
const PIECE = 128 * 512;
const size = mib * 1024 * 1024;
const pieces = Math.ceil(size / PIECE);
const root = mkdtempSync(path.join(process.argv[3] ?? os.tmpdir(), "udpswarm-resume-cost-"));
const hashes = Array.from({ length: pieces }, () => Buffer.alloc(32));
const manifest = {
  name: "big.bin",
  size,
  chunks: size / 512,
  chunksPerPiece: 128,
  chunksPerBlock: 4,
  sha256: createHash("sha256").update("not checked here").digest(),
  pieceSha256: hashes,
};
const open = () => new FileStore(path.join(root, "Shared"), path.join(root, ".udpswarm-staging"), console.log);
try {
  let store = open();
  store.startDownload(1, manifest);
  const buf = Buffer.alloc(PIECE);
  for (let p = 0; p < pieces; p += 2) {
    randomFillSync(buf);
    hashes[p] = pieceHash(buf);
    store.writePiece(1, p, p * 128, buf);
  }
  await store.checkpoint();
  store.close("keep");
  store = open();
  const started = performance.now();
  const result = await store.resumeDownload(1, manifest);
  const ms = performance.now() - started;
  const checkedMiB = (result.checked * PIECE) / 1024 / 1024;
  console.log(
    `${mib} MiB partial, ${checkedMiB.toFixed(0)} MiB recorded: checked in ${ms.toFixed(0)} ms ` +
      `(${((checkedMiB / ms) * 1000).toFixed(0)} MiB/s), kept ${result.kept.length} of ${result.checked} pieces`,
  );
  store.close("leave");
} finally {
  rmSync(root, { recursive: true, force: true });
}
