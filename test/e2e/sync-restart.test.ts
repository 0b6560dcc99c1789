/**
 * Live folders (SPEC §9) across restarts: what a sync peer remembers of its folder, and
 * its partial downloads (SPEC §12). Real tracker and `peer.sh --sync` processes; every
 * wait is on a condition, bounded.
 */
import { readdir, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import test from "ava";
import { makeContent } from "../helpers/swarm.js";
import { allHave, folderState, SyncSwarm, sha256Hex } from "../helpers/sync-swarm.js";

const NAME = "doc.bin";
/** Chunks a restarted peer may fetch beyond what was missing (requests in flight at the kill; as test/e2e/resume). */
const WINDOW = 3072;

test("sync restart: a peer that was in step keeps no conflict copy of its own old file, even past the ancestry bound", async (t) => {
  const s = await SyncSwarm.start(t);
  const a = await s.addPeer("a");
  let b = await s.addPeer("b");
  await s.trackerLine(/^PEER \d+ CONNECT: OFFERS 0$/, 2);
  const v1 = makeContent("restart-v1", 50_000);
  await writeFile(path.join(a.shared, NAME), v1);
  await s.waitFor("v1 on both", () => allHave(s.peers, NAME, sha256Hex(v1)));
  await s.stop(b);
  // 17 edits while b is away: the last one's ancestry (16 hashes) no longer names v1.
  let last = v1;
  for (let i = 2; i <= 18; i++) {
    last = makeContent(`restart-v${i}`, 50_000);
    const updates = s.trackerLines.filter((l) => / UPDATE: /.test(l)).length;
    await writeFile(path.join(a.shared, NAME), last);
    await s.trackerLine(/^PEER \d+ UPDATE: doc\.bin /, updates + 1);
  }
  b = await s.restart(b);
  await s.waitFor("the last version on b", () => allHave(s.peers, NAME, sha256Hex(last)));
  for (const p of s.peers) await s.stop(p);
  t.deepEqual([...folderState(b.shared).keys()], [NAME], "no conflict copy on b");
  t.deepEqual([...folderState(a.shared).keys()], [NAME], "no conflict copy on a");
});

test("sync delete: the peer withdraws the file (the others keep it), and does not fetch it back after a restart", async (t) => {
  const s = await SyncSwarm.start(t, { http: true });
  let a = await s.addPeer("a");
  const b = await s.addPeer("b");
  await s.trackerLine(/^PEER \d+ CONNECT: OFFERS 0$/, 2);
  const x = makeContent("delete-x", 3000);
  await writeFile(path.join(a.shared, "x.txt"), x);
  await s.waitFor("x on both", () => allHave(s.peers, "x.txt", sha256Hex(x)));
  await s.waitForTracker("x held whole by both", (files) =>
    files.some((f) => f.name === "x.txt" && f.completeHolders === 2),
  );
  await rm(path.join(a.shared, "x.txt"));
  await s.waitForTracker("a no longer a holder of x", (files) =>
    files.some((f) => f.name === "x.txt" && f.completeHolders === 1),
  );
  t.true(folderState(b.shared).has("x.txt"), "deletions are not propagated");
  // Restarted, a must not fetch x back from b; a file created on b meanwhile is the sync point.
  await s.stop(a);
  const y = makeContent("delete-y", 200_000);
  await writeFile(path.join(b.shared, "y.bin"), y);
  await s.trackerLine(/^PEER \d+ UPDATE: y\.bin /);
  a = await s.restart(a);
  await s.waitFor("y on a", () => allHave(s.peers, "y.bin", sha256Hex(y)));
  t.false(folderState(a.shared).has("x.txt"), "x not fetched back");
  t.false(
    s.trackerLines.some((l) => /^PEER 3 ACQUIRED: .* x\.txt$/.test(l)),
    "not even in staging",
  );
  // A newer version of x is fetched: it is news, not the deleted file.
  const x2 = makeContent("delete-x2", 3000);
  await writeFile(path.join(b.shared, "x.txt"), x2);
  await s.waitFor("the newer x on a", () => allHave(s.peers, "x.txt", sha256Hex(x2)));
  for (const p of s.peers) await s.stop(p);
});

/** Chunks acquired by peer `id` of `name`, from the tracker's lines. */
function acquiredBy(s: SyncSwarm, id: number, name: string): number {
  const re = new RegExp(`^PEER ${id} ACQUIRED: CHUNK \\d+/\\d+ ${name.replace(".", "\\.")}$`);
  return s.trackerLines.filter((l) => re.test(l)).length;
}

/** Starts a (with `files`) then b (empty), so that they are peers 1 and 2. */
async function seedAndFetcher(s: SyncSwarm, files: Record<string, Buffer>) {
  const a = await s.addPeer("a", files);
  await s.trackerLine(/^PEER 1 CONNECT: /);
  const b = await s.addPeer("b");
  await s.trackerLine(/^PEER 2 CONNECT: /);
  return { a, b };
}

test("sync resume: a sync peer SIGKILLed mid-transfer keeps its verified pieces; restarted, it fetches only the rest", async (t) => {
  const s = await SyncSwarm.start(t);
  const big = makeContent("resume-big", 64 * 1024 * 1024);
  const total = big.length / 512;
  const { b } = await seedAndFetcher(s, { [NAME]: big });
  await s.waitFor("half of the file acquired by b", () => acquiredBy(s, 2, NAME) >= total / 2, 60_000);
  b.proc.killHard();
  await b.proc.exited;
  const atKill = acquiredBy(s, 2, NAME);
  t.true(atKill < total, `precondition: killed before the end (${atKill} of ${total})`);
  t.deepEqual([...folderState(b.shared).keys()], [], "nothing partial in Shared");
  const again = await s.restart(b);
  await s.waitFor("the whole file on b", () => allHave(s.peers, NAME, sha256Hex(big)), 60_000);
  await s.stop(again);
  const stats = s.stats(again) as unknown as { chunksReceived: number; resumed: { chunks: number; failed: number } };
  t.log(
    `ACQUIRED at the kill: ${atKill}; kept: ${stats.resumed.chunks}; received after the restart: ${stats.chunksReceived}`,
  );
  t.true(stats.resumed.chunks >= atKill, "every chunk printed as ACQUIRED before the kill was kept");
  t.true(stats.chunksReceived <= total - atKill + WINDOW, `received ${stats.chunksReceived} after the restart`);
  t.is(stats.resumed.failed, 0);
  t.regex(again.proc.stderr().toString(), /resuming "doc\.bin": \d+ of 1024 pieces kept from an earlier run\n/);
  for (const p of s.peers.filter((p) => p !== again)) await s.stop(p);
});

test("sync resume: a newer version while the peer was down discards its stale partial; the new version arrives whole", async (t) => {
  const s = await SyncSwarm.start(t);
  const v1 = makeContent("stale-v1", 24 * 1024 * 1024);
  const total = v1.length / 512;
  const { a, b } = await seedAndFetcher(s, { [NAME]: v1 });
  await s.waitFor("part of v1 acquired by b", () => acquiredBy(s, 2, NAME) >= total / 4, 60_000);
  b.proc.killHard();
  await b.proc.exited;
  t.true(acquiredBy(s, 2, NAME) < total, "precondition: killed before the end");
  const v2 = makeContent("stale-v2", 24 * 1024 * 1024);
  await writeFile(path.join(a.shared, NAME), v2);
  await s.trackerLine(/^PEER 1 UPDATE: doc\.bin /);
  const again = await s.restart(b);
  await s.waitFor("v2 on b", () => allHave(s.peers, NAME, sha256Hex(v2)), 60_000);
  for (const p of s.peers) await s.stop(p);
  const staging = (await readdir(path.join(again.dir, ".udpswarm-staging"))).filter((n) => /\.(part|rec)$/.test(n));
  t.deepEqual(staging, [], "no partial left in staging");
});
