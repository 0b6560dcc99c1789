/**
 * A small end-to-end rig for restarts: a real tracker, and real peers started one at a
 * time in folders the test chooses, so that a peer can be killed, interrupted or stopped
 * and started again in the same folder, and a seeder's file can change in between (what
 * the Swarm harness, with one folder and one content per name, does not allow).
 *
 * Every wait is on an event (a tracker line, a process exit), bounded by one timer for
 * the whole rig, after which everything is SIGKILLed and the test fails with a dump.
 */
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import type { ExecutionContext } from "ava";
import { TrackerStdoutParser } from "./expect-output.js";
import { contentOf, type ExitInfo, type FileSpec, PEER_SH, Proc, TRACKER_SH, tempDir } from "./swarm.js";

export type RigPeer = {
  readonly label: string;
  readonly dir: string;
  readonly proc: Proc;
  /** Its tracker ID (from the CONNECT block the tracker printed after it started). */
  readonly id: number;
};

type Waiter = {
  readonly description: string;
  readonly check: () => boolean;
  readonly unlessExited: readonly Proc[];
  readonly resolve: () => void;
  readonly reject: (e: Error) => void;
};

export class RestartRig {
  readonly root: string;
  readonly tracker: Proc;
  #port = 0;
  readonly #parser = new TrackerStdoutParser();
  /** Chunk numbers printed as ACQUIRED, per peer ID and file name. */
  readonly #acquired = new Map<number, Map<string, Set<number>>>();
  readonly #repeated: string[] = [];
  readonly #connected: number[] = [];
  readonly #received = new Map<number, readonly string[]>();
  readonly #procs: Proc[] = [];
  readonly #waiters = new Set<Waiter>();
  #failure: Error | undefined;
  #timer: NodeJS.Timeout | undefined;
  #stopping = false;

  private constructor(root: string, tracker: Proc) {
    this.root = root;
    this.tracker = tracker;
  }

