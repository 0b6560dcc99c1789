/**
 * Resume (SPEC §12): a peer stopped mid-download (kill -9, Ctrl-C, SIGTERM) and started
 * again in the same folder keeps the pieces it had verified, checks them again, and
 * fetches only the rest; a corrupted kept piece is fetched again alone; a partial of a
 * version the swarm no longer offers is dropped; two peers never share a folder.
 */
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import test, { type ExecutionContext } from "ava";
import { decodeStagingRecord } from "../../src/peer/staging-record.js";
import { CHUNK_SIZE, CHUNKS_PER_PIECE } from "../../src/wire/limits.js";
import { chunkCount } from "../helpers/expect-output.js";
import { type PeerStats, RestartRig, type RigPeer, readStats } from "../helpers/restart-rig.js";
import { contentOf, type FileSpec, PEER_SH, runToExit } from "../helpers/swarm.js";

const MiB = 1024 * 1024;
/** Chunks in flight at most (--max-inflight's default): what a kill may cost beyond the missing part. */
const WINDOW = 3072;
const STAGING = ".udpswarm-staging";
/** Seeders stay until the test stops them (their MIN_ALIVE is never reached). */
const SEED_ALIVE = 600;

async function stagingOf(dir: string): Promise<string[]> {
  const staging = path.join(dir, STAGING);
  return existsSync(staging) ? (await readdir(staging)).sort() : [];
}

/** Waits until `peer` has ACQUIRED at least `fraction` of the file, then SIGKILLs it. */
async function killAt(rig: RestartRig, peer: RigPeer, file: FileSpec, fraction: number): Promise<number> {
  const total = chunkCount(file.size);
  await rig.waitFor(
    `${fraction * 100}% of ${file.name} ACQUIRED by ${peer.label}`,
    () => rig.acquired(peer.id, file.name) >= total * fraction,
    [peer.proc],
  );
  await rig.kill(peer);
  return rig.acquired(peer.id, file.name);
}

/** Runs the restarted downloader to its end and checks what every downloader must show. */
async function finishRestart(
  t: ExecutionContext,
  rig: RestartRig,
  again: RigPeer,
  file: FileSpec,
  content: Buffer,
): Promise<PeerStats> {
  const exit = await rig.exitOf(again);
  t.is(exit.code, 0, `restarted downloader exit status\n${rig.dump()}`);
  t.is(again.proc.stdout().toString(), `PEER ${again.id} SHUTDOWN: HAS 1\n${again.id}    ${file.name}\n`);
  t.true((await readFile(path.join(again.dir, "Shared", file.name))).equals(content), "byte-identical copy");
  t.deepEqual(await stagingOf(again.dir), [], "a normal departure leaves no staging folder");
  t.is(rig.acquired(again.id, file.name), chunkCount(file.size), "the new ID's ACQUIRED lines cover every chunk");
  return readStats(again.dir);
}

/** SIGTERMs the seeders (they hold nothing partial). */
async function stopSeeds(t: ExecutionContext, rig: RestartRig, seeds: readonly RigPeer[]): Promise<void> {
  for (const seed of seeds) {
    if (seed.proc.exitInfo !== undefined) continue;
    seed.proc.signal("SIGTERM");
    const exit = await rig.exitOf(seed);
    t.is(exit.code, 143, `seeder ${seed.label} stopped by SIGTERM`);
    t.regex(seed.proc.stderr().toString(), /interrupted by SIGTERM; nothing was being downloaded\n$/);
  }
}

/** A tracker, a seeder of `file` that stays, and a downloader started in folder "dl". */
async function seedAndDownloader(
  t: ExecutionContext,
  file: FileSpec,
): Promise<{ rig: RestartRig; seed: RigPeer; dir: string; first: RigPeer; total: number }> {
  const rig = await RestartRig.start(t, 90_000);
  const seed = await rig.peer("seed", await rig.folder("seed", [file]), SEED_ALIVE);
  const dir = await rig.folder("dl", []);
  const first = await rig.peer("dl", dir, 0);
  return { rig, seed, dir, first, total: chunkCount(file.size) };
}

/** Stops the seeders, then the tracker, and checks its transcript. */
async function stopAll(t: ExecutionContext, rig: RestartRig, seeds: readonly RigPeer[]): Promise<void> {
  await stopSeeds(t, rig, seeds);
  t.deepEqual(await rig.stop(), [], "tracker transcript");
}

