import { createHash } from "node:crypto";
import { closeSync, type Dirent, fstatSync, openSync, readdirSync, readSync, type Stats, statSync } from "node:fs";
import { join } from "node:path";
import { pieceHash } from "../transfer/piece-hash.js";
import { SwarmError } from "../util/errors.js";
import { byNameBytes } from "../util/output-lines.js";
import { CHUNK_SIZE, CHUNKS_PER_BLOCK, CHUNKS_PER_PIECE, chunkCount } from "../wire/limits.js";
import { checkFileName } from "../wire/names.js";
import type { CheckedManifest } from "../wire/tracker-frame.js";

export type LocalFile = {
  readonly path: string;
  readonly manifest: CheckedManifest;
  /** Its modification time when hashed (integer ms): what sync peers see as its version (SPEC §9). */
  readonly mtimeMs: number;
};

/** What a directory entry is, for the one line that says why it is not shared. */
function kindOf(entry: Dirent): string {
  if (entry.isDirectory()) return "a folder";
  if (entry.isSymbolicLink()) return "a symbolic link";
  if (entry.isFIFO()) return "a named pipe (FIFO)";
  if (entry.isCharacterDevice() || entry.isBlockDevice()) return "a device";
  if (entry.isSocket()) return "a socket";
  return "not a regular file";
}

/**
 * The regular, non-hidden files of a folder whose names the swarm accepts, in byte order
 * of their names. Every other entry but a hidden one costs one `warn` line saying why it
 * is skipped.
 */
export function listShareable(dir: string, warn: (line: string) => void): string[] {
  const names: string[] = [];
  const entries = readdirSync(dir, { withFileTypes: true }).sort((a, b) => byNameBytes(a.name, b.name));
  for (const entry of entries) {
    if (entry.name.startsWith(".")) continue;
    if (!entry.isFile()) {
      warn(`skipping ${JSON.stringify(entry.name)}: ${kindOf(entry)} (only regular files are shared)`);
      continue;
    }
    const problem = checkFileName(entry.name);
    if (problem !== undefined) {
      warn(`skipping ${JSON.stringify(entry.name)}: ${problem}`);
      continue;
    }
    names.push(entry.name);
  }
  return names;
}

/** A file offered before it is hashed (Manifest.hashing): hashed in the background. */
export type UnhashedFile = { readonly name: string; readonly size: number; readonly mtimeMs: number };

/** What a peer offers from its folder at start: hashed files, and files hashed after the Hello. */
export type SharedScan = { readonly hashed: LocalFile[]; readonly later: UnhashedFile[] };

/**
 * Bytes hashed before the Hello by default (~70 ms here): bigger folders are offered at
 * once and the rest is hashed in the background, so a peer with a 1 GiB file is listed
 * within a fraction of a second instead of after ~2.4 s of hashing.
 */
export const DEFAULT_HASH_FIRST_BYTES = 32 * 1024 * 1024;

/**
 * The shareable files of `dir` (see listShareable): hashed in name order while the bytes
 * read stay within `hashFirstBytes`, the others (only sized) left for later. A file that
 * cannot be read, or is larger than `maxFileSize`, is skipped with one `warn` line; the
 * others are still offered. Only an unreadable folder is an error (ERR_IO).
 */
export function scanShared(
  dir: string,
  maxFileSize: number,
  warn: (line: string) => void,
  hashFirstBytes = Number.POSITIVE_INFINITY,
): SharedScan {
  let names: string[];
  try {
    names = listShareable(dir, warn);
  } catch (err) {
    throw new SwarmError("ERR_IO", `cannot list ${dir}: ${(err as Error).message}`, { cause: err });
  }
  const hashed: LocalFile[] = [];
  const later: UnhashedFile[] = [];
  let budget = hashFirstBytes;
  for (const name of names) {
    let st: Stats;
    try {
      st = statSync(join(dir, name));
    } catch (err) {
      warn(`skipping ${JSON.stringify(name)}: ${readProblem(err)}`);
      continue;
    }
    if (st.size > maxFileSize) {
      warn(`skipping ${JSON.stringify(name)}: larger than --max-file-size (${st.size} bytes)`);
      continue;
    }
    if (st.size > budget) {
      later.push({ name, size: st.size, mtimeMs: Math.round(st.mtimeMs) });
      continue;
    }
    let file: LocalFile;
    try {
      file = hashFile(dir, name);
    } catch (err) {
      warn(`skipping ${JSON.stringify(name)}: ${readProblem(err)}`);
      continue;
    }
    if (file.manifest.size > maxFileSize) {
      warn(`skipping ${JSON.stringify(name)}: larger than --max-file-size (${file.manifest.size} bytes)`);
      continue;
    }
    budget -= file.manifest.size;
    hashed.push(file);
  }
  return { hashed, later };
}

/** "cannot read it (permission denied)": the reason without the path the user already sees. */
export function readProblem(err: unknown): string {
  if (err instanceof SwarmError && err.cause === undefined) return err.message;
  const cause = err instanceof SwarmError ? err.cause : err;
  const code = (cause as NodeJS.ErrnoException).code;
  if (code === "EACCES" || code === "EPERM") return "cannot read it (permission denied)";
  if (typeof code === "string") return `cannot read it (${code})`;
  return `cannot read it (${cause instanceof Error ? cause.message : String(cause)})`;
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
    const st = fstatSync(fd);
    const size = st.size;
    const builder = new ManifestBuilder(name);
    const buf = Buffer.allocUnsafe(PIECE_BYTES);
    let offset = 0;
    while (offset < size) {
      const want = Math.min(PIECE_BYTES, size - offset);
      let got = 0;
      while (got < want) {
        const n = readSync(fd, buf, got, want - got, offset + got);
        if (n === 0) throw new SwarmError("ERR_IO", "it shrank while it was being read");
        got += n;
      }
      builder.add(buf.subarray(0, want));
      offset += want;
    }
    return { path, manifest: builder.finish(), mtimeMs: Math.round(st.mtimeMs) };
  } finally {
    closeSync(fd);
  }
}
