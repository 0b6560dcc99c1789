import { encodeFrame } from "./framing.js";
import { udpswarm } from "./gen/swarm.js";
import { CHUNK_SIZE, CHUNKS_PER_BLOCK, CHUNKS_PER_PIECE, chunkCount, pieceCount, SHA256_BYTES } from "./limits.js";
import { checkFileName } from "./names.js";

export type TrackerFrame = udpswarm.TrackerFrame;
export type Manifest = udpswarm.IManifest;
export const TRACKER_PROTOCOL_VERSION = udpswarm.ProtocolVersion.PROTOCOL_VERSION;

/** Properties of a frame without its version (filled in here). */
export type FrameBody = Omit<udpswarm.ITrackerFrame, "version">;

export function encodeTrackerFrame(body: FrameBody): Buffer {
  const bytes = udpswarm.TrackerFrame.encode({ version: TRACKER_PROTOCOL_VERSION, ...body }).finish();
  return encodeFrame(bytes);
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

/** Checks a manifest from the network; returns the reason it is refused, or the checked form. */
export function checkManifest(m: udpswarm.IManifest, maxFileSize: number): CheckedManifest | string {
  const name = m.name ?? "";
  const nameProblem = checkFileName(name);
  if (nameProblem !== undefined) return `bad file name: ${nameProblem}`;
  const size = Number(m.size ?? 0);
  if (!(size >= 0)) return "bad size";
  if (size > maxFileSize) return `size ${size} exceeds the limit of ${maxFileSize} bytes`;
  if (!Number.isSafeInteger(size)) return "bad size";
  if (m.chunkSize !== CHUNK_SIZE) return `chunk size ${m.chunkSize} is not ${CHUNK_SIZE}`;
  if (m.chunksPerPiece !== CHUNKS_PER_PIECE) return `piece size ${m.chunksPerPiece} is not ${CHUNKS_PER_PIECE} chunks`;
  if (m.chunksPerBlock !== CHUNKS_PER_BLOCK) return `block size ${m.chunksPerBlock} is not ${CHUNKS_PER_BLOCK} chunks`;
  const sha = m.sha256;
  if (sha === undefined || sha === null || sha.length !== SHA256_BYTES) return "bad file hash";
  const chunks = chunkCount(size);
  const pieces = pieceCount(chunks);
  const hashes = m.pieceSha256 ?? [];
  if (hashes.length !== pieces) return `manifest has ${hashes.length} piece hashes, expected ${pieces}`;
  for (const h of hashes) if (h.length !== SHA256_BYTES) return "bad piece hash";
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
