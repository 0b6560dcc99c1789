import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import test, { type ExecutionContext } from "ava";
import { makeContent, PEER_SH, Proc, runToExit, TRACKER_SH, tempDir } from "../helpers/swarm.js";

type Tracker = { proc: Proc; port: number; stdoutLine: (re: RegExp) => Promise<void> };

/** Starts a tracker in `dir` and resolves once it announced its port. */
async function startTracker(t: ExecutionContext, dir: string): Promise<Tracker> {
  await mkdir(dir, { recursive: true });
  const seen: string[] = [];
  const waiters: Array<{ re: RegExp; resolve: () => void }> = [];
  let announce: (port: number) => void = () => {};
  const announced = new Promise<number>((resolve) => {
    announce = resolve;
  });
  const proc = new Proc(
    "tracker",
    "sh",
    [TRACKER_SH],
    { cwd: dir },
    {
      onStdoutLine: (line) => {
        seen.push(line);
        for (const w of waiters.filter((w) => w.re.test(line))) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve();
        }
      },
      onStderrLine: (line) => {
        const m = /listening on port (\d+)/.exec(line);
        if (m) announce(Number(m[1]));
      },
    },
  );
  t.teardown(() => proc.killHard());
  const port = await Promise.race([
    announced,
    proc.exited.then((info) => {
      throw new Error(`tracker exited early: ${JSON.stringify(info)}\n${proc.describe()}`);
    }),
  ]);
  const stdoutLine = (re: RegExp) =>
    new Promise<void>((resolve) => {
      if (seen.some((l) => re.test(l))) resolve();
      else waiters.push({ re, resolve });
    });
  return { proc, port, stdoutLine };
}

async function stopTracker(t: ExecutionContext, tracker: Proc): Promise<void> {
  tracker.signal("SIGTERM");
  const info = await tracker.exited;
  t.is(info.code, 0, "the tracker exits 0 on SIGTERM");
}

/** Every path below `dir` (relative), directories with a trailing slash. */
async function tree(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    const rel = path.relative(dir, path.join(entry.parentPath, entry.name));
    out.push(entry.isDirectory() ? `${rel}/` : rel);
  }
  return out.sort();
}

