import type { DropReason } from "../wire/peer-datagram.js";

/** Everything a peer counts: telemetry (--stats) and the oracle of the loss tests. */
export type TransferCounters = {
  datagramsSent: number;
  datagramsReceived: number;
  bytesSent: number;
  bytesReceived: number;
  /** Chunk requests sent (one datagram each) and received. */
  requestsSent: number;
  requestsReceived: number;
  /** Chunks named in requests we sent; above `chunksAcquired` by the re-requests. */
  chunksRequested: number;
  /** Chunks asked for again after being declared lost. */
  retransmissions: number;
  /** Chunk datagrams we sent in answer to requests. */
  chunksSent: number;
  /** Chunk datagrams received whose chunk we did not have yet. */
  chunksReceived: number;
  /** Chunks counted as acquired (their piece verified). */
  chunksAcquired: number;
  /** Chunk datagrams for a chunk we already had. */
  duplicates: number;
  /** Chunks declared lost: by reordering threshold, by time threshold, by timeout. */
  lostByReorder: number;
  lostByTime: number;
  lostByTimeout: number;
  /** A chunk declared lost that arrived after all. */
  spuriousLosses: number;
  timeouts: number;
  piecesVerified: number;
  pieceHashFailures: number;
  /** Chunks fetched again because their block failed verification. */
  badChunksRefetched: number;
  hashRequestsSent: number;
  hashRepliesSent: number;
  /** Proven requests from an address not validated yet (answered with a cookie only). */
  unprovenRequests: number;
  /** Bytes of those requests, and of what was sent in answer (at most 3x as many). */
  unvalidatedBytesIn: number;
  unvalidatedBytesOut: number;
  /** AddressCookies sent, and received in answer to our requests. */
  cookiesSent: number;
  cookiesReceived: number;
  /** Holders dropped for not serving (silent) or serving bad pieces, and files withdrawn. */
  holdersDropped: number;
  /** Peers listed at an address another listed peer has (it stays with the first). */
  addressConflicts: number;
  filesWithdrawn: number;
  /** Datagrams dropped, by reason: each dropped datagram counts under exactly one. */
  drops: Record<Drop, number>;
  /**
   * The same drops by source: "peer N" for a listed peer, "host:port" for any other
   * address (at most MAX_DROP_SOURCES sources; the rest under "other").
   */
  dropsBySource: Record<string, Partial<Record<Drop, number>>>;
};

/** Why a datagram was dropped. */
export type Drop =
  | DropReason
  | "unknown-source"
  | "stale"
  | "bad-token"
  | "bad-hashes"
  | "amplification"
  | "bad-proof"
  | "replay"
  | "unvalidated"
  | "rate-limited"
  | "length"
  | "not-held"
  /** ACCOUNTS (§10): a request for a file of a group the requester is not listed in. */
  | "forbidden";

/** Sources whose drops are counted apart (the bound keeps a flood of addresses from growing the map). */
export const MAX_DROP_SOURCES = 64;

/** Counts one dropped datagram from `source` under `reason`. */
export function countDrop(c: TransferCounters, reason: Drop, source: string): void {
  c.drops[reason]++;
  let bySource = c.dropsBySource[source];
  if (bySource === undefined) {
    const key = Object.keys(c.dropsBySource).length < MAX_DROP_SOURCES ? source : "other";
    bySource = c.dropsBySource[key] ??= {};
  }
  bySource[reason] = (bySource[reason] ?? 0) + 1;
}

export function newCounters(): TransferCounters {
  return {
    datagramsSent: 0,
    datagramsReceived: 0,
    bytesSent: 0,
    bytesReceived: 0,
    requestsSent: 0,
    requestsReceived: 0,
    chunksRequested: 0,
    retransmissions: 0,
    chunksSent: 0,
    chunksReceived: 0,
    chunksAcquired: 0,
    duplicates: 0,
    lostByReorder: 0,
    lostByTime: 0,
    lostByTimeout: 0,
    spuriousLosses: 0,
    timeouts: 0,
    piecesVerified: 0,
    pieceHashFailures: 0,
    badChunksRefetched: 0,
    hashRequestsSent: 0,
    hashRepliesSent: 0,
    unprovenRequests: 0,
    unvalidatedBytesIn: 0,
    unvalidatedBytesOut: 0,
    cookiesSent: 0,
    cookiesReceived: 0,
    holdersDropped: 0,
    addressConflicts: 0,
    filesWithdrawn: 0,
    drops: {
      short: 0,
      oversize: 0,
      kind: 0,
      version: 0,
      malformed: 0,
      range: 0,
      "unknown-source": 0,
      stale: 0,
      "bad-token": 0,
      "bad-hashes": 0,
      amplification: 0,
      "bad-proof": 0,
      replay: 0,
      unvalidated: 0,
      "rate-limited": 0,
      length: 0,
      "not-held": 0,
      forbidden: 0,
    },
    dropsBySource: {},
  };
}
