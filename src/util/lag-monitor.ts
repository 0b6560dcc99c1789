import { readFileSync } from "node:fs";
import { availableParallelism, loadavg } from "node:os";
import { type IntervalHistogram, monitorEventLoopDelay } from "node:perf_hooks";

/** A stall shorter than this is ordinary scheduling noise, not lag (ms). */
const NOISE_MS = 20;
/**
 * Runnable tasks per CPU up to which a host is busy, not crowded: its time all counts (a
 * test suite on 2 cores runs a few processes per core and must see a dead peer as dead).
 */
export const CROWDED_LOAD = 4;
/** How often the histogram's longest stall is folded into the total (ms). */
const READ_EVERY_MS = 100;

/**
 * Time that counts against nobody, in all: the keepalive and idle judgements leave it out
 * of a silence. It is the time this process's event loop was blocked (while we were
 * stalled, nobody could be heard), or, when more, the share of the time a crowded host
 * could not give: with L runnable tasks per CPU above CROWDED_LOAD, 1 - 4/L of it (128 peers starting on 2
 * cores run in slices far apart and are silent for minutes while alive; measured, a swarm
 * of them lost peers to 15 s keepalive timeouts and files to a 30 s idle grace). Every
 * 100 ms the event-loop delay histogram's longest stall and the run queue are read.
 */
export class LagMonitor {
  readonly #histogram: IntervalHistogram;
  readonly #timer: NodeJS.Timeout;
  #totalMs = 0;
  #foldedAt = performance.now();

  constructor() {
    this.#histogram = monitorEventLoopDelay({ resolution: 10 });
    this.#histogram.enable();
    this.#timer = setInterval(() => this.#fold(), READ_EVERY_MS);
    this.#timer.unref();
  }

  /** Milliseconds stalled since the monitor started (never decreases). */
  stalledMs(): number {
    this.#fold();
    return this.#totalMs;
  }

  close(): void {
    clearInterval(this.#timer);
    this.#histogram.disable();
  }

  #fold(): void {
    const now = performance.now();
    const elapsed = now - this.#foldedAt;
    this.#foldedAt = now;
    const longest = this.#histogram.count > 0 ? this.#histogram.max / 1e6 : 0;
    const stalled = longest > NOISE_MS ? longest : 0;
    const crowded = elapsed * Math.max(0, 1 - CROWDED_LOAD / hostLoad());
    this.#totalMs += Math.min(elapsed, Math.max(stalled, crowded));
    this.#histogram.reset();
  }
}

let shared: LagMonitor | undefined;

/** The process's one monitor (started on first use). */
export function processLag(): LagMonitor {
  shared ??= new LagMonitor();
  return shared;
}

/** How long a run-queue reading is reused (ms). */
const LOAD_READ_EVERY_MS = 500;
let loadReadAt = Number.NEGATIVE_INFINITY;
let loadValue = 1;

/**
 * How crowded this host's CPUs are now: runnable tasks per CPU (at least 1), from the
 * kernel's instant run-queue count (/proc/loadavg, Linux, not counting this process) or
 * else the 1-minute load average. On a crowded host every process, the other end of a local link included,
 * runs in short slices far apart: silence is judged against that.
 */
export function hostLoad(): number {
  const now = performance.now();
  if (now - loadReadAt < LOAD_READ_EVERY_MS) return loadValue;
  loadReadAt = now;
  const cpus = Math.max(1, availableParallelism());
  // Not the 1-minute average: it stays high for a minute after a burst has gone, and a
  // peer facing a silent non-tracker then waited 10 s instead of 2 (issue 16, 4).
  let runnable = loadavg()[0] ?? 0;
  try {
    const field = readFileSync("/proc/loadavg", "utf8").split(" ")[3];
    const n = Number(field?.split("/")[0]);
    // The count includes this process, which is running to read it.
    if (Number.isFinite(n)) runnable = Math.max(0, n - 1);
  } catch {
    // not Linux: the load average alone
  }
  loadValue = Math.max(1, runnable / cpus);
  return loadValue;
}
