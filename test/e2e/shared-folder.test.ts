/**
 * What a peer makes of the entries of its ./Shared that it cannot offer: an unreadable
 * file, a folder, a symbolic link, a named pipe. Each is skipped with one stderr line and
 * the readable files are still offered and fetched by others (an unreadable file used to
 * stop the peer with exit 5, sharing nothing).
 *
 * As root, chmod 000 does not stop reads, so the peer then runs as user nobody through
 * setpriv (util-linux); the test first checks that the file really is unreadable for the
 * peer, and is skipped with the reason when it cannot arrange that.
 */
import { execFileSync } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { chmod, mkdir, readFile, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import test from "ava";
import { makeContent, PEER_SH, runToExit, Swarm } from "../helpers/swarm.js";

const NOBODY = 65534;
const isRoot = typeof process.getuid === "function" && process.getuid() === 0;

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
    if (dir === "") continue;
    try {
      accessSync(path.join(dir, name), constants.X_OK);
      return path.join(dir, name);
    } catch {
      // not here
    }
  }
  return undefined;
}

const SETPRIV = isRoot ? onPath("setpriv") : undefined;
const MKFIFO = onPath("mkfifo");
const missing = isRoot && SETPRIV === undefined ? "running as root without setpriv to drop privileges" : undefined;
if (missing !== undefined) console.error(`shared-folder e2e: SKIPPED: ${missing} (chmod 000 cannot deny root a read)`);
const deniedTest = missing === undefined ? test.serial : test.serial.skip;

/** The command that runs `argv` as a user for whom chmod 000 denies reads. */
function unprivileged(argv: readonly string[]): [string, string[]] {
  if (SETPRIV === undefined) return [argv[0] ?? "", argv.slice(1)];
  return [SETPRIV, [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups", ...argv]];
}

deniedTest("an unreadable file, a folder, a symlink and a FIFO in Shared are skipped, one line each", async (t) => {
  const swarm = await Swarm.start(t);
  const a = path.join(swarm.dir, "peer-a");
  const b = path.join(swarm.dir, "peer-b");
  const ok = makeContent("ok", 70_000);
  await mkdir(path.join(a, "Shared"), { recursive: true });
  await mkdir(path.join(b, "Shared"), { recursive: true });
  await writeFile(path.join(a, "Shared", "ok.bin"), ok);
  await writeFile(path.join(a, "Shared", "secret.txt"), "not for you\n");
  await chmod(path.join(a, "Shared", "secret.txt"), 0o000);
  await mkdir(path.join(a, "Shared", "a folder"));
  await symlink("ok.bin", path.join(a, "Shared", "link.bin"));
  await writeFile(path.join(a, "Shared", ".hidden"), "hidden files are skipped without a word\n");
  const expected = [
    'udpswarm peer: skipping "a folder": a folder (only regular files are shared)',
    'udpswarm peer: skipping "link.bin": a symbolic link (only regular files are shared)',
  ];
  if (MKFIFO !== undefined) {
    execFileSync(MKFIFO, [path.join(a, "Shared", "pipe")]);
    expected.push('udpswarm peer: skipping "pipe": a named pipe (FIFO) (only regular files are shared)');
  } else t.log("no mkfifo: the FIFO case is not exercised");
  expected.push('udpswarm peer: skipping "secret.txt": cannot read it (permission denied)');
  if (isRoot) {
    // The unprivileged peer must reach its folder and write its staging folder there.
    await chmod(swarm.dir, 0o755);
    await chmod(a, 0o777);
    await chmod(path.join(a, "Shared"), 0o777);
  }
  // The precondition, checked rather than assumed: the peer's user cannot read the file.
  const [probe, probeArgs] = unprivileged(["sh", "-c", 'cat "$1" > /dev/null 2>&1', "probe", "Shared/secret.txt"]);
  const check = await runToExit("probe", probe, probeArgs, { cwd: a });
  if (check.exit.code === 0) {
    t.fail("the test cannot make secret.txt unreadable for the peer: the case is not exercised");
    return;
  }

  const gate = await swarm.gate(2);
  const [command, args] = unprivileged(["sh", PEER_SH, "127.0.0.1", String(gate.port), "0"]);
  const [runA, runB] = await Promise.all([
    runToExit("peer a", command, args, { cwd: a, timeoutMs: 30_000 }),
    runToExit("peer b", "sh", [PEER_SH, "127.0.0.1", String(gate.port), "0"], { cwd: b, timeoutMs: 30_000 }),
  ]);
  await swarm.waitFor("both DISCONNECT blocks", () => swarm.hasDisconnected(1) && swarm.hasDisconnected(2));
  t.deepEqual(await swarm.stopTracker(), []);

  t.is(runA.exit.code, 0, runA.stderr.toString());
  t.deepEqual(runA.stderr.toString("utf8").split("\n").slice(0, -1), expected);
  t.is(runB.exit.code, 0, runB.stderr.toString());
  t.is(runB.stderr.toString("utf8"), "");
  t.true((await readFile(path.join(b, "Shared", "ok.bin"))).equals(ok), "the readable file was shared");
  const stdout = swarm.tracker.stdout().toString("utf8");
  t.regex(stdout, /^PEER \d CONNECT: OFFERS 1\n\d {4}ok\.bin 137\n/m, "only ok.bin offered");
  t.notRegex(stdout, /secret|link\.bin|a folder|pipe|hidden/);
});
