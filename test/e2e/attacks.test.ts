/**
 * End-to-end attacks (SPEC §8): garbage aimed at every port during a transfer, a
 * hand-made client that offers hostile names and sizes and serves garbage, a client that
 * goes silent, and a tracker that vanishes. The real tracker.sh and peer.sh run as in the
 * other e2e tests; the attacker is this test process.
 *
 * Randomness comes from one seeded PRNG per test (ATTACK_SEED=<n> to try another seed);
 * every failure message names the seed. Nothing sleeps: waits are on output lines,
 * process exits, frames and datagrams; the only timer-driven action is re-sending a UDP
 * probe that got no answer (a datagram may be lost), and every wait is bounded.
 */
import { createHmac } from "node:crypto";
import { existsSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import { lstat, readdir, readFile, truncate, writeFile } from "node:fs/promises";
import path from "node:path";
import test from "ava";
import { SeededRandom } from "../../src/util/random.js";
import { requestAuth } from "../../src/wire/auth.js";
import { encodeFrame } from "../../src/wire/framing.js";
import { CHUNK_SIZE, chunkCount, chunkLength } from "../../src/wire/limits.js";
import {
  decodePeerDatagram,
  encodeChunk,
  encodeHashReply,
  encodeRequest,
  KIND_CHUNK,
  KIND_MESSAGE,
  PROTOCOL_VERSION,
} from "../../src/wire/peer-datagram.js";
import { encodeReceipts } from "../../src/wire/receipts.js";
import { encodeTrackerFrame, udpswarm } from "../../src/wire/tracker-frame.js";
import { FakePeer, HandClient, linesOf, manifestOf, UdpEnd, within } from "../helpers/hand-client.js";
import { contentOf, type FileSpec, type Peer, readShared, Swarm } from "../helpers/swarm.js";

const KiB = 1024;
const MiB = 1024 * 1024;
/** Bytes an unvalidated address may get per byte it sent (RFC 9000 §8). */
const AMPLIFICATION = 3;

const SEED = seedFromEnv(process.env.ATTACK_SEED);

function seedFromEnv(value: string | undefined): number {
  if (value === undefined || value === "") return 0xa77ac4;
  const n = Number(value);
  if (!Number.isInteger(n)) throw new Error(`ATTACK_SEED must be an integer, got ${JSON.stringify(value)}`);
  return n >>> 0;
}

/** Every assertion message ends with this, so a failure can be replayed. */
const SEEDED = `(ATTACK_SEED=${SEED})`;

function randomBytes(rng: SeededRandom, n: number): Buffer {
  const out = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) out[i] = rng.int(256);
  return out;
}

// ------------------------------------------------------------------ /proc

type UdpRow = { readonly port: number; readonly drops: number };

/** Rows of /proc/net/udp by socket inode: local port and the kernel's drop count. */
function udpRowsByInode(): Map<number, UdpRow> {
  const rows = new Map<number, UdpRow>();
  const lines = readFileSync("/proc/net/udp", "utf8").split("\n").slice(1);
  for (const line of lines) {
    // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ref pointer drops
    const f = line.trim().split(/\s+/);
    if (f.length < 13) continue;
    const local = f[1] ?? "";
    const port = Number.parseInt(local.split(":")[1] ?? "", 16);
    rows.set(Number(f[9]), { port, drops: Number(f[12]) });
  }
  return rows;
}

/** Socket inodes open in process `pid` (from the /proc/<pid>/fd symlinks `socket:[N]`). */
function socketInodes(pid: number): number[] {
  const inodes: number[] = [];
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    let target: string;
    try {
      target = readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue; // closed meanwhile
    }
    const m = /^socket:\[(\d+)\]$/.exec(target);
    if (m !== null) inodes.push(Number(m[1]));
  }
  return inodes;
}

/**
 * The one IPv4 UDP socket of a peer process: its port and inode. `sh peer.sh` execs node,
 * so the spawned pid is the peer's own.
 */
function udpSocketOf(peer: Peer): { port: number; inode: number } {
  const pid = peer.proc.child.pid;
  if (pid === undefined) throw new Error(`peer ${peer.label} has no pid`);
  const rows = udpRowsByInode();
  const found = socketInodes(pid).flatMap((inode) => {
    const row = rows.get(inode);
    return row === undefined ? [] : [{ port: row.port, inode }];
  });
  const only = found[0];
  if (found.length !== 1 || only === undefined) {
    throw new Error(`peer ${peer.label} (pid ${pid}) has ${found.length} UDP sockets in /proc, expected 1`);
  }
  return only;
}

function kernelDrops(inode: number): number {
  return udpRowsByInode().get(inode)?.drops ?? 0;
}

// ------------------------------------------------------------------ datagrams

/**
 * A random datagram of 0..1500 bytes. One in three starts with the message kind and one
 * in three with the chunk kind (half of those with the right version byte), so that the
 * decoders see more than "unknown kind".
 */
function randomDatagram(rng: SeededRandom): Buffer {
  const bytes = randomBytes(rng, rng.int(1501));
  if (bytes.length > 0) {
    const pick = rng.int(3);
    if (pick === 0) bytes[0] = KIND_MESSAGE;
    else if (pick === 1) {
      bytes[0] = KIND_CHUNK;
      if (bytes.length > 1 && rng.int(2) === 0) bytes[1] = PROTOCOL_VERSION;
    }
  }
  return bytes;
}

function peerMessage(message: udpswarm.IPeerMessage): Buffer {
  return Buffer.concat([Buffer.from([KIND_MESSAGE]), udpswarm.PeerMessage.encode(message).finish()]);
}

/**
 * Hand-crafted bad datagrams for a peer holding file `fileId` (of `chunks` chunks). None
 * carries a valid proof of origin. `engine` says how the peer's engine must count it
 * when it comes from a listed address and the decoder accepts it (one reason at most).
 */
