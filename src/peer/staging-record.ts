import { createHash } from "node:crypto";
import { Bitmap } from "../transfer/bitmap.js";
import { frameChecked, unframeChecked } from "../util/checked-frame.js";
import { udpswarm } from "../wire/gen/swarm.js";
import { CHUNK_SIZE, chunkCount, pieceCount, SHA256_BYTES } from "../wire/limits.js";
import { checkFileName } from "../wire/names.js";
import type { CheckedManifest } from "../wire/tracker-frame.js";

/**
 * The record kept beside a partial download (pure: bytes in, bytes out), framed by
 * util/checked-frame.ts with the magic "USWR" around a udpswarm.StagingRecord.
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
  /** The peer id and secret of the life that wrote it (RESUME §12: presented again in the Hello). */
  readonly owner?: RecordOwner | undefined;
  /** Receipts of the pieces its owner verified last (Have.receipts format, addressed to the owner). */
  readonly receipts?: Uint8Array | undefined;
};

export type RecordOwner = { readonly peerId: number; readonly secret: Uint8Array };

const MAGIC = Buffer.from("USWR", "latin1");
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
    ...(r.owner !== undefined && { ownerPeerId: r.owner.peerId, ownerSecret: r.owner.secret }),
    ...(r.receipts !== undefined && r.receipts.length > 0 && { receipts: r.receipts }),
  }).finish();
  return frameChecked(MAGIC, body);
}

export type DecodedRecord = { readonly ok: true; readonly record: StagingRecord } | { ok: false; reason: string };

/** Never throws: a record that is not exactly what encodeStagingRecord wrote is refused with a reason. */
export function decodeStagingRecord(bytes: Uint8Array): DecodedRecord {
  const body = unframeChecked(MAGIC, bytes, MAX_RECORD_BYTES);
  if (typeof body === "string") return bad(body === "wrong magic" ? "not a staging record" : body);
  let m: udpswarm.StagingRecord;
  try {
    m = udpswarm.StagingRecord.decode(body);
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
      ...(m.ownerPeerId > 0 &&
        m.ownerSecret.length > 0 && { owner: { peerId: m.ownerPeerId, secret: Buffer.from(m.ownerSecret) } }),
      ...(m.receipts.length > 0 && { receipts: Buffer.from(m.receipts) }),
    },
  };
}

function bad(reason: string): DecodedRecord {
  return { ok: false, reason };
}