test.serial(
  "kill -9 at about half, restart in the same folder: only the missing half (plus at most a window) is fetched again",
  async (t) => {
    const file = { name: "resume 64.bin", size: 64 * MiB };
    const { rig, seed, dir, first, total } = await seedAndDownloader(t, file);
    const atKill = await killAt(rig, first, file, 0.5);
    t.true(atKill < total, `precondition: killed before the end (${atKill} of ${total} chunks ACQUIRED)`);
    t.deepEqual(await readdir(path.join(dir, "Shared")), [], "nothing partial in Shared");
    // (kill -9 may also leave a torn record write, *.tmp: the next start removes it.)
    const staged = (await stagingOf(dir)).filter((n) => !n.endsWith(".tmp"));
    t.deepEqual(
      staged.map((n) => n.replace(/^[0-9a-f]{32}\./, "KEY.")),
      ["KEY.part", "KEY.rec", "lock"],
      "a partial, its record, and the dead peer's lock",
    );

    const again = await rig.peer("dl again", dir, 0, ["--stats", "stats.json"]);
    const stats = await finishRestart(t, rig, again, file, contentOf(file));
    t.log(
      `ACQUIRED at the kill: ${atKill}; kept: ${stats.resumed.chunks}; received after the restart: ${stats.chunksReceived}`,
    );
    t.true(stats.resumed.chunks >= atKill, "every chunk the tracker printed as ACQUIRED before the kill was kept");
    t.true(
      stats.chunksReceived <= total - atKill + WINDOW,
      `received ${stats.chunksReceived} chunks after the restart; missing at the kill: ${total - atKill}`,
    );
    t.is(stats.chunksReceived, total - stats.resumed.chunks, "kept chunks are never fetched again");
    t.is(stats.resumed.failed, 0);
    t.regex(again.proc.stderr().toString(), /resuming "resume 64\.bin": \d+ of 1024 pieces kept from an earlier run\n/);
    await stopAll(t, rig, [seed]);
    t.deepEqual(rig.received(first.id), []);
    t.deepEqual(rig.received(again.id), [file.name]);
  },
);

test.serial(
  "a kept piece corrupted on disk before the restart is detected, and only that piece is fetched again",
  async (t) => {
    const file = { name: "corrupt me.bin", size: 32 * MiB };
    const { rig, seed, dir, first, total } = await seedAndDownloader(t, file);
    await killAt(rig, first, file, 0.25);

    const staged = await stagingOf(dir);
    const recordName = staged.find((n) => n.endsWith(".rec")) ?? "";
    const decoded = decodeStagingRecord(await readFile(path.join(dir, STAGING, recordName)));
    if (!decoded.ok) throw new Error(`the record is unreadable: ${decoded.reason}`);
    const recorded = decoded.record.verified;
    const runs = recorded.runs();
    const victim = runs[Math.floor(runs.length / 2)]?.[0];
    if (victim === undefined) throw new Error(`no verified piece in the record (${recorded.count})`);
    const partPath = path.join(dir, STAGING, recordName.replace(/\.rec$/, ".part"));
    const part = await readFile(partPath);
    const at = victim * CHUNKS_PER_PIECE * CHUNK_SIZE + 12_345;
    part[at] = (part[at] ?? 0) ^ 0x01;
    await writeFile(partPath, part);

    const again = await rig.peer("dl again", dir, 0, ["--stats", "stats.json"]);
    const stats = await finishRestart(t, rig, again, file, contentOf(file));
    t.log(`recorded ${recorded.count} pieces, corrupted piece ${victim}; resumed ${JSON.stringify(stats.resumed)}`);
    t.is(stats.resumed.failed, 1, "the corrupted piece failed its check");
    t.is(stats.resumed.pieces, recorded.count - 1, "every other recorded piece was kept");
    t.is(stats.chunksReceived, total - stats.resumed.chunks, "only what was not kept was fetched");
    t.regex(again.proc.stderr().toString(), /1 kept piece failed its check and is fetched again/);
    await stopAll(t, rig, [seed]);
  },
);

test.serial(
  "the seeder's file replaced by another version: the partial is discarded, the new one fetched whole",
  async (t) => {
    const rig = await RestartRig.start(t, 90_000);
    const v1 = { name: "report.bin", size: 32 * MiB, seed: "version 1" };
    const v2 = { name: "report.bin", size: 32 * MiB, seed: "version 2" };
    const total = chunkCount(v1.size);
    const seedDir = await rig.folder("seed", [v1]);
    const seed = await rig.peer("seed", seedDir, SEED_ALIVE);
    const dir = await rig.folder("dl", []);
    await killAt(rig, await rig.peer("dl", dir, 0), v1, 0.25);
    await stopSeeds(t, rig, [seed]);
    await writeFile(path.join(seedDir, "Shared", v2.name), contentOf(v2));
    const seed2 = await rig.peer("seed v2", seedDir, SEED_ALIVE);

    const again = await rig.peer("dl again", dir, 0, ["--stats", "stats.json"]);
    const stats = await finishRestart(t, rig, again, v2, contentOf(v2));
    t.deepEqual(stats.resumed, { files: 0, pieces: 0, chunks: 0, checked: 0, failed: 0 }, "nothing of version 1 kept");
    t.is(stats.chunksReceived, total, "version 2 fetched whole");
    t.notRegex(again.proc.stderr().toString(), /resuming/);
    await stopAll(t, rig, [seed2]);
  },
);