function craftedDatagrams(rng: SeededRandom, fileId: number): { bytes: Buffer; engine: string[] }[] {
  const wrongAuth = randomBytes(rng, 8);
  const chunk0 = encodeChunk(rng.u32(), rng.u32(), rng.u32(), fileId, 0, randomBytes(rng, CHUNK_SIZE));
  const badVersionChunk = Buffer.from(chunk0);
  badVersionChunk[1] = PROTOCOL_VERSION + 1;
  const oversize = Buffer.concat([chunk0, randomBytes(rng, 1201 - chunk0.length)]);
  const absurdChunk = encodeRequest(5, fileId, 0xffffffc0, [0xffffffc0], 7, wrongAuth);
  const unknownFile = encodeRequest(6, 0x7fffffff, 0, [0], 8, wrongAuth);
  const absurdPiece = peerMessage({
    version: PROTOCOL_VERSION,
    seq: 7,
    hashRequest: { fileId, piece: 0xffffffff, token: 9, auth: wrongAuth },
  });
  const unprovenHashes = peerMessage({
    version: PROTOCOL_VERSION,
    seq: 8,
    hashRequest: { fileId, piece: 0, token: 10 },
  });
  return [
    { bytes: Buffer.alloc(0), engine: [] },
    { bytes: Buffer.from([KIND_MESSAGE]), engine: [] },
    // Exactly one byte above the largest datagram accepted (1200).
    { bytes: oversize, engine: [] },
    // A valid-looking chunk header answering no request of ours, with a wrong token.
    { bytes: chunk0, engine: ["stale"] },
    { bytes: badVersionChunk, engine: [] },
    { bytes: chunk0.subarray(0, 24), engine: [] },
    { bytes: Buffer.concat([chunk0, Buffer.from([0])]), engine: [] },
    { bytes: Buffer.from([0x07, PROTOCOL_VERSION, 1, 2, 3]), engine: [] },
    { bytes: Buffer.concat([Buffer.from([KIND_MESSAGE]), Buffer.alloc(20, 0xff)]), engine: [] },
    {
      bytes: peerMessage({ version: 99, seq: 1, request: { fileId, first: 0, mask: Buffer.from([1]), token: 1 } }),
      engine: [],
    },
    { bytes: peerMessage({ version: PROTOCOL_VERSION, seq: 2 }), engine: [] },
    // Absurd masks: 9 bytes (more than 64 chunks), and no bit set.
    {
      bytes: peerMessage({ version: PROTOCOL_VERSION, seq: 3, request: { fileId, mask: Buffer.alloc(9, 0xff) } }),
      engine: [],
    },
    {
      bytes: peerMessage({ version: PROTOCOL_VERSION, seq: 4, request: { fileId, mask: Buffer.from([0, 0]) } }),
      engine: [],
    },
    // Requests without a valid proof get nothing, whatever they ask: an absurd first chunk
    // of a held file, an unknown file, an absurd piece, a piece the peer holds.
    { bytes: absurdChunk, engine: ["bad-proof"] },
    { bytes: unknownFile, engine: ["bad-proof"] },
    { bytes: absurdPiece, engine: ["bad-proof"] },
    { bytes: unprovenHashes, engine: ["bad-proof"] },
    // HashReplies nobody asked for: a bad length, and a well-formed one.
    {
      bytes: peerMessage({ version: PROTOCOL_VERSION, seq: 9, hashReply: { fileId, hashes: Buffer.alloc(5) } }),
      engine: [],
    },
    { bytes: encodeHashReply(10, fileId, 0, rng.u32(), randomBytes(rng, 64)), engine: ["stale"] },
  ];
}

/**
 * A random datagram from the listed hand-made peer, and how the engine counts it: the
 * decoder refuses it, or it is a chunk or a HashReply, which answers nothing this peer
 * asked (it never asks the hand-made peer anything): stale. Random datagrams that decode
 * as requests are drawn again (whether one is answered depends on the amplification
 * budget, which the crafted ones test).
 */
function randomFromListed(rng: SeededRandom): { bytes: Buffer; engine: string[] } {
  for (;;) {
    const bytes = randomDatagram(rng);
    const d = decodePeerDatagram(bytes);
    if (d.kind === "invalid") return { bytes, engine: [] };
    if (d.kind === "chunk" || d.kind === "hash-reply") return { bytes, engine: ["stale"] };
  }
}

type Stats = {
  readonly peer: number;
  readonly drops: Record<string, number>;
  readonly dropsBySource?: Record<string, Record<string, number>>;
  readonly pieceHashFailures: number;
  readonly datagramsReceived: number;
  readonly [key: string]: unknown;
};

async function readStats(peer: Peer): Promise<Stats> {
  return JSON.parse(await readFile(path.join(peer.dir, "stats.json"), "utf8")) as Stats;
}

/** Every entry under `dir` (files and folders, relative paths, "/" after folders), sorted. */
async function walk(dir: string, base = dir): Promise<string[]> {
  const out: string[] = [];
  for (const name of await readdir(dir)) {
    const full = path.join(dir, name);
    const rel = path.relative(base, full);
    if ((await lstat(full)).isDirectory()) out.push(`${rel}/`, ...(await walk(full, base)));
    else out.push(rel);
  }
  return out.sort();
}

// ------------------------------------------------------------------ tracker garbage

type GarbageCase = {
  readonly what: string;
  readonly bytes: Buffer;
  /** Close our side after writing (otherwise the tracker must close it). */
  readonly end: boolean;
  /** The tracker must answer with a Refusal of this reason before it closes. */
  readonly refusal?: number;
};

function trackerGarbage(rng: SeededRandom): GarbageCase[] {
  const v99 = encodeFrame(udpswarm.TrackerFrame.encode({ version: 99, hello: { udpPort: 1234 } }).finish());
  const hello = encodeTrackerFrame({ hello: { udpPort: 1234 } });
  return [
    { what: "4 KiB of random bytes", bytes: randomBytes(rng, 4096), end: true },
    { what: "a 5-byte varint length of 2^32", bytes: Buffer.from([0x80, 0x80, 0x80, 0x80, 0x10]), end: false },
    { what: "a 6-byte varint length", bytes: Buffer.from([0x80, 0x80, 0x80, 0x80, 0x80, 0x01]), end: false },
    {
      what: "a valid length prefix and garbage",
      bytes: Buffer.concat([Buffer.from([100]), Buffer.alloc(100, 0xff)]),
      end: false,
    },
    { what: "a frame of protocol version 99", bytes: v99, end: false, refusal: 1 },
    { what: "a Hello with UDP port 0", bytes: encodeTrackerFrame({ hello: { udpPort: 0 } }), end: false, refusal: 5 },
    { what: "a first frame that is not a Hello", bytes: encodeTrackerFrame({ readyToLeave: {} }), end: false },
    { what: "half a Hello, then close", bytes: hello.subarray(0, Math.floor(hello.length / 2)), end: true },
  ];
}

