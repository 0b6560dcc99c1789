/** Wrong passwords allowed per key (user or address) before attempts are slowed down. */
export const FREE_FAILURES = 5;
/** First delay once the free failures are spent, doubled per further failure (ms). */
export const FIRST_DELAY_MS = 1000;
export const MAX_DELAY_MS = 60_000;
/** A key's failures are forgotten after this long without one (ms). */
export const FORGET_AFTER_MS = 15 * 60_000;
/** Keys remembered at most (the oldest go first): a flood of addresses cannot grow it. */
export const MAX_KEYS = 10_000;

type Entry = { failures: number; lastFailure: number; blockedUntil: number };

/**
 * Slows down repeated wrong passwords, per user name and per client address, so that
 * neither guessing one user's password from many addresses nor many users' from one
 * address goes fast. Pure: the caller passes the time. A success clears the user's count
 * only (an attacker's own successful logins must not clear its address).
 */
export class LoginThrottle {
  readonly #entries = new Map<string, Entry>();

  /** How long (ms) the attempt must wait before it is even checked; 0: go ahead. */
  retryAfter(keys: readonly string[], now: number): number {
    let wait = 0;
    for (const key of keys) {
      const e = this.#live(key, now);
      if (e !== undefined) wait = Math.max(wait, e.blockedUntil - now);
    }
    return Math.max(0, Math.ceil(wait));
  }

  failed(keys: readonly string[], now: number): void {
    for (const key of keys) {
      const e = this.#live(key, now) ?? { failures: 0, lastFailure: now, blockedUntil: 0 };
      e.failures++;
      e.lastFailure = now;
      const over = e.failures - FREE_FAILURES;
      if (over >= 0) e.blockedUntil = now + Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** Math.min(over, 16));
      this.#entries.delete(key); // re-inserted last: the map's order is the age order
      this.#entries.set(key, e);
      while (this.#entries.size > MAX_KEYS) {
        const oldest = this.#entries.keys().next().value;
        if (oldest === undefined) break;
        this.#entries.delete(oldest);
      }
    }
  }

  succeeded(key: string): void {
    this.#entries.delete(key);
  }

  #live(key: string, now: number): Entry | undefined {
    const e = this.#entries.get(key);
    if (e !== undefined && now - e.lastFailure > FORGET_AFTER_MS && now >= e.blockedUntil) {
      this.#entries.delete(key);
      return undefined;
    }
    return e;
  }
}
