/**
 * Chunk receipts (issue 15, 6b): the tracker records and prints (ACQUIRED) only chunks a
 * client can show it received, and the data path carries what it needs to show it.
 */
import test from "ava";
import { acquiredLine } from "../../src/tracker/output.js";
import { Registry, type RegistrySink } from "../../src/tracker/registry.js";
import { RECEIPT_BYTES, receiptKey, receiptOf, receiptShares } from "../../src/wire/auth.js";
import { CHUNK_SIZE, CHUNKS_PER_PIECE } from "../../src/wire/limits.js";
import { decodeReceipts, encodeReceipts, type ReceiptEntry } from "../../src/wire/receipts.js";
import type { CheckedManifest, FrameBody, udpswarm } from "../../src/wire/tracker-frame.js";
import { FakeNetwork, manifestOf, randomBytes } from "../helpers/fake-network.js";

// ------------------------------------------------------------------ a registry that checks receipts

class Sink implements RegistrySink {
  readonly lines: string[] = [];
  readonly logs: string[] = [];
  readonly frames: Array<{ to: number; body: FrameBody }> = [];
  print(lines: string[]): void {
    this.lines.push(...lines);
  }
  acquired(peerId: number, name: string, chunks: number, runs: ReadonlyArray<readonly [number, number]>): void {
    for (const [first, count] of runs) {
      for (let c = first; c < first + count; c++) this.lines.push(acquiredLine(peerId, c, chunks, name));
    }
  }
  send(to: number, body: FrameBody): void {
    this.frames.push({ to, body });
  }
  sendUpdates(): void {}
  pending(): void {}
  log(line: string): void {
    this.logs.push(line);
  }
  acquiredBy(peerId: number): string[] {
    return this.lines.filter((l) => l.startsWith(`PEER ${peerId} ACQUIRED`));
  }
  welcomeOf(peerId: number): udpswarm.IWelcome | undefined {
    return this.frames.find((f) => f.to === peerId && f.body.welcome !== undefined)?.body.welcome ?? undefined;
  }
}

/** 3 pieces: 128 + 128 + 10 chunks. */
const SIZE = (2 * CHUNKS_PER_PIECE + 10) * CHUNK_SIZE - 100;
const FILE_BYTES = randomBytes(7, SIZE);
const MANIFEST: CheckedManifest = manifestOf("shared.bin", FILE_BYTES);

/** Peer n's secret (the registry's injected random hands out 16 bytes of n, per join). */
const secretOf = (n: number): Buffer => Buffer.alloc(16, n);

/** A registry that requires receipts; peer n gets secretOf(n). */
function checking(sink: Sink): Registry {
  let draws = 0;
  return new Registry(sink, (n) => Buffer.alloc(n, ++draws), {
    maxFilesPerPeer: 100,
    maxManifestBytesPerPeer: 1 << 30,
    maxManifestBytes: 1 << 30,
    requireReceipts: true,
  });
}

function setup(): { registry: Registry; sink: Sink; fileId: number } {
  const sink = new Sink();
  const registry = checking(sink);
  registry.join("10.0.0.1", 7001, [MANIFEST]); // peer 1: the seeder
  registry.join("10.0.0.2", 7002, []); // peer 2: a downloader
  registry.flush();
  const fileId = registry.snapshot().files[0]?.id ?? 0;
  return { registry, sink, fileId };
}

/** Chunk indices of `piece` (all of them, or those of `mask`). */
function chunksOf(piece: number, mask?: Uint8Array): number[] {
  const first = piece * CHUNKS_PER_PIECE;
  const n = Math.min(CHUNKS_PER_PIECE, MANIFEST.chunks - first);
  const out: number[] = [];
  for (let i = 0; i < n; i++) if (mask === undefined || ((mask[i >> 3] ?? 0) >> (i & 7)) & 1) out.push(first + i);
  return out;
}