/** Sends one garbage case on a fresh connection; resolves once the tracker has closed it. */
async function attackTracker(port: number, c: GarbageCase): Promise<void> {
  const client = await HandClient.connect(port, { answerPings: false });
  client.socket.write(c.bytes);
  if (c.end) client.socket.end();
  await client.waitClosed(`the tracker to close the connection that sent ${c.what}`, 5000);
  const got = client.frames.map((f) => (f.body === "refusal" ? `refusal ${f.refusal?.reason}` : String(f.body)));
  const expected = c.refusal === undefined ? [] : [`refusal ${c.refusal}`];
  if (JSON.stringify(got) !== JSON.stringify(expected) || client.badFrames.length > 0) {
    throw new Error(
      `after ${c.what} the tracker sent ${JSON.stringify(got)} (bad: ${client.badFrames}), ` +
        `expected ${JSON.stringify(expected)} ${SEEDED}`,
    );
  }
}

// ------------------------------------------------------------------ 1. garbage during a transfer

/*
 * How this test was seen to fail (dist/ edited by hand, then rebuilt): when the engine
 * decodes a datagram from an unlisted address before dropping it (so a malformed one
 * counts under its decoder reason), it fails with "peer seed: 63 datagrams dropped as
 * unknown-source, sent 1019" - only what the decoder accepts still reaches the source
 * check; when the tracker answers a version-99 frame with another reason, it fails on
 * `after a frame of protocol version 99 the tracker sent ["refusal 5"]`.
 */
test.serial(
  "random datagrams and garbage frames at every port during a transfer: it completes byte-identical",
  async (t) => {
    t.log(`seed ${SEED} (set ATTACK_SEED to change it)`);
    const rng = new SeededRandom(SEED);
    const swarm = await Swarm.start(t, { timeoutMs: 40_000 });
    const gate = await swarm.gate(3);
    const big: FileSpec = { name: "attacked big.bin", size: 4 * MiB + 77 };
    const small: FileSpec = { name: "attacked small.bin", size: 20 * KiB + 3 };
    const stats = ["--stats", "stats.json"];
    const [s, d1, d2] = await Promise.all([
      swarm.startPeer({ label: "seed", files: [big, small], gate, extraArgs: stats }),
      swarm.startPeer({ label: "d1", files: [{ name: "d1 tiny", size: 700 }], gate, extraArgs: stats }),
      swarm.startPeer({ label: "d2", files: [{ name: "d2 tiny", size: 1500 }], gate, extraArgs: stats }),
    ]);
    const peers = [s, d1, d2];
    const ids = await Promise.all(peers.map((p) => swarm.idOf(p)));
    const [, id1, id2] = ids;
    if (id1 === undefined || id2 === undefined) throw new Error("unreachable");

    // Each peer's UDP port, from /proc.
    const sockets = peers.map((p) => udpSocketOf(p));
    const dropsBefore = sockets.map((k) => kernelDrops(k.inode));
    const progress = (): string =>
      `d1 ${swarm.acquired(id1, big.name)}, d2 ${swarm.acquired(id2, big.name)} of ${chunkCount(big.size)} chunks`;
    t.false(
      swarm.completed(id1, big) && swarm.completed(id2, big),
      `precondition: the transfer must still be running when the attack starts ${SEEDED}`,
    );
    const atStart = progress();

    // (a) From an address the tracker never listed: random datagrams, then the crafted ones.
    const stranger = await UdpEnd.open();
    t.teardown(() => stranger.close());
    const RANDOM_PER_PEER = 1000;
    const unlisted: { bytes: Buffer; port: number }[] = [];
    for (let i = 0; i < RANDOM_PER_PEER; i++) {
      for (const k of sockets) unlisted.push({ bytes: randomDatagram(rng), port: k.port });
    }
    for (const k of sockets) for (const c of craftedDatagrams(rng, 1)) unlisted.push({ bytes: c.bytes, port: k.port });
    const unlistedDone = stranger.sendAll(unlisted);

    // (b) The same from a listed address: a hand-made peer joins (it holds nothing, so
    // nobody may leave before it goes), checks the ports it is told against /proc, makes
    // sure each peer knows it, then sends.
    const fake = await FakePeer.join(swarm.port);
    t.teardown(() => fake.close());
    swarm.foreign(fake.id);
    t.deepEqual(
      ids.map((id) => fake.portOf(id)),
      sockets.map((k) => k.port),
      `UDP ports in the Welcome and in /proc ${SEEDED}`,
    );
    const probes = await Promise.all(ids.map((id, i) => fake.probe(id, sockets[i]?.port ?? 0, fake.heldBy(id).fileId)));
    const RANDOM_FROM_FAKE = 300;
    const listed: { bytes: Buffer; port: number }[] = [];
    const expected = ids.map(() => ({ decoder: new Map<string, number>(), engine: new Map<string, number>() }));
    const count = (m: Map<string, number>, k: string): void => {
      m.set(k, (m.get(k) ?? 0) + 1);
    };
    ids.forEach((id, i) => {
      const port = sockets[i]?.port ?? 0;
      const e = expected[i];
      if (e === undefined) return;
      const items = [
        ...craftedDatagrams(rng, fake.heldBy(id).fileId),
        ...Array.from({ length: RANDOM_FROM_FAKE }, () => randomFromListed(rng)),
      ];
      for (const item of items) {
        const d = decodePeerDatagram(item.bytes);
        if (d.kind === "invalid") count(e.decoder, d.reason);
        for (const reason of item.engine) count(e.engine, reason);
        listed.push({ bytes: item.bytes, port });
      }
    });
    const listedDone = fake.udp.sendAll(listed);

    // (c) Garbage at the tracker's TCP port, on several connections at once.
    const garbage = trackerGarbage(rng);
    await Promise.all([unlistedDone, listedDone, ...garbage.map((c) => attackTracker(swarm.port, c))]);
    const atEnd = progress();
    t.log(`attack started at ${atStart}, ended at ${atEnd}`);
    t.log(`sent ${unlisted.length} datagrams from an unlisted address, ${listed.length} from a listed one`);

    // Every datagram sent is now handled: a probe sent after them is answered.
    const probesAfter = await Promise.all(
      ids.map((id, i) => fake.probe(id, sockets[i]?.port ?? 0, fake.heldBy(id).fileId)),
    );
    const kernel = sockets.map((k, i) => kernelDrops(k.inode) - (dropsBefore[i] ?? 0));
    await fake.client.leave();
    await swarm.waitFor(`the DISCONNECT block of the hand-made PEER ${fake.id}`, () => swarm.hasDisconnected(fake.id));

    const result = await swarm.finish();
    swarm.logSummary(result);
    for (const p of peers) t.deepEqual(result.has(p), result.allFiles, `peer ${p.label} ${SEEDED}`);
    t.deepEqual(
      linesOf(swarm.tracker.stdout(), fake.id),
      [`PEER ${fake.id} CONNECT: OFFERS 0`, `PEER ${fake.id} DISCONNECT: RECEIVED 0`],
      `the tracker's lines for the hand-made peer ${SEEDED}`,
    );
    const trackerErr = swarm.tracker.stderr().toString("utf8");
    const closed = trackerErr.split("\n").filter((l) => /^udpswarm tracker: [^ ]+: connection closed: /.test(l));
    t.log(`tracker stderr, garbage connections:\n${closed.join("\n")}`);
    t.true(closed.length >= garbage.filter((c) => !c.end).length, `the tracker says why it closed each ${SEEDED}`);

    // Every peer counted what it got and dropped it for the right reason, by source: the
    // stranger's address and the hand-made peer are counted apart from the real peers
    // (whose datagrams may come before their introduction), so every count is exact. Only
    // datagrams the kernel dropped (k, from /proc) never reached the engine.
    const strangerKey = `127.0.0.1:${stranger.port}`;
    for (const [i, p] of peers.entries()) {
      const st = await readStats(p);
      const k = kernel[i] ?? 0;
      const e = expected[i];
      if (e === undefined) continue;
      const bySource = st.dropsBySource ?? {};
      t.log(
        `peer ${p.label}: drops ${JSON.stringify(st.drops)}; by source ${JSON.stringify(bySource)}; ` +
          `kernel drops ${k}; probes ${probes[i]}`,
      );
      const want = (m: Map<string, number>): Record<string, number> => Object.fromEntries([...m].sort());
      const exact = (got: Record<string, number> | undefined, expect: Record<string, number>, what: string): void => {
        const sorted = Object.fromEntries(Object.entries(got ?? {}).sort());
        if (k === 0) {
          t.deepEqual(sorted, expect, `peer ${p.label}: ${what} ${SEEDED}`);
          return;
        }
        const total = (r: Record<string, number>): number => Object.values(r).reduce((a, b) => a + b, 0);
        t.true(
          total(sorted) <= total(expect) && total(sorted) >= total(expect) - k,
          `peer ${p.label}: ${what} ${SEEDED}`,
        );
      };
      const sentUnlisted = unlisted.filter((d) => d.port === sockets[i]?.port).length;
      exact(bySource[strangerKey], { "unknown-source": sentUnlisted }, "the stranger's datagrams, all unknown-source");
      const fromFake = new Map(e.decoder);
      for (const [reason, n] of e.engine) fromFake.set(reason, (fromFake.get(reason) ?? 0) + n);
      // Probes answered with a cookie only (the address was not validated yet) are apart.
      const { unvalidated = 0, ...fakeDrops } = bySource[`peer ${fake.id}`] ?? {};
      exact(fakeDrops, want(fromFake), "the hand-made peer's datagrams, each under its reason");
      // Probes that came while this peer did not know the hand-made one (before its
      // introduction, or, re-sent ones, after it left): of each round, the last was answered.
      const probed = (probes[i] ?? 0) + (probesAfter[i] ?? 0);
      t.true(
        unvalidated >= 1 && unvalidated <= probed - 2,
        `peer ${p.label}: ${unvalidated} probes got a cookie ${SEEDED}`,
      );
      const early = bySource[`127.0.0.1:${fake.udp.port}`]?.["unknown-source"] ?? 0;
      t.true(early <= probed - 2, `peer ${p.label}: ${early} of ${probed} probes unknown ${SEEDED}`);
      t.is(st.pieceHashFailures, 0, `peer ${p.label}: no piece ever failed verification ${SEEDED}`);
    }
  },
);

