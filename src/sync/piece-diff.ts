/**
 * Which pieces of a new version the local copy already has (SPEC §9: only changed pieces
 * move), and compact piece-hash lists for the tracker link. Free of I/O.
 *
 * A piece is reusable when the local copy's manifest has the same hash at the same index:
 * a piece hash covers the piece's length too (it hashes the block hashes), so equal hashes
 * mean equal bytes. An in-place edit of a few KiB changes one or two 64 KiB pieces; an
 * append changes the last piece and adds new ones; an insertion near the start shifts
 * every later piece (nothing is reused past it: same index only, by design).
 *
 * The local manifest describes the file as last hashed: the caller still checks each
 * copied piece against the new hash before it counts (the file may have changed since).
 */
import { Bitmap } from "../transfer/bitmap.js";
import { CHUNKS_PER_PIECE } from "../wire/limits.js";

export type PieceDiff = {
  /** Pieces of the new version. */
  readonly pieces: number;
  /** Pieces to copy from the local file instead of fetching. */
  readonly reuse: Bitmap;
  /** Pieces to fetch from other peers. */
  readonly fetch: number;
};

/** Compares the local copy's piece hashes with the new version's. */
export function diffPieces(local: readonly Uint8Array[], next: readonly Uint8Array[]): PieceDiff {
  const reuse = new Bitmap(next.length);
  const common = Math.min(local.length, next.length);
  for (let i = 0; i < common; i++) {
    const a = local[i];
    const b = next[i];
    if (a !== undefined && b !== undefined && Buffer.compare(a, b) === 0) reuse.set(i);
  }
  return { pieces: next.length, reuse, fetch: next.length - reuse.count };
}

/**
 * The reused pieces as runs of 0-based chunks of a file of `chunks` chunks (what the peer
 * reports as held once they are copied; the last piece may be short).
 */
export function reusedChunkRuns(
  reuse: Bitmap,
  chunks: number,
  chunksPerPiece: number = CHUNKS_PER_PIECE,
): Array<[number, number]> {
  return reuse.runs().map(([first, count]): [number, number] => {
    const start = first * chunksPerPiece;
    return [start, Math.min(chunks, (first + count) * chunksPerPiece) - start];
  });
}

/**
 * A version's piece hashes relative to an earlier version's (same name): the count, and
 * the hashes that differ or are new. A 4 KiB edit of a multi-GiB file then costs a few
 * dozen bytes on the tracker link instead of 32 bytes per 64 KiB piece.
 */
export type PieceDelta = {
  readonly pieces: number;
  /** Ascending piece indices whose hash differs from (or is beyond) the earlier version's. */
  readonly indices: readonly number[];
  readonly hashes: readonly Buffer[];
};

export function pieceDelta(from: readonly Uint8Array[], to: readonly Uint8Array[]): PieceDelta {
  const indices: number[] = [];
  const hashes: Buffer[] = [];
  for (let i = 0; i < to.length; i++) {
    const a = from[i];
    const b = to[i];
    if (b === undefined) continue;
    if (a === undefined || Buffer.compare(a, b) !== 0) {
      indices.push(i);
      hashes.push(Buffer.from(b));
    }
  }
  return { pieces: to.length, indices, hashes };
}

/**
 * The full piece-hash list from the earlier version's and a delta; a reason when the delta
 * is malformed (from the network: indices must ascend, lie within the new count, cover
 * every piece the earlier version lacks, and come with one 32-byte hash each).
 */
export function applyPieceDelta(from: readonly Uint8Array[], delta: PieceDelta): Buffer[] | string {
  const { pieces, indices, hashes } = delta;
  if (!Number.isSafeInteger(pieces) || pieces < 0) return "bad piece count";
  if (indices.length !== hashes.length) return "piece indices and hashes differ in number";
  const out: Buffer[] = [];
  let next = 0;
  for (let i = 0; i < pieces; i++) {
    if (next < indices.length && indices[next] === i) {
      const h = hashes[next];
      if (h === undefined || h.length !== 32) return "bad piece hash";
      out.push(Buffer.from(h));
      next++;
      continue;
    }
    const kept = from[i];
    if (kept === undefined) return `piece ${i} is new but the delta has no hash for it`;
    out.push(Buffer.from(kept));
  }
  if (next !== indices.length) return "piece indices out of order or out of range";
  return out;
}
