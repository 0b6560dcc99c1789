/**
 * What one tracker client may cost (issue 15, tracker side): each class of attack runs as
 * a hand-made client of this test beside a legitimate swarm of real peers, which must
 * finish exactly as without it, while the tracker stays responsive and small. Also: a
 * refused file offered again once its name is free (SPEC §8), names that print the same
 * (NFC/NFD), and a port that is not a udpswarm tracker (issue 16).
 *
 * Nothing sleeps: waits are on output lines, frames, closes and exits, each bounded. The
 * attackers' own pacing (a trickle of bytes) is the attack, not a wait.
 */
import { readFileSync } from "node:fs";
import { readdir, readFile, truncate, writeFile } from "node:fs/promises";
import { createServer as createHttpServer } from "node:http";
import net from "node:net";
import path from "node:path";
import test, { type ExecutionContext } from "ava";
import { receiptKey, receiptOf } from "../../src/wire/auth.js";
import { encodeReceipts } from "../../src/wire/receipts.js";
import { RefusalReason } from "../../src/wire/tracker-frame.js";
import { FakePeer, HandClient, linesOf, manifestOf, within } from "../helpers/hand-client.js";
import { contentOf, type FileSpec, makeContent, PEER_SH, runToExit, Swarm, tempDir } from "../helpers/swarm.js";

const KiB = 1024;
const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** The tracker's peak resident memory so far (KiB), from /proc. */
function trackerPeakKiB(swarm: Swarm): number {
  const pid = swarm.tracker.child.pid;
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
}

/** A manifest of a file of `size` bytes whose content nobody has (every piece hash the same). */
function fakeManifest(name: string, size: number) {
  const pieces = Math.ceil(Math.ceil(size / 512) / 128);
  const hash = Buffer.alloc(32, 0xab);
  return {
    name,
    size,
    chunkSize: 512,
    chunksPerPiece: 128,
    chunksPerBlock: 4,
    sha256: Buffer.alloc(32, 0xcd),
    pieceSha256: Array.from({ length: pieces }, () => hash),
  };
}

/** A legitimate swarm of `n` peers, one file each, that stays long enough for the attack. */
async function legitSwarm(
  t: ExecutionContext,
  n: number,
  minAlive: number,
  exclusive: true | "half" = true,
  timeoutMs = 90_000,
) {
  const swarm = await Swarm.start(t, { timeoutMs, exclusive });
  const files: FileSpec[] = Array.from({ length: n }, (_, i) => ({
    name: `legit ${i + 1}.bin`,
    size: (i + 1) * 200 * KiB,
  }));
  const peers = [];
  for (const [i, f] of files.entries()) peers.push(await swarm.startPeer({ label: `p${i + 1}`, files: [f], minAlive }));
  for (const p of peers) await swarm.idOf(p);
  return { swarm, peers };
}

/** The legit swarm ends as it would have without the attack (exact output, every exit 0). */
async function finishes(t: ExecutionContext, swarm: Swarm, foreign: readonly number[]): Promise<void> {
  for (const id of foreign) swarm.foreign(id);
  const result = await swarm.finish();
  swarm.logSummary(result);
  for (const p of swarm.peers) t.deepEqual(result.has(p), result.allFiles, `peer ${p.label} has every file`);
}

// ------------------------------------------------------------------ 3. one small frame, a huge claim

