import { MAX_REQUEST_SPAN } from "../wire/limits.js";
import { Bitmap } from "./bitmap.js";

/** The state of one chunk of a piece being downloaded (libtorrent's block states). */
export const ChunkState = {
  /** Never asked for. */
  none: 0,
  /** Named by at least one request in flight. */
  requested: 1,
  /** Asked for, no request naming it is in flight, not here: to be asked for again first. */
  lost: 2,
  received: 3,
} as const;

/** A piece being downloaded: the state of each chunk, who fetches it, who sent what. */
export class DownloadingPiece {
  readonly piece: number;
  readonly firstChunk: number;
  readonly chunkCount: number;
  readonly state: Uint8Array;
  /** Requests in flight naming each chunk (the endgame allows two). */
  readonly requests: Uint8Array;
  /** The peer each chunk was last asked of; once received, the peer it came from (for blame). */
  readonly peer: Int32Array;
  /** When each chunk was last asked for (ms, the engine's clock): the endgame's "is it late?". */
  readonly askedAt: Float64Array;
  /** Sum of `requests`. */
  requestsTotal = 0;
  received = 0;
  lost = 0;
  /** The remote peer this piece is being fetched from; others join only in the endgame. */
  owner: number | undefined;
  /** No chunk below this one is in state `none`. */
  freshFrom = 0;

  constructor(piece: number, firstChunk: number, chunkCount: number, owner: number | undefined) {
    this.piece = piece;
    this.firstChunk = firstChunk;
    this.chunkCount = chunkCount;
    this.state = new Uint8Array(chunkCount);
    this.requests = new Uint8Array(chunkCount);
    this.peer = new Int32Array(chunkCount).fill(-1);
    this.askedAt = new Float64Array(chunkCount);
    this.owner = owner;
  }

  get complete(): boolean {
    return this.received === this.chunkCount;
  }
}

/**
 * Whether a chunk already asked of `holder` at `askedAt` is worth asking of another peer too
 * (the endgame); the engine decides from both peers' round-trip times.
 */
export type SecondAsk = (holder: number, askedAt: number) => boolean;

/** What to ask one peer for: chunks of one piece, ascending, within one request's span. */
export type Pick = {
  readonly piece: DownloadingPiece;
  readonly chunks: number[];
  /** The chunks were asked for before and lost (a retransmission). */
  readonly again: boolean;
};

export type PickerGeometry = {
  readonly chunks: number;
  readonly chunksPerPiece: number;
};

/** Candidates after a peer's cursor among which the rarest new piece is chosen. */
const LOOKAHEAD = 16;

/**
 * Which chunks of one file to ask which peer for. Owns who holds what (and so each piece's
 * availability), the pieces verified, and the state of every chunk of the pieces being
 * downloaded, changed only through named verbs. Policy, for one peer: chunks lost first
 * (a piece's losses together, once none of it is in flight), then more of a piece this
 * peer is fetching, then a new piece (rarest first), and, once nothing new is left, the
 * endgame (chunks still in flight elsewhere, at most two requests each).
 */
export class PiecePicker {
  readonly pieces: number;
  readonly #chunks: number;
  readonly #chunksPerPiece: number;
  /** Pieces verified and stored (all set when seeding). */
  readonly done: Bitmap;
  /** How many known remote peers hold each whole piece. */
  readonly availability: Uint16Array;
  /** Pieces each remote peer holds; "complete" when it holds the whole file. */
  readonly holders = new Map<number, Bitmap | "complete">();
  readonly #active = new Map<number, DownloadingPiece>();
  /** Pieces with lost chunks, in the order of their first loss. */
  readonly #withLost = new Set<DownloadingPiece>();
  /** Per remote peer: where its scan for a new piece goes on from (random start). */
  readonly #cursor = new Map<number, number>();
  /**
   * Remote peers known to hold no piece we could start: candidates only shrink (pieces
   * become active or done) until a peer announces more, so the scan is not repeated.
   */
  readonly #exhausted = new Set<number>();

  constructor(geometry: PickerGeometry, seeding: boolean) {
    this.#chunks = geometry.chunks;
    this.#chunksPerPiece = geometry.chunksPerPiece;
    this.pieces = Math.ceil(geometry.chunks / geometry.chunksPerPiece);
    this.done = seeding ? Bitmap.full(this.pieces) : new Bitmap(this.pieces);
    this.availability = new Uint16Array(this.pieces);
  }

  active(): IterableIterator<DownloadingPiece> {
    return this.#active.values();
  }

  activePiece(piece: number): DownloadingPiece | undefined {
    return this.#active.get(piece);
  }

