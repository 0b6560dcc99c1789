/**
 * Live folders: time for a small edit to reach 3 sync peers. Starts a tracker and three
 * `peer.sh --sync` processes in a temporary folder, then, ROUNDS times, rewrites a 10 KB
 * file on one peer (in turn) and measures from the write to the moment every copy has the
 * new bytes (polled every 5 ms). The watcher's settle time (200 ms of no change) is part
 * of the figure; "after settling" subtracts it.
 *
 *   node dist/bench/sync-propagation.js [ROUNDS]
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const SETTLE_MS = 200;
const rounds = Number(process.argv[2] ?? 10);
const dir = mkdtempSync(path.join(os.tmpdir(), "udpswarm-syncbench-"));
const procs: ChildProcess[] = [];

function start(cwd: string, script: string, args: string[]): ChildProcess {
  mkdirSync(cwd, { recursive: true });
  const p = spawn("sh", [path.join(ROOT, script), ...args], { cwd, stdio: ["ignore", "pipe", "pipe"] });
  procs.push(p);
  return p;
}

function until(check: () => boolean, ms: number, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const end = performance.now() + ms;
    const tick = () => {
      let ok = false;
      try {
        ok = check();
      } catch {
        ok = false;
      }
      if (ok) resolve();
      else if (performance.now() > end) reject(new Error(`timed out: ${what}`));
      else setTimeout(tick, 5);
    };
    tick();
  });
}

async function main(): Promise<void> {
  const tracker = start(path.join(dir, "tracker"), "tracker.sh", []);
  let port = 0;
  let trackerOut = "";
  tracker.stderr?.on("data", (b: Buffer) => {
    const m = /listening on port (\d+)/.exec(b.toString());
    if (m !== null) port = Number(m[1]);
  });
  tracker.stdout?.on("data", (b: Buffer) => {
    trackerOut += b.toString();
  });
  await until(() => port !== 0, 10_000, "tracker port");
  const shared = ["a", "b", "c"].map((l) => path.join(dir, l, "Shared"));
  for (const [i, s] of shared.entries()) {
    mkdirSync(s, { recursive: true });
    start(path.dirname(s), "peer.sh", ["127.0.0.1", String(port), "--sync"]);
    await until(() => (trackerOut.match(/ CONNECT: /g) ?? []).length === i + 1, 10_000, "connect");
  }
  const name = "note.txt";
  const hashOf = (p: string) => createHash("sha256").update(readFileSync(p)).digest("hex");
  const times: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const data = randomBytes(10_000);
    const want = createHash("sha256").update(data).digest("hex");
    const t0 = performance.now();
    writeFileSync(path.join(shared[r % 3] ?? "", name), data);
    await until(() => shared.every((s) => hashOf(path.join(s, name)) === want), 20_000, `round ${r}`);
    times.push(performance.now() - t0);
  }
  times.sort((x, y) => x - y);
  const median = times[Math.floor(times.length / 2)] ?? 0;
  const max = times[times.length - 1] ?? 0;
  console.log(
    JSON.stringify({
      rounds,
      fromWriteMs: { median: Math.round(median), max: Math.round(max) },
      afterSettlingMs: { median: Math.round(median - SETTLE_MS), max: Math.round(max - SETTLE_MS) },
    }),
  );
}

main()
  .catch((err: unknown) => {
    console.error(String(err));
    process.exitCode = 1;
  })
  .finally(() => {
    for (const p of procs) p.kill("SIGTERM");
    setTimeout(() => rmSync(dir, { recursive: true, force: true }), 500);
  });
