/**
 * Block repair alone: a piece that failed verification, holders that answer with block
 * hashes (or lie, or stay silent), and what goes back to the picker and whom it blames.
 */
import test from "ava";
import { BlockRepair, HASH_ATTEMPTS, type RepairPeer, SourceTrust } from "../../src/transfer/block-repair.js";
import { newCounters } from "../../src/transfer/counters.js";
import { FileState } from "../../src/transfer/file-state.js";
import { blockHashes } from "../../src/transfer/piece-hash.js";
import type { DownloadingPiece } from "../../src/transfer/piece-picker.js";
import { CHUNK_SIZE } from "../../src/wire/limits.js";
import type { HashReplyDatagram } from "../../src/wire/peer-datagram.js";
import { manifestOf, randomBytes } from "../helpers/fake-network.js";

type Peer = RepairPeer & { readonly id: number };

function peer(id: number): Peer {
  return { id, trust: new SourceTrust(), rto: () => 100 };
}

/** A one-piece file whose chunks all came from `source`, block 2 (chunks 8..11) corrupted. */
function setup(peers: Peer[], source: number) {
  const data = randomBytes(3, 128 * CHUNK_SIZE);
  const file = new FileState(1, manifestOf("f", data), "downloading");
  for (const p of peers) file.picker.addHolder(p.id, [], true);
  const pick = file.picker.pick(source, 128, { u32: () => 0 });
  if (pick === undefined) throw new Error("nothing to pick");
  const piece: DownloadingPiece = pick.piece;
  file.picker.markRequested(piece, pick.chunks, source, 0);
  const assembly = file.assembly(0);
  data.copy(assembly.data);
  assembly.data[9 * CHUNK_SIZE] = (assembly.data[9 * CHUNK_SIZE] ?? 0) ^ 1;
  for (const c of pick.chunks) {
    file.picker.requestAnswered(c);
    file.picker.markReceived(c, source);
  }
  const counters = newCounters();
  const sent: Array<{ to: number; token: number }> = [];
  const timers = new Map<number, number>();
  let token = 100;
  let wakes = 0;
  const repair = new BlockRepair<Peer>({
    counters,
    holders: (f, p) => peers.filter((r) => f.holds(r.id, p)),
    peer: (id) => peers.find((r) => r.id === id),
    current: () => true,
    sendHashRequest: (to, _fileId, _piece, t) => sent.push({ to: to.id, token: t }),
    token: () => token++,
    now: () => 0,
    timers: { set: (t, at) => timers.set(t, at), clear: (t) => timers.delete(t) },
    wake: () => wakes++,
    maxBadChunks: 4,
  });
  const reply = (t: number, hashes: Buffer): HashReplyDatagram => ({
    kind: "hash-reply",
    seq: 1,
    fileId: 1,
    piece: 0,
    token: t,
    hashes,
  });
  return { data, file, piece, assembly, counters, sent, timers, repair, reply, wakes: () => wakes };
}

/** The piece is whole and fails verification: repair starts. */
function fail(s: ReturnType<typeof setup>): void {
  const verdict = s.file.verify(s.assembly);
  if (verdict.ok) throw new Error("the piece should fail");
  s.repair.pieceFailed(s.file, s.piece, s.assembly, verdict.blocks);
}

test("block repair: trusted hashes from a holder send only the bad block back, and blame its source", (t) => {
  const a = peer(1);
  const b = peer(2);
  const s = setup([a, b], a.id);
  fail(s);
  t.is(s.counters.pieceHashFailures, 1);
  t.is(s.counters.hashRequestsSent, 1);
  const [request] = s.sent;
  if (request === undefined) throw new Error("no hash request");
  t.is(s.timers.get(request.token), 100, "its deadline: the holder's RTO");
  const from = request.to === a.id ? a : b;
  t.is(s.repair.onReply(from, s.reply(request.token, blockHashes(s.data))), undefined);
  t.is(s.timers.size, 0);
  t.is(s.piece.received, 124, "block 2's four chunks go back");
  t.is(s.file.picker.lostChunks, 4);
  t.is(s.counters.badChunksRefetched, 4);
  t.is(a.trust.badChunks, 4);
  t.true(a.trust.banned, "4 bad chunks of 0 good ones: banned at maxBadChunks 4");
  t.is(b.trust.badChunks, 0);
});

test("block repair: hashes that do not match the manifest are dropped, and another holder is asked", (t) => {
  const a = peer(1);
  const b = peer(2);
  const s = setup([a, b], a.id);
  fail(s);
  const first = s.sent[0];
  if (first === undefined) throw new Error("no hash request");
  const liar = first.to === a.id ? a : b;
  t.is(s.repair.onReply(liar, s.reply(first.token, Buffer.alloc(32 * 32))), "bad-hashes");
  t.is(s.sent.length, 2);
  t.not(s.sent[1]?.to, first.to, "the next attempt goes to the other holder");
  t.is(s.repair.onReply(liar, s.reply(first.token, blockHashes(s.data))), "stale", "the first token is spent");
});

test("block repair: after HASH_ATTEMPTS silent holders the piece is fetched again whole, every source blamed", (t) => {
  const a = peer(1);
  const s = setup([a], a.id);
  fail(s);
  for (let attempt = 0; attempt < HASH_ATTEMPTS; attempt++) {
    const last = s.sent[s.sent.length - 1];
    if (last === undefined) throw new Error("no hash request");
    t.is(s.timers.get(last.token), 100 * 2 ** attempt, `attempt ${attempt}: the deadline backs off`);
    s.repair.onTimeout(last.token);
  }
  t.is(s.sent.length, HASH_ATTEMPTS);
  t.is(s.piece.received, 0);
  t.is(s.piece.owner, undefined);
  t.is(a.trust.badChunks, 1, "one blame for the whole piece's only source");
  t.true(s.wakes() > 0);
});
