/**
 * End-to-end harness: runs the real `tracker.sh` and `peer.sh` as separate processes,
 * each in its own temporary directory, and checks what they print and leave on disk.
 *
 * Nothing here sleeps: every wait is on an event (an output line, a process exit) and
 * every swarm is bounded by one overall timer, after which all its processes are
 * SIGKILLed and the test fails with everything they wrote to stderr.
 *
 * KEEP_TMP=1 keeps the temporary directories (their paths are logged).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { ExecutionContext } from "ava";
import { decodeTrackerFrame, encodeTrackerFrame } from "../../src/wire/tracker-frame.js";
import {
  checkSwarm,
  chunkCount,
  connectBlock,
  type FileOffer,
  type PeerFacts,
  type PeerOutcome,
  type SharedEntry,
  type TrackerEvent,
  TrackerStdoutParser,
} from "./expect-output.js";

/** Repository root: this file runs as <root>/dist/test/helpers/swarm.js. */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
export const TRACKER_SH = path.join(ROOT, "tracker.sh");
export const PEER_SH = path.join(ROOT, "peer.sh");

const KEEP_TMP = process.env.KEEP_TMP !== undefined && process.env.KEEP_TMP !== "";

// ------------------------------------------------------------------ file contents

const contentCache = new Map<string, Buffer>();

/**
 * Deterministic pseudo-random bytes (xoshiro128** seeded from SHA-256 of the seed):
 * the same (seed, size) always gives the same content, and no Math.random.
 */
export function makeContent(seed: string, size: number): Buffer {
  const key = `${size}:${seed}`;
  const cached = contentCache.get(key);
  if (cached !== undefined) return cached;
  const h = createHash("sha256").update(seed).digest();
  let a = h.readUInt32LE(0);
  let b = h.readUInt32LE(4);
  let c = h.readUInt32LE(8);
  let d = h.readUInt32LE(12) | 1;
  const next = (): number => {
    const result = Math.imul(rotl(Math.imul(b, 5), 7), 9) >>> 0;
    const t = b << 9;
    c ^= a;
    d ^= b;
    b ^= c;
    a ^= d;
    c ^= t;
    d = rotl(d, 11);
    return result;
  };
  const buf = Buffer.alloc(size);
  let i = 0;
  for (; i + 4 <= size; i += 4) buf.writeUInt32LE(next(), i);
  if (i < size) {
    const last = next();
    for (let k = 0; i < size; i++, k++) buf[i] = (last >>> (8 * k)) & 0xff;
  }
  contentCache.set(key, buf);
  return buf;
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

export interface FileSpec {
  readonly name: string;
  readonly size: number;
  /** Content seed (default: the name). */
  readonly seed?: string;
}

export function contentOf(spec: FileSpec): Buffer {
  return makeContent(spec.seed ?? spec.name, spec.size);
}

// ------------------------------------------------------------------ processes

export interface ExitInfo {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly elapsedMs: number;
  readonly spawnError?: string;
}

const running = new Set<Proc>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Never leave a child behind, whatever happens to the test worker.
  process.on("exit", () => {
    for (const p of running) p.killHard();
  });
}

class LineSplitter {
  #partial: Buffer[] = [];

  push(chunk: Buffer, emit: (line: string) => void): void {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(10, start);
      if (nl < 0) break;
      const piece = chunk.subarray(start, nl);
      const line = this.#partial.length > 0 ? Buffer.concat([...this.#partial, piece]) : piece;
      this.#partial = [];
      emit(line.toString("utf8"));
      start = nl + 1;
    }
    if (start < chunk.length) this.#partial.push(chunk.subarray(start));
  }
}

export interface ProcHooks {
  readonly onStdoutLine?: (line: string) => void;
  readonly onStderrLine?: (line: string) => void;
  readonly onExit?: (info: ExitInfo) => void;
}

/** A child process whose whole stdout and stderr are kept. */
export class Proc {
  readonly label: string;
  readonly child: ChildProcess;
  readonly startedAt = performance.now();
  readonly exited: Promise<ExitInfo>;
  exitInfo: ExitInfo | undefined;
  readonly #stdout: Buffer[] = [];
  readonly #stderr: Buffer[] = [];

  constructor(
    label: string,
    command: string,
    args: readonly string[],
    options: { readonly cwd: string; readonly env?: NodeJS.ProcessEnv },
    hooks: ProcHooks = {},
  ) {
    installExitHook();
    this.label = label;
    // Own process group, so that a SIGKILL reaches anything the script started.
    this.child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    running.add(this);
    const out = new LineSplitter();
    const err = new LineSplitter();
    this.child.stdout?.on("data", (chunk: Buffer) => {
      this.#stdout.push(chunk);
      if (hooks.onStdoutLine !== undefined) out.push(chunk, hooks.onStdoutLine);
    });
    this.child.stderr?.on("data", (chunk: Buffer) => {
      this.#stderr.push(chunk);
      if (hooks.onStderrLine !== undefined) err.push(chunk, hooks.onStderrLine);
    });
    this.exited = new Promise<ExitInfo>((resolve) => {
      const finish = (info: ExitInfo): void => {
        if (this.exitInfo !== undefined) return;
        this.exitInfo = info;
        running.delete(this);
        resolve(info);
        hooks.onExit?.(info);
      };
      this.child.on("error", (error) => {
        if (this.child.pid === undefined) {
          finish({ code: null, signal: null, elapsedMs: this.elapsed(), spawnError: String(error) });
        }
      });
      // "close": the process has exited and both pipes are drained.
      this.child.on("close", (code, signal) => finish({ code, signal, elapsedMs: this.elapsed() }));
    });
  }

