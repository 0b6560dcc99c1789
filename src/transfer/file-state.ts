import { RECEIPT_BYTES } from "../wire/auth.js";
import { CHUNK_SIZE, CHUNKS_PER_PIECE, chunkLength, SHA256_BYTES } from "../wire/limits.js";
import type { CheckedManifest } from "../wire/tracker-frame.js";
import type { Bitmap } from "./bitmap.js";
import { blockHashes, sha256 } from "./piece-hash.js";
import { PiecePicker } from "./piece-picker.js";

/**
 * Piece buffers are reused: a download assembles thousands of 64 KiB pieces, and
 * allocating each afresh fragments the C heap between the socket's small receive buffers
 * (measured: ~20 MB more peak RSS over a 1 GiB transfer).
 */
const spareBuffers: Buffer[] = [];
const MAX_SPARE_BUFFERS = 64;
const PIECE_BUFFER_BYTES = CHUNKS_PER_PIECE * CHUNK_SIZE;

function takePieceBuffer(bytes: number): Buffer {
  const spare = bytes === PIECE_BUFFER_BYTES ? spareBuffers.pop() : undefined;
  return spare ?? Buffer.alloc(bytes);
}

/** Returns a piece's buffer once nothing refers to its bytes any more. */
export function releasePieceBuffer(data: Buffer): void {
  if (data.length === PIECE_BUFFER_BYTES && spareBuffers.length < MAX_SPARE_BUFFERS) spareBuffers.push(data);
}

/** How this peer relates to a file of the swarm. */
export type FileMode = "seeding" | "downloading" | "ignored";

/** The bytes of a piece being downloaded: chunks land here, and the piece is verified whole. */
export class PieceAssembly {
  readonly piece: number;
  readonly data: Buffer;
  /** The receipt share of each chunk as it arrived (RECEIPT_BYTES each, in chunk order). */
  readonly shares: Buffer;
  /** Block hashes of the last copy that failed verification. */
  localBlocks: Buffer | undefined;
  /** Block hashes a holder sent, checked against the manifest: they pinpoint bad blocks. */
  trustedBlocks: Buffer | undefined;
  failures = 0;

  constructor(piece: number, bytes: number) {
    this.piece = piece;
    this.data = takePieceBuffer(bytes);
    this.shares = Buffer.alloc(Math.ceil(bytes / CHUNK_SIZE) * RECEIPT_BYTES);
  }
}

/**
 * One file of the swarm as this peer sees it: its manifest, its piece picker (what we
 * hold, who holds what, the state of the pieces being fetched) and the bytes of the
 * pieces being assembled.
 */
export class FileState {
  readonly id: number;
  readonly manifest: CheckedManifest;
  mode: FileMode;
  readonly picker: PiecePicker;
  readonly #assemblies = new Map<number, PieceAssembly>();

  constructor(id: number, manifest: CheckedManifest, mode: FileMode) {
    this.id = id;
    this.manifest = manifest;
    this.mode = mode;
    this.picker = new PiecePicker(
      { chunks: manifest.chunks, chunksPerPiece: manifest.chunksPerPiece },
      mode === "seeding",
    );
  }

  get chunks(): number {
    return this.manifest.chunks;
  }

  get pieces(): number {
    return this.picker.pieces;
  }

  /** Pieces verified and stored (all set when seeding). */
  get done(): Bitmap {
    return this.picker.done;
  }

  /** Pieces each remote peer holds. */
  get holders(): ReadonlyMap<number, Bitmap | "complete"> {
    return this.picker.holders;
  }

  /** Pieces held from an earlier run, verified again by their hashes: done before any fetch. */
  restoreVerifiedPieces(pieces: Iterable<number>): void {
    this.picker.restoreVerified(pieces);
  }

  pieceOf(chunk: number): number {
    return Math.floor(chunk / this.manifest.chunksPerPiece);
  }

  firstChunkOf(piece: number): number {
    return piece * this.manifest.chunksPerPiece;
  }

  chunksIn(piece: number): number {
    return Math.min(this.manifest.chunksPerPiece, this.manifest.chunks - this.firstChunkOf(piece));
  }

  bytesIn(piece: number): number {
    const first = this.firstChunkOf(piece);
    const last = first + this.chunksIn(piece) - 1;
    return (last - first) * CHUNK_SIZE + chunkLength(this.manifest.size, last);
  }

  /** Whether we can serve `chunk` (we hold its verified piece). */
  canServe(chunk: number): boolean {
    if (chunk < 0 || chunk >= this.manifest.chunks || this.mode === "ignored") return false;
    return this.picker.done.has(this.pieceOf(chunk));
  }

  holds(remote: number, piece: number): boolean {
    return this.picker.holds(remote, piece);
  }

  /** `remote` now holds the chunks in `runs` (whole pieces count), or the whole file. */
  addHolder(remote: number, runs: ReadonlyArray<readonly [number, number]>, complete: boolean): void {
    this.picker.addHolder(remote, runs, complete);
  }

  /** The buffer piece `piece` is assembled in (taken when its first chunk arrives). */
  assembly(piece: number): PieceAssembly {
    let a = this.#assemblies.get(piece);
    if (a === undefined) {
      a = new PieceAssembly(piece, this.bytesIn(piece));
      this.#assemblies.set(piece, a);
    }
    return a;
  }

  /** The piece is stored: its buffer goes back to the pool. */
  dropAssembly(piece: number): void {
    const a = this.#assemblies.get(piece);
    if (a === undefined) return;
    this.#assemblies.delete(piece);
    releasePieceBuffer(a.data);
  }

  /** The file is gone from the swarm: forget every piece in progress. */
  abandon(): void {
    this.picker.clear();
    this.#assemblies.clear();
  }

  /** Checks a whole piece against the manifest; returns its block hashes when it fails. */
  verify(assembly: PieceAssembly): { ok: true } | { ok: false; blocks: Buffer } {
    const expected = this.manifest.pieceSha256[assembly.piece];
    const blocks = blockHashes(assembly.data);
    if (expected !== undefined && sha256(blocks).equals(expected)) return { ok: true };
    return { ok: false, blocks };
  }

  /** Whether block hashes from the network are the ones the manifest commits to. */
  trustBlocks(piece: number, hashes: Uint8Array): boolean {
    const expected = this.manifest.pieceSha256[piece];
    return expected !== undefined && hashes.length % SHA256_BYTES === 0 && sha256(hashes).equals(expected);
  }
}
