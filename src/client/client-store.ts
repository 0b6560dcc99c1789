import { createHash } from "node:crypto";
import {
  closeSync,
  ftruncateSync,
  linkSync,
  mkdirSync,
  openSync,
  readSync,
  rmSync,
  statSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { open } from "node:fs/promises";
import { join } from "node:path";
import { FdPool } from "../peer/fd-pool.js";
import type { PieceStore } from "../transfer/io.js";
import { SwarmError } from "../util/errors.js";
import { CHUNK_SIZE } from "../wire/limits.js";
import type { CheckedManifest } from "../wire/tracker-frame.js";

type Entry = {
  /** Where the bytes are now: the shared file, or the staging file while downloading. */
  path: string;
  readonly size: number;
  /** A download's final place (DEST_DIR/FILE), until it is there. */
  target: string | undefined;
  /** Size and modification time of a shared file when it was announced. */
  readonly seed?: { readonly mtimeMs: number };
};

/**
 * The client's files on disk: what it shares (anywhere: an uploaded PATH, a finished
 * download) and its downloads, written a verified piece at a time into a staging file
 * under ./.udpswarm/staging/ and linked to DEST_DIR/FILE only once whole and verified
 * (never over an existing file), so a partial file is never seen there.
 */
export class ClientStore implements PieceStore {
  readonly #staging: string;
  readonly #entries = new Map<number, Entry>();
  readonly #fds = new FdPool();

  constructor(stagingDir: string) {
    this.#staging = stagingDir;
    mkdirSync(stagingDir, { recursive: true, mode: 0o700 });
  }

  /** A whole file this client shares, at `path`. */
  addSeed(fileId: number, path: string, size: number): void {
    const st = statSync(path);
    this.#entries.set(fileId, { path, size, target: undefined, seed: { mtimeMs: st.mtimeMs } });
  }

  seedChanged(fileId: number): string | undefined {
    const e = this.#entry(fileId);
    if (e.seed === undefined) return undefined;
    const st = statSync(e.path);
    if (st.size !== e.size) return `its size changed from ${e.size} to ${st.size} bytes`;
    if (st.mtimeMs !== e.seed.mtimeMs) return "it was modified";
    return undefined;
  }

  /** A download into staging, for `target` once whole. */
  startDownload(fileId: number, manifest: CheckedManifest, target: string): void {
    const path = join(this.#staging, `${fileId}-${process.pid}.part`);
    const fd = openSync(path, "w", 0o600);
    try {
      ftruncateSync(fd, manifest.size);
    } finally {
      closeSync(fd);
    }
    this.#entries.set(fileId, { path, size: manifest.size, target });
  }

  read(fileId: number, firstChunk: number, count: number): Buffer {
    const e = this.#entry(fileId);
    const start = firstChunk * CHUNK_SIZE;
    const length = Math.max(0, Math.min(count * CHUNK_SIZE, e.size - start));
    const buf = Buffer.allocUnsafe(length);
    const fd = this.#fds.get(e.path, e.target === undefined ? "r" : "r+");
    for (let got = 0; got < length; ) {
      const n = readSync(fd, buf, got, length - got, start + got);
      if (n === 0) throw new SwarmError("ERR_IO", `${e.path} is shorter than expected`);
      got += n;
    }
    return buf;
  }

  writePiece(fileId: number, _piece: number, firstChunk: number, data: Buffer): void {
    const e = this.#entry(fileId);
    if (e.target === undefined) throw new SwarmError("ERR_IO", `refusing to write into shared file ${e.path}`);
    const fd = this.#fds.get(e.path, "r+");
    for (let done = 0; done < data.length; ) {
      done += writeSync(fd, data, done, data.length - done, firstChunk * CHUNK_SIZE + done);
    }
  }

  /**
   * Every piece is verified: the whole file is checked against the manifest's SHA-256,
   * made durable, and linked to its target (refused if something is there now). Resolves
   * with the final path.
   */
  async finalize(fileId: number, manifest: CheckedManifest): Promise<string> {
    const e = this.#entry(fileId);
    const target = e.target;
    if (target === undefined) return e.path;
    const handle = await open(e.path, "r");
    try {
      const hash = createHash("sha256");
      for await (const chunk of handle.createReadStream({ autoClose: false })) hash.update(chunk as Buffer);
      if (!hash.digest().equals(manifest.sha256)) {
        throw new SwarmError("ERR_IO", `${manifest.name}: whole-file SHA-256 mismatch after every piece verified`);
      }
      await handle.sync();
    } finally {
      await handle.close();
    }
    this.#fds.close(e.path);
    linkSync(e.path, target);
    unlinkSync(e.path);
    e.path = target;
    e.target = undefined;
    return target;
  }

  /** Forgets a file; a download's staging file is removed. */
  remove(fileId: number): void {
    const e = this.#entries.get(fileId);
    if (e === undefined) return;
    this.#entries.delete(fileId);
    this.#fds.close(e.path);
    if (e.target !== undefined) rmSync(e.path, { force: true });
  }

  close(): void {
    for (const id of [...this.#entries.keys()]) this.remove(id);
    this.#fds.closeAll();
  }

  #entry(fileId: number): Entry {
    const e = this.#entries.get(fileId);
    if (e === undefined) throw new SwarmError("ERR_IO", `no file with id ${fileId} in the store`);
    return e;
  }
}