for (const [signal, status] of [
  ["SIGINT", 130],
  ["SIGTERM", 143],
] as const) {
  test.serial(`${signal} keeps the partial download (one stderr line), and the restart takes it up`, async (t) => {
    const file = { name: `interrupted ${signal}.bin`, size: 32 * MiB };
    const { rig, seed, dir, first, total } = await seedAndDownloader(t, file);
    await rig.waitFor("a quarter of the file ACQUIRED", () => rig.acquired(first.id, file.name) >= total / 4, [
      first.proc,
    ]);
    first.proc.signal(signal);
    const exit = await rig.exitOf(first);
    t.is(exit.code, status, `exit status after ${signal}\n${rig.dump()}`);
    t.is(first.proc.stdout().length, 0, "no SHUTDOWN block");
    const lines = first.proc.stderr().toString().trimEnd().split("\n");
    t.is(
      lines[lines.length - 1],
      `udpswarm peer: interrupted by ${signal}; 1 partial download kept in .udpswarm-staging for the next start: ${JSON.stringify(file.name)}`,
    );
    await rig.waitFor("the tracker to see it go", () => rig.received(first.id) !== undefined);
    const atSignal = rig.acquired(first.id, file.name);
    t.true(atSignal < total, "precondition: interrupted before the end");
    t.deepEqual(
      (await stagingOf(dir)).map((n) => n.replace(/^[0-9a-f]{32}\./, "KEY.")),
      ["KEY.part", "KEY.rec"],
      "the partial and its record are kept; the lock is released",
    );
    t.deepEqual(await readdir(path.join(dir, "Shared")), []);

    const again = await rig.peer("dl again", dir, 0, ["--stats", "stats.json"]);
    const stats = await finishRestart(t, rig, again, file, contentOf(file));
    t.true(stats.resumed.chunks >= atSignal, `kept ${stats.resumed.chunks}, ACQUIRED before ${signal}: ${atSignal}`);
    t.is(stats.chunksReceived, total - stats.resumed.chunks);
    await stopAll(t, rig, [seed]);
  });
}

test.serial("a second peer in the same folder is refused (exit 7, one line) and the first goes on", async (t) => {
  const rig = await RestartRig.start(t, 60_000);
  const file = { name: "mine.txt", size: 5000 };
  const dir = await rig.folder("seed", [file]);
  const seed = await rig.peer("seed", dir, SEED_ALIVE);
  const lock = await readFile(path.join(dir, STAGING, "lock"), "utf8");
  const second = await runToExit("second", "sh", [PEER_SH, "127.0.0.1", String(rig.port), "0"], { cwd: dir });
  t.is(second.exit.code, 7, second.stderr.toString());
  t.is(second.stdout.length, 0);
  const lines = second.stderr.toString().trimEnd().split("\n");
  t.is(lines.length, 1, JSON.stringify(lines));
  t.regex(
    lines[0] ?? "",
    new RegExp(
      `^udpswarm peer: another peer \\(pid ${seed.proc.child.pid}\\) is already using this folder \\(lock .*\\)`,
    ),
  );
  t.is(await readFile(path.join(dir, STAGING, "lock"), "utf8"), lock, "the first peer's lock is untouched");
  await stopSeeds(t, rig, [seed]);

  // The lock of a process that is gone (kill -9) does not keep a new peer out.
  await mkdir(path.join(dir, STAGING));
  await writeFile(path.join(dir, STAGING, "lock"), "4194303\n1\n");
  const after = await runToExit("after", "sh", [PEER_SH, "127.0.0.1", String(rig.port), "0", "--quiet"], { cwd: dir });
  t.is(after.exit.code, 0, after.stderr.toString());
  t.regex(after.stdout.toString(), /^PEER \d+ SHUTDOWN: HAS 1\n\d+ {4}mine\.txt\n$/);
  t.deepEqual(await stagingOf(dir), []);
  t.deepEqual(await rig.stop(), []);
});
