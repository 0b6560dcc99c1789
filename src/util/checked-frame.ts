import { createHash } from "node:crypto";

/**
 * The framing of the small files a peer keeps on disk (staging records, the live-folder
 * state): magic | u32 BE body length | body | first 16 bytes of SHA-256 over everything
 * before. The checksum makes a torn write, a truncation or a flipped bit a rejected file
 * rather than a wrong one; protobuf alone would accept many damaged bodies. Pure.
 */
const CHECKSUM_BYTES = 16;

export function frameChecked(magic: Buffer, body: Uint8Array): Buffer {
  const header = magic.length + 4;
  const out = Buffer.allocUnsafe(header + body.length + CHECKSUM_BYTES);
  magic.copy(out, 0);
  out.writeUInt32BE(body.length, magic.length);
  out.set(body, header);
  checksum(out.subarray(0, header + body.length)).copy(out, header + body.length);
  return out;
}

/** The body, or why the bytes are not one whole frame of `magic` (never throws). */
export function unframeChecked(magic: Buffer, bytes: Uint8Array, maxBytes: number): Buffer | string {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const header = magic.length + 4;
  if (buf.length > maxBytes) return "too large";
  if (buf.length < header + CHECKSUM_BYTES) return "truncated";
  if (!buf.subarray(0, magic.length).equals(magic)) return "wrong magic";
  const length = buf.readUInt32BE(magic.length);
  if (header + length + CHECKSUM_BYTES !== buf.length) {
    return header + length + CHECKSUM_BYTES > buf.length ? "truncated" : "trailing bytes";
  }
  const end = header + length;
  if (!checksum(buf.subarray(0, end)).equals(buf.subarray(end))) return "checksum mismatch";
  return buf.subarray(header, end);
}

function checksum(data: Uint8Array): Buffer {
  return createHash("sha256").update(data).digest().subarray(0, CHECKSUM_BYTES);
}