test.serial(
  "claims: a 20-byte Have for every chunk of a fake 8 GiB file neither stalls nor bloats the tracker",
  async (t) => {
    const { swarm } = await legitSwarm(t, 2, 3);
    const a = await FakePeer.join(swarm.port, [fakeManifest("fake 8 GiB.bin", 8 * GiB)]);
    t.teardown(() => a.close());
    const fileId = a.welcome.accepted?.[0]?.fileId ?? 0;
    t.not(fileId, 0, "the fake file is accepted (its manifest is within the limits)");
    const b = await FakePeer.join(swarm.port);
    t.teardown(() => b.close());
    const chunks = (8 * GiB) / 512;
    b.client.send({ have: { fileId, runs: [0, chunks] } });
    // A plausible report after it: once its line is out, the big one was handled before it.
    // It carries the receipt `a` (the holder) would have put in those 100 chunks sent to `b`.
    const first100 = Array.from({ length: 100 }, (_, i) => i);
    const mask = Buffer.alloc(16);
    for (const c of first100) mask[c >> 3] = (mask[c >> 3] ?? 0) | (1 << (c & 7));
    const receipt = receiptOf(receiptKey(a.secret, b.id, fileId), first100);
    b.client.send({
      have: { fileId, runs: [0, 100], receipts: encodeReceipts([{ piece: 0, holder: a.id, receipt, mask }]) },
    });
    await swarm.waitFor("the tracker to print the plausible report", () => swarm.acquired(b.id) >= 100);
    t.is(swarm.acquired(b.id), 100, "the implausible claim printed nothing");
    await b.client.leave();
    await a.client.leave();
    const peak = trackerPeakKiB(swarm);
    await finishes(t, swarm, [a.id, b.id]);
    const stderr = swarm.tracker.stderr().toString("utf8");
    t.regex(stderr, new RegExp(`peer ${b.id}: ignored report of ${chunks} chunks`));
    t.log(`tracker peak RSS ${Math.round(peak / 1024)} MiB`);
    t.true(peak < 400 * 1024, `tracker peak RSS ${peak} KiB`);
  },
);

// ------------------------------------------------------------------ 4. oversized manifests

test.serial(
  "manifests: offers near the size limit stay within the swarm's budget; later peers still join",
  async (t) => {
    const swarm = await Swarm.start(t, { timeoutMs: 120_000 });
    // Two offers of 60 GiB: 33 MB of manifest each; together more than a Welcome may carry.
    // 33 MB of manifest to build, send, check and send back: slow on a loaded machine.
    const t0 = performance.now();
    const lap = (what: string) => t.log(`${what}: ${Math.round(performance.now() - t0)} ms`);
    const a1 = await FakePeer.join(swarm.port, [fakeManifest("huge one.bin", 60 * GiB)], 60_000);
    lap("a1 welcomed");
    t.teardown(() => a1.close());
    t.is(a1.welcome.accepted?.length, 1);
    const a2 = await FakePeer.join(swarm.port, [fakeManifest("huge two.bin", 60 * GiB)], 60_000);
    t.teardown(() => a2.close());
    t.deepEqual(a2.welcome.accepted ?? [], []);
    const refusal = await a2.client.next("the refusal of the second huge offer");
    t.is(refusal.refusal?.reason, RefusalReason.REASON_LIMIT);
    t.is(refusal.refusal?.fileName, "huge two.bin");
    lap("a2 refused");
    // Legit peers join now: their Welcome carries the first manifest and must fit their frame limit.
    const files: FileSpec[] = [
      { name: "late 1.bin", size: 300 * KiB },
      { name: "late 2.bin", size: 100 * KiB },
    ];
    const peers = [];
    for (const [i, f] of files.entries())
      peers.push(await swarm.startPeer({ label: `q${i + 1}`, files: [f], minAlive: 1 }));
    for (const p of peers) await swarm.idOf(p);
    lap("legit peers joined");
    await a2.client.leave();
    await a1.client.leave();
    lap("attackers gone");
    // The attackers came first (ids 1 and 2), so the harness's whole-swarm check (ids from
    // 1) does not apply: every legit peer exits 0 with every legit file, byte for byte.
    for (const p of peers) {
      const exit = await swarm.exitOf(p);
      t.is(exit.code, 0, p.proc.describe());
      for (const f of files) t.deepEqual(await readFile(path.join(p.sharedDir, f.name)), contentOf(f));
      t.deepEqual((await readdir(p.sharedDir)).sort(), files.map((f) => f.name).sort());
    }
    t.deepEqual(await swarm.stopTracker(), []);
  },
);

