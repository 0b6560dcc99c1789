import { timingSafeEqual } from "node:crypto";
import { TokenBucket } from "../util/token-bucket.js";
import { CHUNK_SIZE, chunkLength } from "../wire/limits.js";
import {
  CHUNK_HEADER_BYTES,
  encodeHashReply,
  type HashRequestDatagram,
  type RequestDatagram,
  writeChunkHeader,
} from "../wire/peer-datagram.js";
import type { Drop, TransferCounters } from "./counters.js";
import type { FileState } from "./file-state.js";
import type { PieceStore } from "./io.js";
import { blockHashes } from "./piece-hash.js";

/** An unauthenticated address gets at most this many bytes per byte it sent (RFC 9000 §8). */
export const AMPLIFICATION_LIMIT = 3;
/** HashRequests answered per peer per second at most (each costs a 64 KiB read and 32 hashes). */
export const HASH_REPLIES_PER_SECOND = 50;
/** HashRequests a peer may make at once before the rate applies. */
const HASH_REPLY_BURST = HASH_REPLIES_PER_SECOND;
const HASH_REPLIES_AT_START = 10;

/**
 * What the server knows of one remote peer as a client: the proof its requests must carry,
 * the amplification budget of what it sent unproven, and its hash-reply rate limit.
 */
export class ServedClient {
  readonly host: string;
  readonly port: number;
  /** What this peer's requests must carry (undefined: not checked). */
  readonly #inboundAuth: Buffer | undefined;
  /** A request from this address proved it is the listed peer. */
  proven = false;
  /** Bytes received in, and sent in answer to, requests that did not prove themselves. */
  #unprovenIn = 0;
  #unprovenOut = 0;
  readonly hashReplies = new TokenBucket(HASH_REPLIES_PER_SECOND, HASH_REPLY_BURST, HASH_REPLIES_AT_START);

  constructor(host: string, port: number, inboundAuth?: Uint8Array) {
    this.host = host;
    this.port = port;
    this.#inboundAuth = inboundAuth === undefined ? undefined : Buffer.from(inboundAuth);
  }

  /**
   * How many bytes we may send in answer to a request of `received` bytes carrying
   * `auth`: unlimited when it proves it comes from the listed peer; otherwise three times
   * what this address sent unproven, less what it was sent already.
   */
  admit(auth: Uint8Array, received: number): number {
    const expected = this.#inboundAuth;
    if (expected === undefined || (auth.length === expected.length && timingSafeEqual(auth, expected))) {
      this.proven = true;
      return Number.POSITIVE_INFINITY;
    }
    this.#unprovenIn += received;
    return AMPLIFICATION_LIMIT * this.#unprovenIn - this.#unprovenOut;
  }

  /** `bytes` went out in answer to an unproven request. */
  spend(bytes: number): void {
    this.#unprovenOut += bytes;
  }
}

export type ChunkServerDeps = {
  readonly store: PieceStore;
  readonly counters: TransferCounters;
  readonly file: (id: number) => FileState | undefined;
  readonly send: (bytes: Buffer, to: ServedClient) => void;
  readonly now: () => number;
  /** Storage failed: the peer cannot go on. */
  readonly fatal: (err: unknown) => void;
};

/**
 * Serving: answers chunk requests with one datagram per chunk held (one read per run) and
 * hash requests with the piece's block hashes, within each client's amplification budget
 * and hash-reply rate. Each handler returns why the datagram was dropped (a request that
 * got no answer at all), or undefined: a request answered in part is not a drop.
 */
export class ChunkServer {
  readonly #deps: ChunkServerDeps;
  #datagramSeq: number;

  constructor(deps: ChunkServerDeps, firstSeq: number) {
    this.#deps = deps;
    this.#datagramSeq = firstSeq;
  }

  onRequest(client: ServedClient, req: RequestDatagram, received: number): Drop | undefined {
    const { counters: c, store } = this.#deps;
    c.requestsReceived++;
    let budget = this.#admit(client, req.auth, received);
    const file = this.#deps.file(req.fileId);
    if (file === undefined || file.mode === "ignored") return "not-held";
    const chunks = req.chunks;
    const last = chunks[chunks.length - 1] ?? -1;
    if (last >= file.chunks) return "range";
    let answered = 0;
    let refused: Drop = "not-held";
    // Answer in maximal runs of consecutive chunks we hold: one read per run.
    let i = 0;
    runs: while (i < chunks.length) {
      const start = chunks[i] ?? 0;
      if (!file.canServe(start)) {
        i++;
        continue;
      }
      let j = i + 1;
      while (j < chunks.length && chunks[j] === start + (j - i) && file.canServe(chunks[j] ?? -1)) j++;
      const count = j - i;
      let data: Buffer;
      try {
        data = store.read(file.id, start, count);
      } catch (err) {
        this.#deps.fatal(err);
        return undefined;
      }
      for (let k = 0; k < count; k++) {
        const chunk = start + k;
        const len = chunkLength(file.manifest.size, chunk);
        const bytes = CHUNK_HEADER_BYTES + len;
        if (bytes > budget) {
          refused = "amplification";
          break runs;
        }
        if (budget !== Number.POSITIVE_INFINITY) {
          budget -= bytes;
          client.spend(bytes);
        }
        const out = Buffer.allocUnsafe(bytes);
        writeChunkHeader(out, 0, this.#datagramSeq++, req.seq, req.token, file.id, chunk);
        data.copy(out, CHUNK_HEADER_BYTES, k * CHUNK_SIZE, k * CHUNK_SIZE + len);
        this.#deps.send(out, client);
        c.chunksSent++;
        answered++;
      }
      i = j;
    }
    return answered === 0 ? refused : undefined;
  }

  onHashRequest(client: ServedClient, d: HashRequestDatagram, received: number): Drop | undefined {
    const c = this.#deps.counters;
    const budget = this.#admit(client, d.auth, received);
    const file = this.#deps.file(d.fileId);
    if (file === undefined || d.piece >= file.pieces || !file.done.has(d.piece) || file.mode === "ignored") {
      return "not-held";
    }
    if (!client.hashReplies.take(this.#deps.now())) return "rate-limited";
    let data: Buffer;
    try {
      data = this.#deps.store.read(file.id, file.firstChunkOf(d.piece), file.chunksIn(d.piece));
    } catch (err) {
      this.#deps.fatal(err);
      return undefined;
    }
    const reply = encodeHashReply(this.#datagramSeq++, file.id, d.piece, d.token, blockHashes(data));
    if (reply.length > budget) return "amplification";
    if (budget !== Number.POSITIVE_INFINITY) client.spend(reply.length);
    c.hashRepliesSent++;
    this.#deps.send(reply, client);
    return undefined;
  }

  #admit(client: ServedClient, auth: Uint8Array, received: number): number {
    const budget = client.admit(auth, received);
    if (budget !== Number.POSITIVE_INFINITY) this.#deps.counters.unprovenRequests++;
    return budget;
  }
}
