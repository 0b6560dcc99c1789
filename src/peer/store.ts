import { createHash } from "node:crypto";
import {
  closeSync,
  existsSync,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  linkSync,
  mkdirSync,
  openSync,
  read,
  readdirSync,
  readSync,
  rmSync,
  statSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import type { PieceStore } from "../transfer/engine.js";
import { SwarmError } from "../util/errors.js";
import { CHUNK_SIZE } from "../wire/limits.js";
import type { CheckedManifest } from "../wire/tracker-frame.js";

type Entry = {
  readonly name: string;
  readonly size: number;
  /** Where the bytes are: the file in Shared, or the staging file while downloading. */
  path: string;
  fd: number | undefined;
  readonly staging: boolean;
  /** Size and modification time of an offered file when it was offered (see seedChanged). */
  readonly offered?: { readonly size: number; readonly mtimeMs: number };
};

/**
 * Files on disk. Downloads are written into a staging folder outside Shared/ (a folder of
 * this process: `<staging root>/<pid>`), a verified piece at a time, and moved into
 * Shared/ only once whole and verified, so a partial file is never visible there, even
 * after kill -9. Staging folders of dead processes are removed at start.
 */
export class FileStore implements PieceStore {
  readonly sharedDir: string;
  readonly stagingDir: string;
  readonly #entries = new Map<number, Entry>();

  constructor(sharedDir: string, stagingRoot: string) {
    this.sharedDir = sharedDir;
    this.stagingDir = join(stagingRoot, String(process.pid));
    try {
      mkdirSync(sharedDir, { recursive: true });
      mkdirSync(stagingRoot, { recursive: true });
      removeDeadStaging(stagingRoot);
      rmSync(this.stagingDir, { recursive: true, force: true });
      mkdirSync(this.stagingDir);
    } catch (err) {
      throw new SwarmError("ERR_IO", `cannot prepare ${sharedDir} and ${stagingRoot}: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }

  /** A file we offer, complete in Shared/. */
  addSeed(fileId: number, name: string, size: number): void {
    const path = join(this.sharedDir, name);
    const st = this.#io(() => statSync(path), `stat ${path}`);
    const offered = { size, mtimeMs: st.mtimeMs };
    this.#entries.set(fileId, { name, size, path, fd: undefined, staging: false, offered });
  }

  /** Why an offered file is no longer what was offered (size or modification time changed), or undefined. */
  seedChanged(fileId: number): string | undefined {
    const e = this.#entry(fileId);
    if (e.offered === undefined) return undefined;
    const st = this.#io(() => fstatSync(this.#fd(e)), `stat ${e.path}`);
    if (st.size !== e.offered.size) return `its size changed from ${e.offered.size} to ${st.size} bytes`;
    if (st.mtimeMs !== e.offered.mtimeMs) return "it was modified";
    return undefined;
  }

  /** A file to download: an empty staging file of the final size. */
  startDownload(fileId: number, name: string, size: number): void {
    const path = join(this.stagingDir, `${fileId}.part`);
    const fd = this.#io(() => openSync(path, "w+"), `create ${path}`);
    this.#io(() => ftruncateSync(fd, size), `size ${path}`);
    this.#entries.set(fileId, { name, size, path, fd, staging: true });
  }

  read(fileId: number, firstChunk: number, count: number): Buffer {
    const e = this.#entry(fileId);
    const start = firstChunk * CHUNK_SIZE;
    const length = Math.max(0, Math.min(count * CHUNK_SIZE, e.size - start));
    const buf = Buffer.allocUnsafe(length);
    const fd = this.#fd(e);
    let got = 0;
    while (got < length) {
      const n = this.#io(() => readSync(fd, buf, got, length - got, start + got), `read ${e.path}`);
      if (n === 0) throw new SwarmError("ERR_IO", `${e.path} is shorter than expected`);
      got += n;
    }
    return buf;
  }

  writePiece(fileId: number, _piece: number, firstChunk: number, data: Buffer): void {
    const e = this.#entry(fileId);
    if (!e.staging) throw new SwarmError("ERR_IO", `refusing to write into complete file ${e.path}`);
    const fd = this.#fd(e);
    let done = 0;
    while (done < data.length) {
      done += this.#io(
        () => writeSync(fd, data, done, data.length - done, firstChunk * CHUNK_SIZE + done),
        `write ${e.path}`,
      );
    }
  }

  /**
   * Verifies the whole staging file against the manifest and moves it into Shared/.
   * Never replaces a file already there (link + unlink, not rename). Reads asynchronously
   * so a big file does not stall the data path; the file is served from staging meanwhile.
   */
  async finalize(fileId: number, manifest: CheckedManifest): Promise<void> {
    const e = this.#entry(fileId);
    if (!e.staging) return;
    const fd = this.#fd(e);
    const hash = createHash("sha256");
    const buf = Buffer.allocUnsafe(1 << 20);
    for (let offset = 0; offset < e.size; ) {
      const want = Math.min(buf.length, e.size - offset);
      const n = await new Promise<number>((resolve, reject) =>
        read(fd, buf, 0, want, offset, (err, bytes) => (err ? reject(err) : resolve(bytes))),
      ).catch((err: unknown) => {
        throw new SwarmError("ERR_IO", `cannot read ${e.path}: ${(err as Error).message}`, { cause: err });
      });
      if (n === 0) throw new SwarmError("ERR_IO", `${e.path} is shorter than expected`);
      hash.update(buf.subarray(0, n));
      offset += n;
    }
    if (this.#entries.get(fileId) !== e) return; // abandoned meanwhile
    if (!hash.digest().equals(manifest.sha256)) {
      throw new SwarmError("ERR_IO", `${manifest.name}: whole-file hash mismatch after every piece verified`);
    }
    this.#io(() => fsyncSync(fd), `sync ${e.path}`);
    const target = join(this.sharedDir, e.name);
    this.#io(() => linkSync(e.path, target), `move ${e.name} into ${this.sharedDir}`);
    this.#io(() => unlinkSync(e.path), `remove ${e.path}`);
    e.path = target;
  }

  /** Whether a name is taken in Shared/ (a download would collide with it). */
  existsInShared(name: string): boolean {
    return existsSync(join(this.sharedDir, name));
  }

  /** Drops a download (the swarm lost the file): its staging file is deleted. */
  abandon(fileId: number): void {
    const e = this.#entries.get(fileId);
    if (e === undefined) return;
    this.#entries.delete(fileId);
    if (e.fd !== undefined) closeSync(e.fd);
    if (e.staging) rmSync(e.path, { force: true });
  }

  /** Names of the files now in Shared/ (what SHUTDOWN lists). */
  sharedNames(): string[] {
    return readdirSync(this.sharedDir, { withFileTypes: true })
      .filter((d) => d.isFile() && !d.name.startsWith("."))
      .map((d) => d.name);
  }

  /** Closes every file and deletes this process's staging folder. Safe to call twice. */
  close(): void {
    for (const e of this.#entries.values()) {
      if (e.fd !== undefined) {
        try {
          closeSync(e.fd);
        } catch {
          // already closed: nothing to release
        }
        e.fd = undefined;
      }
    }
    this.#entries.clear();
    rmSync(this.stagingDir, { recursive: true, force: true });
    try {
      const root = join(this.stagingDir, "..");
      if (readdirSync(root).length === 0) rmSync(root, { recursive: true, force: true });
    } catch {
      // the root is shared with other peers or already gone
    }
  }

  #entry(fileId: number): Entry {
    const e = this.#entries.get(fileId);
    if (e === undefined) throw new SwarmError("ERR_IO", `no file with id ${fileId} in the store`);
    return e;
  }

  #fd(e: Entry): number {
    if (e.fd === undefined) e.fd = this.#io(() => openSync(e.path, "r"), `open ${e.path}`);
    return e.fd;
  }

  #io<T>(op: () => T, what: string): T {
    try {
      return op();
    } catch (err) {
      if (err instanceof SwarmError) throw err;
      throw new SwarmError("ERR_IO", `cannot ${what}: ${(err as Error).message}`, { cause: err });
    }
  }
}

/** Removes `<root>/<pid>` folders whose process is gone (left by a crash or kill -9). */
function removeDeadStaging(root: string): void {
  for (const name of readdirSync(root)) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid <= 0) continue;
    if (pid !== process.pid && isAlive(pid)) continue;
    rmSync(join(root, name), { recursive: true, force: true });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