// ------------------------------------------------------------------ 5. too many files from one peer

test.serial(
  "files: one client offering 1100 files gets 1024 of them accepted and the rest refused with REASON_LIMIT",
  async (t) => {
    const { swarm } = await legitSwarm(t, 2, 3, "half");
    const offers = Array.from({ length: 1100 }, (_, i) =>
      manifestOf(`many ${String(i).padStart(4, "0")}`, Buffer.from([i & 0xff])),
    );
    const a = await FakePeer.join(swarm.port, offers);
    t.teardown(() => a.close());
    t.is(a.welcome.accepted?.length, 1024);
    const refused: string[] = [];
    for (let i = 0; i < 76; i++) {
      const f = await a.client.next(`refusal ${i + 1} of 76`);
      t.is(f.refusal?.reason, RefusalReason.REASON_LIMIT);
      refused.push(f.refusal?.fileName ?? "");
    }
    t.deepEqual(
      refused,
      offers.slice(1024).map((o) => o.name),
    );
    await a.client.leave();
    await finishes(t, swarm, [a.id]);
  },
);

// ------------------------------------------------------------------ 7. connections

test.serial(
  "connections: trickled huge first frames and a flood of silent connections are cut; peers still join",
  async (t) => {
    // Not exclusive: ~5 MB/s of trickle and 500 KiB of data; its time goes to the deadlines.
    const swarm = await Swarm.start(t, { timeoutMs: 90_000, exclusive: false });
    // Eight connections, each declaring a 30 MiB first frame and sending it 64 KiB at a time.
    const trickle: net.Socket[] = [];
    const closed = new Set<net.Socket>();
    const timers: NodeJS.Timeout[] = [];
    t.teardown(() => {
      for (const timer of timers) clearInterval(timer);
      for (const s of trickle) s.destroy();
    });
    const open = (): Promise<net.Socket> =>
      new Promise((resolve, reject) => {
        const s = net.connect({ host: "127.0.0.1", port: swarm.port });
        s.once("error", reject);
        s.once("connect", () => {
          s.off("error", reject);
          s.on("error", () => {});
          s.on("close", () => closed.add(s));
          s.resume(); // read (and drop) what the tracker says, so that its close is seen
          resolve(s);
        });
      });
    for (let i = 0; i < 8; i++) {
      const s = await open();
      trickle.push(s);
      s.write(Buffer.from([0x80, 0x80, 0x80, 0x0f])); // 30 MiB
      timers.push(setInterval(() => s.writable && s.write(Buffer.alloc(64 * KiB, 1)), 100));
    }
    // Then 300 connections that say nothing at all.
    const silent: net.Socket[] = [];
    for (let i = 0; i < 300; i++) silent.push(await open());
    t.teardown(() => {
      for (const s of silent) s.destroy();
    });
    // Legit peers join meanwhile and finish as usual.
    const files: FileSpec[] = [
      { name: "among 1.bin", size: 300 * KiB },
      { name: "among 2.bin", size: 200 * KiB },
    ];
    for (const [i, f] of files.entries()) await swarm.startPeer({ label: `p${i + 1}`, files: [f], minAlive: 1 });
    const waitClosed = (sockets: net.Socket[], what: string) =>
      within(
        new Promise<void>((resolve) => {
          const check = () => {
            if (sockets.every((s) => closed.has(s))) resolve();
          };
          for (const s of sockets) s.on("close", check);
          check();
        }),
        30_000,
        what,
      );
    await waitClosed(trickle, "the tracker to close every trickling connection");
    await waitClosed(silent, "the tracker to close every silent connection");
    const peak = trackerPeakKiB(swarm);
    const result = await swarm.finish();
    swarm.logSummary(result);
    for (const p of swarm.peers) t.deepEqual(result.has(p), result.allFiles);
    t.log(`tracker peak RSS ${Math.round(peak / 1024)} MiB`);
    t.true(peak < 250 * 1024, `tracker peak RSS ${peak} KiB`);
  },
);