  static async start(t: ExecutionContext, timeoutMs = 60_000): Promise<RestartRig> {
    const root = await tempDir(t, "udpswarm-restart-");
    await mkdir(path.join(root, "tracker"));
    let rig: RestartRig | undefined;
    const tracker = new Proc(
      "tracker",
      "sh",
      [TRACKER_SH],
      { cwd: path.join(root, "tracker") },
      {
        onStdoutLine: (line) => {
          if (rig !== undefined) rig.#onTrackerLine(line);
        },
        onStderrLine: (line) => {
          const m = /listening on port (\d+)/.exec(line);
          if (m !== null && rig !== undefined && rig.#port === 0) {
            rig.#port = Number(m[1]);
            rig.#notify();
          }
        },
        onExit: (info) => {
          if (rig === undefined) return;
          if (!rig.#stopping) rig.#abort(new Error(`the tracker exited: ${JSON.stringify(info)}`));
          rig.#notify();
        },
      },
    );
    rig = new RestartRig(root, tracker);
    const r = rig;
    t.timeout(timeoutMs + 30_000, "restart test exceeded its bound");
    r.#timer = setTimeout(() => {
      const waiting = [...r.#waiters].map((w) => w.description).join("; ") || "nothing";
      r.#abort(new Error(`timed out after ${timeoutMs} ms while waiting for: ${waiting}`));
    }, timeoutMs);
    t.teardown(async () => {
      clearTimeout(r.#timer);
      for (const p of [...r.#procs, r.tracker]) p.killHard();
      await Promise.all([...r.#procs, r.tracker].map((p) => p.exited));
    });
    await r.waitFor("the tracker's port", () => r.#port !== 0);
    return r;
  }

  get port(): number {
    return this.#port;
  }

  /** Creates `<root>/<label>/Shared` with these files (once per folder). */
  async folder(label: string, files: readonly FileSpec[]): Promise<string> {
    const dir = path.join(this.root, label);
    await mkdir(path.join(dir, "Shared"), { recursive: true });
    for (const f of files) await writeFile(path.join(dir, "Shared", f.name), contentOf(f));
    return dir;
  }

  /** Starts a peer in `dir` and waits for its CONNECT block (peers start one at a time). */
  async peer(label: string, dir: string, minAlive: number, args: readonly string[] = []): Promise<RigPeer> {
    const before = this.#connected.length;
    const proc = new Proc(
      `peer ${label}`,
      "sh",
      [PEER_SH, "127.0.0.1", String(this.#port), String(minAlive), ...args],
      { cwd: dir },
      { onExit: () => this.#notify(), onStderrLine: () => this.#notify() },
    );
    this.#procs.push(proc);
    await this.waitFor(`the CONNECT block of peer ${label}`, () => this.#connected.length > before, [proc]);
    const id = this.#connected[before];
    if (id === undefined) throw new Error("unreachable");
    return { label, dir, proc, id };
  }

  /** Chunks of `name` printed as ACQUIRED for PEER id, each counted once. */
  acquired(id: number, name: string): number {
    return this.#acquired.get(id)?.get(name)?.size ?? 0;
  }

  /** The files of PEER id's DISCONNECT block, once printed. */
  received(id: number): readonly string[] | undefined {
    return this.#received.get(id);
  }

  async exitOf(peer: RigPeer): Promise<ExitInfo> {
    await this.waitFor(`peer ${peer.label} to exit`, () => peer.proc.exitInfo !== undefined);
    return peer.proc.exited;
  }

  /** SIGKILLs a peer and waits until the tracker has printed its DISCONNECT block. */
  async kill(peer: RigPeer): Promise<void> {
    peer.proc.killHard();
    await this.exitOf(peer);
    await this.waitFor(`the DISCONNECT block of peer ${peer.label}`, () => this.#received.has(peer.id));
  }

  waitFor(description: string, check: () => boolean, unlessExited: readonly Proc[] = []): Promise<void> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    return new Promise<void>((resolve, reject) => {
      this.#waiters.add({ description, check, unlessExited, resolve, reject });
      this.#notify();
    });
  }

  /**
   * Stops the tracker (SIGTERM) once every peer has exited and been seen to go, and
   * returns what is wrong in its transcript: malformed blocks, a chunk printed ACQUIRED
   * twice for one peer ID, a non-zero exit.
   */
  async stop(): Promise<string[]> {
    await this.waitFor("every peer to exit", () => this.#procs.every((p) => p.exitInfo !== undefined));
    await this.waitFor("a DISCONNECT block for every peer", () =>
      this.#connected.every((id) => this.#received.has(id)),
    );
    this.#stopping = true;
    this.tracker.signal("SIGTERM");
    const info = await this.tracker.exited;
    clearTimeout(this.#timer);
    this.#parser.end();
    const problems = [...this.#parser.problems, ...this.#repeated];
    if (info.code !== 0) problems.push(`the tracker exited with ${JSON.stringify(info)}`);
    return problems;
  }

  /** Everything the processes said, for failure messages. */
  dump(): string {
    const out = this.tracker.stdout().toString("utf8").split("\n");
    return [
      `folder: ${this.root}`,
      this.tracker.describe(),
      `--- tracker stdout, last 20 of ${out.length - 1} lines:\n${out.slice(-21).join("\n")}`,
      ...this.#procs.map((p) => p.describe(3000)),
    ].join("\n");
  }

  #onTrackerLine(line: string): void {
    const e = this.#parser.push(line);
    if (e?.kind === "connect") this.#connected.push(e.id);
    else if (e?.kind === "disconnect") this.#received.set(e.id, e.received);
    else if (e?.kind === "acquired") {
      let perFile = this.#acquired.get(e.id);
      if (perFile === undefined) {
        perFile = new Map();
        this.#acquired.set(e.id, perFile);
      }
      let chunks = perFile.get(e.name);
      if (chunks === undefined) {
        chunks = new Set();
        perFile.set(e.name, chunks);
      }
      if (chunks.has(e.chunk)) this.#repeated.push(`tracker line ${e.line} repeats ${JSON.stringify(line)}`);
      chunks.add(e.chunk);
    }
    this.#notify();
  }

  #notify(): void {
    for (const w of [...this.#waiters]) {
      if (w.check()) {
        this.#waiters.delete(w);
        w.resolve();
        continue;
      }
      const gone = w.unlessExited.find((p) => p.exitInfo !== undefined);
      if (gone !== undefined) {
        this.#waiters.delete(w);
        w.reject(new Error(`${gone.label} exited while waiting for ${w.description}\n${this.dump()}`));
      }
    }
  }

  #abort(error: Error): void {
    if (this.#failure !== undefined) return;
    for (const p of [...this.#procs, this.tracker]) p.killHard();
    this.#failure = new Error(`${error.message}\n${this.dump()}`);
    for (const w of [...this.#waiters]) {
      this.#waiters.delete(w);
      w.reject(this.#failure);
    }
  }
}

/** The JSON a peer wrote with --stats FILE (relative to its folder). */
export async function readStats(dir: string, file = "stats.json"): Promise<PeerStats> {
  return JSON.parse(await readFile(path.join(dir, file), "utf8")) as PeerStats;
}

export type PeerStats = {
  readonly chunksReceived: number;
  readonly pieceHashFailures: number;
  readonly resumed: {
    readonly files: number;
    readonly pieces: number;
    readonly chunks: number;
    readonly checked: number;
    readonly failed: number;
  };
};