// ------------------------------------------------------------------ 2. hand-made clients

test.serial("hand-made clients: hostile names and sizes refused, garbage served, silence timed out", async (t) => {
  t.log(`seed ${SEED} (set ATTACK_SEED to change it)`);
  const rng = new SeededRandom(SEED ^ 0x2);
  // Not exclusive: it moves 100 KiB and spends its ~16 s waiting for the keepalive to drop
  // the silent client, so it may run beside another swarm.
  const swarm = await Swarm.start(t, { timeoutMs: 60_000, exclusive: false });
  const own: FileSpec = { name: "r own.bin", size: 100 * KiB };
  // Alone, r would leave at once; MIN_ALIVE 3 s lets the hand-made client join first (it
  // does so within milliseconds of r's CONNECT), and from then on r may not leave while
  // that client lacks r's file. The silent client keeps the test >= 15 s anyway.
  const r = await swarm.startPeer({ label: "r", files: [own], minAlive: 3, extraArgs: ["--stats", "stats.json"] });
  const rid = await swarm.idOf(r);
  const outside = path.join(path.dirname(swarm.dir), "escape");
  const outsideBefore = existsSync(outside);

  // Offers: five bad names, one too large, one valid (whose chunks it will serve as garbage).
  const valid = makeValid(rng);
  const dummy = manifestOf("x", Buffer.alloc(1000, 1));
  const bad: { name: string; size?: number; reason: number }[] = [
    { name: "../../escape", reason: 3 },
    { name: "a/b", reason: 3 },
    { name: "..", reason: 3 },
    { name: ".hidden", reason: 3 },
    { name: "new\nline", reason: 3 },
    { name: "huge.bin", size: 2 ** 50, reason: 4 },
  ];
  const offers = [...bad.map((b) => ({ ...dummy, name: b.name, size: b.size ?? 1000 })), valid.manifest];
  const fake = await FakePeer.join(swarm.port, offers);
  t.teardown(() => fake.close());
  swarm.foreign(fake.id);
  t.is(fake.id, rid + 1, SEEDED);
  t.not(fake.portOf(rid), undefined, `precondition: r must still be in the swarm when the client joins ${SEEDED}`);
  t.deepEqual(
    (fake.welcome.accepted ?? []).map((f) => f.manifest?.name),
    [valid.manifest.name],
    `accepted offers ${SEEDED}`,
  );
  t.deepEqual(fake.welcome.refused ?? [], [], `no conflicts ${SEEDED}`);
  const refusals: { name: string; reason: number }[] = [];
  for (let i = 0; i < bad.length; i++) {
    const f = await fake.client.next(`refusal ${i + 1} of ${bad.length}`);
    if (f.body !== "refusal") t.fail(`expected a Refusal, got ${f.body} ${SEEDED}`);
    refusals.push({ name: f.refusal?.fileName ?? "", reason: f.refusal?.reason ?? 0 });
  }
  t.deepEqual(
    refusals,
    bad.map((b) => ({ name: b.name, reason: b.reason })),
    `refusals (3 = bad name, 4 = too large) ${SEEDED}`,
  );

  // It serves its valid file with random bytes, and answers hash requests with random
  // hashes; once the peer has asked for the block hashes twice, it leaves.
  const fileId = fake.welcome.accepted?.[0]?.fileId ?? 0;
  let hashRequests = 0;
  let chunksServed = 0;
  const hashesAsked = new Promise<void>((resolve) => {
    fake.udp.listen(({ bytes, from }) => {
      const d = decodePeerDatagram(bytes);
      if (d.kind === "request" && d.fileId === fileId) {
        for (const c of d.chunks) {
          if (c >= valid.chunks) continue;
          chunksServed++;
          const junk = randomBytes(rng, chunkLength(valid.content.length, c));
          void fake.udp.send(encodeChunk(chunksServed, d.seq, d.token, fileId, c, junk), from.port);
        }
      } else if (d.kind === "hash-request") {
        hashRequests++;
        void fake.udp.send(encodeHashReply(0, d.fileId, d.piece, d.token, randomBytes(rng, 64)), from.port);
        if (hashRequests >= 2) resolve();
      }
    });
  });

  // Another client says Hello, then nothing, and never closes: the keepalive must drop it.
  const silentUdp = await UdpEnd.open();
  t.teardown(() => silentUdp.close());
  const silent = await HandClient.connect(swarm.port, { answerPings: false });
  t.teardown(() => silent.socket.destroy());
  silent.send({ hello: { udpPort: silentUdp.port, offers: [] } });
  const silentSince = performance.now();
  const w = await silent.next("the Welcome of the silent client");
  const silentId = w.welcome?.peerId ?? 0;
  t.is(silentId, fake.id + 1, SEEDED);
  swarm.foreign(silentId);

  await within(hashesAsked, 10_000, `PEER ${rid} to ask the garbage server for block hashes ${SEEDED}`);
  await fake.client.leave();
  await silent.waitClosed("the tracker to drop the silent client (keepalive timeout)", 40_000);
  const silentMs = Math.round(performance.now() - silentSince);
  t.log(`the silent client was dropped after ${silentMs} ms; ${chunksServed} garbage chunks served`);
  t.true(silentMs >= 14_500, `dropped after ${silentMs} ms, before the 15 s keepalive floor ${SEEDED}`);

  const result = await swarm.finish();
  swarm.logSummary(result);
  t.deepEqual(result.has(r), [own.name], `peer r keeps its own file only ${SEEDED}`);
  t.deepEqual(result.outcome(r).received, [], SEEDED);
  const stdout = swarm.tracker.stdout();
  t.deepEqual(
    linesOf(stdout, fake.id),
    [
      `PEER ${fake.id} CONNECT: OFFERS 1`,
      `${fake.id}    ${valid.manifest.name} ${valid.chunks}`,
      `PEER ${fake.id} DISCONNECT: RECEIVED 0`,
    ],
    `the tracker's lines for the hand-made client ${SEEDED}`,
  );
  t.deepEqual(
    linesOf(stdout, silentId),
    [`PEER ${silentId} CONNECT: OFFERS 0`, `PEER ${silentId} DISCONNECT: RECEIVED 0`],
    `the tracker's lines for the silent client ${SEEDED}`,
  );
  t.regex(
    swarm.tracker.stderr().toString("utf8"),
    new RegExp(`peer ${silentId}: connection closed: .*keepalive`),
    SEEDED,
  );

  const st = await readStats(r);
  t.log(`peer r: drops ${JSON.stringify(st.drops)}; pieceHashFailures ${st.pieceHashFailures}`);
  t.true(st.pieceHashFailures >= 1, `peer r detected the garbage piece ${SEEDED}`);
  t.true((st.drops["bad-hashes"] ?? 0) >= 1, `peer r refused the garbage block hashes ${SEEDED}`);

  // Nothing anywhere but what belongs there: no escape, no partial file, no staging.
  t.deepEqual(
    await walk(swarm.dir),
    ["peer-r/", "peer-r/Shared/", `peer-r/Shared/${own.name}`, "peer-r/stats.json", "tracker/", "tracker/port.txt"],
    `files in ${swarm.dir} ${SEEDED}`,
  );
  t.is(existsSync(outside), outsideBefore, `${outside} ${SEEDED}`);
});

