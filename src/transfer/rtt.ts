/**
 * Round-trip estimator of RFC 6298 / RFC 9002 §5: smoothed RTT, variance and minimum,
 * and a retransmission timeout with exponential backoff.
 */
export type RttOptions = {
  /** Timeout before any sample (ms). @default 200 */
  readonly initialRtoMs?: number;
  /** Floor of the timeout: a LAN's, not TCP's 1 s; it also absorbs event-loop lag (ms). @default 30 */
  readonly minRtoMs?: number;
  /** Ceiling of the timeout, backoff included (ms). @default 1000 */
  readonly maxRtoMs?: number;
  /**
   * The ceiling before any sample (ms): a peer that never answered may be a host that has
   * not got going yet (128 peers starting at once on 2 cores get no CPU for seconds), so
   * its timeouts back off further, and the few requests it is sent before it is given up
   * on span ~16 s instead of ~6 s. @default 3200
   */
  readonly maxUnansweredRtoMs?: number;
  /** Clock granularity term of RFC 6298 (ms). @default 4 */
  readonly granularityMs?: number;
};

export class RttEstimator {
  readonly #initialRto: number;
  readonly #minRto: number;
  readonly #maxRto: number;
  readonly #maxUnansweredRto: number;
  readonly #granularity: number;
  #srtt: number | undefined;
  #rttvar = 0;
  #minRtt = Number.POSITIVE_INFINITY;
  #latest = 0;
  /** Consecutive timeouts without progress; each doubles the timeout. */
  #backoff = 0;

  constructor(options: RttOptions = {}) {
    this.#initialRto = options.initialRtoMs ?? 200;
    this.#minRto = options.minRtoMs ?? 30;
    this.#maxRto = options.maxRtoMs ?? 1000;
    this.#maxUnansweredRto = options.maxUnansweredRtoMs ?? 3200;
    this.#granularity = options.granularityMs ?? 4;
  }

  get smoothed(): number | undefined {
    return this.#srtt;
  }

  get variance(): number {
    return this.#rttvar;
  }

  get min(): number | undefined {
    return Number.isFinite(this.#minRtt) ? this.#minRtt : undefined;
  }

  get latest(): number {
    return this.#latest;
  }

  get backoffCount(): number {
    return this.#backoff;
  }

  /** Feeds one unambiguous sample (ms); resets the backoff (progress was made). */
  sample(rttMs: number): void {
    const r = Math.max(0, rttMs);
    this.#latest = r;
    this.#minRtt = Math.min(this.#minRtt, r);
    if (this.#srtt === undefined) {
      this.#srtt = r;
      this.#rttvar = r / 2;
    } else {
      this.#rttvar = 0.75 * this.#rttvar + 0.25 * Math.abs(this.#srtt - r);
      this.#srtt = 0.875 * this.#srtt + 0.125 * r;
    }
    this.#backoff = 0;
  }

  /** The timeout before backoff. */
  baseRto(): number {
    if (this.#srtt === undefined) return this.#initialRto;
    const rto = this.#srtt + Math.max(4 * this.#rttvar, this.#granularity);
    return Math.min(this.#maxRto, Math.max(this.#minRto, rto));
  }

  /** The timeout to arm now: the base doubled once per unanswered expiry. */
  rto(): number {
    const ceiling = this.#srtt === undefined ? this.#maxUnansweredRto : this.#maxRto;
    return Math.min(ceiling, this.baseRto() * 2 ** this.#backoff);
  }

  /**
   * The probe timeout (RFC 9002 §6.2): the RTO's formula without its floor, at least
   * `floorMs`, doubled once per probe `inARow`, never above the RTO; before any sample,
   * the RTO.
   */
  probeTimeout(floorMs: number, inARow: number): number {
    if (this.#srtt === undefined) return this.rto();
    const pto = Math.max(floorMs, this.#srtt + Math.max(4 * this.#rttvar, this.#granularity));
    return Math.min(this.rto(), pto * 2 ** Math.min(inARow, 8));
  }

  /**
   * A timer expired with no progress. The backoff stops at 16× the base timeout: on a
   * lossy LAN a run of lost requests is likelier than a congested path, and a peer that is
   * really gone is reported by the tracker.
   */
  onTimeout(): void {
    this.#backoff = Math.min(this.#backoff + 1, 4);
  }

  /** Time-threshold loss delay of RFC 9002 §6.1.2: 9/8 (or `factor`) of max(srtt, latest), at least granularity. */
  lossDelay(factor = 9 / 8): number {
    const base = Math.max(this.#srtt ?? this.#initialRto, this.#latest);
    return Math.max(factor * base, this.#granularity);
  }
}
