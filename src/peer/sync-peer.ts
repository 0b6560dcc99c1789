/**
 * The live-folder side of a peer (SPEC §9): keeps ./Shared in step with the swarm's newest
 * versions. The Peer forwards tracker frames and the engine's completions here; this class
 * owns the folder watcher, what each local copy was derived from, and the downloads of
 * newer versions (reusing unchanged pieces of the local file, then replacing it atomically).
 *
 * Each version is a tracker file record of its own, so the engine, the chunk datagrams and
 * the Have reports need nothing new: a file id names one version.
 */
import { closeSync, linkSync, lstatSync, openSync, readSync, renameSync, statSync, utimesSync } from "node:fs";
import { join } from "node:path";
import { conflictName } from "../sync/conflict-name.js";
import { FolderWatcher } from "../sync/folder-watcher.js";
import { diffPieces, pieceDelta, reusedChunkRuns } from "../sync/piece-diff.js";
import { SyncStateFile } from "../sync/state-file.js";
import { restoredCopy } from "../sync/sync-state.js";
import {
  type Announced,
  announcement,
  checkAncestry,
  compareVersions,
  decide,
  editedCopy,
  type LocalCopy,
  receivedCopy,
  type Version,
  versionOf,
} from "../sync/version.js";
import { type FileSig, sameSig } from "../sync/watch-core.js";
import type { PieceStore, TransferEngine } from "../transfer/engine.js";
import { runsOf } from "../wire/bitmap.js";
import type { udpswarm } from "../wire/gen/swarm.js";
import { CHUNK_SIZE } from "../wire/limits.js";
import {
  type CheckedManifest,
  checkManifest,
  isManifestProblem,
  manifestToWire,
  RefusalReason,
} from "../wire/tracker-frame.js";
import type { FileStore } from "./store.js";

/** A served file no longer has the version's size or mtime: it is not served any more. */
export class SeedChanged extends Error {
  readonly fileId: number;
  constructor(fileId: number, name: string) {
    super(`"${name}" changed while being served; no longer serving that version`);
    this.fileId = fileId;
  }
}

/** The file in Shared/ is not the one the decision was taken on: the fetched version waits. */
class TargetMoved extends Error {}

export interface SyncHost {
  engine(): TransferEngine;
  readonly store: FileStore;
  readonly sharedDir: string;
  readonly maxFileSize: number;
  send(body: Omit<udpswarm.ITrackerFrame, "version">): void;
  /** Chunks now held (reported with Have, as fetched ones are). */
  acquired(fileId: number, first: number, count: number): void;
  /**
   * SYNC (§12): takes up the partial an earlier run left of this version: its pieces are
   * checked in the background, then `hooks.reuse` may copy more from the local file, and
   * the download goes on from there (unless `hooks.wanted()` says it was dropped meanwhile).
   */
  resume(fileId: number, manifest: CheckedManifest, hooks: SyncResume): void;
  peerId(): number;
  log(line: string): void;
}

export type SyncResume = {
  /** Whether the download is still wanted once its partial is checked. */
  wanted(): boolean;
  /** Pieces copied from the local file besides the `kept` ones (ascending). */
  reuse(kept: readonly number[]): number[];
};

type Newest = { readonly id: number; readonly manifest: CheckedManifest; readonly announced: Announced };
/**
 * A version being fetched. `expect` and `keepConflict` follow the local file: an edit seen
 * here while the version is on its way is decided again (kept as a conflict copy, or the
 * fetch dropped when the edit is newer) without starting the transfer over.
 */
type Download = { readonly newest: Newest; keepConflict: boolean; expect: FileSig | undefined };
type Seed = { readonly name: string; readonly size: number; readonly mtimeMs: number };

/** Settle time of the watcher (ms): short, so a small edit reaches every peer well within 2 s. */
const SETTLE_MS = 200;
const RESCAN_MS = 1000;
/** The saved live-folder state, in the staging folder (which the folder lock covers). */
const STATE_FILE = "sync-state";

