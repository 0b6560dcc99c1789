import { encodeFrame, varint } from "./framing.js";
import { udpswarm } from "./gen/swarm.js";
import { CHUNK_SIZE, CHUNKS_PER_BLOCK, CHUNKS_PER_PIECE, chunkCount, pieceCount, SHA256_BYTES } from "./limits.js";
import { checkFileName } from "./names.js";

export type TrackerFrame = udpswarm.TrackerFrame;
export type Manifest = udpswarm.IManifest;
export const TRACKER_PROTOCOL_VERSION = udpswarm.ProtocolVersion.RECEIPTS_TRACKER_LINK;
/** Why the tracker refuses an offer or a peer: the wire carries the code, the text is for people. */
export const RefusalReason = udpswarm.RefusalReason;
export type RefusalReason = udpswarm.RefusalReason;

/** Properties of a frame without its version (filled in here). */
export type FrameBody = Omit<udpswarm.ITrackerFrame, "version">;

export function encodeTrackerFrame(body: FrameBody): Buffer {
  const bytes = udpswarm.TrackerFrame.encode({ version: TRACKER_PROTOCOL_VERSION, ...body }).finish();
  return encodeFrame(bytes);
}

/** Field number of TrackerFrame.updates (proto/swarm.proto), length-delimited. */
const UPDATES_TAG = varint((18 << 3) | 2);
const VERSION_FIELD = Buffer.from(udpswarm.TrackerFrame.encode({ version: TRACKER_PROTOCOL_VERSION }).finish());

/**
 * An Updates frame from parts encoded apart: protobuf merges concatenated encodings of a
 * message (repeated fields append), so the part every peer gets is encoded once and each
 * receiver's own part is appended to it.
 */
export function encodeUpdatesFrame(shared: Uint8Array, own: Uint8Array): Buffer {
  const length = shared.length + own.length;
  return encodeFrame(Buffer.concat([VERSION_FIELD, UPDATES_TAG, varint(length), shared, own]));
}

export type DecodedFrame =
  | { readonly ok: true; readonly frame: TrackerFrame }
  | { readonly ok: false; readonly reason: "malformed" | "version" | "empty"; readonly version?: number };

/** Decodes one frame body; never throws. */
export function decodeTrackerFrame(body: Uint8Array): DecodedFrame {
  let frame: TrackerFrame;
  try {
    frame = udpswarm.TrackerFrame.decode(body);
  } catch {
    return { ok: false, reason: "malformed" };
  }
  if (frame.version !== TRACKER_PROTOCOL_VERSION) return { ok: false, reason: "version", version: frame.version };
  if (frame.body === undefined) return { ok: false, reason: "empty" };
  return { ok: true, frame };
}

/** A manifest after validation: every field present and consistent. */
export type CheckedManifest = {
  readonly name: string;
  readonly size: number;
  readonly chunks: number;
  readonly chunksPerPiece: number;
  readonly chunksPerBlock: number;
  readonly sha256: Buffer;
  readonly pieceSha256: readonly Buffer[];
};

/** Why a manifest from the network is refused: a wire code and a line for people. */
export type ManifestProblem = { readonly reason: RefusalReason; readonly detail: string };

export function isManifestProblem<T extends object>(result: T | ManifestProblem): result is ManifestProblem {
  return "reason" in result;
}

const malformed = (detail: string): ManifestProblem => ({ reason: RefusalReason.REASON_BAD_MESSAGE, detail });

/** A classic peer's offer still being hashed (Manifest.hashing): what the CONNECT block needs. */
export type PendingOffer = { readonly name: string; readonly size: number; readonly chunks: number };

/** Name, size and chunk geometry, checked: what every offer has, hashed or not. */
function checkShape(m: udpswarm.IManifest, maxFileSize: number): PendingOffer | ManifestProblem {
  const name = m.name ?? "";
  const nameProblem = checkFileName(name);
  if (nameProblem !== undefined)
    return { reason: RefusalReason.REASON_BAD_NAME, detail: `bad file name: ${nameProblem}` };
  const size = Number(m.size ?? 0);
  if (!(size >= 0)) return malformed("bad size");
  if (size > maxFileSize) {
    return { reason: RefusalReason.REASON_TOO_LARGE, detail: `size ${size} exceeds the limit of ${maxFileSize} bytes` };
  }
  if (!Number.isSafeInteger(size)) return malformed("bad size");
  if (m.chunkSize !== CHUNK_SIZE) return malformed(`chunk size ${m.chunkSize} is not ${CHUNK_SIZE}`);
  if (m.chunksPerPiece !== CHUNKS_PER_PIECE) {
    return malformed(`piece size ${m.chunksPerPiece} is not ${CHUNKS_PER_PIECE} chunks`);
  }
  if (m.chunksPerBlock !== CHUNKS_PER_BLOCK) {
    return malformed(`block size ${m.chunksPerBlock} is not ${CHUNKS_PER_BLOCK} chunks`);
  }
  return { name, size, chunks: chunkCount(size) };
}

/** Checks an offer still being hashed: no hashes may come with it. */
export function checkPendingOffer(m: udpswarm.IManifest, maxFileSize: number): PendingOffer | ManifestProblem {
  if ((m.sha256?.length ?? 0) !== 0 || (m.pieceSha256?.length ?? 0) !== 0) {
    return malformed("an offer still being hashed carries no hashes");
  }
  return checkShape(m, maxFileSize);
}

/** Checks a manifest from the network; returns the checked form, or why it is refused. */
export function checkManifest(m: udpswarm.IManifest, maxFileSize: number): CheckedManifest | ManifestProblem {
  const shape = checkShape(m, maxFileSize);
  if (isManifestProblem(shape)) return shape;
  const { name, size, chunks } = shape;
  const sha = m.sha256;
  if (sha === undefined || sha === null || sha.length !== SHA256_BYTES) return malformed("bad file hash");
  const pieces = pieceCount(chunks);
  const hashes = m.pieceSha256 ?? [];
  if (hashes.length !== pieces) return malformed(`manifest has ${hashes.length} piece hashes, expected ${pieces}`);
  for (const h of hashes) if (h.length !== SHA256_BYTES) return malformed("bad piece hash");
  return {
    name,
    size,
    chunks,
    chunksPerPiece: CHUNKS_PER_PIECE,
    chunksPerBlock: CHUNKS_PER_BLOCK,
    sha256: Buffer.from(sha),
    pieceSha256: hashes.map((h) => Buffer.from(h)),
  };
}

export function manifestToWire(m: CheckedManifest): udpswarm.IManifest {
  return {
    name: m.name,
    size: m.size,
    chunkSize: CHUNK_SIZE,
    chunksPerPiece: m.chunksPerPiece,
    chunksPerBlock: m.chunksPerBlock,
    sha256: m.sha256,
    pieceSha256: [...m.pieceSha256],
  };
}

export { udpswarm };
