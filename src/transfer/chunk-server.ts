import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { errorMessage } from "../util/errors.js";
import { TokenBucket } from "../util/token-bucket.js";
import {
  PROOF_HASH_REQUEST,
  PROOF_REQUEST,
  RECEIPT_SHARE_STRIDE,
  ReceiptCipher,
  receiptKey,
  requestProof,
} from "../wire/auth.js";
import { CHUNK_SIZE, chunkLength } from "../wire/limits.js";
import {
  CHUNK_HEADER_BYTES,
  encodeCookie,
  encodeHashReply,
  type HashRequestDatagram,
  type RequestDatagram,
  writeChunkHeader,
} from "../wire/peer-datagram.js";
import type { Drop, TransferCounters } from "./counters.js";
import type { FileState } from "./file-state.js";
import type { PieceStore } from "./io.js";
import { blockHashes } from "./piece-hash.js";
import { ReplayWindow } from "./replay-window.js";

/** An address not validated yet gets at most this many bytes per byte it sent (RFC 9000 §8). */
export const AMPLIFICATION_LIMIT = 3;
/** HashRequests answered per peer per second at most (each costs a 64 KiB read and 32 hashes). */
export const HASH_REPLIES_PER_SECOND = 50;
/** HashRequests a peer may make at once before the rate applies. */
const HASH_REPLY_BURST = HASH_REPLIES_PER_SECOND;
const HASH_REPLIES_AT_START = 10;
/** A cookie is accepted in the time window it was made in and the next one (ms). */
export const COOKIE_WINDOW_MS = 60_000;
const COOKIE_BYTES = 16;
/** Receipt ciphers (files) and share tables (pieces) kept per client, each (1 KiB a table). */
const RECEIPT_CACHE = 16;

/** Sets `key` in `map`, dropping the oldest entry beyond RECEIPT_CACHE. */
function bounded<K, V>(map: Map<K, V>, key: K, value: V): void {
  map.set(key, value);
  if (map.size <= RECEIPT_CACHE) return;
  const oldest = map.keys().next();
  if (oldest.done !== true) map.delete(oldest.value);
}
/** A file we offered is checked against the disk at most this often while it is served (ms). */
export const SEED_CHECK_MS = 100;

/** Chunk k of a run goes out at k * DATAGRAM_STRIDE of the run's datagram buffer. */
const DATAGRAM_STRIDE = CHUNK_HEADER_BYTES + CHUNK_SIZE;

/**
 * One buffer for the datagrams of a run of `count` chunks read as `data`: chunk k's bytes
 * at k * DATAGRAM_STRIDE + CHUNK_HEADER_BYTES, its header to be written before them. One
 * copy of the run, then the chunks are moved apart within the buffer (last first, as they
 * only move up): no buffer nor view per chunk but the datagram itself.
 */
function datagramsOf(data: Buffer, count: number): Buffer {
  const out = Buffer.allocUnsafe(count * DATAGRAM_STRIDE);
  out.set(data, CHUNK_HEADER_BYTES);
  for (let k = count - 1; k > 0; k--) {
    const from = CHUNK_HEADER_BYTES + k * CHUNK_SIZE;
    out.copyWithin(
      k * DATAGRAM_STRIDE + CHUNK_HEADER_BYTES,
      from,
      Math.min(data.length + CHUNK_HEADER_BYTES, from + CHUNK_SIZE),
    );
  }
  return out;
}

/** What a request carries that admission looks at. */
type Admitted = {
  readonly seq: number;
  readonly token: number;
  readonly fileId: number;
  readonly auth: Uint8Array;
  readonly cookie: Uint8Array;
};

/**
 * What the server knows of one remote peer as a client: the key its request proofs must
 * be made with, the sequence numbers it used lately, whether its listed address is
 * validated, the amplification budget until it is, and its hash-reply rate limit.
 */