/** The receipt `holder` gives `receiver` for `piece` of `fileId` (the chunks of `mask`, or all). */
function receipt(holder: number, receiver: number, fileId: number, piece: number, mask?: Uint8Array): ReceiptEntry {
  const key = receiptKey(secretOf(holder), receiver, fileId);
  return { piece, holder, receipt: receiptOf(key, chunksOf(piece, mask)), mask };
}

const runOf = (piece: number): number[] => [piece * CHUNKS_PER_PIECE, chunksOf(piece).length];

test("a claim without a receipt prints nothing, records nothing, and is said once on stderr", (t) => {
  const { registry, sink, fileId } = setup();
  t.is(registry.have(2, fileId, [0, MANIFEST.chunks]), undefined);
  t.deepEqual(sink.acquiredBy(2), []);
  t.is(registry.holding(2, fileId)?.runs.length ?? 0, 0);
  t.is(registry.unreceiptedChunks, MANIFEST.chunks);
  registry.have(2, fileId, [0, 5]);
  t.is(registry.unreceiptedChunks, MANIFEST.chunks + 5);
  t.is(sink.logs.filter((l) => l.includes("without a valid receipt")).length, 1, "one line per offender");
  registry.leave(2);
  t.true(sink.lines.includes("PEER 2 DISCONNECT: RECEIVED 0"), "no false DISCONNECT block");
});

test("a valid receipt prints its piece's chunks, and only those", (t) => {
  const { registry, sink, fileId } = setup();
  const receipts = encodeReceipts([receipt(1, 2, fileId, 0)]);
  registry.have(2, fileId, [0, 2 * CHUNKS_PER_PIECE], receipts);
  t.is(sink.acquiredBy(2).length, CHUNKS_PER_PIECE);
  t.is(sink.acquiredBy(2)[0], `PEER 2 ACQUIRED: CHUNK 1/${MANIFEST.chunks} shared.bin`);
  t.deepEqual(registry.holding(2, fileId)?.runs, [[0, CHUNKS_PER_PIECE]]);
  t.is(registry.unreceiptedChunks, CHUNKS_PER_PIECE);
  // The last, short piece too; then the file is complete and in the DISCONNECT block.
  registry.have(2, fileId, runOf(1), encodeReceipts([receipt(1, 2, fileId, 1)]));
  registry.have(2, fileId, runOf(2), encodeReceipts([receipt(1, 2, fileId, 2)]));
  t.is(sink.acquiredBy(2).length, MANIFEST.chunks);
  t.true(registry.holding(2, fileId)?.complete);
  registry.leave(2);
  t.true(sink.lines.includes("PEER 2 DISCONNECT: RECEIVED 1"));
});

test("a receipt for another receiver, file or piece, from a non-holder, or altered, is refused", (t) => {
  const { registry, sink, fileId } = setup();
  registry.join("10.0.0.3", 7003, []); // peer 3: holds nothing
  const good = receipt(1, 2, fileId, 0);
  const flipped = Buffer.from(good.receipt);
  flipped[0] = (flipped[0] ?? 0) ^ 1;
  const cases: Array<[string, ReceiptEntry]> = [
    ["for another receiver", receipt(1, 3, fileId, 0)],
    ["for another file", receipt(1, 2, fileId + 1, 0)],
    ["for another piece", { ...receipt(1, 2, fileId, 1), piece: 0 }],
    ["from a peer that holds nothing", receipt(3, 2, fileId, 0)],
    ["from the claimant itself", receipt(2, 2, fileId, 0)],
    ["altered", { ...good, receipt: flipped }],
    ["naming another holder", { ...good, holder: 3 }],
    ["for half the piece, claiming all of it", { ...receipt(1, 2, fileId, 0, Uint8Array.of(0xff)), mask: undefined }],
  ];
  for (const [why, entry] of cases) {
    registry.have(2, fileId, runOf(0), encodeReceipts([entry]));
    t.deepEqual(sink.acquiredBy(2), [], why);
  }
  t.is(registry.have(2, fileId, runOf(0), Uint8Array.of(1, 2, 3)), `malformed receipts for file ${fileId}`);
  t.deepEqual(sink.acquiredBy(2), []);
});

