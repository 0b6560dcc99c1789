import { CHUNK_SIZE, chunkLength, pieceCount } from "../wire/limits.js";
import type { CheckedManifest } from "../wire/tracker-frame.js";
import { Bitmap } from "./bitmap.js";
import { blockHashes, sha256 } from "./piece-hash.js";

/**
 * Piece buffers are reused: a download assembles thousands of 64 KiB pieces, and
 * allocating each afresh fragments the C heap between the socket's small receive buffers
 * (measured: ~20 MB more peak RSS over a 1 GiB transfer).
 */
const spareBuffers: Buffer[] = [];
const MAX_SPARE_BUFFERS = 64;
const PIECE_BUFFER_BYTES = 128 * 512;

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

/** A piece being assembled in memory: chunks land here, and the piece is verified whole. */
export class PieceAssembly {
  readonly piece: number;
  readonly firstChunk: number;
  readonly chunkCount: number;
  readonly data: Buffer;
  readonly have: Bitmap;
  /** Outstanding requests naming each chunk. */
  readonly inflight: Uint8Array;
  /** Sum of `inflight`: requests of this piece still out, chunk by chunk. */
  inflightTotal = 0;
  /** Chunks asked for at least once. */
  readonly asked: Bitmap;
  /** The remote peer each chunk came from (for blame when the piece fails). */
  readonly sources: Int32Array;
  /** The remote peer each chunk was last asked of (the endgame asks someone else). */
  readonly requestedFrom: Int32Array;
  /** The remote peer this piece is being fetched from; others join only in the endgame. */
  owner: number | undefined;
  /** Block hashes of the last copy that failed verification. */
  localBlocks: Buffer | undefined;
  /** Block hashes a holder sent, checked against the manifest: they pinpoint bad blocks. */
  trustedBlocks: Buffer | undefined;
  /** Whole but failed, waiting for trusted block hashes (a HashRequest is out). */
  awaitingHashes = false;
  failures = 0;
  /** Chunks neither held nor in flight, lowest first from this hint. */
  #scanFrom = 0;

  constructor(piece: number, firstChunk: number, chunkCount: number, bytes: number, owner: number | undefined) {
    this.piece = piece;
    this.firstChunk = firstChunk;
    this.chunkCount = chunkCount;
    this.data = takePieceBuffer(bytes);
    this.have = new Bitmap(chunkCount);
    this.asked = new Bitmap(chunkCount);
    this.inflight = new Uint8Array(chunkCount);
    this.sources = new Int32Array(chunkCount).fill(-1);
    this.requestedFrom = new Int32Array(chunkCount).fill(-1);
    this.owner = owner;
  }

  /** Up to `max` chunk indices (absolute) neither held nor in flight, ascending. */
  unrequested(max: number): number[] {
    const out: number[] = [];
    let first = -1;
    for (let i = this.#scanFrom; i < this.chunkCount && out.length < max; i++) {
      if (this.have.has(i) || (this.inflight[i] ?? 0) > 0) continue;
      if (first < 0) first = i;
      out.push(this.firstChunk + i);
    }
    if (first < 0) this.#scanFrom = this.chunkCount;
    else this.#scanFrom = first;
    return out;
  }

  /**
   * What to ask for next from this piece: chunks never asked for first; chunks asked for
   * and lost only once none of the piece is in flight any more, so that the losses of a
   * whole round go out again in one request instead of one request per loss detected.
   */
  nextChunks(max: number): number[] {
    const fresh: number[] = [];
    let lost = 0;
    for (let i = this.#scanFrom; i < this.chunkCount && fresh.length < max; i++) {
      if (this.have.has(i) || (this.inflight[i] ?? 0) > 0) continue;
      if (this.asked.has(i)) lost++;
      else fresh.push(this.firstChunk + i);
    }
    if (fresh.length > 0 || lost === 0 || this.inflightTotal > 0) return fresh;
    return this.unrequested(max);
  }

  /** One more request names chunk `localIndex`. */
  addInflight(localIndex: number): void {
    this.asked.set(localIndex);
    this.inflight[localIndex] = (this.inflight[localIndex] ?? 0) + 1;
    this.inflightTotal++;
  }

  /** One request naming chunk `localIndex` is over (answered, lost or abandoned). */
  dropInflight(localIndex: number): void {
    if ((this.inflight[localIndex] ?? 0) === 0) return;
    this.inflight[localIndex] = (this.inflight[localIndex] ?? 1) - 1;
    this.inflightTotal--;
  }

