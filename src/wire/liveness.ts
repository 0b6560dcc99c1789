/**
 * When is the other end of a link dead? A closed or reset connection is death, and the
 * shells see that themselves; this rule only judges silence, and silence is suspicion
 * until it outlasts a timeout that adapts to the round trips of the keepalives actually
 * observed (the way an RTO adapts to RTT, RFC 6298) and that leaves out the time this
 * process itself was stalled (a timer that fires late is evidence of our lag, not of
 * theirs). Pure: every method takes the time and the process's running stall total.
 */
export type LivenessOptions = {
  /** Interval between keepalive pings (ms). */
  readonly pingIntervalMs: number;
  /** Silence always tolerated: the floor of the timeout (ms). */
  readonly minTimeoutMs: number;
  /** The timeout never grows beyond this (ms). */
  readonly maxTimeoutMs: number;
};

/** Pings remembered for round-trip samples (older ones are forgotten, never answered). */
const MAX_OUTSTANDING_PINGS = 16;

export class Liveness {
  readonly #options: LivenessOptions;
  #lastHeard: number;
  /** The stall total when the other end was last heard. */
  #stallAtHeard: number;
  #srtt: number | undefined;
  #rttvar = 0;
  readonly #pings = new Map<number, { sentAt: number; stallAt: number }>();

  constructor(options: LivenessOptions, now: number, stall = 0) {
    this.#options = options;
    this.#lastHeard = now;
    this.#stallAtHeard = stall;
  }

  /** Smoothed keepalive round trip (ms), once one was observed. */
  get srttMs(): number | undefined {
    return this.#srtt;
  }

  /** How long silence is tolerated now (ms). */
  get timeoutMs(): number {
    const { pingIntervalMs, minTimeoutMs, maxTimeoutMs } = this.#options;
    if (this.#srtt === undefined) return minTimeoutMs;
    const rto = this.#srtt + 4 * this.#rttvar;
    return Math.min(maxTimeoutMs, Math.max(minTimeoutMs, pingIntervalMs + 4 * rto));
  }

  /** Anything at all came from the other end. */
  heard(now: number, stall: number): void {
    this.#lastHeard = now;
    this.#stallAtHeard = stall;
  }

  pingSent(nonce: number, now: number, stall: number): void {
    this.#pings.set(nonce, { sentAt: now, stallAt: stall });
    if (this.#pings.size > MAX_OUTSTANDING_PINGS) {
      const oldest = this.#pings.keys().next().value;
      if (oldest !== undefined) this.#pings.delete(oldest);
    }
  }

  /** The answer to one of our pings: returns the round-trip sample (ms), our own stall left out. */
  pong(nonce: number, now: number, stall: number): number | undefined {
    const ping = this.#pings.get(nonce);
    if (ping === undefined) return undefined;
    // Pings are answered in order: older ones still outstanding were lost or never will be.
    for (const key of this.#pings.keys()) {
      this.#pings.delete(key);
      if (key === nonce) break;
    }
    const sample = Math.max(0, now - ping.sentAt - (stall - ping.stallAt));
    if (this.#srtt === undefined) {
      this.#srtt = sample;
      this.#rttvar = sample / 2;
    } else {
      this.#rttvar = 0.75 * this.#rttvar + 0.25 * Math.abs(this.#srtt - sample);
      this.#srtt = 0.875 * this.#srtt + 0.125 * sample;
    }
    return sample;
  }

  /** Silence that counts against the other end: time since it was heard, our stalls left out. */
  silentMs(now: number, stall: number): number {
    return Math.max(0, now - this.#lastHeard - (stall - this.#stallAtHeard));
  }

  dead(now: number, stall: number): boolean {
    return this.silentMs(now, stall) > this.timeoutMs;
  }
}
