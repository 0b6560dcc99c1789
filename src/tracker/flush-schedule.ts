import type { Clock, TimerHandle } from "../util/clock.js";

/**
 * When the tracker sends the changes it has gathered (one Updates frame per peer): at most
 * one flush per `urgentMs` while an urgent change waits (a peer or file came or went, a
 * copy is whole), else one per `progressMs` (chunks acquired: most of the traffic, and
 * each report goes to every other peer). The first flush after a quiet spell goes at once.
 */
export class FlushSchedule {
  readonly #clock: Clock;
  readonly #urgentMs: number;
  readonly #progressMs: number;
  readonly #flush: () => void;
  #lastFlush = Number.NEGATIVE_INFINITY;
  #timer: TimerHandle | undefined;
  /** When #timer fires (clock ms). */
  #due = Number.POSITIVE_INFINITY;

  constructor(clock: Clock, urgentMs: number, progressMs: number, flush: () => void) {
    this.#clock = clock;
    this.#urgentMs = urgentMs;
    this.#progressMs = progressMs;
    this.#flush = flush;
  }

  /** Changes wait: flush them in time (an urgent one may bring a waiting flush forward). */
  request(urgent: boolean): void {
    const now = this.#clock.now();
    const due = Math.max(now, this.#lastFlush + (urgent ? this.#urgentMs : this.#progressMs));
    if (this.#timer !== undefined) {
      if (due >= this.#due) return;
      this.#clock.clearTimer(this.#timer);
    }
    this.#due = due;
    this.#timer = this.#clock.setTimer(due - now, () => {
      this.#timer = undefined;
      this.#due = Number.POSITIVE_INFINITY;
      this.#lastFlush = this.#clock.now();
      this.#flush();
    });
  }

  /** No flush after this. Safe to call twice. */
  close(): void {
    if (this.#timer !== undefined) this.#clock.clearTimer(this.#timer);
    this.#timer = undefined;
    this.#due = Number.POSITIVE_INFINITY;
  }
}
