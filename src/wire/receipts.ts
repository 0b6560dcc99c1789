import { RECEIPT_BYTES } from "./auth.js";
import { MAX_REQUEST_SPAN } from "./limits.js";

/** One entry of Have.receipts (see proto/swarm.proto): `mask` undefined means every chunk of the piece. */
export type ReceiptEntry = {
  readonly piece: number;
  readonly holder: number;
  readonly receipt: Uint8Array;
  readonly mask: Uint8Array | undefined;
};

const FIXED = 4 + 4 + RECEIPT_BYTES + 1;
/** A piece has at most this many chunks on the wire (a mask of 16 bytes). */
const MAX_MASK_BYTES = MAX_REQUEST_SPAN / 8;

/** Bytes of one entry in Have.receipts. */
export function encodedReceiptBytes(e: ReceiptEntry): number {
  return FIXED + (e.mask?.length ?? 0);
}

/** Have.receipts of `entries`, back to back. */
export function encodeReceipts(entries: readonly ReceiptEntry[]): Buffer {
  let bytes = 0;
  for (const e of entries) bytes += encodedReceiptBytes(e);
  const out = Buffer.allocUnsafe(bytes);
  let at = 0;
  for (const e of entries) {
    at = out.writeUInt32BE(e.piece >>> 0, at);
    at = out.writeUInt32BE(e.holder >>> 0, at);
    // Byte moves, no view per entry: the recent receipts are encoded again for every
    // staging record (up to RECENT_RECEIPTS of them every 20 ms while downloading).
    const receipt = e.receipt;
    for (let b = 0; b < RECEIPT_BYTES; b++) out[at++] = receipt[b] ?? 0;
    const mask = e.mask;
    out[at++] = mask?.length ?? 0;
    if (mask !== undefined) {
      out.set(mask, at);
      at += mask.length;
    }
  }
  return out;
}

/** The entries of Have.receipts, or undefined when they are malformed (cut short, a mask too long). */
export function decodeReceipts(bytes: Uint8Array): ReceiptEntry[] | undefined {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  const out: ReceiptEntry[] = [];
  let at = 0;
  while (at < buf.length) {
    if (at + FIXED > buf.length) return undefined;
    const piece = buf.readUInt32BE(at);
    const holder = buf.readUInt32BE(at + 4);
    const receipt = buf.subarray(at + 8, at + 8 + RECEIPT_BYTES);
    const len = buf[at + FIXED - 1] ?? 0;
    at += FIXED;
    if (len > MAX_MASK_BYTES || at + len > buf.length) return undefined;
    out.push({ piece, holder, receipt, mask: len === 0 ? undefined : buf.subarray(at, at + len) });
    at += len;
  }
  return out;
}
