/**
 * End-to-end command-line behaviour: bad arguments, an unreachable tracker, and the
 * tracker's own start and stop. Each run is bounded.
 */
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import net from "node:net";
import path from "node:path";
import test from "ava";
import { PEER_SH, runToExit, Swarm, TRACKER_SH, tempDir } from "../helpers/swarm.js";

/** A TCP port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

function assertOneLineFailure(
  t: import("ava").ExecutionContext,
  run: { exit: { code: number | null; signal: string | null }; stdout: Buffer; stderr: Buffer },
): void {
  const stderr = run.stderr.toString("utf8");
  t.log(`exit ${run.exit.code}; stderr: ${JSON.stringify(stderr)}`);
  t.is(run.exit.signal, null);
  t.true(run.exit.code !== null && run.exit.code !== 0, `exit code ${run.exit.code}, expected non-zero`);
  t.is(run.stdout.toString("utf8"), "", "nothing on stdout");
  t.regex(stderr, /^[^\n]*\S[^\n]*\n$/, "exactly one non-empty line on stderr");
}

const badArguments: [string, (port: number) => string[]][] = [
  ["no arguments", () => []],
  ["only the tracker address", () => ["127.0.0.1"]],
  ["no MIN_ALIVE", (port) => ["127.0.0.1", String(port)]],
  ["a non-numeric port", () => ["127.0.0.1", "abc", "0"]],
  ["a port with trailing junk", () => ["127.0.0.1", "12ab", "0"]],
  ["a port above 65535", () => ["127.0.0.1", "70000", "0"]],
  ["a negative MIN_ALIVE", (port) => ["127.0.0.1", String(port), "-1"]],
  ["a non-numeric MIN_ALIVE", (port) => ["127.0.0.1", String(port), "soon"]],
];

for (const [what, args] of badArguments) {
  test.serial(`peer.sh with ${what}: one line on stderr, non-zero exit, nothing on stdout`, async (t) => {
    // A live tracker, so that only the arguments can be at fault.
    const swarm = await Swarm.start(t, { exclusive: false, timeoutMs: 30_000 });
    const dir = await tempDir(t);
    const run = await runToExit("peer", "sh", [PEER_SH, ...args(swarm.port)], { cwd: dir });
    assertOneLineFailure(t, run);
    t.deepEqual(await swarm.stopTracker(), []);
    t.is(swarm.tracker.stdout().toString("utf8"), "", "the peer must not have connected");
  });
}

test.serial("peer.sh with an unreachable tracker: one line on stderr, non-zero exit", async (t) => {
  const dir = await tempDir(t);
  await mkdir(path.join(dir, "Shared"));
  const port = await closedPort();
  const run = await runToExit("peer", "sh", [PEER_SH, "127.0.0.1", String(port), "0"], { cwd: dir, timeoutMs: 30_000 });
  assertOneLineFailure(t, run);
});

test.serial("tracker.sh writes port.txt in its working directory and exits 0 on SIGINT and SIGTERM", async (t) => {
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    const swarm = await Swarm.start(t, { exclusive: false, timeoutMs: 30_000 });
    t.true(swarm.port > 0 && swarm.port < 65536);
    t.deepEqual(await swarm.stopTracker(signal), [], signal);
    t.is(swarm.tracker.stdout().toString("utf8"), "", "no peer, no output");
  }
});

for (const [program, script] of [
  ["peer", PEER_SH],
  ["tracker", TRACKER_SH],
] as const) {
  for (const flag of ["-h", "--help"]) {
    test(`${program}.sh ${flag}: usage on stdout, exit 0, every line at most 80 columns`, async (t) => {
      const dir = await tempDir(t);
      const run = await runToExit(program, "sh", [script, flag], { cwd: dir });
      const text = run.stdout.toString("utf8");
      t.is(run.exit.code, 0);
      t.is(run.stderr.toString("utf8"), "");
      t.true(text.startsWith(`usage: sh ${program}.sh`), text.slice(0, 80));
      for (const line of text.split("\n")) t.true([...line].length <= 80, `${[...line].length} columns: ${line}`);
      t.regex(text, /^ {2}-h, --help {2,}show this help and exit$/m);
      t.regex(text, /docs\/contract\.md/, "points at the contract inside the repository");
      // The exit statuses, each on its own line.
      const statuses = program === "peer" ? [0, 1, 2, 3, 4, 5, 6, 7, 130, 143] : [0, 1, 2, 5];
      const listed = [...text.matchAll(/^ +(\d+) {2}\S/gm)].map((m) => Number(m[1]));
      t.deepEqual(listed, statuses);
      t.false(existsSync(path.join(dir, "Shared")), "help creates nothing");
      t.false(existsSync(path.join(dir, "port.txt")), "help creates nothing");
    });
  }
}

// The build writes V8's code cache under the node flags of peer.sh's exec line; V8 refuses a
// cache made under other flags, and the peer would silently start slower.
test("peer.sh starts the bundle from the code cache the build wrote", async (t) => {
  const dir = await tempDir(t);
  const run = await runToExit("peer", "sh", [PEER_SH, "--version"], {
    cwd: dir,
    env: { ...process.env, UDPSWARM_DEBUG_CODE_CACHE: "1" },
  });
  t.is(run.exit.code, 0);
  t.is(run.stderr.toString("utf8"), "udpswarm peer: code cache accepted\n");
  t.regex(run.stdout.toString("utf8"), /^udpswarm peer \d+\.\d+\.\d+\n$/);
});

const badOptions: Array<[string, "peer" | "tracker", string[], RegExp]> = [
  [
    "--port 99999",
    "tracker",
    ["--port", "99999"],
    /^udpswarm tracker: --port must be an integer 0\.\.65535, got 99999\n$/,
  ],
  ["--port=1.5", "tracker", ["--port=1.5"], /got 1\.5\n$/],
  ["--http 70000", "tracker", ["--http", "70000"], /^udpswarm tracker: --http must be .*, got 70000\n$/],
  ["--max-file-size -1", "tracker", ["--max-file-size", "-1"], /got -1\n$/],
  ["an unknown option", "tracker", ["--bogus"], /^udpswarm tracker: unknown option --bogus \(see --help\)\n$/],
  ["--udp-port 70000", "peer", ["127.0.0.1", "1", "0", "--udp-port", "70000"], /--udp-port must be .*, got 70000\n$/],
  ["--chunks-per-request 65", "peer", ["127.0.0.1", "1", "0", "--chunks-per-request", "65"], /got 65\n$/],
  ["--max-inflight 0", "peer", ["127.0.0.1", "1", "0", "--max-inflight", "0"], /--max-inflight must be .*, got 0\n$/],
  ["--loss 2", "peer", ["127.0.0.1", "1", "0", "--loss", "2"], /--loss must be .*, got 2\n$/],
  ["--trackers without --sync", "peer", ["--trackers", "t", "0"], /--trackers is for sync peers \(--sync\); /],
  ["--trackers of no file", "peer", ["--trackers", "no/such", "--sync"], /cannot read the trackers file no\/such: /],
];

for (const [what, program, args, message] of badOptions) {
  test(`${program}.sh ${what}: exit 2, the bad value echoed in one stderr line`, async (t) => {
    const dir = await tempDir(t);
    const run = await runToExit(program, "sh", [program === "peer" ? PEER_SH : TRACKER_SH, ...args], { cwd: dir });
    assertOneLineFailure(t, run);
    t.is(run.exit.code, 2);
    t.regex(run.stderr.toString("utf8"), message);
    t.false(existsSync(path.join(dir, "port.txt")), "a refused start writes no port.txt");
    t.false(existsSync(path.join(dir, "Shared")), "a refused start creates no Shared/");
  });
}

test.serial("a successful run is quiet on stderr: one prefixed tracker line, nothing from the peers", async (t) => {
  const swarm = await Swarm.start(t, { exclusive: "half" });
  const gate = await swarm.gate(3);
  const peers = await Promise.all([
    swarm.startPeer({ label: "a", files: [{ name: "a.bin", size: 300_000 }], gate }),
    swarm.startPeer({ label: "b", files: [{ name: "b.txt", size: 10 }], gate }),
    swarm.startPeer({ label: "c", files: [], gate, extraArgs: ["--stats", "-"] }),
  ]);
  await swarm.finish();
  const tracker = swarm.tracker.stderr().toString("utf8");
  t.regex(tracker, /^udpswarm tracker: listening on port \d+\n$/, "no 'no longer available' after normal departures");
  const [a, b, c] = peers.map((p) => p.proc.stderr().toString("utf8"));
  t.is(a, "", "no counters unless asked for");
  t.is(b, "");
  t.regex(c ?? "", /^udpswarm peer: stats \{"peer":\d+,.*\}\n$/, "--stats - prints the counters on stderr");
});

test.serial("Ctrl-C on a peer with nothing to download says so (not 'partial downloads removed')", async (t) => {
  const swarm = await Swarm.start(t, { timeoutMs: 30_000, exclusive: "half" });
  const idle = await swarm.startPeer({ label: "idle", minAlive: 60 });
  await swarm.idOf(idle);
  idle.proc.signal("SIGINT");
  const exit = await swarm.exitOf(idle);
  t.is(exit.code, 130);
  t.is(idle.proc.stdout().toString("utf8"), "", "no SHUTDOWN block when interrupted");
  t.is(idle.proc.stderr().toString("utf8"), "udpswarm peer: interrupted by SIGINT; nothing was being downloaded\n");
  t.deepEqual(await swarm.stopTracker(), []);
});

test.serial("SIGTERM during a download names the partial download it keeps for the next start", async (t) => {
  const swarm = await Swarm.start(t, { timeoutMs: 60_000 });
  const gate = await swarm.gate(2);
  const big = { name: "big file.bin", size: 8 * 1024 * 1024 };
  const [seed, fetcher] = await Promise.all([
    swarm.startPeer({ label: "seed", files: [big], gate }),
    // Slowed down so that the download is surely still running when the signal lands.
    swarm.startPeer({ label: "fetcher", gate, minAlive: 60, extraArgs: ["--delay", "100", "--loss", "0.3"] }),
  ]);
  const seedId = await swarm.idOf(seed);
  await swarm.waitFor("both CONNECT blocks", () => swarm.connectedIds().length === 2);
  const id = swarm.connectedIds().find((n) => n !== seedId) ?? 0;
  await swarm.waitFor("the fetcher's first ACQUIRED line", () => swarm.acquired(id) > 0, [fetcher]);
  t.true(swarm.acquired(id) < 16384, "still downloading");
  fetcher.proc.signal("SIGTERM");
  const exit = await swarm.exitOf(fetcher);
  t.is(exit.code, 143);
  t.is(
    fetcher.proc.stderr().toString("utf8"),
    'udpswarm peer: interrupted by SIGTERM; 1 partial download kept in .udpswarm-staging for the next start: "big file.bin"\n',
  );
  t.false(existsSync(path.join(fetcher.dir, "Shared", big.name)), "nothing partial in Shared");
  await swarm.exitOf(seed);
  t.deepEqual(await swarm.stopTracker(), []);
});

test.serial(
  "--progress off a terminal: prefixed lines, and a finished file says complete, not '0 holders'",
  async (t) => {
    const swarm = await Swarm.start(t, { exclusive: "half" });
    const gate = await swarm.gate(2);
    const [, fetcher] = await Promise.all([
      swarm.startPeer({ label: "seed", files: [{ name: "one.bin", size: 200_000 }], gate }),
      swarm.startPeer({ label: "fetcher", gate, minAlive: 1.5, extraArgs: ["--progress"] }),
    ]);
    await swarm.finish();
    const lines = fetcher.proc.stderr().toString("utf8").split("\n").slice(0, -1);
    t.true(lines.length > 0, "at least one progress line (one a second, and one on leaving)");
    for (const line of lines) t.regex(line, /^udpswarm peer: progress one\.bin +\[[#.]{12}\] +\d+%/);
    t.regex(lines.at(-1) ?? "", /\[#{12}\] 100% .* took \S+ +complete$/);
    t.false(
      lines.some((l) => / 100% .*holder/.test(l)),
      "a complete file is not counted in holders",
    );
  },
);
