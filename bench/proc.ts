/**
 * Child processes of the benchmark. Each one runs in its own process group, so that it
 * and anything it starts (aria2c's hook, `ip netns exec`'s exec chain) can be stopped
 * together; every process still running is killed on timeout, at the end of its sample,
 * and when the benchmark itself exits or is interrupted.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { errorText, now, sleep, withTimeout } from "./util.js";

export type ExitInfo = { readonly code: number | null; readonly signal: NodeJS.Signals | null };

export type StartOptions = {
  readonly cwd: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Receives every stdout chunk; without it the last few KiB are kept for diagnostics. */
  readonly onStdout?: (chunk: Buffer) => void;
  /** Runs the command inside this network namespace (`ip netns exec NS ...`). */
  readonly netns?: string | undefined;
};

const TAIL_BYTES = 4096;
const running = new Set<Proc>();

type LineWaiter = { readonly re: RegExp; readonly resolve: (m: RegExpMatchArray) => void };

export class Proc {
  readonly label: string;
  readonly pid: number;
  /** `now()` just before the spawn. */
  readonly startedAt: number;
  readonly exited: Promise<ExitInfo>;
  exit: ExitInfo | undefined;
  #stderrTail = "";
  #stdoutTail = "";
  #partialLine = "";
  #waiters: LineWaiter[] = [];

  constructor(label: string, command: string, args: readonly string[], options: StartOptions) {
    this.label = label;
    const [cmd, argv] =
      options.netns === undefined ? [command, args] : ["ip", ["netns", "exec", options.netns, command, ...args]];
    this.startedAt = now();
    const child: ChildProcess = spawn(cmd, argv, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    if (child.pid === undefined) throw new Error(`${label}: cannot start ${cmd}`);
    this.pid = child.pid;
    running.add(this);
    this.exited = new Promise((resolve) => {
      child.once("error", (err) => {
        this.#stderrTail += `\n[spawn error: ${errorText(err)}]`;
      });
      child.once("close", (code, signal) => {
        this.exit = { code, signal };
        running.delete(this);
        resolve(this.exit);
      });
    });
    const onStdout = options.onStdout;
    child.stdout?.on("data", (chunk: Buffer) => {
      if (onStdout !== undefined) onStdout(chunk);
      else this.#stdoutTail = (this.#stdoutTail + chunk.toString("utf8")).slice(-TAIL_BYTES);
    });
    child.stderr?.on("data", (chunk: Buffer) => this.#onStderr(chunk.toString("utf8")));
  }

  #onStderr(text: string): void {
    this.#stderrTail = (this.#stderrTail + text).slice(-TAIL_BYTES);
    if (this.#waiters.length === 0) return;
    const lines = (this.#partialLine + text).split("\n");
    this.#partialLine = lines.pop() ?? "";
    for (const line of lines) {
      this.#waiters = this.#waiters.filter((w) => {
        const m = line.match(w.re);
        if (m !== null) w.resolve(m);
        return m === null;
      });
    }
  }

  /** Waits for a stderr line matching `re` (lines written before the call are not seen). */
  waitForStderr(re: RegExp, ms: number): Promise<RegExpMatchArray> {
    const seen = new Promise<RegExpMatchArray>((resolve, reject) => {
      this.#waiters.push({ re, resolve });
      void this.exited.then((e) => reject(new Error(`${this.label} exited (${exitText(e)}) before ${re}`)));
    });
    return withTimeout(seen, ms, `${this.label}: waiting for ${re}`);
  }

  get stderrTail(): string {
    return this.#stderrTail;
  }

  get stdoutTail(): string {
    return this.#stdoutTail;
  }

  /** Signals the whole process group (no-op once the process has been reaped). */
  signal(sig: NodeJS.Signals): void {
    if (this.exit !== undefined) return;
    try {
      process.kill(-this.pid, sig);
    } catch {
      // already gone
    }
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process has exited. */
  async stop(graceMs = 2000): Promise<ExitInfo> {
    if (this.exit !== undefined) return this.exit;
    this.signal("SIGTERM");
    const done = await Promise.race([this.exited, sleep(graceMs).then(() => undefined)]);
    if (done !== undefined) return done;
    this.signal("SIGKILL");
    return this.exited;
  }

  /** One paragraph for an error report: who, how it ended, the end of its stderr. */
  describe(): string {
    const tail = this.#stderrTail.trim().split("\n").slice(-6).join("\n    ");
    return `${this.label} (${this.exit === undefined ? "running" : exitText(this.exit)})${tail === "" ? "" : `:\n    ${tail}`}`;
  }
}

export function exitText(e: ExitInfo): string {
  return e.signal !== null ? `killed by ${e.signal}` : `exit ${e.code}`;
}

/** Stops every process given (in parallel). */
export async function stopAll(procs: Iterable<Proc>, graceMs = 2000): Promise<void> {
  await Promise.all([...procs].map((p) => p.stop(graceMs)));
}

/** SIGKILLs every process group still running: for exit and interrupt handlers. */
export function killAllSync(): void {
  for (const p of running) {
    try {
      process.kill(-p.pid, "SIGKILL");
    } catch {
      // gone
    }
  }
}

/** Runs a short command to completion (tool set-up: mktorrent, ip, iptables, id). */
export function runSync(command: string, args: readonly string[], cwd?: string): { ok: boolean; output: string } {
  const r = spawnSync(command, args, { cwd, encoding: "utf8", timeout: 60_000 });
  const output = `${r.stdout ?? ""}${r.stderr ?? ""}${r.error ? errorText(r.error) : ""}`.trim();
  return { ok: r.status === 0 && r.error === undefined, output };
}

// ------------------------------------------------------------------ /proc sampling

let ticksPerSecond: number | undefined;

function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    const r = runSync("getconf", ["CLK_TCK"]);
    const n = Number(r.output);
    ticksPerSecond = r.ok && n > 0 ? n : 100;
  }
  return ticksPerSecond;
}

