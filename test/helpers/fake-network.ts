/**
 * A deterministic fake network for the transfer engine: every node is a TransferEngine
 * on one ManualClock; each directed link passes datagrams through its own seeded
 * FaultInjector (on the same clock, so delays are manual-clock timers); a driver runs
 * deferred work, microtasks, deliveries and timers in a fixed order. Same seed, same run:
 * counters are exact, and a failure names the seed that replays it.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type FaultConfig, type FaultCounters, FaultInjector, NO_FAULTS } from "../../src/peer/faults.js";
import { hashFile } from "../../src/peer/scan.js";
import type { PieceReceipt, PieceStore, TransferOptions } from "../../src/transfer/engine.js";
import { TransferEngine } from "../../src/transfer/engine.js";
import { ManualClock } from "../../src/util/clock.js";
import { SeededRandom } from "../../src/util/random.js";
import { CHUNK_SIZE } from "../../src/wire/limits.js";
import type { CheckedManifest } from "../../src/wire/tracker-frame.js";

/** Faults of one direction of a link; the seed comes from the network. */
export type LinkFaults = Partial<Omit<FaultConfig, "seed">>;

// ------------------------------------------------------------------ content

/** `size` bytes from a seeded PRNG: the same seed gives the same file. */
export function randomBytes(seed: number, size: number): Buffer {
  const r = new SeededRandom(seed);
  const out = Buffer.allocUnsafe(size);
  let i = 0;
  for (; i + 4 <= size; i += 4) out.writeUInt32LE(r.u32(), i);
  for (; i < size; i++) out[i] = r.int(256);
  return out;
}

/**
 * The manifest src/peer/scan.ts builds for `data` (the real scanner, on a temporary file, so
 * the piece hashes always follow the format the engine verifies against).
 */
