import type { Clock } from "../util/clock.js";
import type { SeededRandom } from "../util/random.js";
import type { RemoteOptions } from "./remote.js";

/** What the transfer engine is given and gives back: its I/O, its options, its events. */

/** Where datagrams go: a UDP socket, a fault injector, or the fake network of the tests. */
export interface DatagramPort {
  send(bytes: Buffer, host: string, port: number): void;
}

/**
 * Where verified pieces live. Throwing from `writePiece` is a fatal I/O error; throwing from
 * `read` withdraws the file being read (it is no longer served).
 */
export interface PieceStore {
  /**
   * Why a file we offered from disk is no longer what we offered (its size or modification
   * time changed), or undefined. Cheap (one fstat); absent: never checked.
   */
  seedChanged?(fileId: number): string | undefined;
  /** Bytes of chunks [firstChunk, firstChunk + count) of a file whose pieces we hold. */
  read(fileId: number, firstChunk: number, count: number): Buffer;
  writePiece(fileId: number, piece: number, firstChunk: number, data: Buffer): void;
}

/**
 * Proof that `holder` sent us chunks of piece `piece` (see Have.receipts): the XOR of their
 * receipt shares; `mask` (bit i = the piece's chunk i) says which, undefined: all of them.
 */
export type PieceReceipt = {
  readonly piece: number;
  readonly holder: number;
  readonly receipt: Buffer;
  readonly mask: Buffer | undefined;
};

/**
 * A holder of a file we fetch was dropped (`dropped`), or, the only holder, does not answer
 * (not dropped: still asked, rarely); `holdersLeft` other holders remain. A holder dropped
 * for its silence is asked again after `retryInMs` (undefined: never).
 */
export type HolderFailure = {
  readonly fileId: number;
  readonly peerId: number;
  readonly why: string;
  readonly dropped: boolean;
  readonly holdersLeft: number;
  readonly retryInMs?: number;
};

export interface TransferEvents {
  /**
   * Chunks [firstChunk, firstChunk + count) were verified and stored; `receipts` prove a
   * fetched piece was received (none for pieces kept from an earlier run or copied locally).
   */
  acquired(fileId: number, firstChunk: number, count: number, receipts?: readonly PieceReceipt[]): void;
  /** Every piece of the file is verified and stored. */
  fileComplete(fileId: number): void;
  /** Storage failed: the peer cannot go on. */
  fatal(err: unknown): void;
  /** A holder of a file we fetch failed (see HolderFailure). */
  holderFailed?(failure: HolderFailure): void;
  /** A file we served changed or became unreadable on disk: it is no longer served. */
  withdrawn?(fileId: number, why: string): void;
}

export type TransferOptions = {
  /** Chunks named by one request (at most 64). @default 64 */
  readonly chunksPerRequest?: number;
  /** Chunks in flight from all peers together: the receive buffer's share. @default 3072 */
  readonly maxInflight?: number;
  /** Timeouts in a row after which a peer is suspect (no new work but a probe). @default 8 */
  readonly maxBackoffs?: number;
  /**
   * A peer is never asked again once this many of its chunks were in blocks that failed
   * verification, and they are at least half of all it sent. @default 64
   */
  readonly maxBadChunks?: number;
  readonly remote?: RemoteOptions;
};

export type TransferDeps = {
  readonly clock: Clock;
  readonly port: DatagramPort;
  readonly store: PieceStore;
  readonly events: TransferEvents;
  readonly random: SeededRandom;
  /** Runs `fn` soon, once the current batch of events is handled (setImmediate). */
  readonly defer: (fn: () => void) => void;
  /**
   * ACCOUNTS (§10): whether a request of peer `peerId` for `fileId` may be served (its
   * group is one the tracker listed for that peer). Absent: every listed peer may.
   */
  readonly mayServe?: (fileId: number, peerId: number) => boolean;
  /** Our tracker-issued secret, once known: the key of the receipt shares of the chunks we send. */
  readonly receiptSecret?: () => Uint8Array;
};

/** Authentication of one remote peer's requests (values from the tracker). */
export type RemoteAuth = {
  /** What requests from that peer must carry. */
  readonly inbound: Uint8Array;
  /** What our requests to that peer carry. */
  readonly outbound: Uint8Array;
};
