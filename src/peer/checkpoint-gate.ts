import type { Clock, TimerHandle } from "../util/clock.js";

export type CheckpointGateDeps<T> = {
  readonly clock: Clock;
  /** Makes durable everything the reports queued so far describe (the staging records). */
  readonly checkpoint: () => Promise<void>;
  /** Sends reports whose checkpoint is done, in the order they were queued. */
  readonly send: (reports: readonly T[]) => void;
  readonly fail: (err: unknown) => void;
  /** Checkpoints start at most this often (ms), except when a report is urgent. */
  readonly everyMs: number;
};

/**
 * Holds completion reports back until a checkpoint covering them is done, so that what
 * the tracker has been told survives a crash; checkpoints are coalesced (one at a time,
 * at most one per `everyMs`) because each costs a write, an fsync and a rename. An urgent
 * report (a file just completed) starts the next checkpoint at once.
 */
export class CheckpointGate<T> {
  readonly #deps: CheckpointGateDeps<T>;
  #queued: T[] = [];
  #running = false;
  #urgent = false;
  #lastStart = Number.NEGATIVE_INFINITY;
  #timer: TimerHandle | undefined;
  #closed = false;
  readonly #idle: Array<() => void> = [];

  constructor(deps: CheckpointGateDeps<T>) {
    this.#deps = deps;
  }

  push(reports: readonly T[], urgent = false): void {
    if (this.#closed) return;
    this.#queued.push(...reports);
    if (urgent) this.#urgent = true;
    this.#pump();
  }

  /** Resolves once every report pushed so far has been sent (or the gate closed). */
  idle(): Promise<void> {
    if (this.#closed || (!this.#running && this.#queued.length === 0)) return Promise.resolve();
    this.#urgent = true; // someone is waiting: no reason to hold back
    this.#pump();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /** Drops what is queued and stops the timer. Safe to call twice. */
  close(): void {
    this.#closed = true;
    this.#queued = [];
    if (this.#timer !== undefined) this.#deps.clock.clearTimer(this.#timer);
    this.#timer = undefined;
    this.#settleIdle();
  }

  #pump(): void {
    if (this.#closed || this.#running) return;
    if (this.#queued.length === 0) {
      this.#settleIdle();
      return;
    }
    const clock = this.#deps.clock;
    const wait = this.#lastStart + this.#deps.everyMs - clock.now();
    if (wait > 0 && !this.#urgent) {
      this.#timer ??= clock.setTimer(wait, () => {
        this.#timer = undefined;
        this.#pump();
      });
      return;
    }
    if (this.#timer !== undefined) clock.clearTimer(this.#timer);
    this.#timer = undefined;
    this.#urgent = false;
    this.#running = true;
    this.#lastStart = clock.now();
    const batch = this.#queued;
    this.#queued = [];
    this.#deps.checkpoint().then(
      () => {
        this.#running = false;
        if (this.#closed) return;
        this.#deps.send(batch);
        this.#pump();
      },
      (err: unknown) => {
        this.#running = false;
        this.#deps.fail(err);
        this.close();
      },
    );
  }

  #settleIdle(): void {
    for (const resolve of this.#idle.splice(0)) resolve();
  }
}
