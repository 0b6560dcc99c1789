import { SHA256_BYTES } from "../wire/limits.js";
import type { HashReplyDatagram } from "../wire/peer-datagram.js";
import type { Drop, TransferCounters } from "./counters.js";
import type { FileState, PieceAssembly } from "./file-state.js";
import { blockHashes } from "./piece-hash.js";
import type { DownloadingPiece } from "./piece-picker.js";

/** Attempts to get trusted block hashes before a failed piece is fetched again whole. */
export const HASH_ATTEMPTS = 4;

/** How far a remote peer's data is trusted: chunks of it in blocks that failed, of all it sent. */
export class SourceTrust {
  badChunks = 0;
  chunksFrom = 0;
  /** Sent mostly corrupt data: asked only while no trustworthy peer is left. */
  banned = false;

  /** One chunk from this peer was in a block that failed verification. */
  blame(maxBadChunks: number): void {
    this.badChunks++;
    if (this.badChunks >= maxBadChunks && this.badChunks * 2 > this.chunksFrom) this.banned = true;
  }
}

/** What block repair needs of a remote peer. */
export interface RepairPeer {
  readonly id: number;
  readonly trust: SourceTrust;
  /** The peer's current retransmission timeout (ms). */
  rto(): number;
}

export type BlockRepairDeps<P extends RepairPeer> = {
  readonly counters: TransferCounters;
  /** Remote peers that hold the piece, in a stable order. */
  readonly holders: (file: FileState, piece: number) => P[];
  readonly peer: (id: number) => P | undefined;
  /** Whether `piece` is still being assembled for `file` (the file was not removed meanwhile). */
  readonly current: (file: FileState, piece: DownloadingPiece) => boolean;
  readonly sendHashRequest: (to: P, fileId: number, piece: number, token: number) => void;
  readonly token: () => number;
  readonly now: () => number;
  /** Deadlines of the hash requests, by token, in the engine's timer table. */
  readonly timers: { set(token: number, at: number): void; clear(token: number): void };
  /** Chunks went back to be fetched again: planning should run. */
  readonly wake: () => void;
  /** Bad chunks after which a mostly-bad source is banned. */
  readonly maxBadChunks: number;
  /** A piece failed, with bad chunks from each of `sources` (once per failure). */
  readonly failedPiece?: (file: FileState, sources: P[]) => void;
};

type PendingHashes<P> = {
  readonly token: number;
  readonly file: FileState;
  readonly piece: DownloadingPiece;
  readonly assembly: PieceAssembly;
  readonly peer: P;
  readonly attempt: number;
};

/**
 * A piece failed verification: find its bad blocks with block hashes from a holder
 * (checked against the manifest's piece hash), send only those back to be fetched, and
 * blame their sources; without trusted hashes after HASH_ATTEMPTS, fetch the piece whole.
 */
export class BlockRepair<P extends RepairPeer> {
  readonly #deps: BlockRepairDeps<P>;
  /** HashRequests out, by token. */
  readonly #pending = new Map<number, PendingHashes<P>>();

  constructor(deps: BlockRepairDeps<P>) {
    this.#deps = deps;
  }

  get pending(): number {
    return this.#pending.size;
  }

  /** The piece's data does not match the manifest; `blocks` are its block hashes. */
  pieceFailed(file: FileState, piece: DownloadingPiece, assembly: PieceAssembly, blocks: Buffer): void {
    this.#deps.counters.pieceHashFailures++;
    assembly.failures++;
    assembly.localBlocks = blocks;
    if (assembly.trustedBlocks !== undefined) this.#dropBadBlocks(file, piece, assembly, assembly.trustedBlocks);
    else this.#requestHashes(file, piece, assembly, 0);
  }

  /** A HashReply from `from`: returns why it was dropped, if it was. */
  onReply(from: P, d: HashReplyDatagram): Drop | undefined {
    const pending = this.#pending.get(d.token);
    if (
      pending === undefined ||
      pending.peer !== from ||
      pending.file.id !== d.fileId ||
      pending.piece.piece !== d.piece
    ) {
      return "stale";
    }
    const { file, piece, assembly } = pending;
    if (!file.trustBlocks(piece.piece, d.hashes) || d.hashes.length !== (assembly.localBlocks?.length ?? -1)) {
      // Corrupt in transit, or a lying holder: ask again (another holder if there is one).
      this.#retry(pending);
      return "bad-hashes";
    }
    this.#forget(pending);
    assembly.trustedBlocks = Buffer.from(d.hashes);
    this.#dropBadBlocks(file, piece, assembly, assembly.trustedBlocks);
    return undefined;
  }

