/**
 * Runs one udpswarm transfer with the real `tracker.sh` and `peer.sh` and times it.
 *
 * Timing: t0 is taken just before the first timed peer is spawned (seeders are started
 * before, and the clock starts only once the tracker has printed their CONNECT blocks).
 * t1 is the later of two moments: the benchmark reads, on the tracker's stdout, the last
 * of the `PEER N ACQUIRED: CHUNK X/NUMCHUNKS FILE` lines the transfer must produce (SPEC
 * §5 prints one line per peer and chunk, exactly once), and every copy is whole in its
 * peer's ./Shared (see arrivals.ts; a peer may report a file's last chunks before its
 * whole-file check and move are done). The tracker's stdout is read as it is written
 * (a pipe); the count is a byte search, so the reader costs little CPU even for the
 * 2 million lines of a 1 GiB transfer. Peer exit is not used for timing: a peer leaves
 * only once everyone is complete and its MIN_ALIVE has passed, and the leave itself is a
 * round trip to the tracker. The same stream gives the transfer phase (first ACQUIRED line
 * to t1), the tail (from the line that makes 99% of the ACQUIRED lines to the last line)
 * and start-up (t0 to the first ACQUIRED line, or to the CONNECT block of every timed peer).
 *
 * CPU: the whole-life user + system CPU of the tracker and every peer, from the kernel's
 * accounting of reaped children (see reapedChildrenCpuSeconds): start-up, hashing, the
 * transfer and the wait before leaving, nothing lost between two /proc samples.
 */
import { linkSync, readFileSync } from "node:fs";
import path from "node:path";
import { Arrivals } from "./arrivals.js";
import { checkCopy, type InputFile, mkdirp } from "./files.js";
import { exitText, Proc, type ProcSample, ProcSampler, reapedChildrenCpuSeconds, stopAll } from "./proc.js";
import { errorText, now, numberAt, ROOT, withTimeout } from "./util.js";

export const TRACKER_SH = path.join(ROOT, "tracker.sh");
export const PEER_SH = path.join(ROOT, "peer.sh");
export const CHUNK_SIZE = 512;

export type SwarmPeer = {
  readonly label: string;
  /** What it holds in ./Shared at start; it ends holding every file of the swarm. */
  readonly files: readonly InputFile[];
  readonly minAlive: number;
  /** Extra peer options, e.g. ["--loss", "0.1", "--seed", "7"]. */
  readonly args?: readonly string[];
};

export type SwarmPlan = {
  /** This run's directory: created, and left for the caller to remove. */
  readonly dir: string;
  /** Started first; the clock starts once the tracker has printed all their CONNECT blocks. */
  readonly seeders: readonly SwarmPeer[];
  /** Started together at t0. */
  readonly timed: readonly SwarmPeer[];
  /** Run tracker and peers inside this network namespace. */
  readonly netns?: string | undefined;
  /** Bound on everything up to t1. */
  readonly timeoutMs: number;
  /** Told the pid of the tracker ("tracker") and of each peer as it starts (cpu-breakdown.ts). */
  readonly onStart?: (label: string, pid: number) => void;
};

/** The counters of a peer's `--stats FILE` that the benchmark reads. */
export type PeerStats = {
  readonly datagramsSent: number;
  readonly chunksSent: number;
  readonly requestsSent: number;
  readonly retransmissions: number;
  readonly duplicates: number;
  readonly chunksAcquired: number;
  readonly timeouts: number;
  /** Datagrams dropped by the peer's own loss mode (--loss), both directions. */
  readonly faultDrops: number;
  /** Largest smoothed RTT to any remote, ms. */
  readonly srttMs: number | undefined;
  /** Largest retransmission timeout to any remote at exit, ms. */
  readonly rtoMs: number | undefined;
  /** ru_maxrss reported by newer peers, bytes. */
  readonly peakRssBytes: number | undefined;
};

export type PeerOutcome = {
  readonly label: string;
  readonly timed: boolean;
  /** CPU seconds used in [t0, t1] (a timed peer: since its start). */
  readonly cpuSeconds: number | undefined;
  /** Peak RSS over the whole life of the process, bytes (max of VmHWM and the peer's own figure). */
  readonly peakRssBytes: number | undefined;
  readonly stats: PeerStats | undefined;
};