// ------------------------------------------------------------------ 9. stderr

test.serial("stderr: 2000 absurd reports make a bounded number of tracker lines, the rest counted", async (t) => {
  const { swarm } = await legitSwarm(t, 2, 2, "half");
  const a = await FakePeer.join(swarm.port);
  t.teardown(() => a.close());
  const fileId = a.welcome.files?.[0]?.fileId ?? 1;
  for (let i = 0; i < 2000; i++) a.client.send({ have: { fileId, runs: [1_000_000_000 + i, 1] } });
  await a.client.leave(20_000);
  await finishes(t, swarm, [a.id]);
  const lines = swarm.tracker.stderr().toString("utf8").trimEnd().split("\n");
  const reports = lines.filter((l) => l.includes("ignored report"));
  t.log(`${lines.length} tracker stderr lines, ${reports.length} about the reports`);
  t.true(reports.length <= 20, `${reports.length} lines about ignored reports`);
  t.true(
    lines.some((l) => /tracker: 1980 more "ignored-report" lines in the last 10 s not shown/.test(l)),
    "the rest are counted in one line",
  );
});

// ------------------------------------------------------------------ SPEC §8: a refused file offered again

test.serial("conflict: a file refused for its name is offered once the name is free, and fetched", async (t) => {
  const swarm = await Swarm.start(t, { timeoutMs: 60_000, exclusive: "half" });
  // A hand-made client offers "shared.txt" first, and never serves it.
  const h = await FakePeer.join(swarm.port, [manifestOf("shared.txt", Buffer.from("the hand-made client's"))]);
  t.teardown(() => h.close());
  const mine: FileSpec = { name: "shared.txt", size: 3000, seed: "B's own" };
  const other: FileSpec = { name: "c.bin", size: 2000 };
  const b = await swarm.startPeer({ label: "b", files: [mine], minAlive: 1 });
  const c = await swarm.startPeer({ label: "c", files: [other], minAlive: 1 });
  await swarm.waitFor("the CONNECT blocks of b and c", () => swarm.connectedIds().length >= 3);
  await h.client.leave();
  const [bExit, cExit] = [await swarm.exitOf(b), await swarm.exitOf(c)];
  t.is(bExit.code, 0, b.proc.describe());
  t.is(cExit.code, 0, c.proc.describe());
  t.deepEqual(await readFile(path.join(c.sharedDir, "shared.txt")), contentOf(mine), "c has b's shared.txt");
  t.deepEqual((await readdir(c.sharedDir)).sort(), ["c.bin", "shared.txt"]);
  t.deepEqual((await readdir(b.sharedDir)).sort(), ["c.bin", "shared.txt"]);
  t.regex(b.proc.stderr().toString("utf8"), /refused "shared\.txt"/);
  const bId = await swarm.idOf(b);
  const cId = await swarm.idOf(c);
  const stdout = swarm.tracker.stdout();
  t.deepEqual(linesOf(stdout, bId).slice(0, 1), [`PEER ${bId} CONNECT: OFFERS 0`]);
  t.is(linesOf(stdout, cId).filter((l) => l.endsWith(`/6 shared.txt`)).length, 6, "c's six ACQUIRED lines");
  t.regex(swarm.tracker.stderr().toString("utf8"), new RegExp(`peer ${bId}: "shared.txt" offered again`));
  await swarm.stopTracker();
});

// ------------------------------------------------------------------ names that print the same