  /** Whether hash request `token` is out to `peer`. */
  asked(peer: P, token: number): boolean {
    return this.#pending.get(token)?.peer === peer;
  }

  /** The deadline of hash request `token` passed. */
  onTimeout(token: number): void {
    const pending = this.#pending.get(token);
    if (pending !== undefined) this.#retry(pending);
  }

  /** `peer` left: its hash requests go to another holder. */
  peerGone(peer: P): void {
    for (const pending of [...this.#pending.values()]) if (pending.peer === peer) this.#retry(pending);
  }

  close(): void {
    for (const token of this.#pending.keys()) this.#deps.timers.clear(token);
    this.#pending.clear();
  }

  /** Counts a bad chunk against its source (all sources of the piece when unknown); adds them to `blamed`. */
  #blame(file: FileState, piece: DownloadingPiece, localIndex: number | undefined, blamed: Set<P>): void {
    const sources = new Set<number>();
    if (localIndex !== undefined) sources.add(file.picker.sourceOf(piece, localIndex));
    else for (let i = 0; i < piece.chunkCount; i++) sources.add(file.picker.sourceOf(piece, i));
    for (const src of sources) {
      const peer = src >= 0 ? this.#deps.peer(src) : undefined;
      if (peer === undefined) continue;
      peer.trust.blame(this.#deps.maxBadChunks);
      blamed.add(peer);
    }
  }

  #requestHashes(file: FileState, piece: DownloadingPiece, assembly: PieceAssembly, attempt: number): void {
    const all = this.#deps.holders(file, piece.piece);
    const trusted = all.filter((r) => !r.trust.banned);
    const holders = trusted.length > 0 ? trusted : all;
    if (attempt >= HASH_ATTEMPTS || holders.length === 0) {
      const blamed = new Set<P>();
      this.#blame(file, piece, undefined, blamed);
      file.picker.restorePiece(piece);
      this.#deps.failedPiece?.(file, [...blamed]);
      this.#deps.wake();
      return;
    }
    const peer = holders[(attempt + assembly.failures) % holders.length] ?? holders[0];
    if (peer === undefined) return;
    const token = this.#deps.token();
    this.#deps.timers.set(token, this.#deps.now() + peer.rto() * 2 ** attempt);
    this.#pending.set(token, { token, file, piece, assembly, peer, attempt });
    this.#deps.counters.hashRequestsSent++;
    this.#deps.sendHashRequest(peer, file.id, piece.piece, token);
  }

  #forget(pending: PendingHashes<P>): void {
    this.#deps.timers.clear(pending.token);
    this.#pending.delete(pending.token);
  }

  #retry(pending: PendingHashes<P>): void {
    this.#forget(pending);
    if (!this.#deps.current(pending.file, pending.piece)) return;
    this.#requestHashes(pending.file, pending.piece, pending.assembly, pending.attempt + 1);
  }

  /** Forgets the chunks of every block whose hash differs from the trusted one. */
  #dropBadBlocks(file: FileState, piece: DownloadingPiece, assembly: PieceAssembly, trusted: Buffer): void {
    const local = assembly.localBlocks ?? blockHashes(assembly.data);
    const perBlock = file.manifest.chunksPerBlock;
    let bad = 0;
    const blamed = new Set<P>();
    for (let b = 0; b * SHA256_BYTES < trusted.length; b++) {
      const at = b * SHA256_BYTES;
      if (local.compare(trusted, at, at + SHA256_BYTES, at, at + SHA256_BYTES) === 0) continue;
      const first = b * perBlock;
      const end = Math.min(piece.chunkCount, first + perBlock);
      for (let i = first; i < end; i++) this.#blame(file, piece, i, blamed);
      file.picker.restoreBlocks(piece, first, end - first);
      bad += end - first;
    }
    this.#deps.counters.badChunksRefetched += bad;
    if (blamed.size > 0) this.#deps.failedPiece?.(file, [...blamed]);
    if (bad === 0) {
      // Every block matches yet the piece failed: cannot happen with honest hashes.
      file.picker.restoreBlocks(piece, 0, piece.chunkCount);
    }
    this.#deps.wake();
  }
}
