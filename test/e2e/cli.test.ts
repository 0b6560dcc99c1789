/**
 * End-to-end command-line behaviour: bad arguments, an unreachable tracker, and the
 * tracker's own start and stop. Each run is bounded.
 */
import { mkdir } from "node:fs/promises";
import net from "node:net";
import path from "node:path";
import test from "ava";
import { PEER_SH, runToExit, Swarm, tempDir } from "../helpers/swarm.js";

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
