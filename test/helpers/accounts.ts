/**
 * Accounts e2e helpers (SPEC §10): a tracker with --store, and clients driven through
 * their stdin, each reply awaited by the line it must print (events, never sleeps).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { ROOT, TRACKER_SH } from "./swarm.js";

export const CLIENT_SH = path.join(ROOT, "client.sh");
const WAIT_MS = 60_000;

const live = new Set<ChildProcess>();
process.on("exit", () => {
  for (const c of live) {
    // A child that never started has no pid: kill(-0) would take this whole process group.
    if (c.pid === undefined) continue;
    try {
      process.kill(-(c.pid ?? 0), "SIGKILL");
    } catch {
      // gone
    }
  }
});

/** A child with its output kept as lines, waited on by pattern. */
export class LineProc {
  readonly label: string;
  readonly child: ChildProcess;
  readonly out: string[] = [];
  readonly err: string[] = [];
  readonly exited: Promise<number | null>;
  #waiters: Array<() => void> = [];

  constructor(label: string, command: string, args: readonly string[], cwd: string, env: NodeJS.ProcessEnv = {}) {
    this.label = label;
    this.child = spawn(command, args, {
      cwd,
      env: { ...process.env, ...env },
      stdio: ["pipe", "pipe", "pipe"],
      detached: true,
    });
    live.add(this.child);
    this.#lines(this.child.stdout, this.out);
    this.#lines(this.child.stderr, this.err);
    this.exited = new Promise((resolve) => {
      this.child.on("close", (code) => {
        live.delete(this.child);
        this.#wake();
        resolve(code);
      });
    });
    this.child.stdin?.on("error", () => {});
  }

  #lines(stream: NodeJS.ReadableStream | null, into: string[]): void {
    let partial = "";
    stream?.setEncoding("utf8");
    stream?.on("data", (chunk: string) => {
      const parts = (partial + chunk).split("\n");
      partial = parts.pop() ?? "";
      into.push(...parts);
      this.#wake();
    });
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }

  send(line: string): void {
    this.child.stdin?.write(`${line}\n`);
  }

  end(): void {
    this.child.stdin?.end();
  }

  /** Waits until a line of `stream` from index `from` on matches; returns its index. */
  async waitFor(pattern: RegExp, stream: "out" | "err" = "out", from = 0): Promise<number> {
    const lines = stream === "out" ? this.out : this.err;
    const deadline = Date.now() + WAIT_MS;
    for (;;) {
      const i = lines.findIndex((l, k) => k >= from && pattern.test(l));
      if (i >= 0) return i;
      if (this.child.exitCode !== null || this.child.signalCode !== null || Date.now() > deadline) {
        throw new Error(`${this.label}: no ${stream} line matching ${pattern}\n${this.describe()}`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(0, deadline - Date.now()));
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  describe(): string {
    return `--- ${this.label} stdout:\n${this.out.join("\n")}\n--- stderr:\n${this.err.join("\n")}`;
  }

  kill(): void {
    if (this.child.pid === undefined) return;
    try {
      process.kill(-(this.child.pid ?? 0), "SIGKILL");
    } catch {
      // gone
    }
  }
}

/** A tracker with --store, its port read from port.txt once it says it listens. */
export async function startTracker(
  dir: string,
  store: string,
  extra: readonly string[] = [],
  wrap: readonly string[] = [],
): Promise<{ proc: LineProc; port: number; trackers: string }> {
  await mkdir(dir, { recursive: true });
  const [command = "sh", ...args] = [...wrap, "sh", TRACKER_SH, "--store", store, ...extra];
  const proc = new LineProc("tracker", command, args, dir);
  await proc.waitFor(/listening on port/u, "err");
  const port = Number(await readFile(path.join(dir, "port.txt"), "utf8"));
  const trackers = path.join(dir, "trackers.txt");
  await writeFile(trackers, `127.0.0.1 ${port}\n`);
  return { proc, port, trackers };
}

/** Stops a tracker (SIGTERM) and waits for it. */
export async function stopTracker(proc: LineProc): Promise<void> {
  proc.child.kill("SIGTERM");
  if (proc.child.exitCode === null) await once(proc.child, "close");
}

/** A client in its own folder; waits until it is connected (its first line or prompt-less start). */
export class ClientProc extends LineProc {
  /** `wrap`: a command the client runs under (e.g. nsenter into a network namespace). */
  constructor(label: string, dir: string, trackers: string, env: NodeJS.ProcessEnv = {}, wrap: readonly string[] = []) {
    const [command = "sh", ...args] = [...wrap, "sh", CLIENT_SH, trackers];
    super(label, command, args, dir, env);
  }

  /** Sends a command and waits for a stdout line matching `reply`. */
  async ok(command: string, reply: RegExp): Promise<string> {
    const from = this.out.length;
    this.send(command);
    const i = await this.waitFor(reply, "out", from);
    return this.out[i] ?? "";
  }

  /** Sends a command and waits for an error line on stderr matching `error`. */
  async fails(command: string, error: RegExp): Promise<string> {
    const from = this.err.length;
    this.send(command);
    const i = await this.waitFor(error, "err", from);
    return this.err[i] ?? "";
  }

  /** Quits and resolves with the exit status. */
  async quit(): Promise<number | null> {
    this.send("quit");
    return this.exited;
  }
}
