/**
 * SEVERAL TRACKERS (SPEC §11) for sync peers: two sync peers given a trackers file lose
 * their tracker (SIGKILL) while a file is on its way; both move to the next tracker, the
 * swarm forms again there, and the copy ends byte-identical at the same mtime. Nothing new
 * on stdout: a sync peer prints only its SHUTDOWN block, at SIGTERM.
 */
import { mkdir, readFile, stat, utimes, writeFile } from "node:fs/promises";
import path from "node:path";
import test from "ava";
import { LineProc } from "../helpers/accounts.js";
import { acquireSwarmSlot, makeContent, PEER_SH, TRACKER_SH, tempDir } from "../helpers/swarm.js";

/** Resolves once `check` holds, looked at every 50 ms (a file on disk says nothing on a pipe); bounded. */
async function until(what: string, check: () => Promise<boolean>, limitMs = 60_000): Promise<void> {
  for (const deadline = Date.now() + limitMs; !(await check()); ) {
    if (Date.now() > deadline) throw new Error(`never came: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function tracker(root: string, label: string): Promise<{ proc: LineProc; port: number }> {
  const dir = path.join(root, label);
  await mkdir(dir, { recursive: true });
  const proc = new LineProc(label, "sh", [TRACKER_SH], dir);
  await proc.waitFor(/listening on port/u, "err");
  return { proc, port: Number(await readFile(path.join(dir, "port.txt"), "utf8")) };
}

async function syncPeer(root: string, label: string, trackers: string, files: Record<string, Buffer> = {}) {
  const dir = path.join(root, label);
  await mkdir(path.join(dir, "Shared"), { recursive: true });
  for (const [name, data] of Object.entries(files)) await writeFile(path.join(dir, "Shared", name), data);
  return new LineProc(label, "sh", [PEER_SH, "--trackers", trackers, "--sync"], dir);
}

test.serial(
  "sync peers with a trackers file: the tracker SIGKILLed mid-transfer, both move on, the copy ends identical",
  async (t) => {
    const release = await acquireSwarmSlot();
    t.teardown(release);
    const root = await tempDir(t, "udpswarm-syncmove-");
    const one = await tracker(root, "tracker1");
    const two = await tracker(root, "tracker2");
    t.teardown(() => {
      for (const p of [one.proc, two.proc]) p.kill();
    });
    const file = path.join(root, "trackers");
    await writeFile(file, `127.0.0.1 ${one.port}\n127.0.0.1 ${two.port}\n`);

    const content = makeContent("sync-failover", 40 * 1024 * 1024 + 3);
    const a = await syncPeer(root, "a", file, { "big.bin": content });
    await utimes(path.join(root, "a", "Shared", "big.bin"), 1_700_000_000, 1_700_000_000);
    const b = await syncPeer(root, "b", file);
    t.teardown(() => {
      for (const p of [a, b]) p.kill();
    });

    // b fetches from a through tracker 1 (the first tier): its first chunks are reported there.
    await one.proc.waitFor(/^PEER \d+ ACQUIRED: CHUNK \d+\/\d+ big\.bin$/u);
    const killedAt = Date.now();
    one.proc.kill();
    const copy = path.join(root, "b", "Shared", "big.bin");
    t.false(
      await stat(copy).then(
        () => true,
        () => false,
      ),
      "the copy was not complete when the tracker died",
    );

    for (const p of [a, b]) {
      const lost = await p.waitFor(/^udpswarm peer: lost the tracker 127\.0\.0\.1:\d+ /u, "err");
      await p.waitFor(
        new RegExp(`^udpswarm peer: moved to the tracker 127\\.0\\.0\\.1:${two.port} in \\d+ ms`, "u"),
        "err",
        lost,
      );
    }
    const movedMs = Date.now() - killedAt;
    // The swarm formed again on tracker 2: both peers connect there, and b's chunks are reported there.
    await two.proc.waitFor(/^PEER \d+ ACQUIRED: CHUNK \d+\/\d+ big\.bin$/u);
    await until(
      `b's copy of big.bin\n${b.describe()}`,
      async () => (await stat(copy).catch(() => undefined))?.size === content.length,
    );
    t.true((await readFile(copy)).equals(content), "byte-identical");
    t.is(Math.round((await stat(copy)).mtimeMs), 1_700_000_000_000, "the version's mtime");
    t.deepEqual(
      [...a.out, ...b.out].filter((l) => l !== ""),
      [],
      "nothing on stdout before SIGTERM",
    );
    b.child.kill("SIGTERM");
    t.is(await b.exited, 0, b.describe());
    t.regex(b.out.join("\n"), /^PEER (\d+) SHUTDOWN: HAS 1\n\1 {4}big\.bin\n?$/u);
    t.log(`tracker killed -> both sync peers moved: ${movedMs} ms`);
  },
);
