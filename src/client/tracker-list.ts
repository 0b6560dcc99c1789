import { SwarmError } from "../util/errors.js";

export type TrackerAddress = { readonly host: string; readonly port: number };

/**
 * TRACKERS_FILE (SPEC §10/§11): one tier per line, `HOST PORT` pairs, tiers in order of
 * preference; blank lines and # comments skipped.
 */
export function parseTrackerTiers(text: string): TrackerAddress[][] {
  const tiers: TrackerAddress[][] = [];
  for (const [i, raw] of text.split(/\r?\n/u).entries()) {
    const line = raw.replace(/#.*$/u, "").trim();
    if (line === "") continue;
    const words = line.split(/\s+/u);
    if (words.length % 2 !== 0) {
      throw new SwarmError("ERR_USAGE", `line ${i + 1} of the trackers file: expected HOST PORT`);
    }
    const tier: TrackerAddress[] = [];
    for (let w = 0; w + 1 < words.length; w += 2) {
      const host = words[w] ?? "";
      const port = Number(words[w + 1]);
      if (!Number.isInteger(port) || port < 1 || port > 65535) {
        throw new SwarmError(
          "ERR_USAGE",
          `line ${i + 1} of the trackers file: bad port ${JSON.stringify(words[w + 1])}`,
        );
      }
      tier.push({ host, port });
    }
    tiers.push(tier);
  }
  if (tiers.length === 0) throw new SwarmError("ERR_USAGE", "the trackers file lists no tracker (HOST PORT lines)");
  return tiers;
}

/**
 * The order trackers are tried in, as BitTorrent's BEP 12 does it: tier by tier; each tier
 * shuffled once, when the list is made; the tracker that answered moves to the front of
 * its tier, so it is tried first next time. Pure: the shuffle's randomness is injected.
 * "as listed" keeps the file's order in every tier: sync peers use it, since only peers on
 * the same tracker sync with each other (a shuffle would spread them over a tier).
 */
export class TrackerList {
  readonly #tiers: TrackerAddress[][];

  constructor(tiers: readonly (readonly TrackerAddress[])[], random: (() => number) | "as listed" = Math.random) {
    this.#tiers = tiers.map((tier) => {
      const t = [...tier];
      if (random === "as listed") return t;
      for (let i = t.length - 1; i > 0; i--) {
        const j = Math.floor(random() * (i + 1));
        const a = t[i] as TrackerAddress;
        t[i] = t[j] as TrackerAddress;
        t[j] = a;
      }
      return t;
    });
  }

  get size(): number {
    return this.#tiers.reduce((n, t) => n + t.length, 0);
  }

  /** Every tracker in the order to try; `last` (the one just lost) is tried after all others. */
  order(last?: TrackerAddress): TrackerAddress[] {
    const all = this.#tiers.flat();
    if (last === undefined) return all;
    const same = (t: TrackerAddress) => t.host === last.host && t.port === last.port;
    return [...all.filter((t) => !same(t)), ...all.filter(same)];
  }

  /** `answered` took us: it goes to the front of its tier. */
  answered(answered: TrackerAddress): void {
    for (const tier of this.#tiers) {
      const i = tier.findIndex((t) => t.host === answered.host && t.port === answered.port);
      if (i < 0) continue;
      const [t] = tier.splice(i, 1);
      if (t !== undefined) tier.unshift(t);
      return;
    }
  }
}

/**
 * Tries the trackers of `order` one by one until `connect` succeeds (none once `stopped`).
 * Throws one clear error when none answers: the tracker's own when there is one.
 */
export async function firstThatAnswers<T>(
  order: readonly TrackerAddress[],
  connect: (tracker: TrackerAddress) => Promise<T>,
  stopped: () => boolean = () => false,
): Promise<{ readonly tracker: TrackerAddress; readonly link: T }> {
  let lastError: unknown;
  for (const tracker of order) {
    if (stopped()) break;
    try {
      return { tracker, link: await connect(tracker) };
    } catch (err) {
      lastError = err;
    }
  }
  const detail = lastError instanceof Error ? lastError.message : String(lastError);
  if (order.length === 1) {
    throw lastError instanceof SwarmError ? lastError : new SwarmError("ERR_TRACKER_UNREACHABLE", detail);
  }
  throw new SwarmError("ERR_TRACKER_UNREACHABLE", `none of the ${order.length} trackers answers (last: ${detail})`);
}

/** Reads and parses a trackers file; a missing or malformed one is a usage error. */
export function trackerListFrom(
  file: string,
  read: (file: string) => string,
  order: "shuffled" | "as listed" = "shuffled",
): TrackerList {
  let text: string;
  try {
    text = read(file);
  } catch (err) {
    throw new SwarmError("ERR_USAGE", `cannot read the trackers file ${file}: ${(err as Error).message}`);
  }
  return new TrackerList(parseTrackerTiers(text), order === "as listed" ? "as listed" : Math.random);
}
