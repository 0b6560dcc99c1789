/**
 * The sequence numbers of one sender seen lately (a sliding window, as IPsec's anti-replay
 * window, RFC 4303 §3.4.3): each is accepted once; one more than `size` below the highest
 * seen is refused as too old. Sequence numbers are u32 and compared in serial arithmetic
 * (they start at a random value and wrap). Fed only with proofs already checked, so a
 * forged sequence number cannot move the window.
 */
export class ReplayWindow {
  readonly #size: number;
  readonly #seen: Uint8Array;
  #highest: number | undefined;

  /** `size`: a power of two. */
  constructor(size = 4096) {
    this.#size = size;
    this.#seen = new Uint8Array(size);
  }

  /** Whether `seq` is new (then it is remembered). */
  accept(seq: number): boolean {
    const s = seq >>> 0;
    const mask = this.#size - 1;
    const highest = this.#highest;
    if (highest === undefined) {
      this.#highest = s;
      this.#seen[s & mask] = 1;
      return true;
    }
    const ahead = (s - highest) | 0;
    if (ahead > 0) {
      if (ahead >= this.#size) this.#seen.fill(0);
      else for (let i = 1; i < ahead; i++) this.#seen[(highest + i) & mask] = 0;
      this.#highest = s;
      this.#seen[s & mask] = 1;
      return true;
    }
    if (-ahead >= this.#size || this.#seen[s & mask] === 1) return false;
    this.#seen[s & mask] = 1;
    return true;
  }
}