  get lostChunks(): number {
    let n = 0;
    for (const p of this.#withLost) n += p.lost;
    return n;
  }

  // ------------------------------------------------------------------ holders

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
    const cpp = this.#chunksPerPiece;
    for (const [first, count] of runs) {
      const end = first + count;
      for (let p = Math.ceil(first / cpp); p < this.pieces; p++) {
        const pieceEnd = Math.min(this.#chunks, (p + 1) * cpp);
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
    this.disown(remote);
  }

  /** Pieces `remote` was fetching are open to other peers. */
  disown(remote: number): void {
    for (const piece of this.#active.values()) if (piece.owner === remote) piece.owner = undefined;
  }

  #bump(piece: number, delta: number): void {
    this.availability[piece] = Math.max(0, (this.availability[piece] ?? 0) + delta);
  }

  // ------------------------------------------------------------------ picking

  /** Up to `budget` chunks to ask `remote` for: lost ones first, then active pieces, then a new one. */
  pick(remote: number, budget: number, random: { u32(): number }): Pick | undefined {
    return this.#pickLost(remote, budget) ?? this.#pickActive(remote, budget) ?? this.#pickNew(remote, budget, random);
  }

  /** Whether nothing is left to start or ask again: only chunks in flight elsewhere remain. */
  get inEndgame(): boolean {
    return this.done.count + this.#active.size >= this.pieces && this.#withLost.size === 0;
  }

  /**
   * Endgame: nothing is left to start, so the chunks still in flight elsewhere are asked of
   * `remote` too (at most two requests per chunk) when `worthAsking` says so; the first
   * answer wins, the other is a counted duplicate. Keeps a transfer from hanging on one slow
   * peer at 99%.
   */
  pickEndgame(remote: number, budget: number, worthAsking: SecondAsk): Pick | undefined {
    if (!this.inEndgame) return undefined;
    for (const piece of this.#active.values()) {
      if (!this.holds(remote, piece.piece)) continue;
      const chunks: number[] = [];
      for (let i = 0; i < piece.chunkCount && chunks.length < budget; i++) {
        const requests = piece.requests[i] ?? 0;
        if (piece.state[i] === ChunkState.received || requests >= 2) continue;
        if (requests > 0 && (piece.peer[i] === remote || !worthAsking(piece.peer[i] ?? -1, piece.askedAt[i] ?? 0))) {
          continue;
        }
        const chunk = piece.firstChunk + i;
        if (chunks.length > 0 && chunk - (chunks[0] ?? chunk) >= MAX_REQUEST_SPAN) break;
        chunks.push(chunk);
      }
      if (chunks.length > 0) return { piece, chunks, again: false };
    }
    return undefined;
  }

  /** A piece's lost chunks, asked again together once none of the piece is in flight. */
  #pickLost(remote: number, budget: number): Pick | undefined {
    for (const piece of this.#withLost) {
      if (piece.requestsTotal > 0 || !this.holds(remote, piece.piece)) continue;
      const chunks = this.#collect(piece, ChunkState.lost, 0, budget);
      if (chunks.length > 0) return { piece, chunks, again: true };
    }
    return undefined;
  }

  /** Chunks never asked for of pieces this peer is fetching (or that nobody owns any more). */
  #pickActive(remote: number, budget: number): Pick | undefined {
    for (const piece of this.#active.values()) {
      if (piece.owner !== undefined && piece.owner !== remote) continue;
      if (!this.holds(remote, piece.piece)) continue;
      const chunks = this.#fresh(piece, budget);
      if (chunks.length === 0) continue;
      piece.owner = remote;
      return { piece, chunks, again: false };
    }
    return undefined;
  }

  #pickNew(remote: number, budget: number, random: { u32(): number }): Pick | undefined {
    const p = this.#rarestNew(remote, random);
    if (p === undefined) return undefined;
    const first = p * this.#chunksPerPiece;
    const piece = new DownloadingPiece(p, first, Math.min(this.#chunksPerPiece, this.#chunks - first), remote);
    this.#active.set(p, piece);
    const chunks = this.#fresh(piece, budget);
    return chunks.length === 0 ? undefined : { piece, chunks, again: false };
  }

  #fresh(piece: DownloadingPiece, budget: number): number[] {
    while (piece.freshFrom < piece.chunkCount && piece.state[piece.freshFrom] !== ChunkState.none) piece.freshFrom++;
    return this.#collect(piece, ChunkState.none, piece.freshFrom, budget);
  }

  /** Up to `budget` chunks in `state` from local index `from`, ascending, within one request's span. */
  #collect(piece: DownloadingPiece, state: number, from: number, budget: number): number[] {
    const chunks: number[] = [];
    let first = -1;
    for (let i = from; i < piece.chunkCount && chunks.length < budget; i++) {
      if (piece.state[i] !== state) continue;
      if (first < 0) first = i;
      else if (i - first >= MAX_REQUEST_SPAN) break;
      chunks.push(piece.firstChunk + i);
    }
    return chunks;
  }

