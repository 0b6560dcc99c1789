/**
 * Delay-based window control (LEDBAT-like, RFC 6817): the window of chunks in flight to
 * one peer grows while the queueing delay (latest RTT above the minimum) stays under a
 * target, and shrinks multiplicatively, at most once per RTT, when it does not or when a
 * whole request goes unanswered. Random loss of single chunks is not a congestion signal,
 * so 30% loss does not collapse the window (the floor is four full requests).
 */
export type WindowOptions = {
  /** Chunks in flight at start. @default 256 */
  readonly initial?: number;
  /** Never fewer chunks in flight than this: four requests, so that random loss rarely silences them all. @default 128 */
  readonly min?: number;
  /** Never more: keeps data in flight within a receiver's 4 MiB socket buffer. @default 2048 */
  readonly max?: number;
  /** Queueing delay the controller aims to stay under (ms). @default 40 */
  readonly targetDelayMs?: number;
  /** Chunks per request: the additive-increase step per RTT. @default 32 */
  readonly step?: number;
  /** Multiplicative decrease on congestion. @default 0.75 */
  readonly decrease?: number;
};

/** RTT samples whose minimum is the delay signal. */
const RECENT_SAMPLES = 4;

export class WindowController {
  readonly #min: number;
  readonly #max: number;
  readonly #target: number;
  readonly #step: number;
  readonly #decrease: number;
  #cwnd: number;
  #slowStart = true;
  #lastDecreaseAt = Number.NEGATIVE_INFINITY;
  #decreases = 0;
  /** The last RTT samples: their minimum is the delay signal (one slow sample is noise, not a queue). */
  readonly #recent: number[] = [];
  #congested = false;

  constructor(options: WindowOptions = {}) {
    this.#min = options.min ?? 128;
    this.#max = options.max ?? 2048;
    this.#target = options.targetDelayMs ?? 40;
    this.#step = options.step ?? 32;
    this.#decrease = options.decrease ?? 0.75;
    this.#cwnd = Math.min(this.#max, Math.max(this.#min, options.initial ?? 256));
  }

  /** Chunks allowed in flight. */
  get chunks(): number {
    return Math.floor(this.#cwnd);
  }

  get inSlowStart(): boolean {
    return this.#slowStart;
  }

  get decreases(): number {
    return this.#decreases;
  }

  /**
   * A new RTT sample (one per request): the queueing delay is the least of the last
   * RECENT_SAMPLES samples above the path minimum `minRttMs`; above the target the window
   * shrinks (at most once per `srttMs`) and stops growing until it is back under.
   */
  onRttSample(rttMs: number, minRttMs: number, srttMs: number, now: number): void {
    this.#recent.push(rttMs);
    if (this.#recent.length > RECENT_SAMPLES) this.#recent.shift();
    const queueing = Math.min(...this.#recent) - minRttMs;
    this.#congested = queueing > this.#target;
    if (this.#congested) this.#reduce(srttMs, now);
  }

  /** `acked` chunks arrived: the window grows unless the path is queueing. */
  onAck(acked: number): void {
    if (this.#congested) return;
    if (this.#slowStart) this.#cwnd += acked;
    else this.#cwnd += (this.#step * acked) / this.#cwnd;
    this.#cwnd = Math.min(this.#max, this.#cwnd);
  }

  /** A whole request went unanswered: treat as congestion (overflow drops bursts). */
  onTimeout(srttMs: number, now: number): void {
    this.#reduce(srttMs, now);
  }

  #reduce(srttMs: number, now: number): void {
    this.#slowStart = false;
    if (now - this.#lastDecreaseAt < srttMs) return;
    this.#lastDecreaseAt = now;
    this.#decreases++;
    this.#cwnd = Math.max(this.#min, this.#cwnd * this.#decrease);
  }
}
