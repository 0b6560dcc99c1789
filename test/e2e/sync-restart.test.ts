/**
 * Live folders (SPEC §9) across restarts: what a sync peer remembers of its folder, and
 * its partial downloads (SPEC §12). Real tracker and `peer.sh --sync` processes; every
 * wait is on a condition, bounded.
 */
import { writeFile } from "node:fs/promises";
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
