import { createHash } from "node:crypto";
import { closeSync, lstatSync, openSync, readdirSync, readSync } from "node:fs";
import { join } from "node:path";
import { pieceHash } from "../transfer/piece-hash.js";
import { SwarmError } from "../util/errors.js";
import { CHUNK_SIZE, CHUNKS_PER_BLOCK, CHUNKS_PER_PIECE, chunkCount } from "../wire/limits.js";
import { checkFileName } from "../wire/names.js";
import type { CheckedManifest } from "../wire/tracker-frame.js";

export type LocalFile = { readonly path: string; readonly manifest: CheckedManifest };

/** The regular, non-hidden files of a folder whose names the swarm accepts. */
export function listShareable(dir: string, warn: (line: string) => void): string[] {
  const names: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name.startsWith(".")) continue;
    if (!entry.isFile()) continue;
    const problem = checkFileName(entry.name);
    if (problem !== undefined) {
      warn(`skipping ${JSON.stringify(entry.name)}: ${problem}`);
      continue;
    }
    names.push(entry.name);
  }
  return names;
}

const PIECE_BYTES = CHUNK_SIZE * CHUNKS_PER_PIECE;

/**
 * Hashes a file into its manifest: the hash of each 64 KiB piece (see pieceHash) and the
 * SHA-256 of the whole file,
 * reading a piece at a time (memory stays bounded whatever the size).
 */
export function hashFile(dir: string, name: string): LocalFile {
  const path = join(dir, name);
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (err) {
    throw new SwarmError("ERR_IO", `cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
  try {
    const size = lstatSync(path).size;
    const whole = createHash("sha256");
    const pieces: Buffer[] = [];
    const buf = Buffer.allocUnsafe(PIECE_BYTES);
    let offset = 0;
    while (offset < size) {
      const want = Math.min(PIECE_BYTES, size - offset);
      let got = 0;
      while (got < want) {
        const n = readSync(fd, buf, got, want - got, offset + got);
        if (n === 0) throw new SwarmError("ERR_IO", `${path} shrank while it was being read`);
        got += n;
      }
      const piece = buf.subarray(0, want);
      whole.update(piece);
      pieces.push(pieceHash(piece));
      offset += want;
    }
    return {
      path,
      manifest: {
        name,
        size,
        chunks: chunkCount(size),
        chunksPerPiece: CHUNKS_PER_PIECE,
        chunksPerBlock: CHUNKS_PER_BLOCK,
        sha256: whole.digest(),
        pieceSha256: pieces,
      },
    };
  } finally {
    closeSync(fd);
  }
}