export type SwarmResult = {
  /** t1 − t0, seconds: spawn to the last line and every copy whole. */
  readonly seconds: number;
  /** From the first ACQUIRED line to t1, seconds (NaN without ACQUIRED lines). */
  readonly transferSeconds: number;
  /** From t0 to the first ACQUIRED line, seconds (NaN without ACQUIRED lines). */
  readonly firstAcquiredSeconds: number;
  /** From t0 to the CONNECT block of the last peer, seconds. */
  readonly connectedSeconds: number;
  /** From the line that makes 99% of the ACQUIRED lines to the last, ms. */
  readonly tailMs: number;
  /** From the last ACQUIRED line to the last copy whole in Shared/, ms (0 if it came first). */
  readonly wholeAfterLastLineMs: number;
  /** ACQUIRED lines printed: chunks delivered, one per peer and chunk. */
  readonly chunksDelivered: number;
  /** Whole-life CPU seconds of all peers together, and of the tracker. */
  readonly peersCpuSeconds: number;
  readonly trackerCpuSeconds: number;
  readonly peers: readonly PeerOutcome[];
};

export function chunksOf(file: InputFile): number {
  return Math.ceil(file.size / CHUNK_SIZE);
}

/** Peers get no UDPSWARM_* settings from the caller's environment: only their arguments count. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("UDPSWARM_")) env[k] = v;
  return env;
}

/** Counts occurrences of fixed byte strings in a stream, across chunk boundaries. */
export class NeedleCounter {
  readonly counts: number[];
  readonly #needles: Buffer[];
  readonly #keep: number;
  #carry: Buffer = Buffer.alloc(0);
  #waiters: Array<{ index: number; target: number; resolve: (at: number) => void }> = [];

  constructor(needles: readonly string[]) {
    this.#needles = needles.map((n) => Buffer.from(n, "utf8"));
    this.counts = needles.map(() => 0);
    this.#keep = Math.max(...this.#needles.map((n) => n.length)) - 1;
  }

  feed(chunk: Buffer): void {
    const at = now();
    const carried = this.#carry.length;
    const buf = carried === 0 ? chunk : Buffer.concat([this.#carry, chunk]);
    this.#needles.forEach((needle, i) => {
      let found = 0;
      for (let p = buf.indexOf(needle); p !== -1; p = buf.indexOf(needle, p + needle.length)) {
        // A match lying wholly in the carried bytes was counted with the previous chunk.
        if (p + needle.length > carried) found++;
      }
      this.counts[i] = (this.counts[i] ?? 0) + found;
    });
    this.#carry = Buffer.from(buf.subarray(Math.max(0, buf.length - this.#keep)));
    this.#waiters = this.#waiters.filter((w) => {
      const reached = (this.counts[w.index] ?? 0) >= w.target;
      if (reached) w.resolve(at);
      return !reached;
    });
  }

  /** Resolves with the `now()` of the chunk in which needle `index` reached `target`. */
  reach(index: number, target: number): Promise<number> {
    if ((this.counts[index] ?? 0) >= target) return Promise.resolve(now());
    return new Promise((resolve) => this.#waiters.push({ index, target, resolve }));
  }
}

const ACQUIRED = 0;
const CONNECT = 1;

function readStats(file: string): PeerStats | undefined {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, "utf8"));
  } catch {
    return undefined;
  }
  const n = (key: string) => numberAt(json, key) ?? 0;
  const obj = json as Record<string, unknown>;
  const faultDrops = ["faultsIn", "faultsOut"].reduce((sum, k) => sum + (numberAt(obj[k], "dropped") ?? 0), 0);
  const remotes = Array.isArray(obj.remotes) ? obj.remotes : [];
  const largest = (key: string) => {
    const v = remotes.map((r: unknown) => numberAt(r, key)).filter((x): x is number => x !== undefined);
    return v.length === 0 ? undefined : Math.max(...v);
  };
  const rssKiB = numberAt(json, "peakRssKiB");
  return {
    datagramsSent: n("datagramsSent"),
    chunksSent: n("chunksSent"),
    requestsSent: n("requestsSent"),
    retransmissions: n("retransmissions"),
    duplicates: n("duplicates"),
    chunksAcquired: n("chunksAcquired"),
    timeouts: n("timeouts"),
    faultDrops,
    srttMs: largest("srttMs"),
    rtoMs: largest("rtoMs"),
    peakRssBytes: rssKiB === undefined ? undefined : rssKiB * 1024,
  };
}