function makeValid(rng: SeededRandom): { manifest: udpswarm.IManifest; content: Buffer; chunks: number } {
  const content = randomBytes(rng, 3000);
  return { manifest: manifestOf("valid small.bin", content), content, chunks: chunkCount(content.length) };
}

// ------------------------------------------------------------------ 3. tracker lost

// faults.test.ts has the basic case (non-zero exit, a last stderr line, no partial file);
// this one holds the peers to the exact contract.
test.serial("tracker SIGKILLed mid-transfer: status 4, one stderr line, empty stdout, nothing partial", async (t) => {
  const swarm = await Swarm.start(t, { timeoutMs: 30_000 });
  const gate = await swarm.gate(3);
  const files: FileSpec[] = [
    { name: "lost big.bin", size: 4 * MiB },
    { name: "lost b.bin", size: 30 * KiB },
    { name: "lost c.bin", size: 10 * KiB },
  ];
  const peers = await Promise.all(files.map((f, i) => swarm.startPeer({ label: `p${i + 1}`, files: [f], gate })));
  const ids = await Promise.all(peers.map((p) => swarm.idOf(p)));
  const [, id2, id3] = ids;
  if (id2 === undefined || id3 === undefined) throw new Error("unreachable");
  const bigName = files[0]?.name ?? "";
  await swarm.waitFor(
    "p2 and p3 to be fetching the big file",
    () => swarm.acquired(id2, bigName) >= 128 && swarm.acquired(id3, bigName) >= 128,
    peers,
  );
  swarm.killTracker();
  const originals = new Map(files.map((f) => [f.name, contentOf(f)]));
  for (const p of peers) {
    const exit = await swarm.exitOf(p);
    const stderr = p.proc.stderr().toString("utf8");
    t.log(`peer ${p.label}: exit ${exit.code}; stderr ${JSON.stringify(stderr)}`);
    t.is(exit.code, 4, `peer ${p.label} exit status (signal ${exit.signal})`);
    t.regex(stderr, /^udpswarm peer: [^\n]+\n$/, `peer ${p.label}: exactly one stderr line`);
    t.is(p.proc.stdout().length, 0, `peer ${p.label}: stdout ${JSON.stringify(p.proc.stdout().toString())}`);
    const shared = await readShared(p.sharedDir, originals);
    t.truthy(shared?.get(p.files[0]?.name ?? ""), `peer ${p.label} lost its own file`);
    for (const [name, entry] of shared ?? []) {
      t.deepEqual(entry, { kind: "file", content: "identical" }, `peer ${p.label}: ./Shared/${name}`);
    }
    // Outside ./Shared only partial downloads kept for the next start (SPEC §12): no lock,
    // no torn record.
    const left = await walk(p.dir);
    t.deepEqual(
      left.filter(
        (e) =>
          e === "Shared/" || !(e.startsWith("Shared/") || /^\.udpswarm-staging\/[0-9a-f]{32}\.(part|rec)$/.test(e)),
      ),
      left.includes(".udpswarm-staging/") ? [".udpswarm-staging/", "Shared/"] : ["Shared/"],
      `peer ${p.label}: ${JSON.stringify(left)}`,
    );
  }
  // After the kill the counts no longer move: they are those at the kill.
  const total = chunkCount(files[0]?.size ?? 0);
  t.true(
    swarm.acquired(id2, bigName) < total || swarm.acquired(id3, bigName) < total,
    "precondition: the tracker must be killed mid-transfer",
  );
});