test.serial(
  "names: café.txt in NFC and in NFD are one name: the second offer is refused, both keep their own",
  async (t) => {
    const swarm = await Swarm.start(t, { timeoutMs: 40_000, exclusive: "half" });
    const nfc = "caf\u00e9.txt";
    const nfd = "cafe\u0301.txt";
    // a stays 5 s: b's offer comes while a's name is taken.
    const a = await swarm.startPeer({ label: "a", files: [{ name: nfc, size: 1000, seed: "a" }], minAlive: 5 });
    await swarm.idOf(a);
    const b = await swarm.startPeer({ label: "b", files: [{ name: nfd, size: 1000, seed: "b" }], minAlive: 1 });
    t.is((await swarm.exitOf(a)).code, 0);
    t.is((await swarm.exitOf(b)).code, 0);
    t.deepEqual(await readdir(a.sharedDir), [nfc]);
    t.deepEqual(await readdir(b.sharedDir), [nfd]);
    const bErr = b.proc.stderr().toString("utf8");
    t.regex(bErr, /refused "cafe\u0301\.txt".*another Unicode spelling/);
    t.regex(
      swarm.tracker.stderr().toString("utf8"),
      /refused "cafe\u0301\.txt": name conflict \(same name, another Unicode spelling\)/,
    );
    t.true(swarm.tracker.stdout().toString("utf8").includes("CONNECT: OFFERS 0"));
    await swarm.stopTracker();
  },
);

// ------------------------------------------------------------------ issue 16: not a udpswarm tracker

async function notATracker(t: ExecutionContext, server: net.Server | ReturnType<typeof createHttpServer>) {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  t.teardown(() => {
    server.close();
    if ("closeAllConnections" in server) server.closeAllConnections();
  });
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  const dir = await tempDir(t);
  const started = performance.now();
  const result = await runToExit("peer", "sh", [PEER_SH, "127.0.0.1", String(port), "0"], { cwd: dir });
  t.log(`exit ${result.exit.code} after ${Math.round(performance.now() - started)} ms: ${result.stderr.toString()}`);
  t.is(result.exit.code, 3);
  t.regex(
    result.stderr.toString("utf8"),
    new RegExp(`^udpswarm peer: not a udpswarm tracker at 127\\.0\\.0\\.1:${port} \\(.+\\)\\n$`),
  );
  t.is(result.stdout.length, 0);
  t.deepEqual(await readdir(dir), [], "no ./Shared left behind");
}

test("not a tracker: a server that says nothing", async (t) => {
  const sockets: net.Socket[] = [];
  await notATracker(
    t,
    net.createServer((s) => {
      sockets.push(s);
      s.on("error", () => {});
    }),
  );
  for (const s of sockets) s.destroy();
});

test("not a tracker: an HTTP server", async (t) => {
  await notATracker(
    t,
    createHttpServer((_req, res) => res.end("hello\n")),
  );
});

test("not a tracker: a server that sends garbage", async (t) => {
  await notATracker(
    t,
    net.createServer((s) => {
      s.on("error", () => {});
      s.write(makeContent("garbage", 300));
    }),
  );
});

test("not a tracker: a hand-made client sees the tracker speak first", async (t) => {
  const swarm = await Swarm.start(t, { timeoutMs: 20_000, exclusive: false });
  const c = await HandClient.connect(swarm.port, { answerPings: false });
  t.teardown(() => c.socket.destroy());
  // The greeting is a keepalive; HandClient keeps pings out of `frames`, so wait on the raw bytes.
  await within(
    new Promise<void>((resolve) => {
      if (c.socket.bytesRead > 0) resolve();
      else c.socket.once("data", () => resolve());
    }),
    5000,
    "the tracker's greeting",
  );
  t.true(c.socket.bytesRead > 0);
  await swarm.stopTracker();
});

// ------------------------------------------------------------------ 6a. a client that never fetches

/*
 * On main (640fc4f) this swarm never ended: the client lacks both files, so neither legit
 * peer was ever allowed to leave (the swarm timed out).
 */