test("a piece from two holders: one entry per holder with its mask; each proves its own chunks", (t) => {
  const { registry, sink, fileId } = setup();
  registry.join("10.0.0.3", 7003, [MANIFEST]); // peer 3: a second seeder
  const low = new Uint8Array(16);
  low.fill(0xff, 0, 8); // chunks 0..63
  const high = new Uint8Array(16);
  high.fill(0xff, 8); // chunks 64..127
  // Only the first half proven: only it is printed.
  registry.have(2, fileId, runOf(0), encodeReceipts([receipt(1, 2, fileId, 0, low)]));
  t.is(sink.acquiredBy(2).length, 64);
  registry.have(2, fileId, runOf(0), encodeReceipts([receipt(1, 2, fileId, 0, low), receipt(3, 2, fileId, 0, high)]));
  t.is(sink.acquiredBy(2).length, CHUNKS_PER_PIECE, "the second half once, the first not again");
});

test("a departed holder's receipts, still in flight, count; a departed non-holder's do not", (t) => {
  const { registry, sink, fileId } = setup();
  registry.join("10.0.0.3", 7003, [MANIFEST]); // a second seeder keeps the file available
  registry.join("10.0.0.4", 7004, []); // peer 4 holds nothing
  registry.leave(1);
  registry.leave(4);
  registry.have(2, fileId, runOf(0), encodeReceipts([receipt(1, 2, fileId, 0)]));
  t.is(sink.acquiredBy(2).length, CHUNKS_PER_PIECE);
  registry.have(2, fileId, runOf(1), encodeReceipts([receipt(4, 2, fileId, 1)]));
  t.is(sink.acquiredBy(2).length, CHUNKS_PER_PIECE);
});

test("a holder that withdrew the file: its receipts given before still count", (t) => {
  const { registry, sink, fileId } = setup();
  registry.join("10.0.0.3", 7003, [MANIFEST]);
  registry.withdraw(1, fileId);
  registry.have(2, fileId, runOf(0), encodeReceipts([receipt(1, 2, fileId, 0)]));
  t.is(sink.acquiredBy(2).length, CHUNKS_PER_PIECE);
});

test("resume: a restart that proves its earlier life reports that life's chunks without receipts, and no more", (t) => {
  const { registry, sink, fileId } = setup();
  registry.have(2, fileId, runOf(0), encodeReceipts([receipt(1, 2, fileId, 0)]));
  registry.leave(2); // killed mid-download
  // Wrong secret: not recognised.
  registry.join("10.0.0.2", 7012, [], undefined, [], [], undefined, undefined, [], {
    peerId: 2,
    secret: secretOf(99),
  });
  registry.flush();
  t.is(sink.welcomeOf(3)?.resumed ?? false, false);
  registry.have(3, fileId, runOf(0));
  t.deepEqual(sink.acquiredBy(3), []);
  // The right one (peer 4 now): the chunks peer 2 had, and only those, without receipts.
  registry.join("10.0.0.2", 7022, [], undefined, [], [], undefined, undefined, [], {
    peerId: 2,
    secret: secretOf(2),
  });
  registry.flush();
  const w = sink.welcomeOf(4);
  t.true(w?.resumed);
  t.deepEqual(
    (w?.resumable ?? []).map((h) => ({ fileId: h.fileId, runs: h.runs, complete: h.complete })),
    [{ fileId, runs: runOf(0), complete: false }],
  );
  registry.have(4, fileId, [0, 2 * CHUNKS_PER_PIECE]);
  t.is(sink.acquiredBy(4).length, CHUNKS_PER_PIECE, "piece 0 only");
  // A receipt addressed to the earlier life (kept in its staging record) proves piece 1.
  registry.have(4, fileId, runOf(1), undefined, encodeReceipts([receipt(1, 2, fileId, 1)]));
  t.is(sink.acquiredBy(4).length, 2 * CHUNKS_PER_PIECE);
  // An earlier life is taken up once.
  registry.join("10.0.0.2", 7032, [], undefined, [], [], undefined, undefined, [], {
    peerId: 2,
    secret: secretOf(2),
  });
  registry.flush();
  t.is(sink.welcomeOf(5)?.resumed ?? false, false);
  registry.have(5, fileId, runOf(1), undefined, encodeReceipts([receipt(1, 2, fileId, 1)]));
  t.deepEqual(sink.acquiredBy(5), [], "receipts of a life it did not prove are not its own");
});

