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

/** Bytes of one piece: files are hashed a piece at a time. */
export const PIECE_BYTES = CHUNK_SIZE * CHUNKS_PER_PIECE;

/**
 * A manifest from a file's pieces fed in order (each PIECE_BYTES, the last may be
 * shorter): the hash of each piece (see pieceHash) and the SHA-256 of the whole file.
 * Shared by every reader of local files, so there is one manifest format.
 */
export class ManifestBuilder {
  readonly #name: string;
  readonly #whole = createHash("sha256");
  readonly #pieces: Buffer[] = [];
  #size = 0;

  constructor(name: string) {
    this.#name = name;
  }

  add(piece: Uint8Array): void {
    this.#whole.update(piece);
    this.#pieces.push(pieceHash(piece));
    this.#size += piece.length;
  }

  finish(): CheckedManifest {
    return {
      name: this.#name,
      size: this.#size,
      chunks: chunkCount(this.#size),
      chunksPerPiece: CHUNKS_PER_PIECE,
      chunksPerBlock: CHUNKS_PER_BLOCK,
      sha256: this.#whole.digest(),
      pieceSha256: this.#pieces,
    };
  }
}

/**
 * Hashes a file into its manifest, reading a piece at a time (memory stays bounded
 * whatever the size).
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
    const builder = new ManifestBuilder(name);
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
      builder.add(buf.subarray(0, want));
      offset += want;
    }
    return { path, manifest: builder.finish() };
  } finally {
    closeSync(fd);
  }
}
