/**
 * Live folders (SPEC §9) end to end: a real tracker and real `peer.sh --sync` processes.
 * Every wait is on a condition (files on disk, output lines, exits), bounded.
 */
import { writeFile } from "node:fs/promises";
import path from "node:path";
import test from "ava";
import { makeContent } from "../helpers/swarm.js";
import { allHave, folderState, SyncSwarm, sha256Hex } from "../helpers/sync-swarm.js";

const NAME = "doc.bin";

test("sync: a file created on one peer appears on all; an edit replaces it on all, same bytes and mtime", async (t) => {
  const s = await SyncSwarm.start(t);
  const [a, b, c] = [await s.addPeer("a"), await s.addPeer("b"), await s.addPeer("c")];
  await s.trackerLine(/^PEER \d+ CONNECT: OFFERS 0$/, 3);
  const v1 = makeContent("sync-v1", 100_000);
  await writeFile(path.join(a.shared, NAME), v1);
  await s.waitFor("v1 on every peer", () => allHave(s.peers, NAME, sha256Hex(v1)));
  const mtime1 = folderState(a.shared).get(NAME)?.mtimeMs;
  const v2 = Buffer.from(v1);
  v2.write("edited on b", 5000);
  await writeFile(path.join(b.shared, NAME), v2);
  await s.waitFor("v2 on every peer", () => allHave(s.peers, NAME, sha256Hex(v2)));
  t.not(folderState(c.shared).get(NAME)?.mtimeMs, mtime1);
  t.is(s.trackerLines.filter((l) => /^PEER \d+ UPDATE: doc\.bin 196$/.test(l)).length, 2, s.describe());
  for (const p of s.peers) await s.stop(p);
  for (const p of s.peers) t.deepEqual([...folderState(p.shared).keys()], [NAME]);
});