  elapsed(): number {
    return Math.round(performance.now() - this.startedAt);
  }

  stdout(): Buffer {
    return Buffer.concat(this.#stdout);
  }

  stderr(): Buffer {
    return Buffer.concat(this.#stderr);
  }

  /** Sends a signal to the process itself (for SIGTERM/SIGINT). */
  signal(sig: NodeJS.Signals): void {
    if (this.exitInfo === undefined && this.child.pid !== undefined) {
      try {
        process.kill(this.child.pid, sig);
      } catch {
        // Already gone.
      }
    }
  }

  /** SIGKILL to the whole process group. */
  killHard(): void {
    const pid = this.child.pid;
    if (this.exitInfo !== undefined || pid === undefined) return;
    try {
      process.kill(-pid, "SIGKILL");
    } catch {
      try {
        this.child.kill("SIGKILL");
      } catch {
        // Already gone.
      }
    }
  }

  describe(maxStderr = 4000): string {
    const info = this.exitInfo;
    const status =
      info === undefined
        ? `still running after ${this.elapsed()} ms`
        : `exited with code ${info.code}, signal ${info.signal} after ${info.elapsedMs} ms` +
          (info.spawnError === undefined ? "" : ` (${info.spawnError})`);
    const err = this.stderr().toString("utf8");
    const tail = err.length > maxStderr ? `[... ${err.length - maxStderr} chars]${err.slice(-maxStderr)}` : err;
    return `--- ${this.label}: ${status}; stderr:\n${tail === "" ? "(empty)" : tail}`;
  }
}

/**
 * Runs one short command to completion (bounded), e.g. a peer with bad arguments.
 * Rejects, after SIGKILLing it, if it does not exit within `timeoutMs`.
 */
export async function runToExit(
  label: string,
  command: string,
  args: readonly string[],
  options: { readonly cwd: string; readonly env?: NodeJS.ProcessEnv; readonly timeoutMs?: number },
): Promise<{ exit: ExitInfo; stdout: Buffer; stderr: Buffer }> {
  const proc = new Proc(label, command, args, options);
  const timeoutMs = options.timeoutMs ?? 20_000;
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      proc.killHard();
      reject(new Error(`${label} did not exit within ${timeoutMs} ms\n${proc.describe()}`));
    }, timeoutMs);
  });
  try {
    const exit = await Promise.race([proc.exited, timedOut]);
    return { exit, stdout: proc.stdout(), stderr: proc.stderr() };
  } finally {
    clearTimeout(timer);
    proc.killHard();
  }
}

/** A fresh temporary directory, removed at the end of the test unless KEEP_TMP is set. */
export async function tempDir(t: ExecutionContext, prefix = "udpswarm-e2e-"): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  t.teardown(async () => {
    if (KEEP_TMP) t.log(`kept ${dir}`);
    else await rm(dir, { recursive: true, force: true });
  });
  return dir;
}

// ------------------------------------------------------------------ one swarm at a time

/**
 * Machine-wide slots so that swarms do not compete for the two cores, whatever test file
 * or ava worker they are in (ava runs two files at once). There are two half slots: a
 * swarm that moves real data takes both (the whole machine); a light one (a few hundred
 * KiB, its time spent waiting on timers) takes either, so two light swarms may run side by
 * side. A slot is a listening Unix socket (abstract on Linux): whoever binds it holds it;
 * the others connect to it and retry when that connection closes, which the kernel also
 * does if the holder dies. Event-driven. The whole machine is taken in a fixed order (first
 * half, then second), so two takers cannot each hold one half and wait for the other.
 */
export async function acquireSwarmSlot(share: "whole" | "half" = "whole"): Promise<() => Promise<void>> {
  const [first, second] = [slotAddress(1), slotAddress(2)];
  if (share === "whole") {
    const releaseFirst = await holdSlot([first]);
    const releaseSecond = await holdSlot([second]);
    return async () => {
      await releaseSecond();
      await releaseFirst();
    };
  }
  return holdSlot([first, second]);
}

function slotAddress(n: number): string {
  const uid = typeof process.getuid === "function" ? process.getuid() : 0;
  const name = `udpswarm-e2e-slot-${uid}-${n}`;
  return process.platform === "linux" ? `\0${name}` : path.join(os.tmpdir(), `${name}.sock`);
}

/** Holds the first of `addresses` that is free, waiting for one to be let go if none is. */
async function holdSlot(addresses: readonly string[]): Promise<() => Promise<void>> {
  for (;;) {
    for (const address of addresses) {
      const release = await bindSlot(address);
      if (release !== undefined) return release;
    }
    const clients: net.Socket[] = [];
    await new Promise<void>((resolve) => {
      for (const address of addresses) {
        const client = net.connect(address);
        clients.push(client);
        client.on("error", async (error: NodeJS.ErrnoException) => {
          // A stale socket file left by a crashed holder (non-Linux only).
          if (error.code === "ECONNREFUSED" && !address.startsWith("\0")) await rm(address, { force: true });
          resolve();
        });
        client.on("close", () => resolve());
        client.resume();
      }
    });
    for (const client of clients) client.destroy();
  }
}

async function bindSlot(address: string): Promise<(() => Promise<void>) | undefined> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on("error", () => socket.destroy());
    socket.on("close", () => sockets.delete(socket));
  });
  const bound = await new Promise<boolean>((resolve, reject) => {
    server.once("error", (error: NodeJS.ErrnoException) => {
      if (error.code === "EADDRINUSE") resolve(false);
      else reject(error);
    });
    server.listen(address, () => resolve(true));
  });
  if (!bound) return undefined;
  return async () => {
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      for (const s of sockets) s.destroy();
    });
  };
}

