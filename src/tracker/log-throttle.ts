import type { Clock, TimerHandle } from "../util/clock.js";

/** How long a reason's line budget lasts (ms). */
export const LOG_INTERVAL_MS = 10_000;

/**
 * Diagnostics with a budget: at most `perReason` lines per reason per interval reach
 * stderr; the rest are counted and summed up in one line when the interval ends, so a
 * client sending absurd but well-formed frames cannot flood the tracker's stderr.
 */
export class ThrottledLog {
  readonly #clock: Clock;
  readonly #write: (line: string) => void;
  readonly #perReason: number;
  readonly #reasons = new Map<string, { since: number; written: number; suppressed: number }>();
  #timer: TimerHandle | undefined;
  /** Lines not written, in all (telemetry and test oracle). */
  suppressed = 0;

  constructor(clock: Clock, write: (line: string) => void, perReason: number) {
    this.#clock = clock;
    this.#write = write;
    this.#perReason = perReason;
  }

  line(reason: string, text: string): void {
    const now = this.#clock.now();
    let r = this.#reasons.get(reason);
    if (r !== undefined && now - r.since >= LOG_INTERVAL_MS) {
      this.#summarize(reason, r);
      r = undefined;
    }
    if (r === undefined) {
      r = { since: now, written: 0, suppressed: 0 };
      this.#reasons.set(reason, r);
    }
    if (r.written < this.#perReason) {
      r.written++;
      this.#write(text);
      return;
    }
    r.suppressed++;
    this.suppressed++;
    this.#arm();
  }

  /** Writes the pending summaries (at exit). */
  flush(): void {
    for (const [reason, r] of this.#reasons) this.#summarize(reason, r);
    this.#reasons.clear();
    if (this.#timer !== undefined) this.#clock.clearTimer(this.#timer);
    this.#timer = undefined;
  }

  #summarize(reason: string, r: { suppressed: number }): void {
    if (r.suppressed === 0) return;
    this.#write(`${r.suppressed} more "${reason}" lines in the last ${LOG_INTERVAL_MS / 1000} s not shown`);
    r.suppressed = 0;
  }

  /** Summaries go out when their interval ends, even if no line of that reason follows. */
  #arm(): void {
    if (this.#timer !== undefined) return;
    this.#timer = this.#clock.setTimer(LOG_INTERVAL_MS, () => {
      this.#timer = undefined;
      const now = this.#clock.now();
      for (const [reason, r] of this.#reasons) {
        if (now - r.since < LOG_INTERVAL_MS) continue;
        this.#summarize(reason, r);
        this.#reasons.delete(reason);
      }
      if ([...this.#reasons.values()].some((r) => r.suppressed > 0)) this.#arm();
    });
  }
}
