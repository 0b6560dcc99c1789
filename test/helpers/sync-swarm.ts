/**
 * End-to-end harness for live folders (SPEC §9): a real tracker and real `peer.sh --sync`
 * processes, each in its own temporary directory. Waits are on conditions (output lines,
 * files on disk, exits), each bounded; nothing sleeps to make a test pass.
 */
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import type { ExecutionContext } from "ava";
import { acquireSwarmSlot, PEER_SH, Proc, TRACKER_SH, tempDir } from "./swarm.js";

export type SyncPeer = { readonly label: string; readonly dir: string; readonly shared: string; readonly proc: Proc };

/** What a Shared folder holds: name -> sha256 hex and integer mtime. */
export type FolderState = Map<string, { sha: string; mtimeMs: number; size: number }>;

export class SyncSwarm {
  readonly #t: ExecutionContext;
  readonly dir: string;
  readonly tracker: Proc;
  readonly trackerLines: string[] = [];
  readonly peers: SyncPeer[] = [];
  #port = 0;
  #conditions = new Set<() => void>();
  #notifyPending = false;

  /** The tracker's web view, when started with `http`. */
  #webUrl: string | undefined;

  private constructor(t: ExecutionContext, dir: string, onPort: (port: number) => void, http: boolean) {
    this.#t = t;
    this.dir = dir;
    this.tracker = new Proc(
      "tracker",
      "sh",
      [TRACKER_SH, ...(http ? ["--http", "0"] : [])],
      { cwd: path.join(dir, "tracker") },
      {
        onStdoutLine: (line) => {
          this.trackerLines.push(line);
          this.#notify();
        },
        onStderrLine: (line) => {
          const web = /web view at (\S+)/.exec(line);
          if (web !== null) this.#webUrl = web[1];
          const m = /listening on port (\d+)/.exec(line);
          if (m !== null) onPort(Number(m[1]));
        },
        onExit: () => this.#notify(),
      },
    );
  }

  /** `http`: the tracker also serves its web view (see trackerFiles). */
  static async start(t: ExecutionContext, options: { readonly http?: boolean } = {}): Promise<SyncSwarm> {
    // The bound of the test starts once it holds the swarm slot: waiting for the other
    // swarms of the run (one at a time) is not its own time.
    t.timeout(600_000, "waited too long for the swarm slot");
    const release = await acquireSwarmSlot();
    t.timeout(180_000, "sync swarm test exceeded its bound");
    const dir = await tempDir(t, "udpswarm-sync-");
    await mkdir(path.join(dir, "tracker"));
    let gotPort: (port: number) => void = () => {};
    const port = new Promise<number>((resolve) => {
      gotPort = resolve;
    });
    const swarm = new SyncSwarm(t, dir, (p) => gotPort(p), options.http === true);
    t.teardown(async () => {
      const procs = [swarm.tracker, ...swarm.peers.map((p) => p.proc)];
      for (const p of procs) p.killHard();
      await Promise.all(procs.map((p) => p.exited));
      await release();
    });
    swarm.#port = await swarm.#bounded(port, 15_000, "the tracker's port");
    return swarm;
  }