test("a granted departure leaves nothing to inherit", (t) => {
  const { registry, sink, fileId } = setup();
  for (const p of [0, 1, 2]) registry.have(2, fileId, runOf(p), encodeReceipts([receipt(1, 2, fileId, p)]));
  registry.readyToLeave(2);
  registry.flush();
  t.true(sink.frames.some((f) => f.to === 2 && f.body.leaveGranted !== undefined));
  registry.leave(2);
  registry.join("10.0.0.2", 7012, [], undefined, [], [], undefined, undefined, [], { peerId: 2, secret: secretOf(2) });
  registry.flush();
  t.is(sink.welcomeOf(3)?.resumed ?? false, false);
});

test("sync: a piece copied from the local file counts when its hash is in a version of that name the peer held whole", (t) => {
  const sink = new Sink();
  const registry = checking(sink);
  const v1Bytes = randomBytes(21, 3 * CHUNKS_PER_PIECE * CHUNK_SIZE);
  const v2Bytes = Buffer.from(v1Bytes);
  v2Bytes.fill(0x42, 2 * CHUNKS_PER_PIECE * CHUNK_SIZE); // the third piece edited
  const v1 = manifestOf("doc.txt", v1Bytes);
  const v2 = manifestOf("doc.txt", v2Bytes);
  const sync = (tag: number) => ({ tags: [{ mtimeMs: tag, ancestry: [] }] });
  const a = registry.join("10.0.0.1", 7001, [v1], undefined, [], [], sync(100)).peerId;
  const b = registry.join("10.0.0.2", 7002, [v1], undefined, [], [], sync(100)).peerId; // holds v1 whole
  const c = registry.join("10.0.0.3", 7003, [], undefined, [], [], { tags: [] }).peerId; // holds nothing
  t.is(registry.update(a, v2, { mtimeMs: 200, ancestry: [v1.sha256] }), undefined);
  registry.flush();
  const v2Id = registry.snapshot().files.find((f) => f.name === "doc.txt" && f.completeHolders === 1)?.id ?? 0;
  registry.have(b, v2Id, [0, 3 * CHUNKS_PER_PIECE]);
  t.is(sink.acquiredBy(b).length, 2 * CHUNKS_PER_PIECE, "the two pieces v1 has in common, not the edited one");
  registry.have(c, v2Id, [0, 3 * CHUNKS_PER_PIECE]);
  t.deepEqual(sink.acquiredBy(c), [], "a sync peer that held no version of the name");
});

// ------------------------------------------------------------------ wire

test("receipt entries round-trip; a cut or an over-long mask is malformed", (t) => {
  const entries: ReceiptEntry[] = [
    { piece: 0, holder: 1, receipt: Buffer.alloc(RECEIPT_BYTES, 1), mask: undefined },
    { piece: 0xffffffff, holder: 7, receipt: Buffer.alloc(RECEIPT_BYTES, 2), mask: Uint8Array.of(1, 2, 3) },
  ];
  const bytes = encodeReceipts(entries);
  t.is(bytes.length, 17 + 20);
  const back = decodeReceipts(bytes);
  t.deepEqual(
    back?.map((e) => ({ ...e, receipt: Buffer.from(e.receipt), mask: e.mask && Buffer.from(e.mask) })),
    entries.map((e) => ({ ...e, receipt: Buffer.from(e.receipt), mask: e.mask && Buffer.from(e.mask) })),
  );
  t.is(decodeReceipts(bytes.subarray(0, bytes.length - 1)), undefined);
  const long = Buffer.alloc(17 + 17);
  long[16] = 17;
  t.is(decodeReceipts(long), undefined);
  t.deepEqual(decodeReceipts(new Uint8Array(0)), []);
});

