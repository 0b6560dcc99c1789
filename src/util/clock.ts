/** Time and timers, injected so the protocol core can run on a manual clock in tests. */
export interface Clock {
  /** Milliseconds on a monotonic scale (only differences mean anything). */
  now(): number;
  setTimer(delayMs: number, fire: () => void): TimerHandle;
  clearTimer(handle: TimerHandle): void;
}

export type TimerHandle = { readonly id: number };

/** The process clock: `performance.now()` and Node timers (unref'd: timers never keep a process alive). */
export class RealClock implements Clock {
  readonly #timers = new Map<number, NodeJS.Timeout>();
  #nextId = 1;

  now(): number {
    return performance.now();
  }

  setTimer(delayMs: number, fire: () => void): TimerHandle {
    const id = this.#nextId++;
    const timeout = setTimeout(
      () => {
        this.#timers.delete(id);
        fire();
      },
      Math.max(0, delayMs),
    );
    timeout.unref();
    this.#timers.set(id, timeout);
    return { id };
  }

  clearTimer(handle: TimerHandle): void {
    const timeout = this.#timers.get(handle.id);
    if (timeout !== undefined) {
      clearTimeout(timeout);
      this.#timers.delete(handle.id);
    }
  }
}

/** A clock that moves only when told to; timers fire in deadline order, then creation order. */
export class ManualClock implements Clock {
  #now: number;
  #nextId = 1;
  readonly #timers = new Map<number, { at: number; fire: () => void }>();

  constructor(start = 0) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimer(delayMs: number, fire: () => void): TimerHandle {
    const id = this.#nextId++;
    this.#timers.set(id, { at: this.#now + Math.max(0, delayMs), fire });
    return { id };
  }

  clearTimer(handle: TimerHandle): void {
    this.#timers.delete(handle.id);
  }

  /** The deadline of the next timer, or undefined when none is armed. */
  nextDeadline(): number | undefined {
    let best: number | undefined;
    for (const t of this.#timers.values()) if (best === undefined || t.at < best) best = t.at;
    return best;
  }

  get pendingTimers(): number {
    return this.#timers.size;
  }

  /**
   * Moves time forward by `ms` without firing anything, as a blocked event loop does:
   * timers that fell due meanwhile fire late, at the next advance.
   */
  stall(ms: number): void {
    this.#now += Math.max(0, ms);
  }

  /** Moves time forward by `ms`, firing every timer that falls due on the way. */
  advance(ms: number): void {
    this.advanceTo(this.#now + ms);
  }

  advanceTo(target: number): void {
    for (;;) {
      let dueId: number | undefined;
      let dueAt = Number.POSITIVE_INFINITY;
      for (const [id, t] of this.#timers) {
        if (t.at <= target && t.at < dueAt) {
          dueAt = t.at;
          dueId = id;
        }
      }
      if (dueId === undefined) break;
      const timer = this.#timers.get(dueId);
      this.#timers.delete(dueId);
      this.#now = Math.max(this.#now, dueAt);
      timer?.fire();
    }
    this.#now = Math.max(this.#now, target);
  }
}
