import { createHash, type Hash } from "node:crypto";
import {
  closeSync,
  existsSync,
  ftruncateSync,
  linkSync,
  mkdirSync,
  openSync,
  readdirSync,
  readSync,
  rmSync,
  statSync,
  truncateSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { open } from "node:fs/promises";
import { join } from "node:path";
import PQueue from "p-queue";
import { Bitmap } from "../transfer/bitmap.js";
import type { PieceStore } from "../transfer/engine.js";
import { SwarmError } from "../util/errors.js";
import { CHUNK_SIZE } from "../wire/limits.js";
import { decodeReceipts, type ReceiptEntry } from "../wire/receipts.js";
import type { CheckedManifest } from "../wire/tracker-frame.js";
import { FdPool } from "./fd-pool.js";
import { verifyPieces } from "./piece-check.js";
import { StagingArea } from "./staging.js";
import {
  identityOf,
  piecesOf,
  type RecordOwner,
  type StagingIdentity,
  type StagingRecord,
  stagingKey,
} from "./staging-record.js";

/** A file being downloaded into staging. */
type Download = {
  readonly fileId: number;
  readonly key: string;
  readonly identity: StagingIdentity;
  readonly manifest: CheckedManifest;
  /** Pieces verified and written. */
  readonly written: Bitmap;
  /** Changes to `written` so far, and how many of them the record on disk covers. */
  changes: number;
  recorded: number;
  /** Pieces a record on disk lists (or that a restart verified): what a kill -9 would not lose. */
  durablePieces: number;
  /**
   * SHA-256 of the file's first `hashedPieces` pieces, fed as pieces are written in order
   * (they mostly are), so the whole-file check at the end reads only the rest.
   */
  readonly prefixHash: Hash;
  hashedPieces: number;
  /** Bytes written since the last background flush started, and whether one is running. */
  unflushed: number;
  flushing: boolean;
};

/**
 * A download's written bytes are flushed to disk in the background every this many bytes,
 * so the fsync before the move into Shared has little left to write (it was most of the
 * time between a 256 MiB file's last piece and its arrival in Shared).
 */
const FLUSH_EVERY_BYTES = 32 * 1024 * 1024;

/** Pieces read back from disk, at most, per piece written, to bring the prefix hash up to date. */
const PREFIX_CATCH_UP_PIECES = 4;

type Entry = {
  readonly name: string;
  readonly size: number;
  /** Where the bytes are: the file in Shared, or the staging file while downloading. */
  path: string;
  download: Download | undefined;
  /** Size and modification time of an offered file when it was offered (see seedChanged). */
  readonly offered?: { readonly size: number; readonly mtimeMs: number };
};

/** What a restart kept of a partial download. */
export type ResumeResult = {
  /** Pieces kept: verified again by their hashes, ascending. */
  readonly kept: readonly number[];
  /** Pieces hashed to decide. */
  readonly checked: number;
  /** Pieces the record listed that failed their check (or lay past a truncation). */
  readonly failed: number;
  /** "ok": the record told which pieces to check; "missing": it was lost or damaged, every piece was checked. */
  readonly record: "ok" | "missing";
  /**
   * Pieces left out because the tracker did not let this life report them without receipts
   * (they were not among what the earlier life had reported: RESUME §12): fetched again.
   */
  readonly unrecognised?: number;
  /** Receipts the record kept (its owner's: see StagingRecord.receipts), for pieces kept only. */
  readonly receipts?: readonly ReceiptEntry[];
  /** The life that wrote the record. */
  readonly owner?: RecordOwner;
};

/**
 * A whole file this small gets no record on its way into Shared (that takes a moment),
 * so that thousands of small files do not cost thousands of fsyncs.
 */
const SMALL_FILE_BYTES = 1 << 20;
/** Whole-file checks and partial checks at once (each holds a descriptor and a buffer). */
const BACKGROUND_JOBS = 2;

/**
 * Files on disk. Downloads are written into the staging folder outside Shared/ (see
 * StagingArea), a verified piece at a time, with a record of which pieces are there,
 * and moved into Shared/ only once whole and verified, so a partial file is never visible
 * there, even after kill -9. A restart takes up the partials of versions still offered.
 * Descriptors are opened only to read or write, a bounded number at a time (FdPool).
 */
export class FileStore implements PieceStore {
  readonly sharedDir: string;
  readonly #staging: StagingArea;
  readonly #entries = new Map<number, Entry>();
  readonly #fds = new FdPool();
  readonly #jobs = new PQueue({ concurrency: BACKGROUND_JOBS });
  /** Downloads whose record is behind their pieces (checkpoints look at these only). */
  readonly #dirty = new Set<Download>();
  #closed = false;

  /**
   * `replaces`: SYNC (§9): a fetched version replaces the file of its name in Shared/, so
   * partials of names already there are kept for the next version (not dead).
   */
  constructor(
    sharedDir: string,
    stagingRoot: string,
    log: (line: string) => void,
    replaces = false,
    /** Who holds the staging folder's lock, for the message that refuses a second one. */
    owner: "peer" | "client" = "peer",
  ) {
    this.sharedDir = sharedDir;
    try {
      mkdirSync(sharedDir, { recursive: true });
    } catch (err) {
      throw new SwarmError("ERR_IO", `cannot prepare ${sharedDir}: ${(err as Error).message}`, { cause: err });
    }
    this.#staging = StagingArea.open(stagingRoot, log, owner);
    // A name already in Shared is never fetched again (see Peer): its partials are dead.
    for (const p of replaces ? [] : [...this.#staging.found()]) {
      if (p.record !== undefined && this.existsInShared(p.record.identity.name)) this.#staging.discard(p.key);
    }
  }

  get stagingDir(): string {
    return this.#staging.root;
  }

  /**
   * Pieces of a download that a restart would keep: those its record on disk lists (or
   * that were verified again at its start). Undefined for a file not being downloaded.
   */
  durablePieces(fileId: number): number | undefined {
    return this.#entries.get(fileId)?.download?.durablePieces;
  }

  /** Staging records written so far (see StagingArea.writeRecord): what resume costs. */
  get recordWrites(): number {
    return this.#staging.recordWrites;
  }

  /** Descriptors open now and opened in all (the pool's bound is what matters). */
  get descriptors(): { readonly open: number; readonly opened: number } {
    return { open: this.#fds.size, opened: this.#fds.opened };
  }

  /** A file we offer, complete in Shared/ (ACCOUNTS §10: or wherever the client's user keeps it). */
  addSeed(fileId: number, name: string, size: number, path = join(this.sharedDir, name)): void {
    const st = this.#io(() => statSync(path), `stat ${path}`);
    const offered = { size, mtimeMs: st.mtimeMs };
    this.#entries.set(fileId, { name, size, path, download: undefined, offered });
  }

  /** Why an offered file is no longer what was offered (size or modification time changed), or undefined. */
  seedChanged(fileId: number): string | undefined {
    const e = this.#entry(fileId);
    if (e.offered === undefined) return undefined;
    const st = this.#io(() => statSync(e.path), `stat ${e.path}`);
    if (st.size !== e.offered.size) return `its size changed from ${e.offered.size} to ${st.size} bytes`;
    if (st.mtimeMs !== e.offered.mtimeMs) return "it was modified";
    return undefined;
  }

  /**
   * Removes every partial of an earlier run that no download of this run took up (SYNC
   * §9: once the swarm's versions are known, the others are of versions nobody offers).
   * Returns the names they were of.
   */
  discardUnclaimed(): string[] {
    const names: string[] = [];
    for (const p of [...this.#staging.found()]) {
      if (p.record !== undefined) names.push(p.record.identity.name);
      this.#staging.discard(p.key);
    }
    return names;
  }

  /** Versions of which an earlier run left a partial with a readable record, not taken up yet. */
  partials(): StagingIdentity[] {
    const ids: StagingIdentity[] = [];
    for (const p of this.#staging.found()) if (p.record !== undefined) ids.push(p.record.identity);
    return ids;
  }

  /** Removes the partial an earlier run left of this version, if any (not one being downloaded). */
  discardPartial(identity: StagingIdentity): void {
    const key = stagingKey(identity);
    for (const p of this.#staging.found()) if (p.key === key) this.#staging.discard(key);
  }

  /** Whether an earlier run left a partial of exactly this version (see resumeDownload). */
  hasPartial(manifest: CheckedManifest, tag = ""): boolean {
    const key = stagingKey(identityOf(manifest, tag));
    for (const p of this.#staging.found()) if (p.key === key) return true;
    return false;
  }

  /**
   * A file to download from scratch: an empty staging file of the final size. An empty
   * file has nothing to stage: it is created in Shared/ when it is finalized. `tag`: whose
   * download it is (see StagingIdentity). Returns how many partials of other versions of
   * the name it removed.
   */
  startDownload(fileId: number, manifest: CheckedManifest, tag = ""): number {
    const identity = identityOf(manifest, tag);
    const key = stagingKey(identity);
    const stale = this.#staging.discardOtherVersions(identity);
    if (this.hasPartial(manifest, tag)) this.#staging.discard(key);
    const path = this.#staging.partPath(key);
    if (manifest.size > 0)
      this.#io(() => {
        const fd = openSync(path, "w");
        try {
          ftruncateSync(fd, manifest.size);
        } finally {
          closeSync(fd);
        }
      }, `create ${path}`);
    this.#addDownload(
      identity,
      fileId,
      manifest,
      key,
      path,
      new Bitmap(piecesOf(manifest.size, manifest.chunksPerPiece)),
      false,
    );
    return stale;
  }

  /**
   * Takes up the partial an earlier run left of this version: hashes again the pieces its
   * record lists (every piece that fits in the file when the record is lost or damaged),
   * keeps those that match the manifest, and brings the file back to its full size. Other
   * versions of the same name are removed. Runs in the background.
   */
  async resumeDownload(
    fileId: number,
    manifest: CheckedManifest,
    tag = "",
    /** Whether a piece may be kept; `receipted`: the record has its owner's receipt for it. */
    allowed: (piece: number, receipted: boolean, owner: RecordOwner | undefined) => boolean = () => true,
  ): Promise<ResumeResult> {
    const identity = identityOf(manifest, tag);
    const partial = this.#staging.claim(identity);
    if (partial === undefined) {
      this.startDownload(fileId, manifest, tag);
      return { kept: [], checked: 0, failed: 0, record: "missing" };
    }
    this.#staging.discardOtherVersions(identity);
    const record = partial.record;
    const usable =
      record !== undefined &&
      record.chunksPerPiece === manifest.chunksPerPiece &&
      record.chunksPerBlock === manifest.chunksPerBlock;
    const pieceBytes = manifest.chunksPerPiece * CHUNK_SIZE;
    const pieces = piecesOf(manifest.size, manifest.chunksPerPiece);
    const candidates: number[] = [];
    const receipts = usable && record.receipts !== undefined ? (decodeReceipts(record.receipts) ?? []) : [];
    const receipted = new Set(receipts.map((e) => e.piece));
    const owner = record?.owner;
    let unrecognised = 0;
    let listed = 0;
    for (let p = 0; p < pieces; p++) {
      if (usable && !record.verified.has(p)) continue;
      if (!allowed(p, receipted.has(p), owner)) {
        unrecognised++;
        continue;
      }
      listed++;
      if (Math.min(manifest.size, (p + 1) * pieceBytes) <= partial.partSize) candidates.push(p);
    }
    const kept = await this.#jobs.add(() => verifyPieces(partial.partPath, manifest, candidates));
    if (this.#closed) return { kept: [], checked: 0, failed: 0, record: "missing" };
    if (partial.partSize !== manifest.size) {
      this.#io(() => truncateSync(partial.partPath, manifest.size), `resize ${partial.partPath}`);
    }
    const written = new Bitmap(pieces);
    for (const p of kept) written.set(p);
    const failed = usable ? listed - kept.length : 0;
    this.#addDownload(
      identity,
      fileId,
      manifest,
      partial.key,
      partial.partPath,
      written,
      usable && failed === 0 && unrecognised === 0,
    );
    return {
      kept,
      checked: candidates.length,
      failed,
      record: usable ? "ok" : "missing",
      ...(unrecognised > 0 && { unrecognised }),
      ...(owner !== undefined && { owner }),
      ...(receipts.length > 0 && { receipts: receipts.filter((e) => written.has(e.piece)) }),
    };
  }

  #addDownload(
    identity: StagingIdentity,
    fileId: number,
    manifest: CheckedManifest,
    key: string,
    path: string,
    written: Bitmap,
    recordUpToDate: boolean,
  ): void {
    const download: Download = {
      fileId,
      key,
      identity,
      manifest,
      written,
      changes: 1,
      recorded: recordUpToDate ? 1 : 0,
      // At a resume, the pieces kept are listed by the record on disk (or found by a full check).
      durablePieces: written.count,
      prefixHash: createHash("sha256"),
      hashedPieces: 0,
      unflushed: 0,
      flushing: false,
    };
    this.#entries.set(fileId, { name: manifest.name, size: manifest.size, path, download });
    if (!recordUpToDate) this.#dirty.add(download);
  }

  read(fileId: number, firstChunk: number, count: number): Buffer {
    return this.#read(this.#entry(fileId), firstChunk, count);
  }

  #read(e: Entry, firstChunk: number, count: number): Buffer {
    const start = firstChunk * CHUNK_SIZE;
    const length = Math.max(0, Math.min(count * CHUNK_SIZE, e.size - start));
    const buf = Buffer.allocUnsafe(length);
    if (length === 0) return buf;
    const fd = this.#fd(e);
    let got = 0;
    while (got < length) {
      const n = this.#io(() => readSync(fd, buf, got, length - got, start + got), `read ${e.path}`);
      if (n === 0) throw new SwarmError("ERR_IO", `${e.path} is shorter than expected`);
      got += n;
    }
    return buf;
  }

  writePiece(fileId: number, piece: number, firstChunk: number, data: Buffer): void {
    const e = this.#entry(fileId);
    const d = e.download;
    if (d === undefined) throw new SwarmError("ERR_IO", `refusing to write into complete file ${e.path}`);
    const fd = this.#fd(e);
    let done = 0;
    while (done < data.length) {
      done += this.#io(
        () => writeSync(fd, data, done, data.length - done, firstChunk * CHUNK_SIZE + done),
        `write ${e.path}`,
      );
    }
    if (d.written.set(piece)) {
      d.changes++;
      this.#dirty.add(d);
    }
    if (piece === d.hashedPieces) {
      d.prefixHash.update(data);
      d.hashedPieces++;
    }
    this.#catchUpPrefix(e, d, PREFIX_CATCH_UP_PIECES);
    d.unflushed += data.length;
    if (d.unflushed >= FLUSH_EVERY_BYTES && !d.flushing) this.#flushInBackground(e.path, d);
  }

  /**
   * fdatasync through a descriptor of its own (the pool may close its descriptors at any
   * time), in the thread pool. A failure is left to the fsync before the move, which reports it.
   */
  #flushInBackground(path: string, d: Download): void {
    d.flushing = true;
    d.unflushed = 0;
    void open(path, "r")
      .then(async (handle) => {
        try {
          await handle.datasync();
        } finally {
          await handle.close();
        }
      })
      .catch(() => {})
      .finally(() => {
        d.flushing = false;
      });
  }

  /**
   * Feeds the prefix hash with pieces already written past it (they came out of order, or
   * were kept at a resume), read back from disk: at most `budget` of them per call, so a
   * long run of kept pieces never holds the event loop; the whole-file check reads the rest.
   */
  #catchUpPrefix(e: Entry, d: Download, budget: number): void {
    const perPiece = d.manifest.chunksPerPiece;
    for (let n = 0; n < budget && d.hashedPieces < d.written.size && d.written.has(d.hashedPieces); n++) {
      d.prefixHash.update(this.#read(e, d.hashedPieces * perPiece, perPiece));
      d.hashedPieces++;
    }
  }

  /**
   * Brings every download's record up to date with the pieces written so far (see
   * StagingArea.writeRecord: synchronous, ~12 µs each). A peer reports pieces to the
   * tracker only once this is done, so whatever the tracker printed as ACQUIRED survives
   * a kill -9.
   */
  async checkpoint(): Promise<void> {
    for (const d of this.#dirty) {
      this.#dirty.delete(d);
      if (d.written.complete && d.manifest.size <= SMALL_FILE_BYTES) continue;
      this.#staging.writeRecord(d.key, this.#recordOf(d));
      d.recorded = d.changes;
      d.durablePieces = d.written.count;
    }
  }

  #recordOf(d: Download): StagingRecord {
    return {
      identity: d.identity,
      chunksPerPiece: d.manifest.chunksPerPiece,
      chunksPerBlock: d.manifest.chunksPerBlock,
      verified: d.written,
      owner: this.owner,
      receipts: this.recentReceipts?.(d.fileId),
    };
  }

  /** RESUME (§12): receipts of the pieces of a file verified last, written into its record. */
  recentReceipts: ((fileId: number) => Uint8Array | undefined) | undefined;

  /** Who we are on the swarm, written into every record (RESUME §12); set at the Welcome. */
  owner: RecordOwner | undefined;

  /**
   * The identity of the latest earlier life whose partials are in staging (the highest peer
   * id among the records: ids grow per tracker), to present in the Hello.
   */
  earlierLife(): RecordOwner | undefined {
    let best: RecordOwner | undefined;
    for (const p of this.#staging.found()) {
      const o = p.record?.owner;
      if (o !== undefined && (best === undefined || o.peerId > best.peerId)) best = o;
    }
    return best;
  }

  /** The same, synchronously, for the exit paths. Returns the first failure, if any. */
  #checkpointSync(): unknown {
    let failure: unknown;
    for (const e of this.#entries.values()) {
      const d = e.download;
      if (d === undefined || d.changes === d.recorded) continue;
      if (d.written.complete && d.manifest.size <= SMALL_FILE_BYTES) continue;
      try {
        this.#staging.writeRecord(d.key, this.#recordOf(d));
        d.recorded = d.changes;
      } catch (err) {
        failure ??= err;
      }
    }
    return failure;
  }

  /**
   * Verifies the whole staging file against the manifest and moves it into Shared/.
   * Never replaces a file already there (link + unlink, not rename). Reads asynchronously
   * so a big file does not stall the data path; the file is served from staging meanwhile.
   */
  finalize(
    fileId: number,
    manifest: CheckedManifest,
    /** SYNC (§9): puts the verified staging file in place (rename over) instead of link + unlink. */
    place?: (stagingPath: string) => string,
  ): Promise<void> {
    const e = this.#entry(fileId);
    if (e.download === undefined) return Promise.resolve();
    return this.#jobs.add(() => this.#finalize(fileId, e, manifest, place));
  }

  async #finalize(
    fileId: number,
    e: Entry,
    manifest: CheckedManifest,
    place: ((stagingPath: string) => string) | undefined,
  ): Promise<void> {
    const d = e.download;
    if (d === undefined || this.#entries.get(fileId) !== e) return;
    const staged = e.path;
    const target = join(this.sharedDir, e.name);
    if (e.size === 0 && place === undefined) {
      if (!createHash("sha256").digest().equals(manifest.sha256)) {
        throw new SwarmError("ERR_IO", `${manifest.name}: an empty file cannot have this hash`);
      }
      // Nothing can be seen half-written: created in place, never over an existing file.
      this.#io(() => closeSync(openSync(target, "wx")), `create ${target}`);
      e.path = target;
      e.download = undefined;
      return;
    }
    if (e.size === 0) this.#io(() => closeSync(openSync(staged, "w")), `create ${staged}`);
    const hashedBytes = Math.min(e.size, d.hashedPieces * manifest.chunksPerPiece * CHUNK_SIZE);
    await this.#checkWhole(staged, e.size, manifest, d.prefixHash, hashedBytes);
    if (this.#entries.get(fileId) !== e || this.#closed) return; // abandoned meanwhile
    if (place !== undefined) {
      // SYNC (§9): the live-folder side renames it over the older version itself.
      this.#fds.close(staged);
      e.path = place(staged);
      e.download = undefined;
      this.#dirty.delete(d);
      this.#removeRecord(d);
      return;
    }
    this.#io(() => linkSync(staged, target), `move ${e.name} into ${this.sharedDir}`);
    this.#fds.close(staged);
    e.path = target;
    e.download = undefined;
    this.#dirty.delete(d);
    this.#io(() => unlinkSync(staged), `remove ${staged}`);
    this.#removeRecord(d);
  }

  /** Removes a finished download's record (records are written synchronously: none is in flight). */
  #removeRecord(d: Download): void {
    rmSync(this.#staging.recordPath(d.key), { force: true });
  }

  /**
   * Checks the whole staging file against the manifest's SHA-256 and makes it durable before
   * it is moved. `hash` already covers its first `hashedBytes` (fed as pieces were written):
   * only the rest is read back, asynchronously.
   */
  async #checkWhole(
    staged: string,
    size: number,
    manifest: CheckedManifest,
    hash: Hash,
    hashedBytes: number,
  ): Promise<void> {
    const handle = await open(staged, "r").catch((err: unknown) => {
      throw new SwarmError("ERR_IO", `cannot read ${staged}: ${(err as Error).message}`, { cause: err });
    });
    try {
      const buf = Buffer.allocUnsafe(1 << 20);
      for (let offset = hashedBytes; offset < size; ) {
        const { bytesRead } = await handle
          .read(buf, 0, Math.min(buf.length, size - offset), offset)
          .catch((err: unknown) => {
            throw new SwarmError("ERR_IO", `cannot read ${staged}: ${(err as Error).message}`, { cause: err });
          });
        if (bytesRead === 0) throw new SwarmError("ERR_IO", `${staged} is shorter than expected`);
        hash.update(buf.subarray(0, bytesRead));
        offset += bytesRead;
      }
      if (!hash.digest().equals(manifest.sha256)) {
        throw new SwarmError("ERR_IO", `${manifest.name}: whole-file hash mismatch after every piece verified`);
      }
      await handle.sync().catch((err: unknown) => {
        throw new SwarmError("ERR_IO", `cannot sync ${staged}: ${(err as Error).message}`, { cause: err });
      });
    } finally {
      await handle.close().catch(() => {});
    }
  }

  /** Whether a name is taken in Shared/ (a download would collide with it). */
  existsInShared(name: string): boolean {
    return existsSync(join(this.sharedDir, name));
  }

  /**
   * Drops a download (the swarm lost the file). Its partial stays in staging with an up to
   * date record: the file may come back in this run, or be offered at the next start;
   * with `keepPartial` false (ACCOUNTS §10: the file or the access to it is gone) it is removed.
   */
  abandon(fileId: number, keepPartial = true): void {
    const e = this.#entries.get(fileId);
    if (e === undefined) return;
    this.#entries.delete(fileId);
    this.#fds.close(e.path);
    const d = e.download;
    if (d === undefined) return;
    this.#dirty.delete(d);
    if (e.size === 0) return; // nothing staged
    if (!keepPartial) {
      this.#staging.discard(d.key);
      return;
    }
    try {
      this.#staging.writeRecord(d.key, this.#recordOf(d));
    } catch {
      this.#staging.discard(d.key); // no record: the partial would cost a full check later
      return;
    }
    this.#staging.release({ key: d.key, partPath: e.path, partSize: e.size, record: this.#recordOf(d) });
  }

  /** Names of the files now in Shared/ (what SHUTDOWN lists). */
  sharedNames(): string[] {
    return readdirSync(this.sharedDir, { withFileTypes: true })
      .filter((d) => d.isFile() && !d.name.startsWith("."))
      .map((d) => d.name);
  }

  /**
   * Closes every file and the staging folder. "leave" (a normal departure) removes every
   * partial; "keep" (a signal, an error) writes their records and keeps them for the
   * next start (those with at least one piece). Returns how many partials are kept.
   * Safe to call twice.
   */
  close(mode: "leave" | "keep"): { kept: number; failure: unknown } {
    if (this.#closed) return { kept: 0, failure: undefined };
    // A download with no piece yet has nothing worth keeping.
    for (const e of this.#entries.values()) {
      if (e.download !== undefined && e.download.written.count === 0) this.#staging.discard(e.download.key);
    }
    const failure = mode === "keep" ? this.#checkpointSync() : undefined;
    this.#closed = true;
    this.#jobs.clear();
    this.#fds.closeAll();
    this.#entries.clear();
    const kept = mode === "keep" ? this.#staging.partialCount() : 0;
    this.#staging.close(mode === "leave");
    return { kept, failure };
  }

  #entry(fileId: number): Entry {
    const e = this.#entries.get(fileId);
    if (e === undefined) throw new SwarmError("ERR_IO", `no file with id ${fileId} in the store`);
    return e;
  }

  #fd(e: Entry): number {
    return this.#io(() => this.#fds.get(e.path, e.download === undefined ? "r" : "r+"), `open ${e.path}`);
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
