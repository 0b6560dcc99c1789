/**
 * What the folder watcher decides, free of I/O: which files of ./Shared changed, when a
 * change is stable enough to hash, and what to report (SPEC §9 "Local changes").
 *
 * The shell feeds it observations (a stat after a watch event, or a whole rescan) and the
 * results of hashes it asked for; the core answers through WatchIO (stat again, hash) and
 * WatchEvents. A file is hashed once its signature (size, mtime, ctime, inode) has not
 * moved for `settleMs`: the core does not trust "no event" to mean "no change", so it asks
 * for a fresh stat when the settle time is up. A hash whose file moved meanwhile is
 * dropped and the file waits to settle again, so a half-written version is never reported.
 */
import type { Clock, TimerHandle } from "../util/clock.js";
import type { CheckedManifest } from "../wire/tracker-frame.js";
import { mtimeOf } from "./version.js";

/** What a stat says about a file; any change of it means the content may have changed. */
export type FileSig = {
  readonly size: number;
  /** As fs.Stats gives it (fractional ms). */
  readonly mtimeMs: number;
  readonly ctimeMs: number;
  readonly ino: number;
};

export function sameSig(a: FileSig, b: FileSig): boolean {
  return a.size === b.size && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs && a.ino === b.ino;
}

export type WatchOptions = {
  /** A file is hashed once its signature has not moved for this long (ms). @default 300 */
  readonly settleMs?: number;
  /** Files hashed at once. @default 1 */
  readonly maxHashing?: number;
  /** Larger files are reported unreadable instead of hashed (bytes). @default Infinity */
  readonly maxFileSize?: number;
  /** A "written by me" hint not matched within this long is forgotten (ms). @default 30000 */
  readonly ownWriteTtlMs?: number;
};

export interface WatchEvents {
  /** New content (or a new mtime), stable and hashed; `mtimeMs` is the version's (integer). */
  changed(name: string, manifest: CheckedManifest, mtimeMs: number): void;
  /** The file cannot be read (or is too large); reported once until the file moves. */
  unreadable(name: string, err: Error): void;
  /** A file reported by `changed` is gone (not propagated: the peer stops offering it). */
  gone(name: string): void;
  /** Every file of the first listing that was stable is reported (once). */
  ready(): void;
}

/** Requests to the shell; each is answered by calling the core back. */
export interface WatchIO {
  /** Stat `name` again, then call observed() (the settle time is up). */
  stat(name: string): void;
  /** Hash `name`, stat it again, then call hashed() with `sig` and the result. */
  hash(name: string, sig: FileSig): void;
}

export type HashResult = { readonly manifest: CheckedManifest } | { readonly error: Error };

/** The content last reported (or adopted) for a name. */
export type Known = { readonly sig: FileSig; readonly manifest: CheckedManifest; readonly mtimeMs: number };

type State = "idle" | "settling" | "queued" | "hashing";

type Entry = {
  /** The latest observation, and since when it has not moved. */
  seen: FileSig;
  since: number;
  state: State;
  timer: TimerHandle | undefined;
  /** The signature being hashed (state "hashing"). */
  hashing: FileSig | undefined;
  known: Known | undefined;
  /** The signature whose content could not be read: not retried until it moves. */
  failed: FileSig | undefined;
};

type OwnWrite = { readonly manifest: CheckedManifest; readonly mtimeMs: number; readonly at: number };

export class WatchCore {
  readonly #clock: Clock;
  readonly #io: WatchIO;
  readonly #events: WatchEvents;
  readonly #settleMs: number;
  readonly #maxHashing: number;
  readonly #maxFileSize: number;
  readonly #ownWriteTtlMs: number;
  readonly #entries = new Map<string, Entry>();
  readonly #ownWrites = new Map<string, OwnWrite>();
  /** Names whose stat failed (reported once until seen again). */
  readonly #statFailed = new Set<string>();
  #hashing = 0;
  /** Names of the first listing not yet reported; undefined before it and once ready. */
  #awaiting: Set<string> | undefined;
  #listed = false;
  #pumpTimer: TimerHandle | undefined;

