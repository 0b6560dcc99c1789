/**
 * The piece picker alone, without any network: which chunks it hands which peer, and how
 * the chunk states move under its verbs. A file of 4 pieces of 8 chunks (the last one 4)
 * keeps the numbers readable.
 */
import test from "ava";
import { ChunkState, PiecePicker } from "../../src/transfer/piece-picker.js";

const A = 1;
const B = 2;
/** The endgame's engine side, when any second request is worth it. */
const ALWAYS = (): boolean => true;
/** Cursor at piece 0: new pieces are scanned from the start. */
const ZERO = { u32: () => 0 };

function picker(): PiecePicker {
  return new PiecePicker({ chunks: 28, chunksPerPiece: 8 }, false);
}

/** A picks, and the picked chunks are marked requested of A. */
function take(p: PiecePicker, remote: number, budget: number) {
  const pick = p.pick(remote, budget, ZERO);
  if (pick !== undefined) p.markRequested(pick.piece, pick.chunks, remote, 0);
  return pick;
}

test("picker: a new piece first, its chunks ascending, then more of the same piece", (t) => {
  const p = picker();
  p.addHolder(A, [], true);
  const first = take(p, A, 3);
  t.deepEqual(first?.chunks, [0, 1, 2]);
  t.false(first?.again);
  t.is(first?.piece.owner, A);
  t.deepEqual(take(p, A, 3)?.chunks, [3, 4, 5], "the active piece goes on");
  t.deepEqual(take(p, A, 3)?.chunks, [6, 7]);
  t.deepEqual(take(p, A, 3)?.chunks, [8, 9, 10], "then a new piece");
});

test("picker: a piece another peer is fetching is not shared before the endgame", (t) => {
  const p = picker();
  p.addHolder(A, [], true);
  p.addHolder(B, [], true);
  t.deepEqual(take(p, A, 4)?.chunks, [0, 1, 2, 3]);
  t.deepEqual(take(p, B, 4)?.chunks, [8, 9, 10, 11], "B starts its own piece");
  p.disown(A);
  t.deepEqual(take(p, B, 4)?.chunks, [4, 5, 6, 7], "A's piece, once disowned, goes to B");
});

test("picker: rarest first among the candidates, only pieces the peer holds", (t) => {
  const p = picker();
  p.addHolder(A, [], true);
  p.addHolder(B, [[0, 16]], false); // pieces 0 and 1
  t.deepEqual([...p.availability], [2, 2, 1, 1]);
  t.is(take(p, A, 1)?.piece.piece, 2, "piece 2: held by A alone");
  t.is(take(p, B, 1)?.piece.piece, 0, "B holds only 0 and 1");
  p.removeHolder(B);
  t.deepEqual([...p.availability], [1, 1, 1, 1]);
  t.is(p.pick(B, 1, ZERO), undefined, "a peer that left holds nothing");
});

test("picker: lost chunks go out again first, a piece's losses together once none of it is in flight", (t) => {
  const p = picker();
  p.addHolder(A, [], true);
  take(p, A, 8); // piece 0 whole
  p.requestAnswered(0);
  p.markReceived(0, A);
  p.markLost(1);
  p.markLost(3);
  t.is(p.lostChunks, 2);
  // Chunks 2, 4..7 are still in flight: the losses wait (new work goes on meanwhile).
  const meanwhile = take(p, A, 2);
  t.deepEqual(meanwhile?.chunks, [8, 9]);
  t.false(meanwhile?.again);
  for (const c of [2, 4, 5, 6, 7]) {
    p.requestAnswered(c);
    p.markReceived(c, A);
  }
  const again = take(p, A, 8);
  t.deepEqual(again?.chunks, [1, 3], "one request for the piece's losses");
  t.true(again?.again);
  t.is(p.lostChunks, 0);
});

test("picker: lost pieces are served in the order of their first loss", (t) => {
  const p = picker();
  p.addHolder(A, [], true);
  take(p, A, 8);
  take(p, A, 8);
  p.markLost(9); // piece 1 first
  for (let c = 10; c < 16; c++) p.markLost(c);
  p.markLost(8);
  p.markLost(15);
  for (let c = 0; c < 8; c++) p.markLost(c);
  t.deepEqual(take(p, A, 64)?.chunks, [8, 9, 10, 11, 12, 13, 14, 15]);
  t.deepEqual(take(p, A, 64)?.chunks, [0, 1, 2, 3, 4, 5, 6, 7]);
});

test("picker: a chunk named by two requests is lost only when both are over", (t) => {
  const p = picker();
  p.addHolder(A, [], true);
  p.addHolder(B, [], true);
  const pick = take(p, A, 8);
  if (pick === undefined) throw new Error("nothing picked");
  p.markRequested(pick.piece, [5], B, 0);
  p.markLost(5);
  t.is(pick.piece.state[5], ChunkState.requested);
  p.markLost(5);
  t.is(pick.piece.state[5], ChunkState.lost);
});

