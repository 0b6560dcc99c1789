/**
 * A rate over a sliding window: feed it a growing total and the time, get units per
 * second measured against the newest sample at or before the window's start. A drop in
 * the total (what was counted went away) starts it over.
 */
export class RateWindow {
  readonly #windowMs: number;
  #samples: Array<{ t: number; total: number }> = [];

  constructor(windowMs: number) {
    this.#windowMs = windowMs;
  }

  /** Records `total` at `now` (ms); returns the rate per second (0 until time has passed). */
  add(total: number, now: number): number {
    const last = this.#samples[this.#samples.length - 1];
    if (last !== undefined && total < last.total) this.#samples = [];
    this.#samples.push({ t: now, total });
    while (this.#samples.length > 2 && (this.#samples[1]?.t ?? now) <= now - this.#windowMs) this.#samples.shift();
    const base = this.#samples[0];
    if (base === undefined || now <= base.t) return 0;
    return ((total - base.total) * 1000) / (now - base.t);
  }
}