export class ServedClient {
  readonly host: string;
  readonly port: number;
  /** Its peer id: the receipts of what we send it are bound to it (0: none, tests). */
  readonly peerId: number;
  /** Key of this peer's request proofs (undefined: not checked, tests). */
  readonly #key: Buffer | undefined;
  readonly #replay = new ReplayWindow();
  /** A request proved it comes from the listed peer. */
  proven = false;
  /**
   * The listed address answers: it echoed our cookie, or answered a request of ours (its
   * random token). Only then is it served in full.
   */
  validated: boolean;
  /** Bytes of proven requests received, and of answers sent, while not validated. */
  unvalidatedIn = 0;
  unvalidatedOut = 0;
  readonly hashReplies = new TokenBucket(HASH_REPLIES_PER_SECOND, HASH_REPLY_BURST, HASH_REPLIES_AT_START);
  /** Receipt ciphers of the files it asks for, by file id (RECEIPT_CACHE at most). */
  readonly #receiptCiphers = new Map<number, ReceiptCipher>();
  /** Receipt shares of the pieces it asked for last, by "file:piece" (RECEIPT_CACHE at most). */
  readonly #shareTables = new Map<string, Buffer>();

  constructor(host: string, port: number, key?: Uint8Array, peerId = 0) {
    this.host = host;
    this.port = port;
    this.peerId = peerId;
    this.#key = key === undefined ? undefined : Buffer.from(key);
    this.validated = key === undefined;
  }

