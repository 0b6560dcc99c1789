/**
 * Live folders (SPEC §9) across restarts: what a sync peer remembers of its folder, and
 * its partial downloads (SPEC §12). Real tracker and `peer.sh --sync` processes; every
 * wait is on a condition, bounded.
 */
import { rm, writeFile } from "node:fs/promises";
import path from "node:path";
import test from "ava";
import { makeContent } from "../helpers/swarm.js";
import { allHave, folderState, SyncSwarm, sha256Hex } from "../helpers/sync-swarm.js";

const NAME = "doc.bin";

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