function canMountTmpfs(): boolean {
  if (process.getuid?.() !== 0) return false;
  try {
    execFileSync("mount", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

// Needs root to mount a small tmpfs: skipped (not passed) without it.
(canMountTmpfs() ? test.serial : test.serial.skip)(
  "a full disk: the downloader stops with one clear line, exit 5, nothing half-written in Shared; once there is room, a restart resumes",
  async (t) => {
    const root = await tempDir(t);
    const { proc: tracker, port, stdoutLine } = await startTracker(t, path.join(root, "tracker"));
    const seedDir = path.join(root, "seed");
    await mkdir(path.join(seedDir, "Shared"), { recursive: true });
    const big = makeContent("full-disk", 3 * 1024 * 1024);
    await writeFile(path.join(seedDir, "Shared", "big.bin"), big);
    await writeFile(path.join(seedDir, "Shared", "small.txt"), "fits\n");
    // The downloader's whole working directory is a 1 MiB file system: Shared and staging.
    const small = path.join(root, "small");
    await mkdir(small);
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", small]);
    t.teardown(() => {
      try {
        execFileSync("umount", ["-l", small]);
      } catch {
        // already unmounted
      }
    });
    // It stays (MIN_ALIVE is never reached) until the test stops it: the restart needs it.
    const seed = new Proc("seed", "sh", [PEER_SH, "127.0.0.1", String(port), "600"], { cwd: seedDir });
    t.teardown(() => seed.killHard());
    await stdoutLine(/^PEER 1 CONNECT: OFFERS 2$/);
    const result = await runToExit("downloader", "sh", [PEER_SH, "127.0.0.1", String(port), "0"], {
      cwd: small,
      timeoutMs: 30_000,
    });
    t.is(
      result.exit.code,
      5,
      `I/O failure exit status\n${result.stderr.toString()}\ntracker: ${tracker.stdout().toString()}\nseed: ${seed.stderr().toString()}`,
    );
    t.is(result.stdout.length, 0, "no SHUTDOWN block after a failure");
    const lines = result.stderr.toString().trimEnd().split("\n");
    t.is(lines.length, 1, `one stderr line: ${JSON.stringify(lines)}`);
    t.regex(lines[0] ?? "", /^udpswarm peer: cannot write .*(ENOSPC|no space)/i);
    // Only whole, verified files may be in Shared; the partial is kept in staging (SPEC §12).
    const left = await tree(small);
    const staged = /^\.udpswarm-staging\/([0-9a-f]{32}\.(part|rec))?$/;
    for (const entry of left) {
      t.true(entry === "Shared/" || entry === "Shared/small.txt" || staged.test(entry), `unexpected ${entry}`);
    }
    t.true(
      left.some((e) => e.endsWith(".part")),
      `the partial download is kept: ${JSON.stringify(left)}`,
    );
    const smallDone = left.includes("Shared/small.txt");
    if (smallDone) t.is(await readFile(path.join(small, "Shared", "small.txt"), "utf8"), "fits\n");

    // Room again: the restart takes up what was written and fetches the rest.
    execFileSync("mount", ["-o", "remount,size=8m", small]);
    const again = await runToExit(
      "downloader again",
      "sh",
      [PEER_SH, "127.0.0.1", String(port), "0", "--stats", "stats.json"],
      { cwd: small, timeoutMs: 30_000 },
    );
    t.is(again.exit.code, 0, again.stderr.toString());
    t.is(again.stdout.toString(), "PEER 3 SHUTDOWN: HAS 2\n3    big.bin\n3    small.txt\n");
    t.true((await readFile(path.join(small, "Shared", "big.bin"))).equals(big), "big.bin byte-identical");
    t.deepEqual(await tree(small), ["Shared/", "Shared/big.bin", "Shared/small.txt", "stats.json"]);
    const stats = JSON.parse(await readFile(path.join(small, "stats.json"), "utf8"));
    t.log(`resumed ${JSON.stringify(stats.resumed)}; received ${stats.chunksReceived}`);
    t.true(stats.resumed.pieces > 0, "pieces written before the disk filled up were kept");
    t.is(stats.chunksReceived, 6144 - stats.resumed.chunks + (smallDone ? 0 : 1), "only the rest was fetched");
    seed.signal("SIGTERM");
    t.is((await seed.exited).code, 143, "the seeder served both runs");
    await stopTracker(t, tracker);
  },
);

test.serial("Shared is not a folder: one clear line, exit 5, nothing created", async (t) => {
  const root = await tempDir(t);
  const { proc: tracker, port } = await startTracker(t, path.join(root, "tracker"));
  const dir = path.join(root, "peer");
  await mkdir(dir);
  await writeFile(path.join(dir, "Shared"), "a file, not a folder\n");
  const result = await runToExit("peer", "sh", [PEER_SH, "127.0.0.1", String(port), "0"], { cwd: dir });
  t.is(result.exit.code, 5);
  t.is(result.stdout.length, 0);
  const lines = result.stderr.toString().trimEnd().split("\n");
  t.is(lines.length, 1, JSON.stringify(lines));
  t.regex(lines[0] ?? "", /^udpswarm peer: cannot /);
  t.deepEqual(await tree(dir), ["Shared"]);
  await stopTracker(t, tracker);
});

test.serial("a restart in the same folder removes what a killed run left in staging", async (t) => {
  const root = await tempDir(t);
  const { proc: tracker, port } = await startTracker(t, path.join(root, "tracker"));
  const dir = path.join(root, "peer");
  await mkdir(path.join(dir, "Shared"), { recursive: true });
  await writeFile(path.join(dir, "Shared", "mine.txt"), "mine\n");
  // What a kill -9 leaves: a staging folder named after a process that no longer exists.
  const stale = path.join(dir, ".udpswarm-staging", "4194303");
  await mkdir(stale, { recursive: true });
  await writeFile(path.join(stale, "1.part"), Buffer.alloc(4096, 1));
  t.true(existsSync(stale));
  const result = await runToExit("peer", "sh", [PEER_SH, "127.0.0.1", String(port), "0", "--quiet"], { cwd: dir });
  t.is(result.exit.code, 0, result.stderr.toString());
  t.is(result.stdout.toString(), "PEER 1 SHUTDOWN: HAS 1\n1    mine.txt\n");
  t.deepEqual(await tree(dir), ["Shared/", "Shared/mine.txt"]);
  await stopTracker(t, tracker);
});
