import type { Clock } from "../util/clock.js";
import { SeededRandom } from "../util/random.js";

/**
 * The packet-loss test mode (SPEC §7): seeded faults applied to datagrams. Each
 * direction of a peer (outgoing and incoming) passes through its own injector; unit
 * tests put the same injectors on the links of the fake network.
 */
export type FaultConfig = {
  /** Probability a datagram is dropped. */
  readonly loss: number;
  /** Fixed delay added to every datagram (ms). */
  readonly delayMs: number;
  /** Uniform random extra delay in [0, jitterMs) (ms). */
  readonly jitterMs: number;
  /** Probability a datagram is delivered twice. */
  readonly dup: number;
  /** Probability a datagram is held back so that later ones overtake it. */
  readonly reorder: number;
  /** Probability one random bit of a datagram is flipped. */
  readonly corrupt: number;
  readonly seed: number;
};

export const NO_FAULTS: FaultConfig = { loss: 0, delayMs: 0, jitterMs: 0, dup: 0, reorder: 0, corrupt: 0, seed: 1 };

export function hasFaults(f: FaultConfig): boolean {
  return f.loss > 0 || f.delayMs > 0 || f.jitterMs > 0 || f.dup > 0 || f.reorder > 0 || f.corrupt > 0;
}

export type FaultCounters = {
  dropped: number;
  duplicated: number;
  reordered: number;
  corrupted: number;
  delayed: number;
};

/** Extra hold for a reordered datagram: long enough for several later ones to pass it. */
const REORDER_HOLD_MS = 2;

export class FaultInjector {
  readonly counters: FaultCounters = { dropped: 0, duplicated: 0, reordered: 0, corrupted: 0, delayed: 0 };
  readonly #config: FaultConfig;
  readonly #random: SeededRandom;
  readonly #clock: Clock;

  constructor(config: FaultConfig, clock: Clock, seedSalt = 0) {
    this.#config = config;
    this.#clock = clock;
    this.#random = new SeededRandom((config.seed ^ Math.imul(seedSalt + 1, 0x9e3779b1)) >>> 0);
  }

  /** Passes `bytes` through the faults; `deliver` runs zero, one or two times, now or later. */
  apply(bytes: Buffer, deliver: (bytes: Buffer) => void): void {
    const f = this.#config;
    const r = this.#random;
    if (f.loss > 0 && r.next() < f.loss) {
      this.counters.dropped++;
      return;
    }
    let out = bytes;
    if (f.corrupt > 0 && r.next() < f.corrupt && bytes.length > 0) {
      out = Buffer.from(bytes);
      const bit = r.int(out.length * 8);
      out[bit >> 3] = (out[bit >> 3] ?? 0) ^ (1 << (bit & 7));
      this.counters.corrupted++;
    }
    const copies = f.dup > 0 && r.next() < f.dup ? 2 : 1;
    if (copies === 2) this.counters.duplicated++;
    for (let i = 0; i < copies; i++) {
      let delay = f.delayMs + (f.jitterMs > 0 ? r.next() * f.jitterMs : 0);
      if (f.reorder > 0 && r.next() < f.reorder) {
        delay += REORDER_HOLD_MS + r.next() * REORDER_HOLD_MS;
        this.counters.reordered++;
      }
      if (delay <= 0) deliver(out);
      else {
        this.counters.delayed++;
        const copy = out;
        this.#clock.setTimer(delay, () => deliver(copy));
      }
    }
  }
}
