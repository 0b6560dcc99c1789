/**
 * A token bucket on an injected time scale (ms): `rate` tokens per second up to `burst`;
 * each action costs one token and is refused while the bucket is empty.
 */
export class TokenBucket {
  readonly #rate: number;
  readonly #burst: number;
  #tokens: number;
  #at: number;

  /** Starts with `initial` tokens (default: a full bucket) at time `now`. */
  constructor(ratePerSecond: number, burst: number, initial = burst, now = 0) {
    this.#rate = ratePerSecond;
    this.#burst = burst;
    this.#tokens = Math.min(burst, initial);
    this.#at = now;
  }

  /** Tokens available at `now` (refilled since the last look). */
  available(now: number): number {
    this.#refill(now);
    return this.#tokens;
  }

  /** Takes one token if there is one at `now`. */
  take(now: number): boolean {
    this.#refill(now);
    if (this.#tokens < 1) return false;
    this.#tokens--;
    return true;
  }

  #refill(now: number): void {
    this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#at) / 1000) * this.#rate);
    this.#at = now;
  }
}