  /**
   * The next piece to start fetching from `remote`: among the next LOOKAHEAD candidates
   * after the remote's cursor (which starts at a random piece), the one the fewest peers
   * hold (rarest first). Cost is bounded by the lookahead, amortised over pieces that can
   * never be candidates again (done or active).
   */
  #rarestNew(remote: number, random: { u32(): number }): number | undefined {
    if (this.done.count + this.#active.size >= this.pieces || this.#exhausted.has(remote)) return undefined;
    let cursor = this.#cursor.get(remote);
    if (cursor === undefined) cursor = random.u32() % Math.max(1, this.pieces);
    let best: number | undefined;
    let bestAvail = Number.POSITIVE_INFINITY;
    let seen = 0;
    let firstCandidate: number | undefined;
    for (let step = 0; step < this.pieces && seen < LOOKAHEAD; step++) {
      const p = (cursor + step) % this.pieces;
      if (this.done.has(p) || this.#active.has(p) || !this.holds(remote, p)) continue;
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

  // ------------------------------------------------------------------ verbs

  /** A request to `remote` names `chunks` (of `piece`), sent at `now`: they are in flight. */
  markRequested(piece: DownloadingPiece, chunks: readonly number[], remote: number, now: number): void {
    for (const chunk of chunks) {
      const i = chunk - piece.firstChunk;
      piece.requests[i] = (piece.requests[i] ?? 0) + 1;
      piece.requestsTotal++;
      piece.peer[i] = remote;
      piece.askedAt[i] = now;
      const state = piece.state[i];
      if (state === ChunkState.lost) this.#unlose(piece);
      if (state !== ChunkState.received) piece.state[i] = ChunkState.requested;
    }
  }

  /** One request naming `chunk` got its answer (stored or not, see markReceived). */
  requestAnswered(chunk: number): void {
    const piece = this.#active.get(Math.floor(chunk / this.#chunksPerPiece));
    if (piece === undefined) return;
    const i = chunk - piece.firstChunk;
    if ((piece.requests[i] ?? 0) === 0) return;
    piece.requests[i] = (piece.requests[i] ?? 1) - 1;
    piece.requestsTotal--;
  }

  /** One request naming `chunk` will not be answered: when no other is in flight and it is not here, it is lost. */
  markLost(chunk: number): void {
    const piece = this.#active.get(Math.floor(chunk / this.#chunksPerPiece));
    if (piece === undefined) return;
    this.requestAnswered(chunk);
    const i = chunk - piece.firstChunk;
    if (piece.state[i] === ChunkState.requested && piece.requests[i] === 0) this.#lose(piece, i);
  }

  /** `chunk` arrived from `from`: false when it was here already (or its piece is not being fetched). */
  markReceived(chunk: number, from: number): boolean {
    const piece = this.#active.get(Math.floor(chunk / this.#chunksPerPiece));
    if (piece === undefined) return false;
    const i = chunk - piece.firstChunk;
    const state = piece.state[i];
    if (state === ChunkState.received) return false;
    if (state === ChunkState.lost) this.#unlose(piece);
    piece.state[i] = ChunkState.received;
    piece.peer[i] = from;
    piece.received++;
    return true;
  }

  /** The piece verified and is stored. */
  markVerified(piece: DownloadingPiece): void {
    this.#active.delete(piece.piece);
    this.#withLost.delete(piece);
    this.done.set(piece.piece);
  }

  /** Pieces kept from an earlier run and verified again: held before any fetch (resume). */
  restoreVerified(pieces: Iterable<number>): void {
    for (const p of pieces) {
      if (Number.isInteger(p) && p >= 0 && p < this.pieces && !this.#active.has(p)) this.done.set(p);
    }
  }

  /** Chunks [from, from + count) of the piece (local indices) were bad: fetch them again. */
  restoreBlocks(piece: DownloadingPiece, from: number, count: number): void {
    for (let i = from; i < Math.min(piece.chunkCount, from + count); i++) {
      if (piece.state[i] !== ChunkState.received) continue;
      piece.received--;
      piece.peer[i] = -1;
      if ((piece.requests[i] ?? 0) > 0) piece.state[i] = ChunkState.requested;
      else this.#lose(piece, i);
    }
  }

  /** The piece failed and its bad blocks are unknown: fetch all of it again, from anyone. */
  restorePiece(piece: DownloadingPiece): void {
    this.restoreBlocks(piece, 0, piece.chunkCount);
    piece.owner = undefined;
  }

  /** Whoever sent chunk `local` of the piece (-1: unknown). */
  sourceOf(piece: DownloadingPiece, local: number): number {
    return piece.state[local] === ChunkState.received ? (piece.peer[local] ?? -1) : -1;
  }

  /** The file is gone: forget every piece in progress. */
  clear(): void {
    this.#active.clear();
    this.#withLost.clear();
  }

  #lose(piece: DownloadingPiece, i: number): void {
    piece.state[i] = ChunkState.lost;
    if (piece.lost++ === 0) this.#withLost.add(piece);
  }

  #unlose(piece: DownloadingPiece): void {
    if (--piece.lost === 0) this.#withLost.delete(piece);
  }
}