// ------------------------------------------------------------------ 5. address hijack and reflection

/*
 * How these failed on 0850ae8 (before request proofs were bound to requests and addresses
 * validated): the hijack test got a Welcome for a Hello announcing d1's UDP port, peers
 * attributed d1's datagrams to the attacker and, once it left, dropped them as
 * unknown-source: the swarm timed out. The reflection test measured the seeder sending
 * the victim's address hundreds of times the bytes it received from there.
 */
test.serial("address hijack: a Hello announcing a live peer's UDP port is refused; the swarm completes", async (t) => {
  const swarm = await Swarm.start(t, { timeoutMs: 45_000 });
  const gate = await swarm.gate(3);
  const file: FileSpec = { name: "hijacked.bin", size: 10 * MiB + 5 };
  const stats = ["--stats", "stats.json"];
  const [s, d1, d2] = await Promise.all([
    swarm.startPeer({ label: "seed", files: [file], gate, extraArgs: stats }),
    swarm.startPeer({ label: "d1", files: [{ name: "d1 small", size: 900 }], gate, extraArgs: stats }),
    swarm.startPeer({ label: "d2", files: [{ name: "d2 small", size: 1900 }], gate, extraArgs: stats }),
  ]);
  const ids = await Promise.all([s, d1, d2].map((p) => swarm.idOf(p)));
  const [, id1, id2] = ids;
  if (id1 === undefined || id2 === undefined) throw new Error("unreachable");
  const victim = udpSocketOf(d1);
  t.false(
    swarm.completed(id1, file) && swarm.completed(id2, file),
    `precondition: the transfer must still be running when the attack starts ${SEEDED}`,
  );
  // Two attackers claim d1's endpoint (the tracker sees 127.0.0.1 for all of them).
  for (const round of [1, 2]) {
    const m = await HandClient.connect(swarm.port);
    t.teardown(() => m.socket.destroy());
    m.send({ hello: { udpPort: victim.port, offers: [] } });
    const first = await m.next(`the tracker's answer to Hello ${round} with d1's UDP port`);
    if (first.body === "welcome") {
      // Not refused: leave, as the attacker of the report did (its peers then forget d1).
      swarm.foreign(first.welcome?.peerId ?? 0);
      await m.leave();
    } else await m.waitClosed("the tracker to close the hijacker's connection", 5000);
    t.is(first.body, "refusal", `Hello ${round} with a live peer's UDP port ${SEEDED}`);
    t.is(first.refusal?.reason, udpswarm.RefusalReason.REASON_BAD_MESSAGE, SEEDED);
    t.regex(first.refusal?.detail ?? "", new RegExp(`UDP endpoint .*:${victim.port} is peer ${id1}'s`), SEEDED);
  }
  const result = await swarm.finish();
  swarm.logSummary(result);
  for (const p of [s, d1, d2]) t.deepEqual(result.has(p), result.allFiles, `peer ${p.label} ${SEEDED}`);
});

/** A request proof bound to kind, seq, token and file (proto: AddressCookie); written out so the test builds on older code. */
function boundProof(key: Uint8Array, seq: number, token: number, fileId: number): Buffer {
  const msg = Buffer.alloc(13);
  msg[0] = 1;
  msg.writeUInt32BE(seq >>> 0, 1);
  msg.writeUInt32BE(token >>> 0, 5);
  msg.writeUInt32BE(fileId >>> 0, 9);
  return createHmac("sha256", key).update(msg).digest().subarray(0, 8);
}

