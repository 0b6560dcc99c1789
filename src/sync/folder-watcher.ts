/**
 * Binds the watch core to the file system: `fs.watch` on ./Shared for prompt notice, a
 * periodic rescan because watching alone misses events (overflow, some editors, network
 * file systems), stats on request, and hashes off the event loop's critical path.
 */
import { type FSWatcher, lstatSync, type Stats, watch } from "node:fs";
import { join } from "node:path";
import { listShareable } from "../peer/scan.js";
import { type Clock, RealClock, type TimerHandle } from "../util/clock.js";
import { checkFileName } from "../wire/names.js";
import type { CheckedManifest } from "../wire/tracker-frame.js";
import { hashFileAsync } from "./hash-file.js";
import { type FileSig, type Known, WatchCore, type WatchEvents, type WatchOptions } from "./watch-core.js";

export type FolderWatcherOptions = WatchOptions & {
  /** Full rescans of the folder this often (ms). @default 1000 */
  readonly rescanMs?: number;
  /** Hashes a file into its manifest. @default hashFileAsync */
  readonly hash?: (path: string, name: string) => Promise<CheckedManifest>;
  /** One diagnostic line (names refused, watch failures), each said once. */
  readonly warn?: (line: string) => void;
};

export class FolderWatcher {
  readonly #dir: string;
  readonly #clock: Clock;
  readonly #core: WatchCore;
  readonly #rescanMs: number;
  readonly #hash: (path: string, name: string) => Promise<CheckedManifest>;
  readonly #warn: (line: string) => void;
  readonly #warned = new Set<string>();
  readonly #afterRescan: Array<() => void> = [];
  #watcher: FSWatcher | undefined;
  #rescanTimer: TimerHandle | undefined;
  #closed = false;

  constructor(dir: string, events: WatchEvents, options: FolderWatcherOptions = {}, clock: Clock = new RealClock()) {
    this.#dir = dir;
    this.#clock = clock;
    this.#rescanMs = options.rescanMs ?? 1000;
    this.#hash = options.hash ?? hashFileAsync;
    this.#warn = options.warn ?? (() => {});
    this.#core = new WatchCore(
      clock,
      { stat: (name) => this.#stat(name), hash: (name, sig) => void this.#hashOne(name, sig) },
      events,
      options,
    );
  }

  /** Starts watching: one rescan now (the first listing), then events and rescans. */
  start(): void {
    if (this.#closed || this.#watcher !== undefined) return;
    try {
      this.#watcher = watch(this.#dir, { persistent: true }, (_event, filename) => this.#onEvent(filename));
      this.#watcher.on("error", (err) =>
        this.#warnOnce(`watching ${this.#dir} failed (${err.message}); rescans go on`),
      );
    } catch (err) {
      this.#warnOnce(`cannot watch ${this.#dir} (${(err as Error).message}); relying on rescans`);
    }
    this.#rescan();
  }

  /** See WatchCore.expectOwnWrite: call before putting a fetched version in place. */
  expectOwnWrite(name: string, manifest: CheckedManifest, mtimeMs: number): void {
    this.#core.expectOwnWrite(name, manifest, mtimeMs);
  }

  known(name: string): Known | undefined {
    return this.#core.known(name);
  }

  /** Resolves after the next full rescan that finds nothing settling or being hashed. */
  settled(): Promise<void> {
    return new Promise((resolve) => {
      const check = () => {
        if (this.#core.idle || this.#closed) resolve();
        else this.#afterRescan.push(check);
      };
      this.#afterRescan.push(check);
    });
  }

  /** Stops watching and rescanning. Safe to call twice. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#watcher?.close();
    if (this.#rescanTimer !== undefined) this.#clock.clearTimer(this.#rescanTimer);
    this.#core.close();
    for (const waiter of this.#afterRescan.splice(0)) waiter();
  }

  #onEvent(filename: string | Buffer | null): void {
    if (this.#closed) return;
    if (filename === null) {
      this.#rescan();
      return;
    }
    const name = filename.toString();
    if (name.startsWith(".") || checkFileName(name) !== undefined) return;
    this.#stat(name);
  }

  #rescan(): void {
    if (this.#closed) return;
    if (this.#rescanTimer !== undefined) this.#clock.clearTimer(this.#rescanTimer);
    this.#rescanTimer = this.#clock.setTimer(this.#rescanMs, () => {
      this.#rescanTimer = undefined;
      this.#rescan();
    });
    const files = new Map<string, FileSig>();
    let names: string[];
    try {
      names = listShareable(this.#dir, (line) => this.#warnOnce(line));
    } catch (err) {
      this.#warnOnce(`cannot list ${this.#dir}: ${(err as Error).message}`);
      return;
    }
    for (const name of names) {
      const st = this.#lstat(name);
      if (st instanceof Error) this.#core.statFailed(name, st);
      else if (st !== undefined) files.set(name, sigOf(st));
    }
    this.#core.listing(files);
    for (const waiter of this.#afterRescan.splice(0)) waiter();
  }

  #stat(name: string): void {
    if (this.#closed) return;
    const st = this.#lstat(name);
    if (st instanceof Error) this.#core.statFailed(name, st);
    else this.#core.observed(name, st === undefined ? undefined : sigOf(st));
  }

  /** The file's stats; undefined when gone or not a regular file; an Error when stat fails otherwise. */
  #lstat(name: string): Stats | undefined | Error {
    try {
      const st = lstatSync(join(this.#dir, name));
      return st.isFile() ? st : undefined;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      return code === "ENOENT" || code === "ENOTDIR" ? undefined : (err as Error);
    }
  }

  async #hashOne(name: string, sig: FileSig): Promise<void> {
    let result: { manifest: CheckedManifest } | { error: Error };
    try {
      result = { manifest: await this.#hash(join(this.#dir, name), name) };
    } catch (err) {
      result = { error: err instanceof Error ? err : new Error(String(err)) };
    }
    if (this.#closed) return;
    const st = this.#lstat(name);
    this.#core.hashed(name, sig, result, st instanceof Error || st === undefined ? undefined : sigOf(st));
  }

  #warnOnce(line: string): void {
    if (this.#warned.has(line)) return;
    this.#warned.add(line);
    this.#warn(line);
  }
}

function sigOf(st: Stats): FileSig {
  return { size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, ino: st.ino };
}