// ------------------------------------------------------------------ connection gate

/**
 * A TCP relay in front of the tracker that makes "these N peers start together"
 * deterministic. It holds peers' connections until `count` of them have each sent a
 * complete first frame (a varint length and that many bytes: the Hello), opens the
 * upstream connections in arrival order, writes all those first frames at once, and
 * holds everything else the peers send (ReadyToLeave, say) until the tracker has
 * printed the CONNECT blocks of all of them. So a peer with MIN_ALIVE 0 cannot be let
 * go before the others are known to the tracker. Tracker-to-peer traffic flows as soon
 * as the upstream connection exists; after that it is a plain relay.
 *
 * A udpswarm tracker speaks first (a keepalive), and a peer that hears nothing within
 * 2 s takes the port for something else: so the gate greets each held peer as the
 * tracker would, and drops the peer's answer (a pong) before the Hello.
 */
export class Gate {
  readonly port: number;
  readonly #server: net.Server;
  readonly #sockets = new Set<net.Socket>();
  readonly #count: number;
  readonly #upstreamPort: number;
  readonly #expectConnects: (n: number) => Promise<void>;
  readonly #onError: (error: Error) => void;
  #pending: GateEntry[] = [];
  #state: "holding" | "waiting for CONNECT blocks" | "released" = "holding";