  /** A chunk went back to "not requested" (lost, or its request was abandoned). */
  release(localIndex: number): void {
    if (localIndex < this.#scanFrom) this.#scanFrom = localIndex;
  }

  /** Forget every chunk (the piece failed verification and the bad blocks are unknown). */
  reset(): void {
    for (let i = 0; i < this.chunkCount; i++) this.sources[i] = -1;
    this.have.clear();
    this.#scanFrom = 0;
  }

  /** Forget one chunk (it was in a block that failed). */
  forget(localIndex: number): void {
    this.have.unset(localIndex);
    this.sources[localIndex] = -1;
    this.release(localIndex);
  }
}

/**
 * One file of the swarm as this peer sees it: its manifest, what we hold, who holds what,
 * and (while downloading) the pieces being assembled.
 */
export class FileState {
  readonly id: number;
  readonly manifest: CheckedManifest;
  mode: FileMode;
  readonly pieces: number;
  /** Pieces verified and stored (all set when seeding). */
  readonly done: Bitmap;
  readonly active = new Map<number, PieceAssembly>();
  /** How many known remote peers hold each whole piece. */
  readonly availability: Uint16Array;
  /** Pieces each remote peer holds; "complete" when it holds the whole file. */
  readonly holders = new Map<number, Bitmap | "complete">();
  /** Chunks declared lost, to be asked for again first (absolute chunk indices). */
  readonly retry: number[] = [];
  /** Per remote peer: where its scan for a new piece goes on from (random start). */
  readonly #cursor = new Map<number, number>();
  /**
   * Remote peers known to hold no piece we could start: candidates only shrink (pieces
   * become active or done) until a peer announces more, so the scan is not repeated.
   */
  readonly #exhausted = new Set<number>();

  constructor(id: number, manifest: CheckedManifest, mode: FileMode) {
    this.id = id;
    this.manifest = manifest;
    this.mode = mode;
    this.pieces = pieceCount(manifest.chunks, manifest.chunksPerPiece);
    this.done = mode === "seeding" ? Bitmap.full(this.pieces) : new Bitmap(this.pieces);
    this.availability = new Uint16Array(this.pieces);
  }

  get chunks(): number {
    return this.manifest.chunks;
  }

  /** Pieces held from an earlier run, verified again by their hashes: done before any fetch. */
  restoreVerifiedPieces(pieces: Iterable<number>): void {
    for (const p of pieces) if (Number.isInteger(p) && p >= 0 && p < this.pieces) this.done.set(p);
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
    return this.done.has(this.pieceOf(chunk));
  }

  holds(remote: number, piece: number): boolean {
    const h = this.holders.get(remote);
    return h === "complete" || h?.has(piece) === true;
  }

  /** `remote` now holds the chunks in `runs` (whole pieces count), or the whole file. */
  addHolder(remote: number, runs: ReadonlyArray<readonly [number, number]>, complete: boolean): void {
    this.#exhausted.delete(remote);
    const current = this.holders.get(remote);
    if (current === "complete") return;
    if (complete) {
      for (let p = 0; p < this.pieces; p++) if (current === undefined || !current.has(p)) this.#bump(p, 1);
      this.holders.set(remote, "complete");
      return;
    }
    const bits = current ?? new Bitmap(this.pieces);
    if (current === undefined) this.holders.set(remote, bits);
    const cpp = this.manifest.chunksPerPiece;
    for (const [first, count] of runs) {
      const end = first + count;
      for (let p = Math.ceil(first / cpp); p < this.pieces; p++) {
        const pieceEnd = Math.min(this.manifest.chunks, (p + 1) * cpp);
        if (pieceEnd > end) break;
        if (bits.set(p)) this.#bump(p, 1);
      }
    }
    if (bits.complete) this.holders.set(remote, "complete");
  }

  removeHolder(remote: number): void {
    const h = this.holders.get(remote);
    if (h === undefined) return;
    this.holders.delete(remote);
    this.#cursor.delete(remote);
    this.#exhausted.delete(remote);
    for (let p = 0; p < this.pieces; p++) if (h === "complete" || h.has(p)) this.#bump(p, -1);
    for (const assembly of this.active.values()) if (assembly.owner === remote) assembly.owner = undefined;
  }

  #bump(piece: number, delta: number): void {
    this.availability[piece] = Math.max(0, (this.availability[piece] ?? 0) + delta);
  }

  /**
   * Picks the next piece to start fetching from `remote`: among the next `lookahead`
   * candidates after the remote's cursor (which starts at a random piece), the one the
   * fewest peers hold (rarest first). Cost is bounded by the lookahead, amortised over
   * pieces that can never be candidates again (done or active).
   */
  pickNewPiece(remote: number, randomStart: () => number, lookahead = 16): number | undefined {
    if (this.done.count + this.active.size >= this.pieces || this.#exhausted.has(remote)) return undefined;
    let cursor = this.#cursor.get(remote);
    if (cursor === undefined) cursor = randomStart() % Math.max(1, this.pieces);
    let best: number | undefined;
    let bestAvail = Number.POSITIVE_INFINITY;
    let seen = 0;
    let firstCandidate: number | undefined;
    for (let step = 0; step < this.pieces && seen < lookahead; step++) {
      const p = (cursor + step) % this.pieces;
      if (this.done.has(p) || this.active.has(p) || !this.holds(remote, p)) continue;
      if (firstCandidate === undefined) firstCandidate = p;
      seen++;
      const avail = this.availability[p] ?? 0;
      if (avail < bestAvail) {
        bestAvail = avail;
        best = p;
      }
    }
    if (firstCandidate !== undefined) this.#cursor.set(remote, firstCandidate);
    else this.#exhausted.add(remote);
    return best;
  }

  startPiece(piece: number, owner: number): PieceAssembly {
    const assembly = new PieceAssembly(
      piece,
      this.firstChunkOf(piece),
      this.chunksIn(piece),
      this.bytesIn(piece),
      owner,
    );
    this.active.set(piece, assembly);
    return assembly;
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
    return expected !== undefined && hashes.length % 32 === 0 && sha256(hashes).equals(expected);
  }
}
