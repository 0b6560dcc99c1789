/**
 * What resume (SPEC §12) costs a download: the staging records written while it runs.
 *
 *   node dist/bench/resume-cost.js [RUNS] [MIB] [peer|client]   (defaults: 3 runs of 64 MiB, peer)
 *
 * 1. One record write, alone: StagingArea.writeRecord (encode, one positional write) of the
 *    record of a MIB file half done, 200 times in a row in the system's temporary folder:
 *    wall time per write, CPU per write (every thread of this process: the fsync runs on
 *    libuv's pool), and the part spent on the event loop (encoding the record).
 * 2. A real download: a tracker, a seeder and a downloader (tracker.sh, peer.sh) in that
 *    same folder; the downloader's --stats give its time and how many records it wrote.
 *    With "client": a tracker with --store and two clients (client.sh), one uploading,
 *    one downloading; time from download_file to the client's exit, its UDPSWARM_STATS.
 * Cost = writes x CPU per write, against the transfer time. Prints one JSON line per run
 * and a summary. Run it in a network namespace of its own on a quiet machine:
 *   unshare -n sh -c 'ip link set lo up && node dist/bench/resume-cost.js'
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { StagingArea } from "../src/peer/staging.js";
import { encodeStagingRecord, type StagingRecord, stagingKey } from "../src/peer/staging-record.js";
import { Bitmap } from "../src/transfer/bitmap.js";
import { CHUNKS_PER_BLOCK, CHUNKS_PER_PIECE, chunkCount, pieceCount } from "../src/wire/limits.js";
import { Proc, stopAll } from "./proc.js";
import { fmt, MiB, median, now, pollUntil, ROOT } from "./util.js";

const runs = Number(process.argv[2] ?? 3);
const mib = Number(process.argv[3] ?? 64);
const mode = process.argv[4] ?? "peer";
const WRITES = 200;

function recordOf(size: number): StagingRecord {
  const pieces = pieceCount(chunkCount(size), CHUNKS_PER_PIECE);
  const verified = new Bitmap(pieces);
  for (let p = 0; p < pieces; p += 2) verified.set(p);
  return {
    identity: { name: "bench.bin", size, sha256: randomBytes(32), tag: "" },
    chunksPerPiece: CHUNKS_PER_PIECE,
    chunksPerBlock: CHUNKS_PER_BLOCK,
    verified,
  };
}

function oneWrite(dir: string, size: number) {
  const area = StagingArea.open(path.join(dir, "micro-staging"), () => {});
  const record = recordOf(size);
  const key = stagingKey(record.identity);
  for (let i = 0; i < 10; i++) area.writeRecord(key, record); // warm-up
  const cpu0 = process.cpuUsage();
  const t0 = now();
  for (let i = 0; i < WRITES; i++) area.writeRecord(key, record);
  const wallMs = (now() - t0) / WRITES;
  const cpu = process.cpuUsage(cpu0);
  const cpuUs = (cpu.user + cpu.system) / WRITES;
  const e0 = now();
  for (let i = 0; i < WRITES; i++) encodeStagingRecord(record);
  const encodeUs = ((now() - e0) * 1000) / WRITES;
  area.close(true);
  return { bytes: encodeStagingRecord(record).length, wallMs, cpuUs, encodeUs };
}

async function transfer(dir: string, size: number, run: number) {
  const root = path.join(dir, `run${run}`);
  for (const d of ["tracker", "seed/Shared", "dl"]) mkdirSync(path.join(root, d), { recursive: true });
  writeFileSync(path.join(root, "seed/Shared/bench.bin"), randomBytes(size));
  const sh = (label: string, cwd: string, script: string, args: string[]) =>
    new Proc(label, "sh", [path.join(ROOT, script), ...args], { cwd: path.join(root, cwd) });
  const tracker = sh("tracker", "tracker", "tracker.sh", []);
  const procs = [tracker];
  try {
    const port = (await tracker.waitForStderr(/listening on port (\d+)/, 10_000))[1] ?? "";
    const seed = sh("seed", "seed", "peer.sh", ["127.0.0.1", port, "600"]);
    procs.push(seed);
    await pollUntil(() => /CONNECT/.test(tracker.stdoutTail) || undefined, 10_000, "the seeder's CONNECT", 10);
    const t0 = now();
    const dl = sh("downloader", "dl", "peer.sh", ["127.0.0.1", port, "0", "--quiet", "--stats", "stats.json"]);
    procs.push(dl);
    const exit = await dl.exited;
    const wallMs = now() - t0;
    if (exit.code !== 0) throw new Error(dl.describe());
    const stats = JSON.parse(readFileSync(path.join(root, "dl/stats.json"), "utf8")) as {
      elapsedMs: number;
      stagingRecordWrites: number;
    };
    return { wallMs, elapsedMs: stats.elapsedMs, recordWrites: stats.stagingRecordWrites };
  } finally {
    await stopAll(procs, 1000);
    rmSync(root, { recursive: true, force: true });
  }
}

/** A client driven through stdin; replies awaited by pattern. */
class ScriptedClient {
  readonly child: ChildProcess;
  #out = "";

