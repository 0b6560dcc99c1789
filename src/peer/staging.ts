import {
  closeSync,
  constants,
  fstatSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  rmSync,
  statSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import { SwarmError } from "../util/errors.js";
import { FolderLock } from "./folder-lock.js";
import {
  decodeStagingRecord,
  encodeStagingRecord,
  MAX_RECORD_BYTES,
  type StagingIdentity,
  type StagingRecord,
  sameIdentity,
  stagingKey,
} from "./staging-record.js";

/** A partial download found on disk, not yet taken up by a download of this run. */
export type StagedPartial = {
  readonly key: string;
  readonly partPath: string;
  /** Bytes in the staging file now (it may have been truncated). */
  readonly partSize: number;
  /** Its record, when readable; a damaged or missing record leaves only the key to go by. */
  readonly record: StagingRecord | undefined;
};

const PART = ".part";
const RECORD = ".rec";
const TMP = ".tmp";
const LOCK = "lock";

/**
 * The staging folder of one peer folder: partial downloads as `<key>.part` (the bytes,
 * at their final offsets) and `<key>.rec` (see staging-record.ts), where the key is a
 * hash of the version's identity, so a restart finds them again. Holds the folder's
 * lock while open. Knows nothing of pieces or the network: it finds, writes and removes.
 */
export class StagingArea {
  readonly root: string;
  readonly #lock: FolderLock;
  /** Partials left by an earlier run (or dropped in this one), by key. */
  readonly #found = new Map<string, StagedPartial>();
  #recordWrites = 0;
  #closed = false;

  private constructor(root: string, lock: FolderLock) {
    this.root = root;
    this.#lock = lock;
  }

  /**
   * Creates the folder if needed, takes its lock (ERR_FOLDER_IN_USE if another peer or
   * client holds it), removes leftovers of interrupted writes and of older layouts, and reads the
   * records there. `log` gets one line per damaged record.
   */
  static open(root: string, log: (line: string) => void, owner: "peer" | "client" = "peer"): StagingArea {
    try {
      mkdirSync(root, { recursive: true });
    } catch (err) {
      throw new SwarmError("ERR_IO", `cannot create ${root}: ${(err as Error).message}`, { cause: err });
    }
    const area = new StagingArea(root, FolderLock.acquire(join(root, LOCK), owner));
    try {
      area.#scan(log);
    } catch (err) {
      area.#lock.release();
      throw err instanceof SwarmError
        ? err
        : new SwarmError("ERR_IO", `cannot read ${root}: ${(err as Error).message}`, { cause: err });
    }
    return area;
  }

  #scan(log: (line: string) => void): void {
    const names = readdirSync(this.root);
    for (const name of names) {
      const path = join(this.root, name);
      if (/^\d+$/.test(name)) {
        // A per-process folder of the layout before resume: nothing in it can be resumed.
        rmSync(path, { recursive: true, force: true });
      } else if (name.endsWith(TMP)) rmSync(path, { force: true });
    }
    for (const name of names) {
      if (!name.endsWith(PART)) continue;
      const key = name.slice(0, -PART.length);
      const partPath = join(this.root, name);
      const record = this.#readRecord(key, log);
      this.#found.set(key, { key, partPath, partSize: statSync(partPath).size, record });
    }
    // A record whose staging file is gone has nothing left to resume.
    for (const name of names) {
      if (name.endsWith(RECORD) && !this.#found.has(name.slice(0, -RECORD.length))) {
        rmSync(join(this.root, name), { force: true });
      }
    }
  }

  #readRecord(key: string, log: (line: string) => void): StagingRecord | undefined {
    const path = this.recordPath(key);
    let bytes: Buffer;
    try {
      if (statSync(path).size > MAX_RECORD_BYTES) throw new Error("too large");
      bytes = readFileSync(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") log(`staging record ${path} is unreadable; ignoring it`);
      return undefined;
    }
    const decoded = decodeStagingRecord(bytes);
    let problem = decoded.ok ? undefined : decoded.reason;
    if (decoded.ok && stagingKey(decoded.record.identity) !== key) problem = "it describes another download";
    if (problem === undefined && decoded.ok) return decoded.record;
    log(`staging record ${path} is damaged (${problem}); its partial file will be checked piece by piece`);
    rmSync(path, { force: true });
    return undefined;
  }

  /** Records written so far. */
  get recordWrites(): number {
    return this.#recordWrites;
  }

  partPath(key: string): string {
    return join(this.root, key + PART);
  }

  recordPath(key: string): string {
    return join(this.root, key + RECORD);
  }

  /** Partials on disk not taken up by a download of this run. */
  found(): IterableIterator<StagedPartial> {
    return this.#found.values();
  }

  /** Takes up the partial of this version, if there is one (by key: even with its record lost). */
  claim(identity: StagingIdentity): StagedPartial | undefined {
    const key = stagingKey(identity);
    const partial = this.#found.get(key);
    if (partial === undefined) return undefined;
    this.#found.delete(key);
    if (partial.record !== undefined && !sameIdentity(partial.record.identity, identity)) {
      // A key collision (or a forged record): not this version.
      this.discard(key);
      return undefined;
    }
    return partial;
  }

  /** Hands back a partial this run took up and no longer downloads (it is kept for later). */
  release(partial: StagedPartial): void {
    if (!this.#closed) this.#found.set(partial.key, partial);
  }

  /** Removes the partials of other versions of this name (stale: the swarm offers another). */
  discardOtherVersions(identity: StagingIdentity): number {
    let n = 0;
    for (const p of [...this.#found.values()]) {
      const other = p.record?.identity;
      if (other === undefined || other.name !== identity.name || other.tag !== identity.tag) continue;
      if (sameIdentity(other, identity)) continue;
      this.discard(p.key);
      n++;
    }
    return n;
  }

  /** Removes a partial and its record. */
  discard(key: string): void {
    this.#found.delete(key);
    rmSync(this.partPath(key), { force: true });
    rmSync(this.recordPath(key), { force: true });
  }

  /**
   * Writes a record, synchronously, in place: one positional write over the previous
   * record of the download (and a truncation when the new one is shorter). About 12 µs,
   * against 0.3–0.6 ms of CPU for write aside + rename through the thread pool and ~1 ms
   * more with an fsync (measured on this machine), so a record can cover every 20 ms
   * batch of reports.
   *
   * Not fsynced: a record only says which pieces to check again, and each is hashed before
   * it is kept, so after a power loss an old, missing or optimistic record costs refetching,
   * never a bad byte (the pieces' own writes are not fsynced either). A killed process loses
   * nothing (the page cache outlives it). A write torn by a kill mid-way (between the write
   * and the truncation, or inside a write longer than a page) fails the record's checksum:
   * the partial is then checked piece by piece instead.
   */
  writeRecord(key: string, record: StagingRecord): void {
    const path = this.recordPath(key);
    const bytes = encodeStagingRecord(record);
    this.#recordWrites++;
    try {
      overwrite(path, bytes);
    } catch (err) {
      throw new SwarmError("ERR_IO", `cannot write ${path}: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Partial files in the folder now (kept for the next start when the peer stops). */
  partialCount(): number {
    try {
      return readdirSync(this.root).filter((n) => n.endsWith(PART)).length;
    } catch {
      return 0;
    }
  }

  /**
   * Releases the lock. With `removeAll` (a normal departure: every version still offered is
   * whole in Shared, so what is left here is of versions nobody offers), every partial goes
   * too. The folder itself goes once empty. Safe to call twice.
   */
  close(removeAll: boolean): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#found.clear();
    // Records being written when the process stops are torn: only whole ones are kept.
    for (const name of safeList(this.root)) {
      if (name.endsWith(TMP) || (removeAll && (name.endsWith(PART) || name.endsWith(RECORD)))) {
        rmSync(join(this.root, name), { force: true });
      }
    }
    this.#lock.release();
    try {
      rmdirSync(this.root); // only if empty: another peer may be starting here already
    } catch {
      // partials kept, or the folder is in use again
    }
  }
}

function safeList(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** Makes `path` hold `bytes`: written from offset 0 over what it held, then cut to length. */
function overwrite(path: string, bytes: Uint8Array): void {
  const fd = openSync(path, constants.O_WRONLY | constants.O_CREAT, 0o600);
  try {
    for (let done = 0; done < bytes.length; ) done += writeSync(fd, bytes, done, bytes.length - done, done);
    if (fstatSync(fd).size > bytes.length) ftruncateSync(fd, bytes.length);
  } finally {
    closeSync(fd);
  }
}