test.serial("reflection: an address whose owner never answered gets at most 3x what came from it", async (t) => {
  const swarm = await Swarm.start(t, { timeoutMs: 40_000 });
  const gate = await swarm.gate(2);
  const file: FileSpec = { name: "reflected.bin", size: 4 * MiB + 11 };
  const stats = ["--stats", "stats.json"];
  const [s, d] = await Promise.all([
    swarm.startPeer({ label: "seed", files: [file], gate, extraArgs: stats, minAlive: 2 }),
    swarm.startPeer({ label: "d", files: [{ name: "d small", size: 700 }], gate, extraArgs: stats }),
  ]);
  const [sid] = await Promise.all([s, d].map((p) => swarm.idOf(p)));
  if (sid === undefined) throw new Error("unreachable");
  const seedPort = udpSocketOf(s).port;

  // The victim: an address that never answers. The attacker lists it as its own UDP
  // endpoint and sends requests from it (as spoofed datagrams would come).
  const victim = await UdpEnd.open();
  t.teardown(() => victim.close());
  let received = 0;
  victim.listen(({ bytes, from }) => {
    if (from.port === seedPort) received += bytes.length;
  });
  const m = await HandClient.connect(swarm.port);
  t.teardown(() => m.socket.destroy());
  m.send({ hello: { udpPort: victim.port, offers: [] } });
  const w = await m.next("the Welcome of the attacker");
  if (w.body !== "welcome") throw new Error(`the attacker got ${w.body} ${SEEDED}`);
  const mid = w.welcome?.peerId ?? 0;
  swarm.foreign(mid);
  const key = requestAuth(w.welcome?.secret ?? new Uint8Array(0), sid);
  const info = w.welcome?.files?.find((f) => f.manifest?.name === file.name);
  if (info === undefined) throw new Error(`no ${file.name} in the Welcome ${SEEDED}`);
  const fileId = info.fileId ?? 0;
  const chunks = chunkCount(file.size);

  // Requests whose proof is the pair key itself (as a sniffed request carried it before
  // proofs were bound to requests), and requests with a proof bound to each one.
  const N = 150;
  const bound: Buffer[] = [];
  const items: { bytes: Buffer; port: number }[] = [];
  for (let i = 0; i < N; i++) {
    const first = (i * 64) % (chunks - 64);
    const list = Array.from({ length: 64 }, (_, k) => first + k);
    items.push({ bytes: encodeRequest(1000 + i, fileId, first, list, i, key), port: seedPort });
    const seq = 5000 + i;
    const req = encodeRequest(seq, fileId, first, list, 0x10000 + i, boundProof(key, seq, 0x10000 + i, fileId));
    bound.push(req);
    items.push({ bytes: req, port: seedPort });
  }
  const sentBytes = (list: readonly { bytes: Buffer }[]): number => list.reduce((n, d) => n + d.bytes.length, 0);
  // Every request is handled once one sent after them is answered (a chunk before the fix,
  // an address cookie after it); the bound ones again: replays.
  const marker = async (seq: number, token: number): Promise<number> => {
    let stop: () => void = () => {};
    const answered = new Promise<void>((resolve) => {
      stop = victim.listen(({ bytes }) => {
        const a = decodePeerDatagram(bytes);
        if ((a.kind === "chunk" && a.requestSeq === seq) || (a.kind === "cookie" && a.token === token)) resolve();
      });
    });
    const pair = [
      encodeRequest(seq, fileId, 0, [0], token, key),
      encodeRequest(seq, fileId, 0, [0], token, boundProof(key, seq, token, fileId)),
    ];
    for (const bytes of pair) await victim.send(bytes, seedPort);
    try {
      await within(answered, 10_000, "the seeder to answer the marker request");
    } finally {
      stop();
    }
    return sentBytes(pair.map((bytes) => ({ bytes })));
  };
  // The seeder learns of the attacker from the tracker, which under load can come after
  // the first datagrams: until then they are dropped as unknown-source and the counts
  // below fall short. So first send a bound request until one is answered.
  let sent = 0;
  {
    let known = false;
    let wake: () => void = () => {};
    const stop = victim.listen(({ bytes }) => {
      const a = decodePeerDatagram(bytes);
      if (a.kind === "cookie" || a.kind === "chunk") {
        known = true;
        wake();
      }
    });
    try {
      // A retransmission every 100 ms until answered, at most 20 s.
      for (let i = 0; !known; i++) {
        if (i >= 200) throw new Error(`the seeder never answered the attacker's address ${SEEDED}`);
        const seq = 8000 + i;
        const bytes = encodeRequest(seq, fileId, 0, [0], 0x30000 + i, boundProof(key, seq, 0x30000 + i, fileId));
        const answered = new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, 100);
        });
        await victim.send(bytes, seedPort);
        sent += bytes.length;
        await answered;
      }
    } finally {
      stop();
    }
  }
  await victim.sendAll(items);
  sent += sentBytes(items) + (await marker(9000, 0x20000));
  const replays = bound.map((bytes) => ({ bytes, port: seedPort }));
  await victim.sendAll(replays);
  sent += sentBytes(replays) + (await marker(9001, 0x20001));
  t.log(`the victim's address sent ${sent} bytes to the seeder and got ${received} back`);
  t.true(received <= AMPLIFICATION * sent, `${received} bytes back for ${sent} sent ${SEEDED}`);

  await m.leave();
  const result = await swarm.finish();
  swarm.logSummary(result);
  t.deepEqual(result.has(d), result.allFiles, `peer d ${SEEDED}`);
  const st = await readStats(s);
  const out = Number(st.unvalidatedBytesOut ?? Number.NaN);
  const inn = Number(st.unvalidatedBytesIn ?? Number.NaN);
  t.log(`seed: drops ${JSON.stringify(st.drops)}; to unvalidated addresses ${out} bytes for ${inn} received`);
  t.true(out <= AMPLIFICATION * inn, `seed counters: ${out} bytes out for ${inn} in ${SEEDED}`);
  t.true((st.drops["bad-proof"] ?? 0) >= N, `requests whose proof is the pair key are refused ${SEEDED}`);
  t.true((st.drops.replay ?? 0) >= N, `replayed requests are refused ${SEEDED}`);
});

// ------------------------------------------------------------------ 6. seed files that change under the seeder

/*
 * How this failed on 0850ae8: the downloader fetched the overwritten file again and again
 * (pieces never verify; nothing said so), and the seeder exited 5 once it read past the
 * end of the truncated file.
 */
test.serial("a seed file overwritten or truncated after it was offered: withdrawn, the seeder goes on", async (t) => {
  const swarm = await Swarm.start(t, { timeoutMs: 60_000 });
  const gate = await swarm.gate(2);
  const overwritten: FileSpec = { name: "overwritten.bin", size: 12 * MiB + 3 };
  const truncated: FileSpec = { name: "truncated.bin", size: 12 * MiB + 5 };
  const kept: FileSpec = { name: "kept.bin", size: 40 * KiB };
  const [s, d] = await Promise.all([
    swarm.startPeer({
      label: "seed",
      files: [overwritten, truncated, kept],
      gate,
      extraArgs: ["--stats", "stats.json"],
    }),
    swarm.startPeer({
      label: "d",
      files: [{ name: "d small", size: 900 }],
      gate,
      extraArgs: ["--stats", "stats.json"],
    }),
  ]);
  const [, did] = await Promise.all([s, d].map((p) => swarm.idOf(p)));
  if (did === undefined) throw new Error("unreachable");
  await swarm.waitFor("the downloader to acquire chunks of both big files", () =>
    [overwritten, truncated].every((f) => swarm.acquired(did, f.name) > 0),
  );
  t.false(
    swarm.completed(did, overwritten) || swarm.completed(did, truncated),
    `precondition: both big files still being fetched ${SEEDED}`,
  );
  const rng = new SeededRandom(SEED ^ 0x8);
  await writeFile(path.join(s.sharedDir, overwritten.name), randomBytes(rng, overwritten.size));
  await truncate(path.join(s.sharedDir, truncated.name), 1000);
  const stderrOf = (p: Peer): string => p.proc.stderr().toString("utf8");
  await swarm.waitFor(
    "the seeder to withdraw both files",
    () => [overwritten, truncated].every((f) => stderrOf(s).includes(`"${f.name}" changed on disk`)),
    [s],
  );
  // The seeder tells the tracker, which drops it as their holder (tracker-limits.test.ts
  // follows the swarm to its end); the downloader may have said once meanwhile that its
  // only holder does not serve them.
  const trackerErr = (): string => swarm.tracker.stderr().toString("utf8");
  await swarm.waitFor(
    "the tracker to hear that the seeder withdrew both files",
    () => [overwritten, truncated].every((f) => trackerErr().includes(`withdrew "${f.name}"`)),
    [s],
  );
  t.false(s.exited, `the seeder goes on ${SEEDED}\n${stderrOf(s)}`);
  t.true(swarm.completed(did, kept), `the untouched file was fetched ${SEEDED}`);
  const lines = stderrOf(d)
    .split("\n")
    .filter((l) => l.includes(`"${overwritten.name}": its only holder`));
  t.true(lines.length <= 1, `said at most once ${SEEDED}`);
  // Bounded: not the endless re-fetching of before.
  const received = swarm.acquired(did, overwritten.name);
  t.log(`d acquired ${received} chunk lines of ${overwritten.name}; stderr of d:\n${stderrOf(d)}`);
});