type Started = { readonly peer: SwarmPeer; readonly proc: Proc; readonly dir: string; readonly timed: boolean };

/** Runs the plan; throws an Error carrying every process's exit and stderr tail on failure. */
export async function runSwarm(plan: SwarmPlan): Promise<SwarmResult> {
  const everyone = [...plan.seeders, ...plan.timed];
  const allFiles = new Map<string, InputFile>();
  for (const p of everyone) for (const f of p.files) allFiles.set(f.name, f);
  const lacking = (p: SwarmPeer) => [...allFiles.values()].filter((f) => !p.files.some((g) => g.name === f.name));
  const expectedLines = everyone.reduce((sum, p) => sum + lacking(p).reduce((s, f) => s + chunksOf(f), 0), 0);

  const started: Started[] = [];
  const counter = new NeedleCounter([" ACQUIRED: CHUNK ", " CONNECT: OFFERS "]);
  const trackerDir = mkdirp(path.join(plan.dir, "tracker"));
  const env = cleanEnv();
  // Only this run's processes are reaped between here and the end (the caller runs nothing else).
  const cpuAtStart = reapedChildrenCpuSeconds();
  const tracker = new Proc("tracker", "sh", [TRACKER_SH], {
    cwd: trackerDir,
    env,
    netns: plan.netns,
    onStdout: (chunk) => counter.feed(chunk),
  });
  plan.onStart?.("tracker", tracker.pid);
  const sampler = new ProcSampler(() => started.map((s) => s.proc));
  const arrivals = new Arrivals();
  let trackerStopping = false;
  const deadline = now() + plan.timeoutMs;
  const left = () => Math.max(1, deadline - now());

  // Rejects as soon as something has gone wrong: the tracker exits on its own, a peer
  // exits with an error, or a peer leaves (which it may only do once everyone is
  // complete) and the last lines still have not come 2 s later.
  let failWith: (err: Error) => void = () => {};
  const failure = new Promise<never>((_, reject) => {
    failWith = reject;
  });
  failure.catch(() => {});
  void tracker.exited.then((e) => {
    // The tracker exits 0 only on SIGINT/SIGTERM: then someone else signalled it.
    const hint = e.code === 0 ? ", signalled from outside the benchmark" : "";
    if (!trackerStopping) failWith(new Error(`the tracker exited (${exitText(e)}${hint}) during the run`));
  });
  const watchPeer = (proc: Proc) => {
    void proc.exited.then((e) => {
      if (e.code !== 0) failWith(new Error(`${proc.label} exited (${exitText(e)})`));
      else {
        setTimeout(() => {
          const got = counter.counts[ACQUIRED] ?? 0;
          if (got < expectedLines)
            failWith(new Error(`${proc.label} left, but only ${got}/${expectedLines} ACQUIRED lines came`));
        }, 2000).unref();
      }
    });
  };
  const startPeer = (peer: SwarmPeer, port: string, timed: boolean) => {
    const dir = mkdirp(path.join(plan.dir, peer.label));
    const shared = mkdirp(path.join(dir, "Shared"));
    for (const f of peer.files) linkSync(f.path, path.join(shared, f.name));
    for (const f of lacking(peer)) arrivals.expect(shared, f.name, f.size);
    const args = [PEER_SH, "127.0.0.1", port, String(peer.minAlive), "--stats", path.join(dir, "stats.json")];
    const proc = new Proc(peer.label, "sh", [...args, ...(peer.args ?? [])], { cwd: dir, env, netns: plan.netns });
    started.push({ peer, proc, dir, timed });
    plan.onStart?.(peer.label, proc.pid);
    watchPeer(proc);
  };
  const race = <T>(p: Promise<T>, what: string) => withTimeout(Promise.race([p, failure]), left(), what);

  try {
    const m = await race(tracker.waitForStderr(/listening on port (\d+)/, left()), "tracker start");
    const port = m[1] ?? "";
    for (const peer of plan.seeders) startPeer(peer, port, false);
    await race(counter.reach(CONNECT, plan.seeders.length), "seeders connecting");
    const before = sampler.sampleNow();
    // Waiters set before the lines can come, so that each resolves at its line's arrival.
    const already = counter.counts[ACQUIRED] ?? 0;
    const firstLine = counter.reach(ACQUIRED, already + 1);
    const line99 = counter.reach(ACQUIRED, Math.max(1, Math.ceil(expectedLines * 0.99)));
    const connected = counter.reach(CONNECT, everyone.length);
    const t0 = now();
    for (const peer of plan.timed) startPeer(peer, port, true);
    const tLines = await race(counter.reach(ACQUIRED, expectedLines), `${expectedLines} ACQUIRED lines`);
    const t1 = Math.max(tLines, await race(arrivals.all(), "every copy whole in Shared/"));
    const atEnd = sampler.sampleNow();
    const tConnected = await race(connected, "every peer's CONNECT block");
    const [tFirst, t99] = expectedLines > already ? await Promise.all([firstLine, line99]) : [Number.NaN, Number.NaN];

    const longest = Math.max(0, ...everyone.map((p) => p.minAlive));
    await withTimeout(
      Promise.race([Promise.all(started.map((s) => s.proc.exited)), failure]),
      longest * 1000 + 30_000,
      "peers leaving after the transfer",
    );
    const cpuPeersGone = reapedChildrenCpuSeconds();
    trackerStopping = true;
    await tracker.stop();
    const cpuTrackerGone = reapedChildrenCpuSeconds();
    const printed = counter.counts[ACQUIRED] ?? 0;
    if (printed !== expectedLines) {
      throw new Error(`the tracker printed ${printed} ACQUIRED lines; one per peer and chunk is ${expectedLines}`);
    }

    const problems: string[] = [];
    for (const s of started) {
      for (const f of lacking(s.peer)) {
        const bad = await checkCopy(path.join(s.dir, "Shared", f.name), f);
        if (bad !== undefined) problems.push(`${s.peer.label}: ${bad}`);
      }
    }
    if (problems.length > 0) throw new Error(`copies differ: ${problems.join("; ")}`);

    const peers = started.map((s): PeerOutcome => {
      const end: ProcSample | undefined = atEnd.get(s.proc) ?? sampler.last(s.proc);
      const start = s.timed ? 0 : before.get(s.proc)?.cpuSeconds;
      const stats = readStats(path.join(s.dir, "stats.json"));
      const rss = Math.max(sampler.last(s.proc)?.peakRssBytes ?? 0, stats?.peakRssBytes ?? 0);
      return {
        label: s.peer.label,
        timed: s.timed,
        cpuSeconds: end === undefined || start === undefined ? undefined : end.cpuSeconds - start,
        peakRssBytes: rss > 0 ? rss : undefined,
        stats,
      };
    });
    return {
      seconds: (t1 - t0) / 1000,
      transferSeconds: (t1 - tFirst) / 1000,
      firstAcquiredSeconds: (tFirst - t0) / 1000,
      connectedSeconds: (tConnected - t0) / 1000,
      tailMs: tLines - t99,
      wholeAfterLastLineMs: t1 - tLines,
      chunksDelivered: printed,
      peersCpuSeconds: cpuPeersGone - cpuAtStart,
      trackerCpuSeconds: cpuTrackerGone - cpuPeersGone,
      peers,
    };
  } catch (err) {
    const lines = counter.counts[ACQUIRED] ?? 0;
    const who = [tracker, ...started.map((s) => s.proc)].map((p) => `  ${p.describe()}`).join("\n");
    throw new Error(`${errorText(err)} [${lines}/${expectedLines} ACQUIRED lines]\n${who}`);
  } finally {
    trackerStopping = true;
    sampler.close();
    arrivals.close();
    await stopAll([...started.map((s) => s.proc), tracker], 1000);
  }
}