test("a receipt is the XOR of its chunks' shares: shares of chunks not sent cannot be derived from those sent", (t) => {
  const key = receiptKey(secretOf(1), 2, 5);
  const chunks = [384, 385, 386];
  const shares = receiptShares(key, chunks);
  const xor = Buffer.alloc(RECEIPT_BYTES);
  for (let i = 0; i < chunks.length; i++) {
    for (let b = 0; b < RECEIPT_BYTES; b++) xor[b] = (xor[b] ?? 0) ^ (shares[i * 16 + b] ?? 0);
  }
  t.deepEqual(receiptOf(key, chunks), xor);
  // Every share differs (a PRF of the chunk index), and so does the key per holder, receiver, file.
  t.is(new Set(chunks.map((_, i) => shares.subarray(i * 16, i * 16 + 8).toString("hex"))).size, 3);
  const keys = [receiptKey(secretOf(1), 3, 5), receiptKey(secretOf(1), 2, 6), receiptKey(secretOf(2), 2, 5)];
  for (const other of keys) t.notDeepEqual(other, key);
});

// ------------------------------------------------------------------ the data path carries them

test("engine: every verified piece comes with receipts that the holders' secrets prove, at 20% loss from two seeders", async (t) => {
  const net = new FakeNetwork(0x7ec, { delayMs: 3, loss: 0.2 });
  const data = randomBytes(11, 600 * 1024 + 5);
  const manifest = manifestOf("f.bin", data);
  const FILE = 1;
  const seeders = [net.addNode(), net.addNode()];
  const b = net.addNode();
  for (const s of seeders) {
    s.store.seed(FILE, Buffer.from(data));
    s.engine.addFile(FILE, manifest, "seeding");
  }
  b.store.startDownload(FILE, data.length);
  b.engine.addFile(FILE, manifest, "downloading");
  for (const n of [...seeders, b]) {
    for (const o of [...seeders, b]) if (o !== n) n.engine.addRemote(o.index, o.host, o.port);
  }
  for (const s of seeders) b.engine.holdersChanged(s.index, FILE, [], true);
  await net.runUntil(() => b.completed.has(FILE));
  const receipts = b.receipts.get(FILE) ?? [];
  const pieces = manifest.pieceSha256.length;
  const covered = new Map<number, number>();
  for (const r of receipts) {
    const holder = [...seeders, b].find((n) => n.index === r.holder);
    t.truthy(holder, `holder ${r.holder} is a seeder`);
    const first = r.piece * manifest.chunksPerPiece;
    const n = Math.min(manifest.chunksPerPiece, manifest.chunks - first);
    const chunks: number[] = [];
    for (let i = 0; i < n; i++)
      if (r.mask === undefined || ((r.mask[i >> 3] ?? 0) >> (i & 7)) & 1) chunks.push(first + i);
    const expected = receiptOf(receiptKey(holder?.secret ?? Buffer.alloc(0), b.index, FILE), chunks);
    t.deepEqual(Buffer.from(r.receipt), expected, `piece ${r.piece} from ${r.holder}`);
    covered.set(r.piece, (covered.get(r.piece) ?? 0) + chunks.length);
  }
  t.is(covered.size, pieces, "every piece has receipts");
  for (const [piece, n] of covered) {
    t.is(n, Math.min(manifest.chunksPerPiece, manifest.chunks - piece * manifest.chunksPerPiece), `piece ${piece}`);
  }
});