  constructor(cwd: string, trackers: string, env: NodeJS.ProcessEnv = {}) {
    this.child = spawn("sh", [path.join(ROOT, "client.sh"), trackers], {
      cwd,
      env: { ...process.env, ...env },
      stdio: ["pipe", "pipe", "pipe"],
    });
    for (const stream of [this.child.stdout, this.child.stderr]) {
      stream?.on("data", (chunk: Buffer) => {
        this.#out += chunk.toString("utf8");
      });
    }
  }

  async run(command: string, reply: RegExp): Promise<void> {
    const from = this.#out.length;
    this.child.stdin?.write(`${command}\n`);
    await pollUntil(() => reply.test(this.#out.slice(from)) || undefined, 60_000, command, 2);
  }

  end(): Promise<number | null> {
    this.child.stdin?.end();
    return new Promise((resolve) => {
      if (this.child.exitCode !== null) resolve(this.child.exitCode);
      else this.child.once("close", resolve);
    });
  }
}

async function clientTransfer(dir: string, size: number, run: number) {
  const root = path.join(dir, `run${run}`);
  for (const d of ["tracker", "s", "d"]) mkdirSync(path.join(root, d), { recursive: true });
  writeFileSync(path.join(root, "s/bench.bin"), randomBytes(size));
  const tracker = new Proc("tracker", "sh", [path.join(ROOT, "tracker.sh"), "--store", "./db", "--scrypt-cost", "14"], {
    cwd: path.join(root, "tracker"),
  });
  const clients: ScriptedClient[] = [];
  try {
    const port = (await tracker.waitForStderr(/listening on port (\d+)/, 10_000))[1] ?? "";
    const trackers = path.join(root, "trackers");
    writeFileSync(trackers, `127.0.0.1 ${port}\n`);
    const s = new ScriptedClient(path.join(root, "s"), trackers);
    const d = new ScriptedClient(path.join(root, "d"), trackers, { UDPSWARM_STATS: path.join(root, "d/stats.json") });
    clients.push(s, d);
    await s.run("create_user s pw-s", /created/);
    await s.run("login s pw-s", /logged in/);
    await s.run("create_group g", /created/);
    await s.run("upload_file bench.bin g", /uploaded/);
    await d.run("create_user d pw-d", /created/);
    await d.run("login d pw-d", /logged in/);
    await d.run("join_group g", /asked/);
    await s.run("accept_request g d", /member/);
    const t0 = now();
    await d.run("download_file g bench.bin ./in", /downloading/);
    const code = await d.end(); // stdin ends: the client exits once the download is done
    const wallMs = now() - t0;
    if (code !== 0) throw new Error(`the downloading client exited ${code}`);
    const stats = JSON.parse(readFileSync(path.join(root, "d/stats.json"), "utf8")) as { stagingRecordWrites: number };
    return { wallMs, elapsedMs: wallMs, recordWrites: stats.stagingRecordWrites };
  } finally {
    for (const c of clients) c.child.kill("SIGKILL");
    await stopAll([tracker], 1000);
    rmSync(root, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), "udpswarm-resume-cost-"));
  try {
    const size = mib * MiB;
    const micro = await oneWrite(dir, size);
    console.log(JSON.stringify({ micro }));
    const shares: number[] = [];
    const elapsed: number[] = [];
    const writes: number[] = [];
    for (let run = 1; run <= runs; run++) {
      const r = mode === "client" ? await clientTransfer(dir, size, run) : await transfer(dir, size, run);
      const costMs = (r.recordWrites * micro.cpuUs) / 1000;
      const share = costMs / r.elapsedMs;
      shares.push(share);
      elapsed.push(r.elapsedMs);
      writes.push(r.recordWrites);
      console.log(JSON.stringify({ run, ...r, recordCpuMs: costMs, share }));
    }
    console.log(
      `one record (${micro.bytes} bytes, ${mib} MiB file): ${fmt(micro.wallMs, 3)} ms wall, ${fmt(micro.cpuUs, 1)} µs CPU, ` +
        `${fmt(micro.encodeUs, 1)} µs of it encoding on the event loop`,
    );
    console.log(
      `${mode} download of ${mib} MiB, median of ${runs}: ${fmt(median(elapsed), 0)} ms (${fmt((size / MiB / (median(elapsed) ?? 1)) * 1000, 1)} MiB/s), ` +
        `${fmt(median(writes), 0)} records written, their CPU ${fmt((median(shares) ?? 0) * 100, 3)}% of the download's time`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