  private constructor(
    server: net.Server,
    port: number,
    count: number,
    upstream: number,
    expectConnects: (n: number) => Promise<void>,
    onError: (e: Error) => void,
  ) {
    this.#server = server;
    this.port = port;
    this.#count = count;
    this.#upstreamPort = upstream;
    this.#expectConnects = expectConnects;
    this.#onError = onError;
    server.on("connection", (socket) => this.#accept(socket));
  }

  /**
   * `expectConnects(n)` is called just before the first frames are written; it must
   * resolve once the tracker has printed n more CONNECT blocks.
   */
  static async open(
    upstreamPort: number,
    count: number,
    expectConnects: (n: number) => Promise<void>,
    onError: (error: Error) => void,
  ): Promise<Gate> {
    // All interfaces (IPv6 and IPv4 when possible), like the tracker itself.
    let server = net.createServer();
    try {
      await listen(server, "::");
    } catch {
      server = net.createServer();
      await listen(server, "0.0.0.0");
    }
    const address = server.address();
    if (address === null || typeof address === "string") throw new Error("gate: no port");
    return new Gate(server, address.port, count, upstreamPort, expectConnects, onError);
  }

  /** What it is waiting for (for timeout messages). */
  describe(): string {
    if (this.#state !== "holding") return `gate on port ${this.port}: ${this.#state}`;
    const complete = this.#pending.filter((p) => splitFirstFrame(Buffer.concat(p.chunks)) !== undefined).length;
    return (
      `gate on port ${this.port}: holding ${this.#pending.length} of ${this.#count} peers ` +
      `(${complete} with a complete first frame)`
    );
  }

  close(): void {
    this.#server.close();
    for (const s of this.#sockets) s.destroy();
  }

  #track(socket: net.Socket): void {
    this.#sockets.add(socket);
    socket.on("close", () => this.#sockets.delete(socket));
  }

  #accept(socket: net.Socket): void {
    this.#track(socket);
    socket.on("error", () => socket.destroy());
    const entry: GateEntry = { socket, chunks: [], onData: () => {} };
    entry.onData = (chunk: Buffer): void => {
      entry.chunks.push(chunk);
      this.#maybeRelease();
    };
    socket.on("data", entry.onData);
    if (this.#state === "holding") socket.write(GATE_GREETING);
    if (this.#state !== "holding") {
      void this.#connectUpstream(socket).then(
        (up) => this.#open(entry, up, false),
        (error: unknown) => this.#onError(error as Error),
      );
      return;
    }
    socket.on("close", () => {
      if (this.#state === "holding") this.#pending = this.#pending.filter((p) => p !== entry);
    });
    this.#pending.push(entry);
  }

  #maybeRelease(): void {
    for (const p of this.#pending) p.chunks = withoutLeadingKeepalives(p.chunks);
    if (this.#state !== "holding" || this.#pending.length < this.#count) return;
    if (!this.#pending.every((p) => splitFirstFrame(Buffer.concat(p.chunks)) !== undefined)) return;
    this.#state = "waiting for CONNECT blocks";
    const entries = this.#pending;
    this.#pending = [];
    this.#release(entries).catch((error: unknown) => this.#onError(error as Error));
  }

  async #release(entries: GateEntry[]): Promise<void> {
    const upstreams: net.Socket[] = [];
    // One after the other, so that the tracker accepts them in arrival order.
    for (const e of entries) upstreams.push(await this.#connectUpstream(e.socket));
    const connects = this.#expectConnects(entries.length);
    // Every first frame in one go; whatever followed stays buffered for now.
    entries.forEach((e, i) => {
      const split = splitFirstFrame(Buffer.concat(e.chunks));
      const up = upstreams[i];
      if (split === undefined || up === undefined) return;
      e.chunks = split.rest.length > 0 ? [split.rest] : [];
      up.write(split.first);
      up.pipe(e.socket);
    });
    await connects;
    this.#state = "released";
    entries.forEach((e, i) => {
      const up = upstreams[i];
      if (up !== undefined) this.#open(e, up);
    });
  }

  /** From now on a plain relay in both directions. */
  #open(entry: GateEntry, up: net.Socket, upstreamPiped = true): void {
    const { socket } = entry;
    socket.off("data", entry.onData);
    if (entry.chunks.length > 0) up.write(Buffer.concat(entry.chunks));
    entry.chunks = [];
    socket.pipe(up);
    if (!upstreamPiped) up.pipe(socket);
    // Whichever side goes away (a killed peer, a killed tracker), the other side sees
    // its connection end at once.
    socket.on("close", () => up.end());
    up.on("close", () => socket.end());
    if (socket.destroyed) up.end();
    if (up.destroyed) socket.end();
  }

  /**
   * Connects to the tracker at the address the peer used to reach the gate, so that the
   * tracker sees the peer coming from the same address as without the gate.
   */
  async #connectUpstream(client: net.Socket): Promise<net.Socket> {
    let host = client.localAddress ?? "127.0.0.1";
    if (host.startsWith("::ffff:")) host = host.slice("::ffff:".length);
    const up = net.connect(this.#upstreamPort, host);
    this.#track(up);
    await new Promise<void>((resolve, reject) => {
      up.once("connect", () => resolve());
      up.once("error", reject);
    });
    up.on("error", () => up.destroy());
    return up;
  }
}

interface GateEntry {
  readonly socket: net.Socket;
  chunks: Buffer[];
  onData: (chunk: Buffer) => void;
}

function listen(server: net.Server, host: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
}

/** A keepalive, as a tracker greets a new connection. */
const GATE_GREETING = encodeTrackerFrame({ ping: { nonce: 0x6a7e } });

/**
 * A peer's first bytes without the keepalives before its Hello: its answer to the gate's
 * greeting (a pong) and the ping it sends as soon as it connects (the gate's greeting
 * already proved a tracker-like end; the tracker answers the peer's later pings).
 */
function withoutLeadingKeepalives(chunks: Buffer[]): Buffer[] {
  const buf = Buffer.concat(chunks);
  const split = splitFirstFrame(buf);
  if (split === undefined) return chunks;
  const decoded = decodeTrackerFrame(split.first.subarray(split.first.length - frameBodyLength(split.first)));
  if (!decoded.ok || (decoded.frame.body !== "pong" && decoded.frame.body !== "ping")) return [buf];
  return split.rest.length > 0 ? withoutLeadingKeepalives([split.rest]) : [];
}

/** Body bytes of one whole frame (varint length + body). */
function frameBodyLength(frame: Buffer): number {
  let length = 0;
  let multiplier = 1;
  for (let i = 0; i < Math.min(frame.length, 5); i++) {
    const byte = frame[i] ?? 0;
    length += (byte & 0x7f) * multiplier;
    if ((byte & 0x80) === 0) return length;
    multiplier *= 128;
  }
  return 0;
}

/** The first tracker-link frame (varint length + body) and what follows it, once complete. */
function splitFirstFrame(buf: Buffer): { first: Buffer; rest: Buffer } | undefined {
  let length = 0;
  let multiplier = 1;
  for (let i = 0; i < Math.min(buf.length, 5); i++) {
    const byte = buf[i] ?? 0;
    length += (byte & 0x7f) * multiplier;
    if ((byte & 0x80) === 0) {
      const end = i + 1 + length;
      return buf.length >= end ? { first: buf.subarray(0, end), rest: buf.subarray(end) } : undefined;
    }
    multiplier *= 128;
  }
  return undefined;
}

// ------------------------------------------------------------------ peers

export type Launch = "sh" | "dash" | "exec" | "exec-relative";

export interface PeerOptions {
  /** Short, unique in the swarm; used for its directory name and messages. */
  readonly label: string;
  readonly files?: readonly FileSpec[];
  /** Do not create ./Shared at all (the peer must create it). */
  readonly noSharedDir?: boolean;
  /** MIN_ALIVE seconds (default 0). */
  readonly minAlive?: number;
  readonly extraArgs?: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  /** How peer.sh is started: `sh peer.sh` (default), `dash peer.sh`, `/abs/peer.sh`, `../rel/peer.sh`. */
  readonly launch?: Launch;
  /** Tracker address given to the peer (default 127.0.0.1). */
  readonly host?: string;
  /** Connect through this gate instead of straight to the tracker. */
  readonly gate?: Gate;
}

export class Peer {
  readonly label: string;
  readonly dir: string;
  readonly sharedDir: string;
  readonly files: readonly FileSpec[];
  readonly offered: readonly FileOffer[];
  readonly minAlive: number;
  readonly idsConnectedAtSpawn: readonly number[];
  readonly proc: Proc;
  /** Learnt from the tracker's CONNECT block (when its offers are unique) or its SHUTDOWN line. */
  id: number | undefined;
  killed = false;

  constructor(init: {
    label: string;
    dir: string;
    files: readonly FileSpec[];
    minAlive: number;
    idsConnectedAtSpawn: readonly number[];
    proc: Proc;
  }) {
    this.label = init.label;
    this.dir = init.dir;
    this.sharedDir = path.join(init.dir, "Shared");
    this.files = init.files;
    this.offered = init.files.map((f) => ({ name: f.name, size: f.size }));
    this.minAlive = init.minAlive;
    this.idsConnectedAtSpawn = init.idsConnectedAtSpawn;
    this.proc = init.proc;
  }

  get exited(): boolean {
    return this.proc.exitInfo !== undefined;
  }
}

function sameLines(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

// ------------------------------------------------------------------ the swarm

export interface SwarmOptions {
  /** Bound on the whole swarm, from the tracker's start to its exit (default 60 s). */
  readonly timeoutMs?: number;
  /**
   * The machine-wide swarm slot (see acquireSwarmSlot): true (the default) takes the whole
   * machine; "half" is for a light swarm (little data, its time spent waiting on timers),
   * which may run beside one other light swarm; false takes no slot.
   */
  readonly exclusive?: boolean | "half";
  /** Options for tracker.sh (e.g. a limit). */
  readonly trackerArgs?: readonly string[];
}

interface Waiter {
  readonly description: string;
  readonly check: () => boolean;
  readonly unlessExited: readonly Peer[];
  readonly resolve: (ok: boolean) => void;
  readonly reject: (error: Error) => void;
  timer?: NodeJS.Timeout;
}

export class SwarmResult {
  readonly outcomes: ReadonlyMap<string, PeerOutcome>;
  readonly events: readonly TrackerEvent[];
  /** Every file offered in the swarm, in byte order of names. */
  readonly allFiles: readonly string[];

  constructor(outcomes: ReadonlyMap<string, PeerOutcome>, events: readonly TrackerEvent[], allFiles: string[]) {
    this.outcomes = outcomes;
    this.events = events;
    this.allFiles = allFiles;
  }

  outcome(peer: Peer): PeerOutcome {
    const o = this.outcomes.get(peer.label);
    if (o === undefined) throw new Error(`no outcome for peer ${peer.label}`);
    return o;
  }

  has(peer: Peer): string[] {
    return this.outcome(peer).has;
  }
}

export class Swarm {
  readonly #t: ExecutionContext;
  readonly #timeoutMs: number;
  readonly #exclusive: boolean | "half";
  #dir = "";
  #releaseSlot: (() => Promise<void>) | undefined;
  #timer: NodeJS.Timeout | undefined;
  #failure: Error | undefined;
  readonly #waiters = new Set<Waiter>();
  readonly #peers: Peer[] = [];
  readonly #gates: Gate[] = [];
  readonly #originals = new Map<string, Buffer>();
  readonly #problems: string[] = [];
  #tracker: Proc | undefined;
  #trackerStopping = false;
  #announcedPort: number | undefined;
  #port = 0;
  readonly #parser = new TrackerStdoutParser();
  readonly #connected: number[] = [];
  readonly #disconnected = new Set<number>();
  readonly #acquired = new Map<number, Map<string, number>>();
  /** Tracker IDs of hand-made clients of the test (see foreign()). */
  readonly #foreign = new Set<number>();
  readonly #trackerArgs: readonly string[];

  private constructor(t: ExecutionContext, options: SwarmOptions) {
    this.#t = t;
    this.#timeoutMs = options.timeoutMs ?? 60_000;
    this.#exclusive = options.exclusive ?? true;
    this.#trackerArgs = options.trackerArgs ?? [];
  }

  /** Makes a temporary directory and starts a tracker in it. */
  static async start(t: ExecutionContext, options: SwarmOptions = {}): Promise<Swarm> {
    const swarm = new Swarm(t, options);
    t.teardown(() => swarm.#teardown());
    await swarm.#init();
    return swarm;
  }

  get dir(): string {
    return this.#dir;
  }

  get port(): number {
    return this.#port;
  }

  get tracker(): Proc {
    if (this.#tracker === undefined) throw new Error("no tracker");
    return this.#tracker;
  }

  get peers(): readonly Peer[] {
    return this.#peers;
  }

  async #init(): Promise<void> {
    if (this.#exclusive !== false)
      this.#releaseSlot = await acquireSwarmSlot(this.#exclusive === "half" ? "half" : "whole");
    this.#t.timeout(this.#timeoutMs + 30_000, "swarm test exceeded its bound");
    this.#dir = await mkdtemp(path.join(os.tmpdir(), "udpswarm-e2e-"));
    this.#timer = setTimeout(() => {
      const waiting = [...this.#waiters].map((w) => w.description).join("; ") || "nothing";
      this.#abort(new Error(`swarm timed out after ${this.#timeoutMs} ms, while waiting for: ${waiting}`));
    }, this.#timeoutMs);
    const trackerDir = path.join(this.#dir, "tracker");
    await mkdir(trackerDir);
    this.#tracker = new Proc(
      "tracker",
      "sh",
      [TRACKER_SH, ...this.#trackerArgs],
      { cwd: trackerDir },
      {
        onStdoutLine: (line) => this.#onTrackerLine(line),
        onStderrLine: (line) => {
          const m = /listening on port (\d+)/.exec(line);
          if (m !== null && this.#announcedPort === undefined) {
            this.#announcedPort = Number(m[1]);
            this.#notify();
          }
        },
        onExit: (info) => {
          if (!this.#trackerStopping) {
            // Exit 0 means it got SIGINT/SIGTERM from outside the test (a `pkill -f tracker/main.js`?).
            const hint = info.code === 0 ? " - something outside this test sent it SIGINT or SIGTERM" : "";
            this.#abort(new Error(`the tracker exited unexpectedly (code ${info.code}, signal ${info.signal})${hint}`));
          }
          this.#notify();
        },
      },
    );
    await this.waitFor("the tracker's 'listening on port N' line on stderr", () => this.#announcedPort !== undefined);
    const text = await readFile(path.join(trackerDir, "port.txt"), "utf8");
    if (!/^[0-9]+$/.test(text)) this.#problems.push(`port.txt is ${JSON.stringify(text)}: expected only digits`);
    if (Number.parseInt(text, 10) !== this.#announcedPort) {
      this.#problems.push(`port.txt says ${JSON.stringify(text)} but stderr said port ${this.#announcedPort}`);
    }
    this.#port = this.#announcedPort ?? Number.parseInt(text, 10);
  }

  async #teardown(): Promise<void> {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    const procs = [...this.#peers.map((p) => p.proc), ...(this.#tracker === undefined ? [] : [this.#tracker])];
    for (const p of procs) p.killHard();
    await Promise.all(procs.map((p) => p.exited));
    for (const g of this.#gates) g.close();
    await this.#releaseSlot?.();
    if (this.#dir !== "") {
      if (KEEP_TMP) {
        // Everything each process wrote, next to its directory (<name>.stdout / .stderr).
        for (const [p, dir] of [
          ...(this.#tracker === undefined ? [] : [[this.#tracker, path.join(this.#dir, "tracker")] as const]),
          ...this.#peers.map((peer) => [peer.proc, peer.dir] as const),
        ]) {
          await writeFile(`${dir}.stdout`, p.stdout());
          await writeFile(`${dir}.stderr`, p.stderr());
        }
        this.#t.log(`kept ${this.#dir}`);
      } else await rm(this.#dir, { recursive: true, force: true });
    }
  }

  // ---------------------------------------------------------------- tracker output

  #onTrackerLine(line: string): void {
    const event = this.#parser.push(line);
    if (event === undefined) return;
    if (event.kind === "connect") {
      this.#connected.push(event.id);
      const candidates = this.#peers.filter(
        (p) => p.id === undefined && sameLines(connectBlock(event.id, p.offered), event.lines),
      );
      const only = candidates[0];
      if (candidates.length === 1 && only !== undefined) only.id = event.id;
    } else if (event.kind === "acquired") {
      let perFile = this.#acquired.get(event.id);
      if (perFile === undefined) {
        perFile = new Map();
        this.#acquired.set(event.id, perFile);
      }
      perFile.set(event.name, (perFile.get(event.name) ?? 0) + 1);
    } else {
      this.#disconnected.add(event.id);
    }
    this.#notify();
  }

  /** IDs whose CONNECT block the tracker has printed, in order. */
  connectedIds(): readonly number[] {
    return this.#connected;
  }

  hasDisconnected(id: number): boolean {
    return this.#disconnected.has(id);
  }

  /** ACQUIRED lines printed so far for PEER id (for one file, or in all). */
  acquired(id: number, name?: string): number {
    const perFile = this.#acquired.get(id);
    if (perFile === undefined) return 0;
    if (name !== undefined) return perFile.get(name) ?? 0;
    let sum = 0;
    for (const n of perFile.values()) sum += n;
    return sum;
  }

  /** Has the tracker printed every chunk of `name` as ACQUIRED by PEER id? */
  completed(id: number, file: FileSpec): boolean {
    return this.acquired(id, file.name) >= chunkCount(file.size);
  }

  // ---------------------------------------------------------------- waiting

  /**
   * Resolves once `check()` holds (evaluated after every event: tracker line, peer
   * output, process exit). Rejects if the swarm times out, or if one of `unlessExited`
   * exits before the condition holds.
   */
  async waitFor(description: string, check: () => boolean, unlessExited: readonly Peer[] = []): Promise<void> {
    await this.#wait(description, check, unlessExited, undefined);
  }

  #wait(
    description: string,
    check: () => boolean,
    unlessExited: readonly Peer[],
    withinMs: number | undefined,
  ): Promise<boolean> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    return new Promise<boolean>((resolve, reject) => {
      const waiter: Waiter = { description, check, unlessExited, resolve, reject };
      if (withinMs !== undefined) {
        waiter.timer = setTimeout(() => {
          this.#waiters.delete(waiter);
          resolve(false);
        }, withinMs);
      }
      this.#waiters.add(waiter);
      this.#notify();
    });
  }

  #notify(): void {
    for (const w of [...this.#waiters]) {
      let ok = false;
      try {
        ok = w.check();
      } catch (error) {
        this.#settle(w);
        w.reject(error as Error);
        continue;
      }
      if (ok) {
        this.#settle(w);
        w.resolve(true);
        continue;
      }
      const gone = w.unlessExited.find((p) => p.exited);
      if (gone !== undefined) {
        this.#settle(w);
        w.reject(
          new Error(
            `peer ${gone.label} exited (code ${gone.proc.exitInfo?.code}, signal ${gone.proc.exitInfo?.signal}) ` +
              `while waiting for ${w.description}\n${this.#dump()}`,
          ),
        );
      }
    }
  }

  #settle(w: Waiter): void {
    this.#waiters.delete(w);
    if (w.timer !== undefined) clearTimeout(w.timer);
  }

  #abort(error: Error): void {
    if (this.#failure !== undefined) return;
    for (const p of this.#peers) p.proc.killHard();
    this.#tracker?.killHard();
    this.#failure = new Error(`${error.message}\n${this.#dump()}`);
    for (const w of [...this.#waiters]) {
      this.#settle(w);
      w.reject(this.#failure);
    }
  }

  /** Everything useful for a post-mortem: each process's status and stderr, the tracker's last lines. */
  #dump(): string {
    const parts: string[] = [`temporary directory: ${this.#dir}${KEEP_TMP ? "" : " (set KEEP_TMP=1 to keep it)"}`];
    for (const g of this.#gates) parts.push(g.describe());
    if (this.#tracker !== undefined) {
      parts.push(this.#tracker.describe());
      const out = this.#tracker.stdout().toString("utf8").split("\n");
      const tail = out.slice(-40).join("\n");
      parts.push(`--- tracker stdout (${out.length - 1} lines; last 40):\n${tail}`);
    }
    for (const p of this.#peers) {
      parts.push(p.proc.describe(3000));
      const stdout = p.proc.stdout().toString("utf8");
      if (stdout !== "") parts.push(`--- ${p.proc.label} stdout:\n${stdout.slice(0, 2000)}`);
    }
    return parts.join("\n");
  }

  // ---------------------------------------------------------------- peers

  /** A gate for the next `count` peers that use it (see Gate). */
  async gate(count: number): Promise<Gate> {
    const gate = await Gate.open(
      this.#port,
      count,
      (n) => {
        const target = this.#connected.length + n;
        return this.waitFor(`the tracker's CONNECT blocks of ${n} gated peers`, () => this.#connected.length >= target);
      },
      (error) => this.#abort(new Error(`gate: ${error.message}`)),
    );
    this.#gates.push(gate);
    return gate;
  }

  /** Creates the peer's directory and files, then starts it (does not wait for anything). */
  async startPeer(options: PeerOptions): Promise<Peer> {
    if (this.#failure !== undefined) throw this.#failure;
    const { label } = options;
    if (this.#peers.some((p) => p.label === label)) throw new Error(`duplicate peer label ${label}`);
    const files = options.files ?? [];
    for (const f of files) {
      const content = contentOf(f);
      const known = this.#originals.get(f.name);
      if (known !== undefined && !known.equals(content)) throw new Error(`two different files named ${f.name}`);
      this.#originals.set(f.name, content);
    }
    const dir = path.join(this.#dir, `peer-${label}`);
    await mkdir(dir);
    if (options.noSharedDir !== true) {
      await mkdir(path.join(dir, "Shared"));
      for (const f of files) await writeFile(path.join(dir, "Shared", f.name), contentOf(f));
    } else if (files.length > 0) {
      throw new Error("noSharedDir with files");
    }
    const minAlive = options.minAlive ?? 0;
    const args = [
      options.host ?? "127.0.0.1",
      String(options.gate?.port ?? this.#port),
      String(minAlive),
      ...(options.extraArgs ?? []),
    ];
    const launch = options.launch ?? "sh";
    let command: string;
    let argv: string[];
    switch (launch) {
      case "sh":
      case "dash":
        command = launch;
        argv = [PEER_SH, ...args];
        break;
      case "exec":
        command = PEER_SH;
        argv = args;
        break;
      case "exec-relative":
        command = path.relative(dir, PEER_SH);
        if (!command.includes("/")) command = `./${command}`;
        argv = args;
        break;
    }
    if (this.#failure !== undefined) throw this.#failure;
    const idsConnectedAtSpawn = [...this.#connected];
    let peer: Peer | undefined;
    const proc = new Proc(
      `peer ${label}`,
      command,
      argv,
      { cwd: dir, env: { ...peerEnvironment(), ...options.env } },
      {
        onStdoutLine: (line) => {
          const m = /^PEER (\d+) SHUTDOWN: /.exec(line);
          if (m !== null && peer !== undefined && peer.id === undefined) peer.id = Number(m[1]);
          this.#notify();
        },
        // Tests may wait for a diagnostic line.
        onStderrLine: () => this.#notify(),
        onExit: () => this.#notify(),
      },
    );
    peer = new Peer({ label, dir, files, minAlive, idsConnectedAtSpawn, proc });
    this.#peers.push(peer);
    return peer;
  }

  /** Waits until the peer's ID is known (from its CONNECT block, so its offers must be unique). */
  async idOf(peer: Peer): Promise<number> {
    // A peer that exited normally has printed its ID (its stdout is drained before "close").
    await this.waitFor(`the CONNECT block of peer ${peer.label}`, () => {
      if (peer.id !== undefined) return true;
      if (peer.exited) throw new Error(`peer ${peer.label} exited before its ID was known\n${this.#dump()}`);
      return false;
    });
    if (peer.id === undefined) throw new Error("unreachable");
    return peer.id;
  }

  /** SIGKILLs a peer (and marks it as killed on purpose). */
  kill(peer: Peer): void {
    peer.killed = true;
    peer.proc.killHard();
  }

  /**
   * SIGKILLs `peer` as soon as `condition` holds (checked after every event, e.g.
   * `() => swarm.acquired(id) >= 100`). Fails if the peer exits first.
   */
  async killWhen(peer: Peer, description: string, condition: () => boolean): Promise<void> {
    await this.waitFor(description, condition, [peer]);
    this.kill(peer);
  }

  /** SIGKILLs the tracker (for tests of a lost tracker). */
  killTracker(): void {
    this.#trackerStopping = true;
    this.tracker.killHard();
  }

  /** Waits for a peer to exit (bounded by the swarm timer). */
  async exitOf(peer: Peer): Promise<ExitInfo> {
    await this.waitFor(`peer ${peer.label} to exit`, () => peer.exited);
    return peer.proc.exited;
  }

  /**
   * Stops the tracker with SIGTERM and returns the problems seen (exit status other
   * than 0, no exit within 10 s, a malformed port.txt).
   */
  async stopTracker(signal: "SIGTERM" | "SIGINT" = "SIGTERM"): Promise<string[]> {
    const tracker = this.tracker;
    this.#trackerStopping = true;
    tracker.signal(signal);
    const problems = [...this.#problems];
    const exited = await this.#wait(
      `the tracker to exit after ${signal}`,
      () => tracker.exitInfo !== undefined,
      [],
      10_000,
    );
    if (!exited) {
      problems.push(`the tracker did not exit within 10 s of ${signal}`);
      tracker.killHard();
    }
    const info = await tracker.exited;
    if (exited && (info.code !== 0 || info.signal !== null)) {
      problems.push(`the tracker exited with code ${info.code}, signal ${info.signal} after ${signal} (expected 0)`);
    }
    return problems;
  }

  /**
   * The normal end of a test: waits for every peer to exit and the tracker to print
   * their DISCONNECT blocks, stops the tracker, then checks everything (SPEC §5 output,
   * exit statuses, ./Shared contents, sharing guarantees). Fails the test on any problem.
   */
  async finish(): Promise<SwarmResult> {
    await this.waitFor(
      `every peer to exit (running: ${this.#peers
        .filter((p) => !p.exited)
        .map((p) => p.label)
        .join(", ")})`,
      () => this.#peers.every((p) => p.exited),
    );
    const problems: string[] = [];
    const allGone = await this.#wait(
      "a DISCONNECT block for every connected peer",
      () => this.#connected.every((id) => this.#disconnected.has(id)),
      [],
      20_000,
    );
    if (!allGone) {
      const missing = this.#connected.filter((id) => !this.#disconnected.has(id));
      problems.push(`20 s after every peer had exited, the tracker still had not printed DISCONNECT for ${missing}`);
    }
    problems.push(...(await this.stopTracker()));
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    if (this.#failure !== undefined) throw this.#failure;

    const facts: PeerFacts[] = [];
    for (const p of this.#peers) {
      const info = p.proc.exitInfo;
      facts.push({
        label: p.label,
        offered: p.offered,
        killed: p.killed,
        exitCode: info?.code ?? null,
        signal: info?.signal ?? null,
        elapsedMs: info?.elapsedMs ?? 0,
        minAliveSeconds: p.minAlive,
        stdout: p.proc.stdout(),
        shared: await readShared(p.sharedDir, this.#originals),
        idsConnectedAtSpawn: p.idsConnectedAtSpawn,
        liveId: p.id,
      });
    }
    const check = checkSwarm(facts, withoutPeers(this.tracker.stdout(), this.#foreign));
    for (const problem of check.problems) problems.push(problem);
    const shown = problems.length > 60 ? [...problems.slice(0, 60), `... and ${problems.length - 60} more`] : problems;
    if (shown.length > 0) this.#t.log(this.#dump());
    this.#t.deepEqual(shown, [], "the swarm broke the contract (process details logged above)");
    const all = new Set<string>();
    for (const p of this.#peers) for (const f of p.offered) all.add(f.name);
    return new SwarmResult(
      check.outcomes,
      check.events,
      [...all].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))),
    );
  }

  /**
   * Marks tracker PEER `id` as a hand-made client of the test, not a peer started here:
   * finish() leaves its lines (CONNECT, ACQUIRED, DISCONNECT) out of the transcript it
   * checks, and the test checks them itself. It still waits for its DISCONNECT block.
   * Its ID must be above every harness peer's, so that theirs are still 1..N.
   */
  foreign(id: number): void {
    this.#foreign.add(id);
  }

  /** The content a file named `name` must have (from whichever peer offered it). */
  original(name: string): Buffer | undefined {
    return this.#originals.get(name);
  }

  /** Logs a short account of the run (what each peer got), for the test's output. */
  logSummary(result: SwarmResult): void {
    for (const p of this.#peers) {
      const o = result.outcome(p);
      this.#t.log(
        `peer ${p.label} = PEER ${o.id}: ${p.killed ? "killed" : `exit 0 after ${p.proc.exitInfo?.elapsedMs} ms`}, ` +
          `has ${o.has.length} files, received ${o.received.length}`,
      );
    }
  }
}

/** The tracker's stdout without the lines of the given peer IDs (blocks are printed whole). */
export function withoutPeers(stdout: Buffer, ids: ReadonlySet<number>): Buffer {
  if (ids.size === 0) return stdout;
  const prefixes = [...ids].flatMap((id) => [`PEER ${id} `, `${id}    `]);
  const text = stdout.toString("utf8");
  const kept = text.split("\n").filter((line, i, all) => {
    if (i === all.length - 1) return true; // what follows the last newline ("" when it ends with one)
    return !prefixes.some((p) => line.startsWith(p));
  });
  return Buffer.from(kept.join("\n"), "utf8");
}

/**
 * The test's environment minus UDPSWARM_* settings (fault injection, stats...), so that
 * a peer only gets the options its test gives it.
 */
function peerEnvironment(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith("UDPSWARM_")) env[key] = value;
  return env;
}

/** What is in a peer's ./Shared, each file compared with the original of that name. */
export async function readShared(
  dir: string,
  originals: ReadonlyMap<string, Buffer>,
): Promise<Map<string, SharedEntry> | undefined> {
  if (!existsSync(dir)) return undefined;
  const result = new Map<string, SharedEntry>();
  for (const name of await readdir(dir)) {
    const full = path.join(dir, name);
    const st = await lstat(full);
    if (!st.isFile()) {
      result.set(name, { kind: "other" });
      continue;
    }
    const original = originals.get(name);
    if (original === undefined) {
      result.set(name, { kind: "file", content: "unknown-name" });
      continue;
    }
    const content = await readFile(full);
    result.set(name, { kind: "file", content: content.equals(original) ? "identical" : "different" });
  }
  return result;
}
