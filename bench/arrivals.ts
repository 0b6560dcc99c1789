/**
 * When copies become whole: a peer puts a fetched file into ./Shared only once it is
 * verified (SPEC), in one step (a link or a rename), so the first moment the file is there
 * with its full size is the moment that copy is whole. Each Shared folder is watched
 * (inotify through fs.watch); a slow poll covers a missed event. The time noted is the
 * `now()` of the check that found the file, so a run's end is measured to the event loop's
 * latency, not to the poll's period.
 */
import { type FSWatcher, statSync, watch } from "node:fs";
import path from "node:path";
import { now } from "./util.js";

const POLL_MS = 100;

export class Arrivals {
  /** Path → expected size, of the copies not yet whole. */
  readonly #pending = new Map<string, number>();
  readonly #watchers = new Map<string, FSWatcher>();
  readonly #timer: NodeJS.Timeout;
  #last = Number.NaN;
  #waiters: Array<(at: number) => void> = [];

  constructor() {
    this.#timer = setInterval(() => this.#check(), POLL_MS);
    this.#timer.unref();
  }

  /** Expects `name` of `size` bytes to appear in `dir` (an existing folder). */
  expect(dir: string, name: string, size: number): void {
    if (!this.#watchers.has(dir)) {
      // A watcher that fails (the folder removed under it) leaves the poll to notice.
      this.#watchers.set(
        dir,
        watch(dir, () => this.#check()).on("error", () => {}),
      );
    }
    this.#pending.set(path.join(dir, name), size);
  }

  #check(): void {
    if (this.#pending.size === 0) return;
    const at = now();
    for (const [file, size] of this.#pending) {
      let got: number | undefined;
      try {
        got = statSync(file).size;
      } catch {
        got = undefined;
      }
      if (got !== size) continue;
      this.#pending.delete(file);
      this.#last = Number.isNaN(this.#last) ? at : Math.max(this.#last, at);
    }
    if (this.#pending.size > 0) return;
    for (const resolve of this.#waiters) resolve(this.#last);
    this.#waiters = [];
  }

  /** Resolves with the `now()` at which the last expected copy was found whole. */
  all(): Promise<number> {
    this.#check();
    if (this.#pending.size === 0) return Promise.resolve(Number.isNaN(this.#last) ? now() : this.#last);
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  close(): void {
    clearInterval(this.#timer);
    for (const w of this.#watchers.values()) w.close();
  }
}
