import { createHash } from "node:crypto";
import { Bitmap } from "../transfer/bitmap.js";
import { udpswarm } from "../wire/gen/swarm.js";
import { CHUNK_SIZE, chunkCount, pieceCount, SHA256_BYTES } from "../wire/limits.js";
import { checkFileName } from "../wire/names.js";
import type { CheckedManifest } from "../wire/tracker-frame.js";

/**
 * The record kept beside a partial download (pure: bytes in, bytes out). Framing:
 *
 *     "USWR" | u32 BE body length | body (udpswarm.StagingRecord) | first 16 bytes of
 *     SHA-256 over everything before
 *
 * The checksum makes a torn write, a truncation or a flipped bit a rejected record rather
 * than a wrong one; protobuf alone would accept many damaged bodies.
 */

/** The version a partial copies. Two partials are the same download only if all of it matches. */
export type StagingIdentity = {
  readonly name: string;
  readonly size: number;
  readonly sha256: Buffer;
  /** Whose download it is: "" for a classic peer; a sync peer or a client says more. */
  readonly tag: string;
};

export type StagingRecord = {
  readonly identity: StagingIdentity;
  readonly chunksPerPiece: number;
  readonly chunksPerBlock: number;
  /** Pieces verified and written into the staging file. */
  readonly verified: Bitmap;
};

const MAGIC = Buffer.from("USWR", "latin1");
const HEADER_BYTES = MAGIC.length + 4;
const CHECKSUM_BYTES = 16;
/** A record of a 64 GiB file is ~128 KiB; anything much larger is not one of ours. */
export const MAX_RECORD_BYTES = 4 * 1024 * 1024;
export const STAGING_FORMAT = udpswarm.StagingFormat.STAGING_FORMAT;

export function identityOf(manifest: CheckedManifest, tag = ""): StagingIdentity {
  return { name: manifest.name, size: manifest.size, sha256: manifest.sha256, tag };
}

export function sameIdentity(a: StagingIdentity, b: StagingIdentity): boolean {
  return a.name === b.name && a.size === b.size && a.sha256.equals(b.sha256) && a.tag === b.tag;
}

/**
 * The file-name stem of a partial in staging: a hash of its identity, so that a restart
 * finds it again from the manifest alone (even when its record is lost), and so that no
 * name from the network becomes a path.
 */
export function stagingKey(id: StagingIdentity): string {
  return createHash("sha256")
    .update(`udpswarm staging\0${id.tag}\0${id.name}\0${id.size}\0${id.sha256.toString("hex")}`)
    .digest("hex")
    .slice(0, 32);
}

/** Pieces of a file of `size` bytes in a layout of `chunksPerPiece` chunks. */
export function piecesOf(size: number, chunksPerPiece: number): number {
  return pieceCount(chunkCount(size), chunksPerPiece);
}

export function encodeStagingRecord(r: StagingRecord): Buffer {
  const body = udpswarm.StagingRecord.encode({
    format: STAGING_FORMAT,
    name: r.identity.name,
    size: r.identity.size,
    sha256: r.identity.sha256,
    chunksPerPiece: r.chunksPerPiece,
    chunksPerBlock: r.chunksPerBlock,
    verified: r.verified.toBytes(),
    tag: r.identity.tag,
  }).finish();
  const out = Buffer.allocUnsafe(HEADER_BYTES + body.length + CHECKSUM_BYTES);
  MAGIC.copy(out, 0);
  out.writeUInt32BE(body.length, MAGIC.length);
  out.set(body, HEADER_BYTES);
  checksum(out.subarray(0, HEADER_BYTES + body.length)).copy(out, HEADER_BYTES + body.length);
  return out;
}

export type DecodedRecord = { readonly ok: true; readonly record: StagingRecord } | { ok: false; reason: string };

/** Never throws: a record that is not exactly what encodeStagingRecord wrote is refused with a reason. */
export function decodeStagingRecord(bytes: Uint8Array): DecodedRecord {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length > MAX_RECORD_BYTES) return bad("too large");
  if (buf.length < HEADER_BYTES + CHECKSUM_BYTES) return bad("truncated");
  if (!buf.subarray(0, MAGIC.length).equals(MAGIC)) return bad("not a staging record");
  const length = buf.readUInt32BE(MAGIC.length);
  if (HEADER_BYTES + length + CHECKSUM_BYTES !== buf.length) {
    return bad(HEADER_BYTES + length + CHECKSUM_BYTES > buf.length ? "truncated" : "trailing bytes");
  }
  const end = HEADER_BYTES + length;
  if (!checksum(buf.subarray(0, end)).equals(buf.subarray(end))) return bad("checksum mismatch");
  let m: udpswarm.StagingRecord;
  try {
    m = udpswarm.StagingRecord.decode(buf.subarray(HEADER_BYTES, end));
  } catch {
    return bad("malformed");
  }
  if (m.format !== STAGING_FORMAT) return bad(`format ${m.format}, expected ${STAGING_FORMAT}`);
  const nameProblem = checkFileName(m.name);
  if (nameProblem !== undefined) return bad(`bad name: ${nameProblem}`);
  const size = Number(m.size);
  if (!Number.isSafeInteger(size) || size < 0) return bad("bad size");
  if (m.sha256.length !== SHA256_BYTES) return bad("bad hash");
  if (!(m.chunksPerPiece >= 1 && m.chunksPerBlock >= 1 && m.chunksPerBlock <= m.chunksPerPiece)) {
    return bad("bad piece layout");
  }
  if (size > 0 && m.chunksPerPiece * CHUNK_SIZE > 1 << 30) return bad("bad piece layout");
  const verified = Bitmap.fromBytes(piecesOf(size, m.chunksPerPiece), m.verified);
  if (verified === undefined) return bad("piece bitmap does not fit the file");
  return {
    ok: true,
    record: {
      identity: { name: m.name, size, sha256: Buffer.from(m.sha256), tag: m.tag },
      chunksPerPiece: m.chunksPerPiece,
      chunksPerBlock: m.chunksPerBlock,
      verified,
    },
  };
}

function bad(reason: string): DecodedRecord {
  return { ok: false, reason };
}

function checksum(data: Uint8Array): Buffer {
  return createHash("sha256").update(data).digest().subarray(0, CHECKSUM_BYTES);
}
