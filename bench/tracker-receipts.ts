/**
 * Have.receipts for `npm run bench:tracker`'s hand-made clients: the tracker records and
 * prints only chunks a report shows were received (issue 15, 6b), so each client's report
 * carries what a real peer's would, made with the project's own functions. The bench knows
 * every client's secret (each learns it from its Welcome), so it computes what the holder's
 * chunk shares would have added up to.
 */
import { receiptKey, receiptOf } from "../src/wire/auth.js";
import { CHUNKS_PER_PIECE } from "../src/wire/limits.js";
import { encodeReceipts, type ReceiptEntry } from "../src/wire/receipts.js";

/** A client as its Welcome made it: the id and secret the tracker gave it. */
export type Identity = { readonly peerId: number; readonly secret: Uint8Array };

/**
 * Have.receipts for chunks [first, first + count) (0-based) of `fileId` (`chunks` in all),
 * every one sent by `holder` to `receiverId`: one entry per piece the span touches, the XOR
 * of those chunks' shares under receiptKey(holder's secret, receiver, file), as the engine
 * makes them. A span that covers only part of a piece (the bench's 64-chunk reports of
 * 128-chunk pieces) carries that part's mask, as a piece fetched from several holders does,
 * so that each chunk's share is checked once.
 */
export function spanReceipts(
  holder: Identity,
  receiverId: number,
  fileId: number,
  chunks: number,
  first: number,
  count: number,
  chunksPerPiece = CHUNKS_PER_PIECE,
): Buffer {
  const key = receiptKey(holder.secret, receiverId, fileId);
  const end = Math.min(chunks, first + count);
  const entries: ReceiptEntry[] = [];
  for (let piece = Math.floor(first / chunksPerPiece); piece * chunksPerPiece < end; piece++) {
    const pieceFirst = piece * chunksPerPiece;
    const pieceChunks = Math.min(chunksPerPiece, chunks - pieceFirst);
    const from = Math.max(first, pieceFirst);
    const to = Math.min(end, pieceFirst + pieceChunks);
    const covered: number[] = [];
    for (let c = from; c < to; c++) covered.push(c);
    // Bit i is the piece's chunk i (see Have.receipts).
    const mask = covered.length < pieceChunks ? Buffer.alloc(Math.ceil(pieceChunks / 8)) : undefined;
    for (let i = from - pieceFirst; mask !== undefined && i < to - pieceFirst; i++) {
      mask[i >> 3] = (mask[i >> 3] ?? 0) | (1 << (i & 7));
    }
    entries.push({ piece, holder: holder.peerId, receipt: receiptOf(key, covered), mask });
  }
  return encodeReceipts(entries);
}