// ------------------------------------------------------------------ 7. a holder that never serves

/*
 * How this failed on 0850ae8: the downloader asked the silent holder for ever (one probe
 * at a time, a datagram to an address that never answered), and nothing said why the
 * file did not come.
 */
test.serial("a holder that offers a file and never serves it: dropped, said once, bounded bytes to it", async (t) => {
  // Not exclusive: ~3 MiB of data; its ~16 s go to the 8 backed-off requests to the silent holder.
  const swarm = await Swarm.start(t, { timeoutMs: 60_000, exclusive: false });
  const gate = await swarm.gate(2);
  const stats = ["--stats", "stats.json"];
  const [s, d] = await Promise.all([
    swarm.startPeer({ label: "seed", files: [{ name: "real.bin", size: 3 * MiB + 1 }], gate, extraArgs: stats }),
    swarm.startPeer({ label: "d", files: [{ name: "d small", size: 800 }], gate, extraArgs: stats }),
  ]);
  const [, did] = await Promise.all([s, d].map((p) => swarm.idOf(p)));
  if (did === undefined) throw new Error("unreachable");
  const rng = new SeededRandom(SEED ^ 0x6b);
  const content = randomBytes(rng, 200 * KiB + 3);
  const never = manifestOf("never served.bin", content);
  const fake = await FakePeer.join(swarm.port, [never]);
  t.teardown(() => fake.close());
  swarm.foreign(fake.id);
  let receivedFromD = 0;
  const dPort = udpSocketOf(d).port;
  fake.udp.listen(({ bytes, from }) => {
    if (from.port === dPort) receivedFromD += bytes.length;
  });
  const stderrOf = (p: Peer): string => p.proc.stderr().toString("utf8");
  await swarm.waitFor(
    "the downloader to say nobody serves the file",
    () => stderrOf(d).includes(`"${never.name}": no holder left that serves it`),
    [d],
  );
  const lines = stderrOf(d)
    .split("\n")
    .filter((l) => l.includes(`"${never.name}"`) && l.includes("holder"));
  t.log(lines.join("\n"));
  // Its address never answered: it got one request at a time, at most 8, then nothing.
  t.true(receivedFromD <= 8 * 200, `${receivedFromD} bytes of requests to the silent holder ${SEEDED}`);
  const before = receivedFromD;
  await swarm.waitFor("the legit file to arrive", () => swarm.completed(did, { name: "real.bin", size: 3 * MiB + 1 }));
  await fake.client.leave();
  const result = await swarm.finish();
  swarm.logSummary(result);
  t.deepEqual(result.has(d), ["d small", "real.bin"], `peer d ${SEEDED}`);
  t.is(receivedFromD, before, `nothing more asked of it ${SEEDED}`);
});

test.serial(
  "a client claims every chunk of a legit file it never fetched: no ACQUIRED, no false DISCONNECT",
  async (t) => {
    const swarm = await Swarm.start(t, { timeoutMs: 60_000 });
    const gate = await swarm.gate(2);
    const legit = { name: "legit.bin", size: 2 * MiB + 7 };
    const small = { name: "d small", size: 900 };
    const [s, d] = await Promise.all([
      swarm.startPeer({ label: "seed", files: [legit], gate }),
      swarm.startPeer({ label: "d", files: [small], gate }),
    ]);
    const [sid, did] = await Promise.all([s, d].map((p) => swarm.idOf(p)));
    if (sid === undefined || did === undefined) throw new Error("unreachable");
    const fake = await FakePeer.join(swarm.port);
    t.teardown(() => fake.close());
    swarm.foreign(fake.id);
    const rng = new SeededRandom(SEED ^ 0x6c);
    let claimed = 0;
    for (const info of fake.welcome.files ?? []) {
      const chunks = chunkCount(Number(info.manifest?.size ?? 0));
      const fileId = info.fileId ?? 0;
      const holder = info.manifest?.name === legit.name ? sid : did;
      // No receipt at all; then made-up receipts from the real holder for every piece; then
      // receipts naming the attacker itself as the holder.
      fake.client.send({ have: { fileId, runs: [0, chunks] } });
      for (const who of [holder, fake.id]) {
        const entries = [];
        for (let piece = 0; piece * 128 < chunks; piece++) {
          entries.push({ piece, holder: who, receipt: randomBytes(rng, 8), mask: undefined });
        }
        fake.client.send({ have: { fileId, runs: [0, chunks], receipts: encodeReceipts(entries) } });
      }
      claimed += chunks;
    }
    t.true(claimed > 4000, `precondition: the attacker claimed ${claimed} chunks of the legit files ${SEEDED}`);
    await fake.client.leave(); // its frames are handled in order, before its DISCONNECT block
    const result = await swarm.finish();
    swarm.logSummary(result);
    t.deepEqual(
      linesOf(swarm.tracker.stdout(), fake.id),
      [`PEER ${fake.id} CONNECT: OFFERS 0`, `PEER ${fake.id} DISCONNECT: RECEIVED 0`],
      `the attacker's whole transcript ${SEEDED}`,
    );
    t.regex(
      swarm.tracker.stderr().toString(),
      new RegExp(`peer ${fake.id}: \\d+ chunks of .* without a valid receipt`),
    );
    t.deepEqual(result.has(d), [small.name, legit.name], `peer d ${SEEDED}`);
    t.deepEqual(result.has(s), [small.name, legit.name], `peer seed ${SEEDED}`);
  },
);
