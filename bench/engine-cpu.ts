/**
 * `node dist/bench/engine-cpu.js [MiB] [runs]`: the user-space CPU the transfer engine
 * spends per chunk, sender and receiver together, with no socket and no kernel in the way.
 * Two engines in one process, wired back to back on a manual clock (a datagram sent is
 * delivered in the next round; each round moves the clock 0.1 ms, so RTTs are real
 * numbers); pieces live in memory; requests carry the proofs the tracker's keys demand, and
 * answers the receipt shares (one HMAC and one cipher call per request).
 * process.cpuUsage() over the transfer, divided by the chunks delivered. The real peer
 * spends this plus the kernel's send and receive (the raw UDP ceiling), so this is the part
 * our code decides. Each run checks the copy byte for byte.
 */
import { createHash, randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { Session } from "node:inspector";
import { ManifestBuilder, PIECE_BYTES } from "../src/peer/scan.js";
import { TransferEngine } from "../src/transfer/engine.js";
import type { PieceStore } from "../src/transfer/io.js";
import { ManualClock } from "../src/util/clock.js";
import { SeededRandom } from "../src/util/random.js";
import { requestAuth } from "../src/wire/auth.js";
import { CHUNK_SIZE } from "../src/wire/limits.js";
import type { CheckedManifest } from "../src/wire/tracker-frame.js";

const FILE = 1;

/**
 * ENGINE_CPU_PROFILE=FILE: a V8 CPU profile from the first transfer on (the test data
 * and its manifest are made before), readable like a `--cpu-prof` file.
 */
class TransferProfiler {
  readonly #session = new Session();
  #started = false;
  constructor(readonly path: string) {
    this.#session.connect();
  }
  #post(method: string, params?: object): Promise<unknown> {
    return new Promise((resolve, reject) =>
      this.#session.post(method, params ?? {}, (err, result) => (err ? reject(err) : resolve(result))),
    );
  }
  async start(): Promise<void> {
    if (this.#started) return;
    await this.#post("Profiler.enable");
    await this.#post("Profiler.setSamplingInterval", { interval: 100 });
    await this.#post("Profiler.start");
    this.#started = true;
  }
  async save(): Promise<void> {
    const { profile } = (await this.#post("Profiler.stop")) as { profile: unknown };
    writeFileSync(this.path, JSON.stringify(profile));
  }
}
const profiler = process.env.ENGINE_CPU_PROFILE ? new TransferProfiler(process.env.ENGINE_CPU_PROFILE) : undefined;

class MemoryStore implements PieceStore {
  constructor(readonly data: Buffer) {}
  read(_fileId: number, firstChunk: number, count: number): Buffer {
    const start = firstChunk * CHUNK_SIZE;
    return this.data.subarray(start, Math.min(this.data.length, (firstChunk + count) * CHUNK_SIZE));
  }
  writePiece(_fileId: number, _piece: number, firstChunk: number, data: Buffer): void {
    data.copy(this.data, firstChunk * CHUNK_SIZE);
  }
}

type Node = { engine: TransferEngine; host: string; port: number; done: boolean };

async function runOnce(
  data: Buffer,
  copy: Buffer,
  manifest: CheckedManifest,
  seed: number,
): Promise<{ cpuUs: number; chunks: number; rounds: number }> {
  const clock = new ManualClock();
  let deferred: Array<() => void> = [];
  let inbox: Array<{ to: Node; bytes: Buffer; from: Node }> = [];
  const nodes: Node[] = [];
  const secrets = [Buffer.alloc(32, 1), Buffer.alloc(32, 2)];
  const make = (i: number, store: PieceStore): Node => {
    const node: Node = { host: "127.0.0.1", port: 1000 + i, done: false } as Node;
    node.engine = new TransferEngine({
      clock,
      port: {
        send: (bytes, _host, port) => {
          const to = nodes.find((n) => n.port === port);
          // A copy, as the kernel makes one: the sender may reuse its buffer.
          if (to !== undefined) inbox.push({ to, bytes: Buffer.from(bytes), from: node });
        },
      },
      store,
      random: new SeededRandom(seed + i),
      defer: (fn) => deferred.push(fn),
      // Receipt shares in every chunk, as the tracker's secrets make a real peer send them.
      receiptSecret: () => secrets[i] as Buffer,
      events: {
        acquired: () => {},
        fileComplete: () => {
          node.done = true;
        },
        fatal: (err) => {
          throw err;
        },
      },
    });
    nodes.push(node);
    return node;
  };
  const seeder = make(0, new MemoryStore(data));
  // The same copy buffer every run, zeroed before the clock starts: first-touch page
  // faults of a fresh 32 MiB buffer would otherwise be a third of the figure.
  copy.fill(0);
  const downloader = make(1, new MemoryStore(copy));
  seeder.engine.addFile(FILE, manifest, "seeding");
  downloader.engine.addFile(FILE, manifest, "downloading");
  const ids = [1, 2];
  for (const [i, n] of nodes.entries()) {
    const j = 1 - i;
    const other = nodes[j] as Node;
    n.engine.addRemote(ids[j] as number, other.host, other.port, {
      inbound: requestAuth(secrets[j] as Buffer, ids[i] as number),
      outbound: requestAuth(secrets[i] as Buffer, ids[j] as number),
    });
  }
  downloader.engine.holdersChanged(ids[0] as number, FILE, [], true);

  await profiler?.start();
  const before = process.cpuUsage();
  let rounds = 0;
  while (!downloader.done) {
    if (++rounds > 10_000_000) throw new Error("no completion");
    await Promise.resolve();
    if (deferred.length > 0) {
      const batch = deferred;
      deferred = [];
      for (const fn of batch) fn();
      continue;
    }
    if (inbox.length > 0) {
      const batch = inbox;
      inbox = [];
      for (const d of batch) d.to.engine.onDatagram(d.bytes, d.from.host, d.from.port);
      clock.advanceTo(clock.now() + 0.1);
      continue;
    }
    const next = clock.nextDeadline();
    if (next === undefined) throw new Error("stalled");
    clock.advanceTo(next);
  }
  const used = process.cpuUsage(before);
  for (const n of nodes) n.engine.close();
  if (!copy.equals(data)) throw new Error("the copy differs");
  const chunks = downloader.engine.counters.chunksAcquired;
  return { cpuUs: used.user + used.system, chunks, rounds };
}

async function main(): Promise<void> {
  const mib = Number(process.argv[2] ?? 32);
  const runs = Number(process.argv[3] ?? 5);
  const data = randomBytes(mib * 1024 * 1024 + 77);
  const builder = new ManifestBuilder("bench.bin");
  for (let at = 0; at < data.length; at += PIECE_BYTES) builder.add(data.subarray(at, at + PIECE_BYTES));
  const manifest = builder.finish();
  const copy = Buffer.alloc(data.length);
  const perChunk: number[] = [];
  for (let i = 0; i < runs; i++) {
    const { cpuUs, chunks } = await runOnce(data, copy, manifest, 100 + i);
    perChunk.push(cpuUs / chunks);
    process.stderr.write(
      `run ${i + 1}: ${(cpuUs / 1000).toFixed(0)} ms CPU, ${chunks} chunks, ${(cpuUs / chunks).toFixed(2)} µs/chunk\n`,
    );
  }
  await profiler?.save();
  perChunk.sort((a, b) => a - b);
  const median = perChunk[Math.floor(perChunk.length / 2)] ?? Number.NaN;
  process.stdout.write(
    `${JSON.stringify({ mib, runs, medianUsPerChunk: Number(median.toFixed(2)), sha: createHash("sha256").update(data).digest("hex").slice(0, 12) })}\n`,
  );
}

await main();