test("picker: a lost chunk that arrives after all is received, and a second copy is refused", (t) => {
  const p = picker();
  p.addHolder(A, [], true);
  const pick = take(p, A, 2);
  p.markLost(0);
  t.is(p.lostChunks, 1);
  t.true(p.markReceived(0, A));
  t.is(p.lostChunks, 0);
  t.false(p.markReceived(0, B), "already here");
  t.false(p.markReceived(27, A), "its piece is not being fetched");
  t.is(pick?.piece.received, 1);
  t.is(p.sourceOf(pick?.piece ?? (undefined as never), 0), A);
});

test("picker: endgame asks a second peer for what is still in flight, never the same peer twice", (t) => {
  const p = new PiecePicker({ chunks: 8, chunksPerPiece: 8 }, false);
  p.addHolder(A, [], true);
  p.addHolder(B, [], true);
  take(p, A, 8);
  t.true(p.inEndgame);
  t.is(p.pick(B, 8, ZERO), undefined, "nothing new, nothing lost");
  t.is(p.pickEndgame(A, 8, ALWAYS), undefined, "A has them all in flight already");
  const dup = p.pickEndgame(B, 8, ALWAYS);
  t.deepEqual(dup?.chunks, [0, 1, 2, 3, 4, 5, 6, 7]);
  if (dup !== undefined) p.markRequested(dup.piece, dup.chunks, B, 0);
  t.is(p.pickEndgame(A, 8, ALWAYS), undefined, "two requests per chunk at most");
  p.markLost(3); // A's request for it is over; B's still names it
  t.is(dup?.piece.state[3], ChunkState.requested);
  t.is(p.lostChunks, 0);
});

test("picker: endgame asks again only what the engine says is worth it, and never-asked chunks always", (t) => {
  const p = new PiecePicker({ chunks: 8, chunksPerPiece: 8 }, false);
  p.addHolder(A, [], true);
  p.addHolder(B, [], true);
  const first = p.pick(A, 4, ZERO);
  if (first !== undefined) p.markRequested(first.piece, [0, 1], A, 100);
  if (first !== undefined) p.markRequested(first.piece, [2, 3], A, 200);
  p.pick(A, 4, ZERO); // chunks 4-7 reserved for A (the piece's owner) but never sent
  t.true(p.inEndgame);
  const asked: [number, number][] = [];
  const late = (holder: number, askedAt: number): boolean => {
    asked.push([holder, askedAt]);
    return askedAt < 150;
  };
  t.deepEqual(p.pickEndgame(B, 8, late)?.chunks, [0, 1, 4, 5, 6, 7], "chunks 2 and 3 were asked too recently");
  t.deepEqual(asked, [
    [A, 100],
    [A, 100],
    [A, 200],
    [A, 200],
  ]);
  t.is(p.pickEndgame(B, 8, () => false)?.chunks.join(), "4,5,6,7", "nothing in flight is asked again");
});

test("picker: no endgame while chunks are lost or pieces are not started", (t) => {
  const p = picker();
  p.addHolder(A, [], true);
  take(p, A, 8);
  t.false(p.inEndgame);
  t.is(p.pickEndgame(A, 8, ALWAYS), undefined);
});

test("picker: bad blocks are fetched again, and a whole failed piece from anyone", (t) => {
  const p = new PiecePicker({ chunks: 8, chunksPerPiece: 8 }, false);
  p.addHolder(A, [], true);
  p.addHolder(B, [], true);
  const pick = take(p, A, 8);
  if (pick === undefined) throw new Error("nothing picked");
  for (let c = 0; c < 8; c++) {
    p.requestAnswered(c);
    p.markReceived(c, A);
  }
  t.true(pick.piece.complete);
  p.restoreBlocks(pick.piece, 4, 4);
  t.is(pick.piece.received, 4);
  t.is(p.sourceOf(pick.piece, 4), -1, "the bad chunks' source is forgotten (it was blamed)");
  const again = take(p, B, 8);
  t.deepEqual(again?.chunks, [4, 5, 6, 7]);
  t.true(again?.again);
  p.restorePiece(pick.piece);
  t.is(pick.piece.owner, undefined);
  t.is(pick.piece.received, 0);
});

test("picker: a verified piece is done and no longer picked", (t) => {
  const p = picker();
  p.addHolder(A, [], true);
  const pick = take(p, A, 8);
  if (pick === undefined) throw new Error("nothing picked");
  p.markVerified(pick.piece);
  t.true(p.done.has(0));
  t.is(p.activePiece(0), undefined);
  t.is(take(p, A, 8)?.piece.piece, 1);
  t.true(new PiecePicker({ chunks: 28, chunksPerPiece: 8 }, true).done.complete, "seeding: every piece done");
});
