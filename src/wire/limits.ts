/** Sizes and bounds shared by both ends of both links. */
export const CHUNK_SIZE = 512;
/** A piece is the unit of verification and of disk writes: 128 chunks = 64 KiB (README: "Pieces"). */
export const CHUNKS_PER_PIECE = 128;
/** A block is the unit of re-fetching after a piece fails: 4 chunks, so a piece has 32 blocks. */
export const CHUNKS_PER_BLOCK = 4;
/** Chunks one request may name. */
export const MAX_CHUNKS_PER_REQUEST = 64;
/**
 * Chunks one request's mask may span (16 bytes): a whole piece, so the chunks of a piece
 * lost anywhere in it are asked for again in one request.
 */
export const MAX_REQUEST_SPAN = 128;
/** Largest datagram we accept or send: a HashReply (32 block hashes + a small header). */
export const MAX_DATAGRAM_BYTES = 1200;
/** Largest tracker frame: manifests of big files are the largest messages. */
export const MAX_FRAME_BYTES = 64 * 1024 * 1024;
/** Default bound on an announced file size (configurable with --max-file-size). */
export const DEFAULT_MAX_FILE_SIZE = 64 * 1024 * 1024 * 1024;
/** Bytes of a file name (UTF-8). */
export const MAX_NAME_BYTES = 255;
export const SHA256_BYTES = 32;

export function chunkCount(size: number): number {
  return Math.ceil(size / CHUNK_SIZE);
}

export function pieceCount(chunks: number, chunksPerPiece = CHUNKS_PER_PIECE): number {
  return Math.ceil(chunks / chunksPerPiece);
}

/** Bytes in chunk `index` (0-based) of a file of `size` bytes. */
export function chunkLength(size: number, index: number): number {
  return Math.min(CHUNK_SIZE, size - index * CHUNK_SIZE);
}