test.serial("idle: a client that joins and never fetches holds nobody back after the grace", async (t) => {
  const swarm = await Swarm.start(t, { timeoutMs: 60_000, trackerArgs: ["--fetch-grace", "3"], exclusive: "half" });
  const gate = await swarm.gate(2);
  // MIN_ALIVE 3 s: the client joins within milliseconds of their CONNECT, long before.
  const [s, d] = await Promise.all([
    swarm.startPeer({ label: "s", files: [{ name: "seeded.bin", size: 300 * KiB }], gate, minAlive: 3 }),
    swarm.startPeer({ label: "d", files: [{ name: "d small", size: 900 }], gate, minAlive: 3 }),
  ]);
  await Promise.all([s, d].map((p) => swarm.idOf(p)));
  const idle = await FakePeer.join(swarm.port);
  t.teardown(() => idle.close());
  t.false(s.exited || d.exited, "precondition: the legit peers are still there when the client joins");
  const [sExit, dExit] = [await swarm.exitOf(s), await swarm.exitOf(d)];
  t.is(sExit.code, 0, s.proc.describe());
  t.is(dExit.code, 0, d.proc.describe());
  const stderr = swarm.tracker.stderr().toString("utf8");
  t.regex(stderr, new RegExp(`peer ${idle.id} has fetched nothing for [3-9] s while files it lacks were there`));
  t.false(idle.client.closed, "the idle client is not dropped: it only stops holding others back");
  await idle.client.leave();
  await finishes(t, swarm, [idle.id]);
});

// ------------------------------------------------------------------ 8. a seed file that changes under its seeder

/*
 * On main (640fc4f) the tracker kept listing the seeder as the holder of both files: the
 * downloader waited for them for ever and the seeder could not leave (the swarm timed out).
 */
test.serial("withdraw: a seeder's changed files are withdrawn at the tracker; the swarm ends", async (t) => {
  const swarm = await Swarm.start(t, { timeoutMs: 60_000 });
  const overwritten: FileSpec = { name: "overwritten.bin", size: 12 * MiB + 3 };
  const truncated: FileSpec = { name: "truncated.bin", size: 12 * MiB + 5 };
  const kept: FileSpec = { name: "kept.bin", size: 40 * KiB };
  const gate = await swarm.gate(2);
  const [s, d] = await Promise.all([
    swarm.startPeer({ label: "seed", files: [overwritten, truncated, kept], gate, minAlive: 1 }),
    // Slowed down (100 ms each way) so that both files are surely still being fetched when
    // they change: unslowed, 24 MiB can go whole between the check below and the writes.
    swarm.startPeer({
      label: "d",
      files: [{ name: "d small", size: 900 }],
      gate,
      minAlive: 1,
      extraArgs: ["--delay", "100"],
    }),
  ]);
  const [sid, did] = await Promise.all([s, d].map((p) => swarm.idOf(p)));
  if (sid === undefined || did === undefined) throw new Error("unreachable");
  await swarm.waitFor("the downloader to acquire chunks of both big files", () =>
    [overwritten, truncated].every((f) => swarm.acquired(did, f.name) > 0),
  );
  t.false(
    swarm.completed(did, overwritten) || swarm.completed(did, truncated),
    "precondition: both big files still being fetched",
  );
  await writeFile(path.join(s.sharedDir, overwritten.name), makeContent("changed", overwritten.size));
  await truncate(path.join(s.sharedDir, truncated.name), 1000);
  const [sExit, dExit] = [await swarm.exitOf(s), await swarm.exitOf(d)];
  t.is(sExit.code, 0, s.proc.describe());
  t.is(dExit.code, 0, d.proc.describe());
  t.deepEqual((await readdir(d.sharedDir)).sort(), ["d small", kept.name], "d has what the swarm could give");
  const trackerErr = swarm.tracker.stderr().toString("utf8");
  for (const f of [overwritten, truncated]) {
    t.regex(trackerErr, new RegExp(`peer ${sid} withdrew "${f.name}"`));
    t.regex(trackerErr, new RegExp(`file "${f.name}" is no longer available`));
  }
  await swarm.stopTracker();
});