export class SyncPeer {
  readonly #host: SyncHost;
  readonly #watcher: FolderWatcher;
  /** What each local copy is and was derived from. */
  readonly #copies = new Map<string, LocalCopy>();
  /** The on-disk signature each copy was last seen (or put in place) with. */
  readonly #sigs = new Map<string, FileSig>();
  /** The newest version of each name the tracker told us of. */
  readonly #newest = new Map<string, Newest>();
  readonly #downloads = new Map<string, Download>();
  /** Versions served from Shared/, checked before every read. */
  readonly #seeds = new Map<number, Seed>();
  readonly #reported = new Set<string>();
  /** What each copy was, saved for the next start; `#saved` is what the last run left (used at the first listing). */
  readonly #state: SyncStateFile;
  #saved: Map<string, LocalCopy>;
  /** Files deleted here, at the version they had: not fetched back unless a newer version comes. */
  readonly #deleted: Map<string, Version>;
  #ready: (() => void) | undefined;
  #joined = false;
  /** SEVERAL TRACKERS (§11): joined again after the tracker was lost (see reset). */
  #rejoined = false;
  /** Versions being checked whole and put in place (see settled). */
  readonly #finalizing = new Set<Promise<void>>();
  #closed = false;

  constructor(host: SyncHost) {
    this.#host = host;
    this.#watcher = new FolderWatcher(
      host.sharedDir,
      {
        changed: (name, manifest, mtimeMs) => this.#onChanged(name, manifest, mtimeMs),
        unreadable: (name, err) => host.log(`skipping "${name}": ${err.message}`),
        gone: (name) => this.#onGone(name),
        ready: () => {
          // Saved files not found at start were deleted while the peer was down.
          for (const [name, copy] of this.#saved) this.#deleted.set(name, copy.current);
          this.#saved.clear(); // files created later are new, whatever an earlier run knew by that name
          if (this.#deleted.size > 0) this.#state.changed();
          this.#ready?.();
        },
      },
      { settleMs: SETTLE_MS, rescanMs: RESCAN_MS, maxFileSize: host.maxFileSize, warn: (line) => host.log(line) },
    );
    this.#state = new SyncStateFile(join(host.store.stagingDir, STATE_FILE), (line) => host.log(line));
    const saved = this.#state.load();
    this.#saved = saved.copies;
    this.#deleted = saved.deleted;
    this.#state.source(() => ({ copies: this.#copies, deleted: this.#deleted }));
  }

  /** Starts watching; resolves with the Hello offers once the first listing is hashed. */
  start(): Promise<udpswarm.IManifest[]> {
    const ready = new Promise<void>((resolve) => {
      this.#ready = resolve;
    });
    this.#watcher.start();
    return ready.then(() => this.offers());
  }

  /** The Hello offers: every local copy at its version. */
  offers(): udpswarm.IManifest[] {
    return [...this.#copies.entries()].map(([name, copy]) => this.#wire(name, copy));
  }

  /** Resolves once no fetched version is being checked whole and put in place. */
  async settled(): Promise<void> {
    while (this.#finalizing.size > 0) await Promise.all(this.#finalizing);
  }

  /**
   * SEVERAL TRACKERS (§11): the tracker was lost and the peer joins another, which knows
   * nothing of the first one's file ids: what the tracker told is forgotten (the Peer has
   * dropped those ids from the engine, keeping partials in staging), what the folder holds
   * is kept and offered in the next Hello. Call after settled().
   */
  reset(): void {
    this.#newest.clear();
    this.#downloads.clear();
    this.#seeds.clear();
    this.#joined = false;
    this.#rejoined = true;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#watcher.close();
    this.#state.close();
  }

  /** The PieceStore the engine reads through: a changed seed throws SeedChanged instead of serving. */
  guard(store: PieceStore): PieceStore {
    return {
      read: (fileId, first, count) => {
        const seed = this.#seeds.get(fileId);
        if (seed !== undefined) {
          let st: { size: number; mtimeMs: number } | undefined;
          try {
            st = statSync(join(this.#host.sharedDir, seed.name));
          } catch {
            st = undefined;
          }
          if (st === undefined || st.size !== seed.size || Math.round(st.mtimeMs) !== seed.mtimeMs) {
            throw new SeedChanged(fileId, seed.name);
          }
        }
        return store.read(fileId, first, count);
      },
      writePiece: (fileId, piece, first, data) => store.writePiece(fileId, piece, first, data),
    };
  }

  /** The engine hit an error; true when it is ours to handle (a changed seed). */
  onFatal(err: unknown): boolean {
    if (!(err instanceof SeedChanged)) return false;
    const seed = this.#seeds.get(err.fileId);
    this.#seeds.delete(err.fileId);
    this.#unhold(err.fileId);
    if (seed !== undefined) this.#host.log(err.message);
    return true;
  }

  // ------------------------------------------------------------------ tracker frames

  welcome(w: udpswarm.IWelcome): void {
    this.#joined = true;
    for (const info of w.accepted ?? []) this.#learn(info);
    for (const info of w.files ?? []) this.#learn(info);
    // The swarm's versions are known and every partial of one of them is taken up: the
    // others are of versions nobody offers any more (SPEC §12). Not after a move: the
    // peers that offer them may not have moved to this tracker yet.
    const stale = this.#rejoined ? [] : this.#host.store.discardUnclaimed();
    if (stale.length > 0) {
      this.#host.log(
        `discarded ${stale.length} partial download(s) of versions no longer offered: ${stale.join(", ")}`,
      );
    }
    // Edits made while the Hello was on its way.
    for (const [name, copy] of this.#copies) {
      const n = this.#newest.get(name);
      if (n === undefined || compareVersions(copy.current, n.announced.version) > 0) this.#sendUpdate(name, copy);
    }
  }

  fileAdded(info: udpswarm.IFileInfo): void {
    this.#learn(info);
  }

  fileRemoved(fileId: number): void {
    this.#seeds.delete(fileId);
    for (const [name, d] of this.#downloads) {
      if (d.newest.id === fileId) this.#downloads.delete(name);
    }
    this.#host.engine().removeFile(fileId);
    this.#host.store.abandon(fileId);
  }

  /** Every piece of a version is stored: verify it whole, then put it in place. */
  fileComplete(fileId: number): void {
    const entry = [...this.#downloads.entries()].find(([, d]) => d.newest.id === fileId);
    if (entry === undefined) return;
    const [name, d] = entry;
    const { manifest, announced } = d.newest;
    const target = join(this.#host.sharedDir, name);
    let conflictKept: string | undefined;
    const place = (staging: string): string => {
      if (this.#downloads.get(name) !== d) throw new TargetMoved("superseded");
      // d.expect is read now, not when the download started: the local file may have moved since.
      if (!sameSigOrAbsent(d.expect, target)) throw new TargetMoved(`"${name}" changed here meanwhile`);
      if (d.keepConflict && d.expect !== undefined) {
        const copy = this.#copies.get(name);
        const kept = conflictName(name, copy?.current.mtimeMs ?? Date.now(), this.#host.peerId(), (c) =>
          exists(join(this.#host.sharedDir, c)),
        );
        if (kept !== undefined) {
          linkSync(target, join(this.#host.sharedDir, kept));
          conflictKept = kept;
        }
      }
      const seconds = announced.version.mtimeMs / 1000;
      utimesSync(staging, seconds, seconds);
      this.#watcher.expectOwnWrite(name, manifest, announced.version.mtimeMs);
      renameSync(staging, target);
      return target;
    };
    const finalized = this.#host.store.finalize(fileId, manifest, place).then(
      () => {
        if (this.#downloads.get(name) !== d) return; // superseded or abandoned meanwhile
        this.#downloads.delete(name);
        this.#deleted.delete(name);
        this.#setCopy(name, receivedCopy(announced));
        this.#sigs.set(name, sigAt(target));
        this.#seeds.set(fileId, { name, size: manifest.size, mtimeMs: announced.version.mtimeMs });
        if (conflictKept !== undefined) this.#host.log(`"${name}": local edit kept as "${conflictKept}"`);
      },
      (err: unknown) => {
        if (this.#downloads.get(name) === d) this.#downloads.delete(name);
        this.#unhold(fileId);
        if (err instanceof TargetMoved) {
          if (err.message === "superseded") return;
          this.#host.log(`${err.message}; deciding again once it settles`);
          this.#decideOnceSettled(name);
          return;
        }
        // A reused piece moved under us: fetch the whole version again, nothing reused.
        this.#host.log(`"${name}": ${(err as Error).message}; fetching it again`);
        this.#evaluate(name, false);
      },
    );
    this.#finalizing.add(finalized);
    void finalized.finally(() => this.#finalizing.delete(finalized));
  }

  // ------------------------------------------------------------------ decisions

  #learn(info: udpswarm.IFileInfo): void {
    const id = info.fileId ?? 0;
    const wire = info.manifest;
    if (wire === undefined || wire === null) return;
    const manifest = checkManifest(wire, this.#host.maxFileSize);
    const ancestry = checkAncestry(wire.ancestry ?? []);
    if (isManifestProblem(manifest) || typeof ancestry === "string") {
      this.#host.log(
        `ignoring file ${id} from the tracker: ${isManifestProblem(manifest) ? manifest.detail : ancestry}`,
      );
      return;
    }
    const announced: Announced = { version: versionOf(manifest, Number(wire.mtimeMs ?? 0)), ancestry };
    const known = this.#newest.get(manifest.name);
    if (known !== undefined && compareVersions(announced.version, known.announced.version) <= 0 && known.id !== id) {
      return;
    }
    this.#newest.set(manifest.name, { id, manifest, announced });
    this.#evaluate(manifest.name);
  }

  /** Brings the local copy of `name` in step with the newest version known. */
  #evaluate(name: string, reuse = true): void {
    const n = this.#newest.get(name);
    if (n === undefined) return;
    const copy = this.#copies.get(name);
    const deleted = this.#deleted.get(name);
    if (copy === undefined && deleted !== undefined && compareVersions(n.announced.version, deleted) <= 0) {
      return; // deleted here: that version is not fetched back (deletions are not propagated)
    }
    const decision = decide(copy, n.announced);
    const current = this.#downloads.get(name);
    if (current !== undefined) {
      if (current.newest.id === n.id && decision.kind !== "ignore" && decision.kind !== "retime") {
        // Still wanted: only what the local file is now (and whether it holds an edit) changed.
        current.keepConflict = decision.kind === "fetch-keep-conflict";
        current.expect = this.#sigs.get(name);
        return;
      }
      this.#cancel(name, current);
    }
    switch (decision.kind) {
      case "ignore":
        if (decision.reason === "same") this.#seed(name, n);
        return;
      case "retime": {
        const path = join(this.#host.sharedDir, name);
        if (!sameSigOrAbsent(this.#sigs.get(name), path)) return; // moved: the watcher reports it
        const seconds = n.announced.version.mtimeMs / 1000;
        this.#watcher.expectOwnWrite(name, n.manifest, n.announced.version.mtimeMs);
        try {
          utimesSync(path, seconds, seconds);
        } catch (err) {
          this.#host.log(`cannot set the time of "${name}": ${(err as Error).message}`);
          return;
        }
        this.#setCopy(name, receivedCopy(n.announced));
        this.#sigs.set(name, sigAt(path));
        this.#seed(name, n);
        return;
      }
      default:
        this.#fetch(name, n, decision.kind === "fetch-keep-conflict", reuse);
    }
  }

  #seed(name: string, n: Newest): void {
    if (this.#host.engine().file(n.id) !== undefined) return;
    this.#host.store.addSeed(n.id, name, n.manifest.size);
    this.#host.engine().addFile(n.id, n.manifest, "seeding");
    this.#seeds.set(n.id, { name, size: n.manifest.size, mtimeMs: n.announced.version.mtimeMs });
  }

  #fetch(name: string, n: Newest, keepConflict: boolean, reuse: boolean): void {
    const path = join(this.#host.sharedDir, name);
    const expect = this.#sigs.get(name);
    const d: Download = { newest: n, keepConflict, expect };
    if (this.#host.engine().file(n.id) !== undefined) this.#unhold(n.id); // a seed of this id from before (fetched again)
    const resumable = this.#host.store.hasPartial(n.manifest);
    try {
      if (!resumable) this.#host.store.startDownload(n.id, n.manifest);
    } catch (err) {
      this.#host.log(`cannot fetch "${name}": ${(err as Error).message}`);
      return;
    }
    this.#downloads.set(name, d);
    const local = this.#watcher.known(name);
    const useLocal = reuse && local !== undefined && expect !== undefined && sameSig(local.sig, expect);
    const diff = useLocal ? diffPieces(local.manifest.pieceSha256, n.manifest.pieceSha256) : undefined;
    if (resumable) {
      // SYNC (§12): verified pieces of this version from an earlier run, then the local file's.
      this.#host.resume(n.id, n.manifest, {
        wanted: () => this.#downloads.get(name) === d && !this.#closed,
        reuse: (kept) => {
          if (diff === undefined) return [];
          const skip = new Set(kept);
          const wanted = diff.reuse
            .runs()
            .flatMap(([first, count]) =>
              Array.from({ length: count }, (_, i) => first + i).filter((p) => !skip.has(p)),
            );
          const done: number[] = [];
          this.#copyPieces(path, n, runsOf(wanted), done);
          return done;
        },
      });
      return;
    }
    const done: number[] = [];
    if (diff !== undefined) {
      this.#copyPieces(path, n, diff.reuse.runs(), done);
      for (const [first, count] of reusedChunkRuns(diff.reuse, n.manifest.chunks)) {
        if (count > 0) this.#host.acquired(n.id, first, count);
      }
    }
    // Reused pieces are checked with the whole file before it is put in place.
    this.#host.engine().addFile(n.id, n.manifest, "downloading", { verifiedPieces: done });
  }

  /** Copies the pieces in `runs` from the local file into the staging file. */
  #copyPieces(path: string, n: Newest, runs: ReadonlyArray<readonly [number, number]>, done: number[]): void {
    if (runs.length === 0) return;
    let fd: number;
    try {
      fd = openSync(path, "r");
    } catch {
      return; // gone: fetch everything
    }
    try {
      const pieceBytes = n.manifest.chunksPerPiece * CHUNK_SIZE;
      const buf = Buffer.allocUnsafe(pieceBytes);
      for (const [first, count] of runs) {
        for (let p = first; p < first + count; p++) {
          const start = p * pieceBytes;
          const length = Math.min(pieceBytes, n.manifest.size - start);
          let got = 0;
          while (got < length) {
            const r = readSync(fd, buf, got, length - got, start + got);
            if (r === 0) return;
            got += r;
          }
          this.#host.store.writePiece(n.id, p, p * n.manifest.chunksPerPiece, buf.subarray(0, length));
          done.push(p);
        }
      }
    } finally {
      closeSync(fd);
    }
  }

  /**
   * The local file moved under a fetched version: decide again once the watcher has looked
   * at it. A new content comes back through #onChanged anyway; this covers a file that
   * moved without changing content or mtime (touched, chmod), which the watcher does not
   * report, and a change it reported before the download noticed.
   */
  #decideOnceSettled(name: string): void {
    void this.#watcher.settled().then(() => {
      if (this.#closed) return;
      const known = this.#watcher.known(name);
      const copy = this.#copies.get(name);
      if (known === undefined || copy === undefined) return;
      if (known.mtimeMs !== copy.current.mtimeMs || !known.manifest.sha256.equals(copy.current.sha256)) return;
      this.#sigs.set(name, known.sig);
      if (!this.#downloads.has(name)) this.#evaluate(name);
    });
  }

  #cancel(name: string, d: Download): void {
    this.#downloads.delete(name);
    this.#unhold(d.newest.id);
  }

  /** Stops serving or fetching `fileId` here, and tells the tracker this peer holds none of it. */
  #unhold(fileId: number): void {
    this.#host.engine().removeFile(fileId);
    this.#host.store.abandon(fileId);
    this.#host.send({ withdraw: { fileId } });
  }

  // ------------------------------------------------------------------ the folder

  #onChanged(name: string, manifest: CheckedManifest, mtimeMs: number): void {
    this.#reported.delete(name);
    if (this.#deleted.delete(name)) this.#state.changed();
    const found = versionOf(manifest, mtimeMs);
    const previous = this.#copies.get(name);
    const saved = previous === undefined ? this.#saved.get(name) : undefined;
    this.#saved.delete(name);
    const copy = saved !== undefined ? restoredCopy(saved, found) : editedCopy(previous, found);
    this.#setCopy(name, copy);
    const known = this.#watcher.known(name);
    if (known !== undefined) this.#sigs.set(name, known.sig);
    // The served versions of this name are no longer on disk.
    for (const [id, seed] of this.#seeds) {
      if (seed.name === name && (seed.mtimeMs !== mtimeMs || seed.size !== manifest.size)) {
        this.#seeds.delete(id);
        this.#unhold(id);
      }
    }
    if (!this.#joined) return;
    const n = this.#newest.get(name);
    // Decided again whatever the order: a fetch under way must learn of this edit (as a
    // conflict to keep, or dropped because the edit is newer).
    this.#evaluate(name);
    if (n !== undefined && compareVersions(n.announced.version, copy.current) >= 0) return;
    this.#sendUpdate(name, copy);
  }

  #onGone(name: string): void {
    // Deletions are not propagated: the copy is simply no longer offered here (nor
    // fetched back, unless a newer version comes).
    const copy = this.#copies.get(name);
    this.#copies.delete(name);
    if (copy !== undefined) this.#deleted.set(name, copy.current);
    this.#state.changed();
    this.#sigs.delete(name);
    for (const [id, seed] of this.#seeds) {
      if (seed.name !== name) continue;
      this.#seeds.delete(id);
      this.#unhold(id);
    }
  }

  /**
   * Announces a local version. Its piece hashes go as a change to the swarm's newest
   * version of the name when that saves most of them (an in-place edit); a tracker whose
   * newest is another by then refuses it (REASON_UNKNOWN_BASE), and the whole list follows.
   */
  #sendUpdate(name: string, copy: LocalCopy): void {
    const whole = this.#wire(name, copy);
    const base = this.#newest.get(name)?.manifest;
    const pieces = whole.pieceSha256 ?? [];
    if (base !== undefined && base.chunksPerPiece === whole.chunksPerPiece && pieces.length > 0) {
      const delta = pieceDelta(base.pieceSha256, pieces);
      if (delta.indices.length * 2 < pieces.length) {
        this.#host.send({
          update: {
            manifest: {
              ...whole,
              pieceSha256: [...delta.hashes],
              deltaBase: base.sha256,
              deltaPieces: delta.pieces,
              deltaIndices: [...delta.indices],
            },
          },
        });
        return;
      }
    }
    this.#host.send({ update: { manifest: whole } });
  }

  /** A refusal from the tracker; true when it is ours to handle. */
  refused(r: udpswarm.IRefusal): boolean {
    if (r.reason !== RefusalReason.REASON_UNKNOWN_BASE) return false;
    const name = r.fileName ?? "";
    const copy = this.#copies.get(name);
    const n = this.#newest.get(name);
    // Still ours to announce (not superseded meanwhile): the whole piece list this time.
    if (copy !== undefined && (n === undefined || compareVersions(copy.current, n.announced.version) > 0)) {
      this.#host.send({ update: { manifest: this.#wire(name, copy) } });
    }
    return true;
  }

  #setCopy(name: string, copy: LocalCopy): void {
    this.#copies.set(name, copy);
    this.#state.changed();
  }

  #wire(name: string, copy: LocalCopy): udpswarm.IManifest {
    const known = this.#watcher.known(name);
    const manifest = known?.manifest;
    if (manifest === undefined) throw new Error(`no manifest for ${name}`);
    const a = announcement(copy);
    return { ...manifestToWire(manifest), mtimeMs: a.version.mtimeMs, ancestry: [...a.ancestry] };
  }
}

function exists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

function sigAt(path: string): FileSig {
  const st = lstatSync(path);
  return { size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, ino: st.ino };
}

/** Whether the file at `path` still has `expect` (or is still absent when `expect` is undefined). */
function sameSigOrAbsent(expect: FileSig | undefined, path: string): boolean {
  let now: FileSig | undefined;
  try {
    now = sigAt(path);
  } catch {
    now = undefined;
  }
  if (expect === undefined || now === undefined) return expect === now;
  return sameSig(expect, now);
}