export function manifestOf(name: string, data: Buffer): CheckedManifest {
  const dir = mkdtempSync(join(tmpdir(), "udpswarm-manifest-"));
  try {
    writeFileSync(join(dir, name), data);
    return hashFile(dir, name).manifest;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ------------------------------------------------------------------ storage

/** Pieces in memory: seeded files as given, downloads into a zeroed buffer of the file size. */
export class MemoryStore implements PieceStore {
  readonly #files = new Map<number, Buffer>();
  /** How many times each piece of each download was written (each should be exactly once). */
  readonly writes = new Map<number, Map<number, number>>();

  seed(fileId: number, data: Buffer): void {
    this.#files.set(fileId, data);
  }

  startDownload(fileId: number, size: number): void {
    this.#files.set(fileId, Buffer.alloc(size));
    this.writes.set(fileId, new Map());
  }

  bytes(fileId: number): Buffer {
    const b = this.#files.get(fileId);
    if (b === undefined) throw new Error(`MemoryStore: no file ${fileId}`);
    return b;
  }

  read(fileId: number, firstChunk: number, count: number): Buffer {
    const b = this.bytes(fileId);
    const start = firstChunk * CHUNK_SIZE;
    const end = Math.min(b.length, (firstChunk + count) * CHUNK_SIZE);
    if (start < 0 || start >= end) throw new RangeError(`read of chunks [${firstChunk}, +${count}) out of range`);
    return b.subarray(start, end);
  }

  writePiece(fileId: number, piece: number, firstChunk: number, data: Buffer): void {
    const b = this.bytes(fileId);
    const start = firstChunk * CHUNK_SIZE;
    if (start + data.length > b.length) throw new RangeError(`piece ${piece} overruns file ${fileId}`);
    data.copy(b, start);
    const w = this.writes.get(fileId);
    if (w !== undefined) w.set(piece, (w.get(piece) ?? 0) + 1);
  }
}

// ------------------------------------------------------------------ nodes

export class FakeNode {
  readonly index: number;
  readonly host: string;
  readonly port: number;
  readonly engine: TransferEngine;
  readonly store = new MemoryStore();
  readonly completed = new Set<number>();
  /** Chunks acquired (verified) per file, from the engine's events. */
  readonly acquiredChunks = new Map<number, number>();
  /** Receipts of the pieces acquired, per file, in order (Have.receipts). */
  readonly receipts = new Map<number, PieceReceipt[]>();
  /** Its tracker-issued secret (made up: 16 bytes of its index): the key of its receipt shares. */
  readonly secret: Buffer;
  readonly fatal: unknown[] = [];
  /** Detached nodes neither send nor receive (the process is gone). */
  detached = false;

  constructor(net: FakeNetwork, index: number, options: TransferOptions) {
    this.index = index;
    this.host = `10.0.0.${index}`;
    this.port = 1000 + index;
    this.secret = Buffer.alloc(16, index);
    this.engine = new TransferEngine(
      {
        clock: net.clock,
        port: { send: (bytes, host, port) => net.send(this, bytes, host, port) },
        store: this.store,
        random: new SeededRandom((net.seed ^ Math.imul(index, 0x85ebca6b)) >>> 0),
        defer: (fn) => net.defer(fn),
        receiptSecret: () => this.secret,
        events: {
          acquired: (fileId, _first, count, receipts) => {
            this.acquiredChunks.set(fileId, (this.acquiredChunks.get(fileId) ?? 0) + count);
            if (receipts !== undefined) this.receipts.set(fileId, [...(this.receipts.get(fileId) ?? []), ...receipts]);
          },
          fileComplete: (fileId) => this.completed.add(fileId),
          fatal: (err) => this.fatal.push(err),
        },
      },
      options,
    );
  }

  get name(): string {
    return `node ${this.index} (${this.host}:${this.port})`;
  }
}

// ------------------------------------------------------------------ the network

export type RunBounds = {
  /** Driver iterations before giving up. @default 200_000 */
  readonly maxSteps?: number;
  /** Virtual milliseconds (from the start of this run) before giving up. @default 60_000 */
  readonly maxVirtualMs?: number;
};

export type NetworkStats = {
  /** Datagrams handed to a destination engine. */
  delivered: number;
  /** Datagrams addressed to no live node. */
  undeliverable: number;
  /** Driver iterations over all runs. */
  steps: number;
};

/** Steps at one instant after which the run is a livelock: no real exchange takes this many. */
const LIVELOCK_STEPS = 10_000;

type Link = { injector: FaultInjector; generation: number };

export class FakeNetwork {
  readonly seed: number;
  readonly clock = new ManualClock();
  readonly stats: NetworkStats = { delivered: 0, undeliverable: 0, steps: 0 };
  readonly #defaultFaults: LinkFaults;
  readonly #nodes: FakeNode[] = [];
  readonly #byAddress = new Map<string, FakeNode>();
  readonly #links = new Map<string, Link>();
  #deferred: Array<() => void> = [];
  #deliveries: Array<() => void> = [];

  /** `faults` applies to every directed link not given its own with setFaults. */
  constructor(seed: number, faults: LinkFaults = {}) {
    this.seed = seed >>> 0;
    this.#defaultFaults = faults;
  }

  addNode(options: TransferOptions = {}): FakeNode {
    const node = new FakeNode(this, this.#nodes.length + 1, options);
    this.#nodes.push(node);
    this.#byAddress.set(`${node.host}|${node.port}`, node);
    return node;
  }

  /** Replaces the faults of the link from → to (a fresh injector, seeded from the network seed). */
  setFaults(from: FakeNode, to: FakeNode, faults: LinkFaults): void {
    const generation = (this.#links.get(this.#linkKey(from, to))?.generation ?? -1) + 1;
    this.#links.set(this.#linkKey(from, to), { injector: this.#injector(from, to, generation, faults), generation });
  }

  /** Fault counters of the link from → to (created with the default faults if unused so far). */
  linkCounters(from: FakeNode, to: FakeNode): FaultCounters {
    return this.#link(from, to).injector.counters;
  }

  /** The node is gone: its engine is closed and datagrams to or from it vanish. */
  detach(node: FakeNode): void {
    node.detached = true;
    node.engine.close();
  }

  /** The engine's `defer`: work run by the driver once the current batch of events is handled. */
  defer(fn: () => void): void {
    this.#deferred.push(fn);
  }

  /** A node's DatagramPort.send: through the link's faults, then queued (never delivered inside send). */
  send(from: FakeNode, bytes: Buffer, host: string, port: number): void {
    if (from.detached) return;
    const to = this.#byAddress.get(`${host}|${port}`);
    if (to === undefined) {
      this.stats.undeliverable++;
      return;
    }
    // A copy: the sender may reuse its buffer, as with a real socket.
    const wire = Buffer.from(bytes);
    this.#link(from, to).injector.apply(wire, (b) => {
      this.#deliveries.push(() => {
        if (to.detached) {
          this.stats.undeliverable++;
          return;
        }
        this.stats.delivered++;
        to.engine.onDatagram(b, from.host, from.port);
      });
    });
  }

  /**
   * Runs the network until `done()` holds: pending microtasks (p-queue's completions),
   * then deferred work, then queued deliveries, and when all are idle, time jumps to the
   * next timer. Throws, naming the seed, on a step or time bound, on a fatal engine
   * error, or when nothing is left to do and `done()` still fails (a hang).
   */
  async runUntil(done: () => boolean, bounds: RunBounds = {}): Promise<void> {
    const maxSteps = bounds.maxSteps ?? 200_000;
    const maxVirtualMs = bounds.maxVirtualMs ?? 60_000;
    const start = this.clock.now();
    let stillAt = start;
    let stillSteps = 0;
    for (let steps = 0; ; steps++) {
      await flushMicrotasks();
      this.#checkFatal();
      if (done()) return;
      if (steps >= maxSteps) this.#fail(`no result after ${maxSteps} steps`);
      this.stats.steps++;
      if (this.clock.now() !== stillAt) {
        stillAt = this.clock.now();
        stillSteps = 0;
      } else if (++stillSteps > LIVELOCK_STEPS) {
        this.#fail(
          `livelock: ${LIVELOCK_STEPS} steps without time moving (zero-delay timers or work re-deferring itself)`,
        );
      }
      if (this.#deferred.length > 0) {
        const batch = this.#deferred;
        this.#deferred = [];
        for (const fn of batch) fn();
        continue;
      }
      if (this.#deliveries.length > 0) {
        const batch = this.#deliveries;
        this.#deliveries = [];
        for (const deliver of batch) deliver();
        continue;
      }
      const next = this.clock.nextDeadline();
      if (next === undefined) this.#fail("stalled: no work, no datagram and no timer left");
      if (next - start > maxVirtualMs) this.#fail(`no result after ${maxVirtualMs} virtual ms`);
      this.clock.advanceTo(next);
    }
  }

  /** Runs until every queue is empty and no timer is armed, or the bounds are hit. */
  async settle(bounds: RunBounds = {}): Promise<void> {
    await this.runUntil(
      () => this.#deferred.length === 0 && this.#deliveries.length === 0 && this.clock.nextDeadline() === undefined,
      bounds,
    );
  }

  describe(): string {
    const lines = [`seed=${this.seed} t=${this.clock.now()}ms`];
    for (const n of this.#nodes) {
      const c = n.engine.counters;
      lines.push(
        `${n.name}: sent=${c.datagramsSent} recv=${c.datagramsReceived} chunksSent=${c.chunksSent} ` +
          `requested=${c.chunksRequested} received=${c.chunksReceived} acquired=${c.chunksAcquired} ` +
          `retrans=${c.retransmissions} timeouts=${c.timeouts} complete=[${[...n.completed].join(",")}]`,
      );
    }
    return lines.join("\n");
  }

  #checkFatal(): void {
    for (const n of this.#nodes) {
      if (n.fatal.length > 0) this.#fail(`fatal error on ${n.name}: ${String(n.fatal[0])}`);
    }
  }

  #fail(why: string): never {
    throw new Error(`fake network (seed ${this.seed}): ${why}\n${this.describe()}`);
  }

  #linkKey(from: FakeNode, to: FakeNode): string {
    return `${from.index}>${to.index}`;
  }

  #link(from: FakeNode, to: FakeNode): Link {
    const key = this.#linkKey(from, to);
    let link = this.#links.get(key);
    if (link === undefined) {
      link = { injector: this.#injector(from, to, 0, this.#defaultFaults), generation: 0 };
      this.#links.set(key, link);
    }
    return link;
  }

  /** Each link (and each replacement of its faults) draws from its own stream of the seed. */
  #injector(from: FakeNode, to: FakeNode, generation: number, faults: LinkFaults): FaultInjector {
    const salt = (generation * 65536 + from.index * 256 + to.index) >>> 0;
    return new FaultInjector({ ...NO_FAULTS, ...faults, seed: this.seed }, this.clock, salt);
  }
}

/** Lets every pending promise reaction run (setImmediate runs after the microtask queue drains). */
function flushMicrotasks(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