  /**
   * Starts `peer.sh IP PORT --sync` in a new directory whose Shared holds `files`; with
   * `classicMinAlive`, a classic peer (`peer.sh IP PORT MIN_ALIVE`) instead, already there.
   */
  async addPeer(
    label: string,
    files: Record<string, Buffer> = {},
    extra: readonly string[] = [],
    classicMinAlive?: number,
  ): Promise<SyncPeer> {
    const dir = path.join(this.dir, label);
    const shared = path.join(dir, "Shared");
    await mkdir(shared, { recursive: true });
    for (const [name, data] of Object.entries(files)) await writeFile(path.join(shared, name), data);
    const mode = classicMinAlive === undefined ? "--sync" : String(classicMinAlive);
    const proc = new Proc(
      label,
      "sh",
      [PEER_SH, "127.0.0.1", String(this.#port), mode, "--stats", path.join(dir, "stats.json"), ...extra],
      { cwd: dir },
      { onStdoutLine: () => this.#notify(), onStderrLine: () => this.#notify(), onExit: () => this.#notify() },
    );
    const peer = { label, dir, shared, proc };
    this.peers.push(peer);
    return peer;
  }

  /** The files the tracker lists now, from its web view's /api/state.json (started with `http`). */
  async trackerFiles(): Promise<Array<{ id: number; name: string; completeHolders: number }>> {
    await this.waitFor("the web view's address", () => this.#webUrl !== undefined);
    const res = await fetch(new URL("/api/state.json", this.#webUrl));
    const state = (await res.json()) as { files: Array<{ id: number; name: string; completeHolders: number }> };
    return state.files;
  }

  /** Waits until the tracker's files (see trackerFiles) satisfy `check`. */
  async waitForTracker(
    what: string,
    check: (files: Array<{ id: number; name: string; completeHolders: number }>) => boolean,
  ): Promise<void> {
    let last: unknown;
    for (const deadline = performance.now() + 30_000; performance.now() < deadline; ) {
      const files = await this.trackerFiles();
      if (check(files)) return;
      last = files;
      await new Promise((r) => setTimeout(r, 50)); // polling an HTTP endpoint: no event to wait on
    }
    throw new Error(`timed out waiting for ${what}; the tracker lists ${JSON.stringify(last)}\n${this.describe()}`);
  }

  /** Starts `peer` again in the same directory (after it exited), in its place in `peers`. */
  async restart(peer: SyncPeer, extra: readonly string[] = []): Promise<SyncPeer> {
    if (peer.proc.exitInfo === undefined) throw new Error(`${peer.label} is still running`);
    const at = this.peers.indexOf(peer);
    const again = await this.addPeer(peer.label, {}, extra);
    this.peers.pop();
    this.peers.splice(at, 1, again);
    return again;
  }

  /** Resolves once `check()` holds (checked after output and every 50 ms), within `ms`. */
  async waitFor(what: string, check: () => boolean, ms = 30_000): Promise<void> {
    if (check()) return;
    await this.#bounded(
      new Promise<void>((resolve) => {
        const test = () => {
          let ok = false;
          try {
            ok = check();
          } catch {
            ok = false; // a file mid-rename: look again
          }
          if (!ok) return;
          clearInterval(timer);
          this.#conditions.delete(test);
          resolve();
        };
        const timer = setInterval(test, 50);
        this.#conditions.add(test);
        this.#t.teardown(() => clearInterval(timer));
      }),
      ms,
      what,
    );
  }

  /** Waits until the tracker printed a line matching `re` (count times). */
  async trackerLine(re: RegExp, count = 1): Promise<void> {
    // Counted incrementally: the tracker prints a line per chunk (131,072 for 64 MiB), and
    // rescanning them all on each check made the wait quadratic.
    let scanned = 0;
    let matched = 0;
    await this.waitFor(`${count} tracker line(s) ${re}`, () => {
      for (; scanned < this.trackerLines.length; scanned++) {
        if (re.test(this.trackerLines[scanned] ?? "")) matched++;
      }
      return matched >= count;
    });
  }

  /** SIGTERM: the peer prints its SHUTDOWN block and exits 0. */
  async stop(peer: SyncPeer): Promise<void> {
    peer.proc.signal("SIGTERM");
    const info = await this.#bounded(peer.proc.exited, 15_000, `${peer.label} to exit`);
    this.#t.is(info.code, 0, `${peer.label} exit status\n${peer.proc.describe()}`);
    this.#t.regex(peer.proc.stdout().toString(), /^PEER \d+ SHUTDOWN: HAS \d+\n/);
  }

  stats(peer: SyncPeer): Record<string, number> {
    return JSON.parse(readFileSync(path.join(peer.dir, "stats.json"), "utf8")) as Record<string, number>;
  }

  describe(): string {
    // ACQUIRED lines are summarised (a 64 MiB file prints 131,072 of them); the rest whole.
    const acquired = new Map<string, number>();
    const other: string[] = [];
    for (const l of this.trackerLines) {
      const m = /^PEER (\d+) ACQUIRED: CHUNK \d+\/\d+ (.*)$/.exec(l);
      if (m === null) other.push(l);
      else acquired.set(`peer ${m[1]} ${m[2]}`, (acquired.get(`peer ${m[1]} ${m[2]}`) ?? 0) + 1);
    }
    const folders = this.peers.map((p) => {
      let state: string;
      try {
        state = [...folderState(p.shared)]
          .map(([n, f]) => `${n} ${f.size} ${f.sha.slice(0, 12)} ${f.mtimeMs}`)
          .join("; ");
      } catch (err) {
        state = String(err);
      }
      return `${p.label}: ${state}`;
    });
    return [
      `tracker stdout (${this.trackerLines.length} lines; ACQUIRED summarised):\n${other.slice(-60).join("\n")}`,
      `ACQUIRED: ${[...acquired].map(([k, n]) => `${k}: ${n}`).join(", ")}`,
      `folders:\n${folders.join("\n")}`,
      this.tracker.describe(),
      ...this.peers.map((p) => p.proc.describe()),
    ].join("\n");
  }

  /**
   * Checks the conditions once per turn of the event loop, not once per line: a check may
   * hash folders, and output comes in bursts of thousands of lines. A slow reader would
   * stall the processes themselves (their stdout to a pipe blocks when it is full).
   */
  #notify(): void {
    if (this.#notifyPending) return;
    this.#notifyPending = true;
    setImmediate(() => {
      this.#notifyPending = false;
      for (const c of [...this.#conditions]) c();
    });
  }

  #bounded<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`timed out after ${ms} ms waiting for ${what}\n${this.describe()}`)),
        ms,
      );
    });
    return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
  }
}

const hashes = new Map<string, string>();

/** Every regular, non-hidden file of a folder with its hash and integer mtime. */
export function folderState(dir: string): FolderState {
  const out: FolderState = new Map();
  for (const name of readdirSync(dir)) {
    if (name.startsWith(".")) continue;
    const p = path.join(dir, name);
    const st = statSync(p);
    if (!st.isFile()) continue;
    // Hashed again only when the file moved: polling must not starve the peers of CPU.
    const key = `${p}|${st.size}|${st.mtimeMs}|${st.ctimeMs}|${st.ino}`;
    const sha = hashes.get(key) ?? createHash("sha256").update(readFileSync(p)).digest("hex");
    hashes.set(key, sha);
    out.set(name, { sha, mtimeMs: Math.round(st.mtimeMs), size: st.size });
  }
  return out;
}

export function sha256Hex(data: Buffer): string {
  return createHash("sha256").update(data).digest("hex");
}

/** Whether every peer's folder holds `name` with content `sha` (and the same mtime everywhere). */
export function allHave(peers: readonly SyncPeer[], name: string, sha: string): boolean {
  const mtimes = new Set<number>();
  for (const p of peers) {
    const f = folderState(p.shared).get(name);
    if (f === undefined || f.sha !== sha) return false;
    mtimes.add(f.mtimeMs);
  }
  return mtimes.size === 1;
}