  /** Why a request of body `kind` must be dropped (a bad proof, a replay), or undefined. */
  check(kind: number, d: Admitted): Drop | undefined {
    const key = this.#key;
    if (key === undefined) return undefined;
    const expected = requestProof(key, kind, d.seq, d.token, d.fileId);
    if (d.auth.length !== expected.length || !timingSafeEqual(d.auth, expected)) return "bad-proof";
    if (!this.#replay.accept(d.seq)) return "replay";
    this.proven = true;
    return undefined;
  }

  /**
   * The cipher of this client's receipt shares for `fileId` under `secret`: made once per
   * file (an HMAC and a cipher set-up), kept for its next requests.
   */
  receiptCipher(secret: Uint8Array, fileId: number): ReceiptCipher {
    let cipher = this.#receiptCiphers.get(fileId);
    if (cipher === undefined) {
      cipher = new ReceiptCipher(receiptKey(secret, this.peerId, fileId));
      bounded(this.#receiptCiphers, fileId, cipher);
    }
    return cipher;
  }

  /**
   * The receipt shares of every chunk of a piece (chunks [first, first + count), share i at
   * i * RECEIPT_SHARE_STRIDE): one cipher call per piece, however many requests ask for it.
   */
  shareTable(secret: Uint8Array, fileId: number, piece: number, first: number, count: number): Buffer {
    const key = `${fileId}:${piece}`;
    let table = this.#shareTables.get(key);
    if (table === undefined) {
      const chunks = new Array<number>(count);
      for (let i = 0; i < count; i++) chunks[i] = first + i;
      table = this.receiptCipher(secret, fileId).shares(chunks);
      bounded(this.#shareTables, key, table);
    }
    return table;
  }

  /** Bytes we may still send to the address before it is validated. */
  get budget(): number {
    return this.validated ? Number.POSITIVE_INFINITY : AMPLIFICATION_LIMIT * this.unvalidatedIn - this.unvalidatedOut;
  }

  /** `bytes` went out to this address. */
  spend(bytes: number): void {
    if (!this.validated) this.unvalidatedOut += bytes;
  }
}

export type ChunkServerDeps = {
  readonly store: PieceStore;
  readonly counters: TransferCounters;
  readonly file: (id: number) => FileState | undefined;
  readonly send: (bytes: Buffer, to: ServedClient) => void;
  readonly now: () => number;
  /** A file we seed changed on disk or cannot be read: it is no longer served. */
  readonly withdraw: (file: FileState, why: string) => void;
  /** Storage of a file being fetched failed: the peer cannot go on. */
  readonly fatal: (err: unknown) => void;
  /** Key of the address cookies (random when not given). */
  readonly cookieSecret?: Uint8Array;
  /** Our tracker-issued secret: the key of our chunks' receipt shares (empty: zero shares). */
  readonly receiptSecret?: () => Uint8Array;
};

/**
 * Serving: admits a request only with a valid proof and a sequence number not seen before;
 * answers a client whose address is not validated with an AddressCookie (within 3x what it
 * sent) and nothing else; answers a validated one's chunk requests with one datagram per
 * chunk held (one read per run) and hash requests with the piece's block hashes, within
 * its hash-reply rate. Each handler returns why the datagram was dropped (a request that
 * got no answer at all), or undefined: a request answered in part is not a drop.
 */
export class ChunkServer {
  readonly #deps: ChunkServerDeps;
  readonly #cookieSecret: Uint8Array;
  /** When each offered file was last checked against the disk. */
  readonly #checkedAt = new Map<number, number>();
  #datagramSeq: number;

  constructor(deps: ChunkServerDeps, firstSeq: number) {
    this.#deps = deps;
    this.#datagramSeq = firstSeq;
    this.#cookieSecret = deps.cookieSecret ?? randomBytes(16);
  }

  /** A seed that cannot be read is withdrawn (the peer goes on); a file being fetched is fatal. */
  #readFailed(file: FileState, err: unknown): void {
    if (file.mode === "seeding") this.#deps.withdraw(file, errorMessage(err));
    else this.#deps.fatal(err);
  }

  /**
   * Whether `file` is still what we offered: checked against the disk (one fstat) at most
   * every SEED_CHECK_MS, not per request or chunk; a changed file is withdrawn.
   */
  #unchanged(file: FileState): boolean {
    const check = this.#deps.store.seedChanged;
    if (check === undefined) return true;
    const now = this.#deps.now();
    if (now - (this.#checkedAt.get(file.id) ?? Number.NEGATIVE_INFINITY) < SEED_CHECK_MS) return true;
    this.#checkedAt.set(file.id, now);
    let why: string | undefined;
    try {
      why = check.call(this.#deps.store, file.id);
    } catch (err) {
      why = errorMessage(err);
    }
    if (why === undefined) return true;
    this.#deps.withdraw(file, why);
    return false;
  }

  /** The cookie of `client`'s listed address for time window `window`. */
  cookieFor(client: ServedClient, window: number): Buffer {
    const h = createHmac("sha256", this.#cookieSecret);
    h.update(`${window}|${client.host}|${client.port}`);
    return h.digest().subarray(0, COOKIE_BYTES);
  }

  #cookieValid(client: ServedClient, cookie: Uint8Array): boolean {
    if (cookie.length !== COOKIE_BYTES) return false;
    const window = Math.floor(this.#deps.now() / COOKIE_WINDOW_MS);
    for (const w of [window, window - 1]) if (timingSafeEqual(cookie, this.cookieFor(client, w))) return true;
    return false;
  }

  onRequest(client: ServedClient, req: RequestDatagram, received: number): Drop | undefined {
    const { counters: c, store } = this.#deps;
    c.requestsReceived++;
    const refusal = this.#admit(client, PROOF_REQUEST, req, received);
    if (refusal !== undefined) return refusal;
    const file = this.#deps.file(req.fileId);
    if (file === undefined || file.mode === "ignored" || !this.#unchanged(file)) return "not-held";
    const chunks = req.chunks;
    const last = chunks[chunks.length - 1] ?? -1;
    if (last >= file.chunks) return "range";
    const shares = this.#receiptShares(client, file, chunks);
    let answered = 0;
    // Answer in maximal runs of consecutive chunks we hold: one read per run.
    let i = 0;
    while (i < chunks.length) {
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
        this.#readFailed(file, err);
        return answered === 0 ? "not-held" : undefined;
      }
      const out = datagramsOf(data, count);
      for (let k = 0; k < count; k++) {
        const chunk = start + k;
        const at = k * DATAGRAM_STRIDE;
        writeChunkHeader(
          out,
          at,
          this.#datagramSeq++,
          req.seq,
          req.token,
          file.id,
          chunk,
          shares?.table,
          shares === undefined ? 0 : (chunk - shares.base) * RECEIPT_SHARE_STRIDE,
        );
        this.#deps.send(out.subarray(at, at + CHUNK_HEADER_BYTES + chunkLength(file.manifest.size, chunk)), client);
        c.chunksSent++;
        answered++;
      }
      i = j;
    }
    return answered === 0 ? "not-held" : undefined;
  }

  /**
   * The receipt shares of a request's chunks: the share of chunk c is at
   * (c - base) * RECEIPT_SHARE_STRIDE of `table`. A request within one piece (all of ours)
   * uses the piece's table, made once; no crypto per chunk. Undefined without a secret
   * (tests, before the Welcome): shares are zeros.
   */
  #receiptShares(
    client: ServedClient,
    file: FileState,
    chunks: readonly number[],
  ): { readonly table: Buffer; readonly base: number } | undefined {
    const secret = this.#deps.receiptSecret?.();
    if (secret === undefined || secret.length === 0) return undefined;
    const first = chunks[0] ?? 0;
    const last = chunks[chunks.length - 1] ?? 0;
    const piece = file.pieceOf(first);
    if (file.pieceOf(last) === piece) {
      const base = file.firstChunkOf(piece);
      return { table: client.shareTable(secret, file.id, piece, base, file.chunksIn(piece)), base };
    }
    // A request across pieces (not one of ours): the shares of its span, once.
    const span = Array.from({ length: last - first + 1 }, (_, k) => first + k);
    return { table: client.receiptCipher(secret, file.id).shares(span), base: first };
  }

  onHashRequest(client: ServedClient, d: HashRequestDatagram, received: number): Drop | undefined {
    const c = this.#deps.counters;
    const refusal = this.#admit(client, PROOF_HASH_REQUEST, d, received);
    if (refusal !== undefined) return refusal;
    const file = this.#deps.file(d.fileId);
    if (
      file === undefined ||
      d.piece >= file.pieces ||
      !file.done.has(d.piece) ||
      file.mode === "ignored" ||
      !this.#unchanged(file)
    ) {
      return "not-held";
    }
    if (!client.hashReplies.take(this.#deps.now())) return "rate-limited";
    let data: Buffer;
    try {
      data = this.#deps.store.read(file.id, file.firstChunkOf(d.piece), file.chunksIn(d.piece));
    } catch (err) {
      this.#readFailed(file, err);
      return "not-held";
    }
    const reply = encodeHashReply(this.#datagramSeq++, file.id, d.piece, d.token, blockHashes(data));
    c.hashRepliesSent++;
    this.#deps.send(reply, client);
    return undefined;
  }

  /**
   * Why the request gets no answer (a bad proof, a replay, an address not validated yet),
   * or undefined when it is to be served in full. An address not validated gets an
   * AddressCookie instead, within the amplification budget; a request echoing a valid
   * cookie validates it (once per address: later requests skip the cookie check).
   */
  #admit(client: ServedClient, kind: number, d: Admitted, received: number): Drop | undefined {
    const drop = client.check(kind, d);
    if (drop !== undefined) return drop;
    if (client.validated) return undefined;
    if (d.cookie.length > 0 && this.#cookieValid(client, d.cookie)) {
      client.validated = true;
      return undefined;
    }
    const c = this.#deps.counters;
    c.unprovenRequests++;
    client.unvalidatedIn += received;
    c.unvalidatedBytesIn += received;
    const now = this.#deps.now();
    const out = encodeCookie(
      this.#datagramSeq++,
      d.seq,
      d.token,
      this.cookieFor(client, Math.floor(now / COOKIE_WINDOW_MS)),
    );
    if (out.length > client.budget) return "amplification";
    client.spend(out.length);
    c.unvalidatedBytesOut += out.length;
    c.cookiesSent++;
    this.#deps.send(out, client);
    return "unvalidated";
  }
}