  constructor(clock: Clock, io: WatchIO, events: WatchEvents, options: WatchOptions = {}) {
    this.#clock = clock;
    this.#io = io;
    this.#events = events;
    this.#settleMs = options.settleMs ?? 300;
    this.#maxHashing = Math.max(1, options.maxHashing ?? 1);
    this.#maxFileSize = options.maxFileSize ?? Number.POSITIVE_INFINITY;
    this.#ownWriteTtlMs = options.ownWriteTtlMs ?? 30_000;
  }

  // ------------------------------------------------------------------ getters

  /** The content last reported or adopted for `name`. */
  known(name: string): Known | undefined {
    return this.#entries.get(name)?.known;
  }

  /** Nothing is settling, queued or being hashed. */
  get idle(): boolean {
    if (this.#hashing > 0) return false;
    for (const e of this.#entries.values()) if (e.state !== "idle") return false;
    return true;
  }

  // ------------------------------------------------------------------ inputs

  /**
   * The peer is about to put `manifest` with mtime `mtimeMs` at `name` itself (rename over,
   * mtime set before the rename): when the watcher sees that size and mtime there, it is
   * taken as known without hashing or reporting it.
   */
  expectOwnWrite(name: string, manifest: CheckedManifest, mtimeMs: number): void {
    this.#ownWrites.set(name, { manifest, mtimeMs, at: this.#clock.now() });
  }

  /** A whole listing of the folder (regular, shareable files): names absent are gone. */
  listing(files: ReadonlyMap<string, FileSig>): void {
    const first = !this.#listed;
    this.#listed = true;
    if (first) this.#awaiting = new Set(files.keys());
    for (const name of [...this.#entries.keys()]) if (!files.has(name)) this.#vanish(name);
    for (const [name, sig] of files) this.observed(name, sig);
    if (first) this.#checkReady();
  }

  /** One stat of `name`; undefined when it is gone or no longer a regular file. */
  observed(name: string, sig: FileSig | undefined): void {
    if (sig === undefined) {
      this.#vanish(name);
      return;
    }
    this.#statFailed.delete(name);
    const now = this.#clock.now();
    let e = this.#entries.get(name);
    if (e === undefined) {
      e = {
        seen: sig,
        since: now,
        state: "idle",
        timer: undefined,
        hashing: undefined,
        known: undefined,
        failed: undefined,
      };
      this.#entries.set(name, e);
    } else this.#moved(name, e, sig);
    if (e.state === "hashing") return; // hashed() looks again
    this.#evaluate(name, e);
  }

  /** A stat failed for another reason than the file being gone: reported once. */
  statFailed(name: string, err: Error): void {
    this.#vanish(name);
    if (this.#statFailed.has(name)) return;
    this.#statFailed.add(name);
    this.#events.unreadable(name, err);
  }

  /** The answer to WatchIO.hash: the result, and a stat taken after hashing. */
  hashed(name: string, sig: FileSig, result: HashResult, after: FileSig | undefined): void {
    this.#hashing--;
    const e = this.#entries.get(name);
    if (e !== undefined && e.state === "hashing" && e.hashing !== undefined && sameSig(e.hashing, sig)) {
      e.state = "idle";
      e.hashing = undefined;
      this.#settle(name, e, sig, result, after);
    }
    this.#pump();
  }

  /** Stops every timer. Safe to call twice. */
  close(): void {
    for (const e of this.#entries.values()) this.#clearTimer(e);
    if (this.#pumpTimer !== undefined) this.#clock.clearTimer(this.#pumpTimer);
    this.#pumpTimer = undefined;
  }

  // ------------------------------------------------------------------ decisions

  #settle(name: string, e: Entry, sig: FileSig, result: HashResult, after: FileSig | undefined): void {
    if (after === undefined) {
      this.#vanish(name);
      return;
    }
    this.#moved(name, e, after);
    if (!sameSig(after, sig)) {
      this.#evaluate(name, e); // moved while hashed: the result may mix two versions
      return;
    }
    if ("error" in result) {
      e.failed = sig;
      this.#events.unreadable(name, result.error);
      this.#resolve(name);
      return;
    }
    const manifest = result.manifest;
    const mtimeMs = mtimeOf(sig.mtimeMs);
    const own = this.#ownWrite(name);
    const ours = own !== undefined && own.mtimeMs === mtimeMs && own.manifest.sha256.equals(manifest.sha256);
    if (ours) this.#ownWrites.delete(name);
    const previous = e.known;
    const unchanged =
      previous !== undefined && previous.mtimeMs === mtimeMs && previous.manifest.sha256.equals(manifest.sha256);
    e.known = { sig, manifest, mtimeMs };
    e.failed = undefined;
    if (!ours && !unchanged) this.#events.changed(name, manifest, mtimeMs);
    this.#resolve(name);
  }

  #evaluate(name: string, e: Entry): void {
    const own = this.#ownWrite(name);
    if (own !== undefined && own.manifest.size === e.seen.size && own.mtimeMs === mtimeOf(e.seen.mtimeMs)) {
      this.#ownWrites.delete(name);
      e.known = { sig: e.seen, manifest: own.manifest, mtimeMs: own.mtimeMs };
      e.failed = undefined;
      this.#toIdle(name, e);
      return;
    }
    if (
      (e.known !== undefined && sameSig(e.known.sig, e.seen)) ||
      (e.failed !== undefined && sameSig(e.failed, e.seen))
    ) {
      this.#toIdle(name, e);
      return;
    }
    if (e.seen.size > this.#maxFileSize) {
      e.failed = e.seen;
      this.#events.unreadable(name, new Error(`larger than the limit of ${this.#maxFileSize} bytes`));
      this.#toIdle(name, e);
      return;
    }
    const due = e.since + this.#settleMs;
    if (this.#clock.now() >= due) {
      this.#clearTimer(e);
      if (e.state !== "queued") {
        e.state = "queued";
        this.#schedulePump();
      }
      return;
    }
    // Not stable long enough: look again when it would be (a fresh stat, not an event).
    this.#clearTimer(e);
    e.state = "settling";
    e.timer = this.#clock.setTimer(due - this.#clock.now(), () => {
      e.timer = undefined;
      if (this.#entries.get(name) === e) this.#io.stat(name);
    });
  }

  /**
   * Pumps once every file falling due at this instant is queued, so that the smallest of
   * them, not the first, is hashed first.
   */
  #schedulePump(): void {
    if (this.#pumpTimer !== undefined) return;
    this.#pumpTimer = this.#clock.setTimer(0, () => {
      this.#pumpTimer = undefined;
      this.#pump();
    });
  }

  /** Starts hashes while there is room: smallest files first, so small edits go out fast. */
  #pump(): void {
    while (this.#hashing < this.#maxHashing) {
      let pick: [string, Entry] | undefined;
      for (const [name, e] of this.#entries) {
        if (e.state !== "queued") continue;
        if (pick === undefined || e.seen.size < pick[1].seen.size) pick = [name, e];
      }
      if (pick === undefined) return;
      const [name, e] = pick;
      e.state = "hashing";
      e.hashing = e.seen;
      this.#hashing++;
      this.#io.hash(name, e.seen);
    }
  }

  /** A new observation of a known entry: when the file moved, it starts settling again. */
  #moved(name: string, e: Entry, sig: FileSig): void {
    if (sameSig(e.seen, sig)) return;
    e.seen = sig;
    e.since = this.#clock.now();
    // Being written at start: it will be reported when it settles, not before ready.
    this.#resolve(name);
  }

  #vanish(name: string): void {
    const e = this.#entries.get(name);
    if (e !== undefined) {
      this.#clearTimer(e);
      this.#entries.delete(name);
      if (e.known !== undefined) this.#events.gone(name);
    }
    this.#resolve(name);
  }

  #toIdle(name: string, e: Entry): void {
    this.#clearTimer(e);
    e.state = "idle";
    this.#resolve(name);
  }

  #ownWrite(name: string): OwnWrite | undefined {
    const own = this.#ownWrites.get(name);
    if (own !== undefined && this.#clock.now() - own.at > this.#ownWriteTtlMs) {
      this.#ownWrites.delete(name);
      return undefined;
    }
    return own;
  }

  #clearTimer(e: Entry): void {
    if (e.timer !== undefined) this.#clock.clearTimer(e.timer);
    e.timer = undefined;
  }

  /** `name` no longer holds back ready (reported, failed, gone, or still being written). */
  #resolve(name: string): void {
    if (this.#awaiting?.delete(name) === true) this.#checkReady();
  }

  #checkReady(): void {
    if (this.#awaiting === undefined || this.#awaiting.size > 0) return;
    this.#awaiting = undefined;
    this.#events.ready();
  }
}