export type ProcSample = {
  /** User + system CPU seconds used so far. */
  readonly cpuSeconds: number;
  /** Peak resident set size so far (VmHWM), bytes. */
  readonly peakRssBytes: number;
};

/** Reads /proc/PID/stat and /proc/PID/status; undefined once the process is gone. */
export function sampleProc(pid: number): ProcSample | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(fields[11]) + Number(fields[12]);
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const hwm = /^VmHWM:\s+(\d+) kB/m.exec(status);
    return { cpuSeconds: ticks / clockTicks(), peakRssBytes: hwm?.[1] === undefined ? 0 : Number(hwm[1]) * 1024 };
  } catch {
    return undefined;
  }
}

/**
 * Samples a set of processes every `everyMs`, keeping the last sample of each: a process
 * that exits between two reads keeps the values of the read before (VmHWM only grows).
 */
export class ProcSampler {
  readonly #last = new Map<Proc, ProcSample>();
  readonly #timer: NodeJS.Timeout;

  constructor(
    readonly procs: () => Iterable<Proc>,
    everyMs = 100,
  ) {
    this.#timer = setInterval(() => this.sampleNow(), everyMs);
  }

  /** Samples every live process now; returns the latest sample of each. */
  sampleNow(): Map<Proc, ProcSample> {
    for (const p of this.procs()) {
      if (p.exit !== undefined) continue;
      const s = sampleProc(p.pid);
      if (s !== undefined) this.#last.set(p, s);
    }
    return new Map(this.#last);
  }

  last(p: Proc): ProcSample | undefined {
    return this.#last.get(p);
  }

  close(): void {
    clearInterval(this.#timer);
  }
}

/**
 * User + system CPU seconds of every child this process has reaped so far (utime and
 * stime of /proc/self/stat's cutime and cstime): the kernel adds a child's whole-life CPU,
 * and its own reaped children's, when the child is waited for. So the difference across a
 * run whose children have all exited is the CPU of exactly those processes, short-lived
 * ones included, with nothing lost between two samples. Resolution: one clock tick.
 */
export function reapedChildrenCpuSeconds(): number {
  // First, so that the one-time getconf child is reaped before the read, not inside a window.
  const ticks = clockTicks();
  const stat = readFileSync("/proc/self/stat", "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // cutime and cstime are fields 16 and 17.
  return (Number(f[13] ?? Number.NaN) + Number(f[14] ?? Number.NaN)) / ticks;
}

// ------------------------------------------------------------------ the rest of the machine

export type CpuSnapshot = { readonly at: number; readonly busyTicks: number; readonly ownTicks: number };

/** Busy CPU ticks of the whole machine, and of this process with its reaped descendants. */
export function cpuSnapshot(): CpuSnapshot | undefined {
  try {
    const cpu = readFileSync("/proc/stat", "utf8").split("\n")[0]?.trim().split(/\s+/).slice(1).map(Number) ?? [];
    // user nice system idle iowait irq softirq steal ...: busy = user + nice + system + irq + softirq.
    const busyTicks = [0, 1, 2, 5, 6].reduce((sum, i) => sum + (cpu[i] ?? 0), 0);
    const stat = readFileSync("/proc/self/stat", "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // utime stime cutime cstime: fields 14 to 17.
    const ownTicks = [11, 12, 13, 14].reduce((sum, i) => sum + Number(f[i] ?? 0), 0);
    return { at: now(), busyTicks, ownTicks };
  } catch {
    return undefined;
  }
}

/**
 * Cores used on average by processes other than the benchmark and its children between
 * two snapshots (every child must have been reaped by the second): the noise of the run.
 */
export function otherCores(a: CpuSnapshot | undefined, b: CpuSnapshot | undefined): number | undefined {
  if (a === undefined || b === undefined || b.at <= a.at) return undefined;
  const foreign = b.busyTicks - a.busyTicks - (b.ownTicks - a.ownTicks);
  return Math.max(0, foreign / clockTicks() / ((b.at - a.at) / 1000));
}
