import type { Clock, TimerHandle } from "./clock.js";

/**
 * Named deadlines on an injected clock, behind one clock timer at the earliest of them
 * (as quinn's TimerTable with `next_timeout()`). The owner sets and clears deadlines; when
 * the clock timer fires, `onExpiry` runs with the time, takes the due keys with
 * `expired(now)`, and the table re-arms itself for what is left.
 */
export class TimerTable<K> {
  readonly #clock: Clock;
  readonly #onExpiry: (now: number) => void;
  readonly #deadlines = new Map<K, number>();
  #handle: TimerHandle | undefined;
  #armedAt = Number.POSITIVE_INFINITY;
  #closed = false;

  constructor(clock: Clock, onExpiry: (now: number) => void) {
    this.#clock = clock;
    this.#onExpiry = onExpiry;
  }

  get(key: K): number | undefined {
    return this.#deadlines.get(key);
  }

  /** Sets (or moves) the deadline of `key`. */
  set(key: K, at: number): void {
    if (this.#closed) return;
    this.#deadlines.set(key, at);
    if (at < this.#armedAt) this.#arm(at);
  }

  clear(key: K): void {
    if (!this.#deadlines.delete(key)) return;
    if (this.#deadlines.size === 0) this.#disarm();
  }

  /** The earliest deadline, or infinity when none is set. */
  nextTimeout(): number {
    let at = Number.POSITIVE_INFINITY;
    for (const t of this.#deadlines.values()) if (t < at) at = t;
    return at;
  }

  /** Removes and returns the keys due at `now`, earliest first. */
  expired(now: number): K[] {
    const due: Array<[K, number]> = [];
    for (const [key, at] of this.#deadlines) if (at <= now) due.push([key, at]);
    due.sort((a, b) => a[1] - b[1]);
    for (const [key] of due) this.#deadlines.delete(key);
    return due.map(([key]) => key);
  }

  /** Stops the clock timer and forgets every deadline. Safe to call twice. */
  close(): void {
    this.#closed = true;
    this.#deadlines.clear();
    this.#disarm();
  }

  #arm(at: number): void {
    this.#disarm();
    this.#armedAt = at;
    this.#handle = this.#clock.setTimer(Math.max(0, at - this.#clock.now()), () => this.#fire());
  }

  #disarm(): void {
    if (this.#handle !== undefined) this.#clock.clearTimer(this.#handle);
    this.#handle = undefined;
    this.#armedAt = Number.POSITIVE_INFINITY;
  }

  #fire(): void {
    this.#handle = undefined;
    this.#armedAt = Number.POSITIVE_INFINITY;
    if (this.#closed) return;
    this.#onExpiry(this.#clock.now());
    const next = this.nextTimeout();
    if (next < this.#armedAt) this.#arm(next);
  }
}
