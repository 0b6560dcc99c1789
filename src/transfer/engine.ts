import { timingSafeEqual } from "node:crypto";
import PQueue from "p-queue";
import type { Clock, TimerHandle } from "../util/clock.js";
import type { SeededRandom } from "../util/random.js";
import { CHUNK_SIZE, chunkLength, MAX_CHUNKS_PER_REQUEST, MAX_REQUEST_SPAN } from "../wire/limits.js";
import {
  CHUNK_HEADER_BYTES,
  type ChunkDatagram,
  decodePeerDatagram,
  encodeHashReply,
  encodeHashRequest,
  encodeRequest,
  type HashReplyDatagram,
  type HashRequestDatagram,
  type RequestDatagram,
  writeChunkHeader,
} from "../wire/peer-datagram.js";
import type { CheckedManifest } from "../wire/tracker-frame.js";
import { newCounters, type TransferCounters } from "./counters.js";
import { type FileMode, FileState, type PieceAssembly, releasePieceBuffer } from "./file-state.js";
import { blockHashes } from "./piece-hash.js";
import { addressKey, ChunkAnswer, type Outstanding, type RemoteOptions, RemotePeer } from "./remote.js";

/** Where datagrams go: a UDP socket, a fault injector, or the fake network of the tests. */
export interface DatagramPort {
  send(bytes: Buffer, host: string, port: number): void;
}

/** Where verified pieces live. Throwing from either method is a fatal I/O error. */
export interface PieceStore {
  /** Bytes of chunks [firstChunk, firstChunk + count) of a file whose pieces we hold. */
  read(fileId: number, firstChunk: number, count: number): Buffer;
  writePiece(fileId: number, piece: number, firstChunk: number, data: Buffer): void;
}

export interface TransferEvents {
  /** Chunks [firstChunk, firstChunk + count) were verified and stored. */
  acquired(fileId: number, firstChunk: number, count: number): void;
  /** Every piece of the file is verified and stored. */
  fileComplete(fileId: number): void;
  /** Storage failed: the peer cannot go on. */
  fatal(err: unknown): void;
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
};

type Plan = { readonly file: FileState; readonly piece: PieceAssembly; readonly chunks: number[] };

type PendingHashes = {
  readonly token: number;
  readonly file: FileState;
  readonly piece: PieceAssembly;
  readonly remote: RemotePeer;
  readonly timer: TimerHandle;
  readonly attempt: number;
};

/** Authentication of one remote peer's requests (values from the tracker). */
export type RemoteAuth = {
  /** What requests from that peer must carry. */
  readonly inbound: Uint8Array;
  /** What our requests to that peer carry. */
  readonly outbound: Uint8Array;
};

/** HashRequests answered per peer per second at most (each costs a 64 KiB read and 32 hashes). */
const HASH_REPLIES_PER_SECOND = 50;
/** Attempts to get trusted block hashes before a failed piece is fetched again whole. */
const HASH_ATTEMPTS = 4;
/** An unauthenticated address gets at most this many bytes per byte it sent (RFC 9000 §8). */
const AMPLIFICATION_LIMIT = 3;

/** Late answers to retired requests are still recognised for a while (not as answers). */
const RETIRED_MEMORY = 8192;

/**
 * The data path of one peer: serves chunks it holds, fetches the chunks it lacks in
 * batched requests from every peer that holds them, detects loss (reordering threshold,
 * time threshold, timeout), and assembles and verifies pieces. I/O is injected; time
 * comes from the clock, so tests run it on a manual clock and a fake network.
 */
export class TransferEngine {
  readonly counters: TransferCounters = newCounters();
  readonly #deps: TransferDeps;
  readonly #perRequest: number;
  readonly #maxInflight: number;
  readonly #maxBackoffs: number;
  readonly #maxBadChunks: number;
  readonly #remoteOptions: RemoteOptions;
  readonly #files = new Map<number, FileState>();
  readonly #remotes = new Map<number, RemotePeer>();
  readonly #byAddress = new Map<string, RemotePeer>();
  readonly #outstanding = new Map<number, Outstanding>();
  readonly #retired = new Map<number, Outstanding>();
  /** HashRequests out, by token. */
  readonly #hashRequests = new Map<number, PendingHashes>();
  #inflight = 0;
  #requestSeq: number;
  #datagramSeq: number;
  #timer: TimerHandle | undefined;
  #timerAt = Number.POSITIVE_INFINITY;
  #pumpScheduled = false;
  #rotate = 0;
  #closed = false;

  constructor(deps: TransferDeps, options: TransferOptions = {}) {
    this.#deps = deps;
    this.#perRequest = Math.min(MAX_CHUNKS_PER_REQUEST, Math.max(1, options.chunksPerRequest ?? 64));
    this.#maxInflight = options.maxInflight ?? 3072;
    this.#maxBackoffs = options.maxBackoffs ?? 8;
    this.#maxBadChunks = options.maxBadChunks ?? 64;
    // The window moves in whole requests: grows by one per RTT, never below four.
    const remote = options.remote ?? {};
    this.#remoteOptions = {
      ...remote,
      window: { step: this.#perRequest, min: 4 * this.#perRequest, ...remote.window },
    };
    this.#requestSeq = deps.random.u32();
    this.#datagramSeq = deps.random.u32();
  }

  // ------------------------------------------------------------------ swarm view

  /**
   * A file of the swarm. A download resumed from an earlier run passes the pieces it
   * already holds, verified: they are served, never requested, and not reported as
   * acquired (the caller reports them).
   */
  addFile(
    id: number,
    manifest: CheckedManifest,
    mode: FileMode,
    resumed: { readonly verifiedPieces?: Iterable<number> } = {},
  ): FileState {
    const existing = this.#files.get(id);
    if (existing !== undefined) return existing;
    const file = new FileState(id, manifest, mode);
    if (mode === "downloading" && resumed.verifiedPieces !== undefined) {
      file.restoreVerifiedPieces(resumed.verifiedPieces);
    }
    this.#files.set(id, file);
    if (mode === "downloading" && file.done.complete) this.#completeFile(file);
    this.#schedulePump();
    return file;
  }

  file(id: number): FileState | undefined {
    return this.#files.get(id);
  }

  files(): IterableIterator<FileState> {
    return this.#files.values();
  }

  /** The swarm no longer offers the file: drop its requests and pieces in progress. */
  removeFile(id: number): void {
    const file = this.#files.get(id);
    if (file === undefined) return;
    this.#files.delete(id);
    for (const o of [...this.#outstanding.values()]) if (o.file === file) this.#abandon(o);
    file.active.clear();
  }

  /**
   * A peer of the swarm at host:port. With `auth`, its requests must prove who they are
   * from; without (tests), any request from its address is served.
   */
  addRemote(id: number, host: string, port: number, auth?: RemoteAuth, aliases: readonly string[] = []): void {
    if (this.#remotes.has(id) || this.#closed) return;
    const queue = new PQueue({ concurrency: 1 });
    const remote = new RemotePeer(id, host, port, queue, this.#remoteOptions);
    if (auth !== undefined) {
      remote.inboundAuth = Buffer.from(auth.inbound);
      remote.outboundAuth = auth.outbound;
    }
    queue.concurrency = this.#requestSlots(remote);
    queue.on("next", () => this.#schedulePump());
    this.#remotes.set(id, remote);
    this.#byAddress.set(remote.key, remote);
    // The other addresses its datagrams may come from (a host with several interfaces).
    for (const alias of aliases) {
      const key = addressKey(alias, port);
      if (!this.#byAddress.has(key)) {
        this.#byAddress.set(key, remote);
        remote.aliasKeys.push(key);
      }
    }
  }

  removeRemote(id: number): void {
    const remote = this.#remotes.get(id);
    if (remote === undefined) return;
    this.#remotes.delete(id);
    for (const key of [remote.key, ...remote.aliasKeys]) {
      if (this.#byAddress.get(key) === remote) this.#byAddress.delete(key);
    }
    remote.queue.clear();
    for (const o of [...remote.inFlight()]) this.#abandon(o);
    for (const file of this.#files.values()) file.removeHolder(id);
    for (const pending of [...this.#hashRequests.values()]) {
      if (pending.remote === remote) this.#retryHashes(pending);
    }
    this.#schedulePump();
  }

  /** `peerId` now holds `runs` of the file's chunks (or all of it). */
  holdersChanged(
    peerId: number,
    fileId: number,
    runs: ReadonlyArray<readonly [number, number]>,
    complete: boolean,
  ): void {
    const file = this.#files.get(fileId);
    if (file === undefined) return;
    file.addHolder(peerId, runs, complete);
    this.#schedulePump();
  }

  get remoteCount(): number {
    return this.#remotes.size;
  }

  /** Per-peer transport state, for --stats. */
  remoteStats(): Array<Record<string, number | boolean | undefined>> {
    return [...this.#remotes.values()].map((r) => ({
      peer: r.id,
      srttMs: r.rtt.smoothed,
      rttvarMs: r.rtt.variance,
      minRttMs: r.rtt.min,
      rtoMs: r.rtt.rto(),
      windowChunks: r.window.chunks,
      windowDecreases: r.window.decreases,
      inflightChunks: r.inflightChunks,
      reorderThreshold: r.reorderThreshold,
      suspect: r.suspect,
      banned: r.banned,
      badChunks: r.badChunks,
      chunksFrom: r.chunksFrom,
      proven: r.proven,
    }));
  }

  /** A snapshot of the download state, for diagnostics (--debug). */
  debugState(): Record<string, unknown> {
    return {
      inflight: this.#inflight,
      outstanding: this.#outstanding.size,
      hashRequests: this.#hashRequests.size,
      timerAt: this.#timerAt,
      now: this.#deps.clock.now(),
      files: [...this.#files.values()].map((f) => ({
        id: f.id,
        mode: f.mode,
        done: f.done.count,
        pieces: f.pieces,
        retry: f.retry.length,
        active: [...f.active.values()].map((p) => ({
          piece: p.piece,
          have: p.have.count,
          of: p.chunkCount,
          owner: p.owner,
          awaiting: p.awaitingHashes,
          inflight: p.inflight.reduce((a, b) => a + b, 0),
          failures: p.failures,
        })),
      })),
      remotes: this.remoteStats(),
      queues: [...this.#remotes.values()].map((r) => ({
        size: r.queue.size,
        pending: r.queue.pending,
        conc: r.queue.concurrency,
      })),
    };
  }

  /** Stops every timer and forgets every request. Safe to call twice. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer !== undefined) this.#deps.clock.clearTimer(this.#timer);
    this.#timer = undefined;
    for (const remote of this.#remotes.values()) remote.queue.clear();
    for (const o of [...this.#outstanding.values()]) this.#retire(o);
    for (const pending of this.#hashRequests.values()) this.#deps.clock.clearTimer(pending.timer);
    this.#hashRequests.clear();
  }

  // ------------------------------------------------------------------ input

  /** One datagram from the socket. Never throws: bad input is counted and dropped. */
  onDatagram(bytes: Buffer, host: string, port: number): void {
    const c = this.counters;
    c.datagramsReceived++;
    c.bytesReceived += bytes.length;
    if (this.#closed) return;
    const remote = this.#byAddress.get(addressKey(host, port));
    if (remote === undefined) {
      c.drops["unknown-source"]++;
      return;
    }
    const d = decodePeerDatagram(bytes);
    switch (d.kind) {
      case "invalid":
        c.drops[d.reason]++;
        return;
      case "request":
        this.#serve(remote, d, bytes.length);
        return;
      case "chunk":
        this.#onChunk(remote, d);
        return;
      case "hash-request":
        this.#serveHashes(remote, d, bytes.length);
        return;
      case "hash-reply":
        this.#onHashes(remote, d);
        return;
    }
  }

  /**
   * How many bytes we may send in answer: unlimited for a request that proves it comes
   * from the listed peer; otherwise three times what that address sent unproven.
   */
  #answerBudget(remote: RemotePeer, auth: Uint8Array, received: number): number {
    const expected = remote.inboundAuth;
    if (expected === undefined || (auth.length === expected.length && timingSafeEqual(auth, expected))) {
      remote.proven = true;
      return Number.POSITIVE_INFINITY;
    }
    this.counters.drops["bad-auth"]++;
    remote.unprovenBytesIn += received;
    return AMPLIFICATION_LIMIT * remote.unprovenBytesIn - remote.unprovenBytesOut;
  }

  // ------------------------------------------------------------------ serving

  #serve(remote: RemotePeer, req: RequestDatagram, received: number): void {
    const c = this.counters;
    c.requestsReceived++;
    let budget = this.#answerBudget(remote, req.auth, received);
    const file = this.#files.get(req.fileId);
    if (file === undefined || file.mode === "ignored") {
      c.drops["not-held"]++;
      return;
    }
    const chunks = req.chunks;
    const last = chunks[chunks.length - 1] ?? -1;
    if (last >= file.chunks) {
      c.drops.range++;
      return;
    }
    // Answer in maximal runs of consecutive chunks we hold: one read per run.
    let i = 0;
    while (i < chunks.length) {
      const start = chunks[i] ?? 0;
      if (!file.canServe(start)) {
        c.drops["not-held"]++;
        i++;
        continue;
      }
      let j = i + 1;
      while (j < chunks.length && chunks[j] === start + (j - i) && file.canServe(chunks[j] ?? -1)) j++;
      const count = j - i;
      let data: Buffer;
      try {
        data = this.#deps.store.read(file.id, start, count);
      } catch (err) {
        this.#deps.events.fatal(err);
        return;
      }
      for (let k = 0; k < count; k++) {
        const chunk = start + k;
        const len = chunkLength(file.manifest.size, chunk);
        if (CHUNK_HEADER_BYTES + len > budget) {
          c.drops.amplification++;
          return;
        }
        if (budget !== Number.POSITIVE_INFINITY) {
          budget -= CHUNK_HEADER_BYTES + len;
          remote.unprovenBytesOut += CHUNK_HEADER_BYTES + len;
        }
        const out = Buffer.allocUnsafe(CHUNK_HEADER_BYTES + len);
        writeChunkHeader(out, 0, this.#datagramSeq++, req.seq, req.token, file.id, chunk);
        data.copy(out, CHUNK_HEADER_BYTES, k * CHUNK_SIZE, k * CHUNK_SIZE + len);
        this.#sendDatagram(out, remote);
        c.chunksSent++;
      }
      i = j;
    }
  }

  #sendDatagram(bytes: Buffer, remote: RemotePeer): void {
    this.counters.datagramsSent++;
    this.counters.bytesSent += bytes.length;
    this.#deps.port.send(bytes, remote.host, remote.port);
  }

  // ------------------------------------------------------------------ receiving

  #onChunk(remote: RemotePeer, d: ChunkDatagram): void {
    const c = this.counters;
    const o = this.#outstanding.get(d.requestSeq) ?? this.#retired.get(d.requestSeq);
    if (o === undefined || o.remote !== remote) {
      c.drops.stale++;
      return;
    }
    if (o.token !== d.token || o.file.id !== d.fileId) {
      c.drops["bad-token"]++;
      return;
    }
    const idx = o.chunks.indexOf(d.chunk);
    if (idx < 0) {
      c.drops.range++;
      return;
    }
    const file = o.file;
    if (d.data.length !== chunkLength(file.manifest.size, d.chunk)) {
      c.drops.length++;
      return;
    }
    const now = this.#deps.clock.now();
    remote.lastHeardAt = now;
    if (!o.answered) {
      o.answered = true;
      remote.rtt.sample(now - o.sentAt);
      const rtt = remote.rtt;
      remote.window.onRttSample(rtt.latest, rtt.min ?? rtt.latest, rtt.smoothed ?? rtt.latest, now);
      remote.consecutiveTimeouts = 0;
      remote.suspect = false;
    }
    const state = o.states[idx];
    if (state === ChunkAnswer.received) {
      c.duplicates++;
      return;
    }
    o.states[idx] = ChunkAnswer.received;
    if (state === ChunkAnswer.lost) {
      // Declared lost, yet here: the reordering was deeper than the threshold allowed.
      c.spuriousLosses++;
      remote.reorderThreshold = Math.min(256, remote.reorderThreshold * 2);
      remote.timeThreshold = Math.min(3, remote.timeThreshold + 1 / 8);
    } else {
      o.pending--;
      remote.inflightChunks--;
      this.#inflight--;
      const piece = file.active.get(file.pieceOf(d.chunk));
      if (piece !== undefined) {
        const local = d.chunk - piece.firstChunk;
        piece.dropInflight(local);
      }
    }
    const pos = o.basePos + idx;
    if (pos > remote.highestPos) remote.highestPos = pos;
    remote.window.onAck(1);

    this.#accept(file, remote, d.chunk, d.data);
    this.#detectLosses(remote, now);
    if (o.pending === 0 && !o.retired) this.#retire(o);
    this.#schedulePump();
  }

  #accept(file: FileState, remote: RemotePeer, chunk: number, data: Buffer): void {
    const piece = file.active.get(file.pieceOf(chunk));
    if (piece === undefined) {
      this.counters.duplicates++;
      return;
    }
    const local = chunk - piece.firstChunk;
    if (piece.have.has(local)) {
      this.counters.duplicates++;
      return;
    }
    data.copy(piece.data, local * CHUNK_SIZE);
    piece.have.set(local);
    piece.sources[local] = remote.id;
    remote.chunksFrom++;
    this.counters.chunksReceived++;
    if (piece.have.complete) this.#completePiece(file, piece);
  }

  #completePiece(file: FileState, piece: PieceAssembly): void {
    const verdict = file.verify(piece);
    if (!verdict.ok) {
      this.counters.pieceHashFailures++;
      piece.failures++;
      piece.localBlocks = verdict.blocks;
      if (piece.trustedBlocks !== undefined) this.#dropBadBlocks(file, piece, piece.trustedBlocks);
      else this.#requestHashes(file, piece, 0);
      return;
    }
    try {
      this.#deps.store.writePiece(file.id, piece.piece, piece.firstChunk, piece.data);
    } catch (err) {
      this.#deps.events.fatal(err);
      return;
    }
    file.active.delete(piece.piece);
    file.done.set(piece.piece);
    releasePieceBuffer(piece.data);
    this.counters.piecesVerified++;
    this.counters.chunksAcquired += piece.chunkCount;
    this.#deps.events.acquired(file.id, piece.firstChunk, piece.chunkCount);
    if (file.done.complete) this.#completeFile(file);
  }

  // ------------------------------------------------------------------ failed pieces

  /**
   * A whole piece failed: ask a holder for its block hashes (checked against the
   * manifest) to find the bad blocks; with no holder left to ask, fetch it all again.
   */
  #requestHashes(file: FileState, piece: PieceAssembly, attempt: number): void {
    const all = [...this.#remotes.values()].filter((r) => file.holds(r.id, piece.piece));
    const trusted = all.filter((r) => !r.banned);
    const holders = trusted.length > 0 ? trusted : all;
    if (attempt >= HASH_ATTEMPTS || holders.length === 0) {
      this.#blame(piece, undefined);
      piece.reset();
      piece.owner = undefined;
      piece.awaitingHashes = false;
      this.#schedulePump();
      return;
    }
    const remote = holders[(attempt + piece.failures) % holders.length] ?? holders[0];
    if (remote === undefined) return;
    piece.awaitingHashes = true;
    const token = this.#deps.random.u32();
    const timer = this.#deps.clock.setTimer(remote.rtt.rto() * 2 ** attempt, () => {
      const pending = this.#hashRequests.get(token);
      if (pending !== undefined) this.#retryHashes(pending);
    });
    this.#hashRequests.set(token, { token, file, piece, remote, timer, attempt });
    this.counters.hashRequestsSent++;
    this.#sendDatagram(encodeHashRequest(this.#requestSeq, file.id, piece.piece, token, remote.outboundAuth), remote);
    this.#requestSeq = (this.#requestSeq + 1) >>> 0;
  }

  #retryHashes(pending: PendingHashes): void {
    this.#deps.clock.clearTimer(pending.timer);
    this.#hashRequests.delete(pending.token);
    if (this.#files.get(pending.file.id) !== pending.file || !pending.file.active.has(pending.piece.piece)) return;
    this.#requestHashes(pending.file, pending.piece, pending.attempt + 1);
  }

  #onHashes(remote: RemotePeer, d: HashReplyDatagram): void {
    const pending = this.#hashRequests.get(d.token);
    if (
      pending === undefined ||
      pending.remote !== remote ||
      pending.file.id !== d.fileId ||
      pending.piece.piece !== d.piece
    ) {
      this.counters.drops.stale++;
      return;
    }
    const { file, piece } = pending;
    if (!file.trustBlocks(piece.piece, d.hashes) || d.hashes.length !== (piece.localBlocks?.length ?? -1)) {
      // Corrupt in transit, or a lying holder: ask again (another holder if there is one).
      this.counters.drops["bad-hashes"]++;
      this.#retryHashes(pending);
      return;
    }
    this.#deps.clock.clearTimer(pending.timer);
    this.#hashRequests.delete(d.token);
    piece.trustedBlocks = Buffer.from(d.hashes);
    this.#dropBadBlocks(file, piece, piece.trustedBlocks);
  }

  /** Forgets the chunks of every block whose hash differs from the trusted one. */
  #dropBadBlocks(file: FileState, piece: PieceAssembly, trusted: Buffer): void {
    piece.awaitingHashes = false;
    const local = piece.localBlocks ?? blockHashes(piece.data);
    const perBlock = file.manifest.chunksPerBlock;
    let bad = 0;
    for (let b = 0; b * 32 < trusted.length; b++) {
      if (local.compare(trusted, b * 32, b * 32 + 32, b * 32, b * 32 + 32) === 0) continue;
      for (let i = b * perBlock; i < Math.min(piece.chunkCount, (b + 1) * perBlock); i++) {
        this.#blame(piece, i);
        piece.forget(i);
        file.retry.push(piece.firstChunk + i);
        bad++;
      }
    }
    this.counters.badChunksRefetched += bad;
    if (bad === 0) {
      // Every block matches yet the piece failed: cannot happen with honest hashes.
      piece.reset();
    }
    this.#schedulePump();
  }

  /** Counts a bad chunk against its source (all sources of the piece when unknown). */
  #blame(piece: PieceAssembly, localIndex: number | undefined): void {
    const sources = localIndex === undefined ? [...new Set(piece.sources)] : [piece.sources[localIndex] ?? -1];
    for (const src of sources) {
      const r = src >= 0 ? this.#remotes.get(src) : undefined;
      if (r === undefined) continue;
      r.badChunks++;
      if (r.badChunks >= this.#maxBadChunks && r.badChunks * 2 > r.chunksFrom) r.banned = true;
    }
  }

  // ------------------------------------------------------------------ serving block hashes

  #serveHashes(remote: RemotePeer, d: HashRequestDatagram, received: number): void {
    const c = this.counters;
    const budget = this.#answerBudget(remote, d.auth, received);
    const file = this.#files.get(d.fileId);
    if (file === undefined || d.piece >= file.pieces || !file.done.has(d.piece) || file.mode === "ignored") {
      c.drops["not-held"]++;
      return;
    }
    const now = this.#deps.clock.now();
    remote.hashTokens = Math.min(
      HASH_REPLIES_PER_SECOND,
      remote.hashTokens + ((now - remote.hashTokensAt) / 1000) * HASH_REPLIES_PER_SECOND,
    );
    remote.hashTokensAt = now;
    if (remote.hashTokens < 1) {
      c.drops["rate-limited"]++;
      return;
    }
    remote.hashTokens--;
    let data: Buffer;
    try {
      data = this.#deps.store.read(file.id, file.firstChunkOf(d.piece), file.chunksIn(d.piece));
    } catch (err) {
      this.#deps.events.fatal(err);
      return;
    }
    const reply = encodeHashReply(this.#datagramSeq++, file.id, d.piece, d.token, blockHashes(data));
    if (reply.length > budget) {
      c.drops.amplification++;
      return;
    }
    if (budget !== Number.POSITIVE_INFINITY) remote.unprovenBytesOut += reply.length;
    c.hashRepliesSent++;
    this.#sendDatagram(reply, remote);
  }

  #completeFile(file: FileState): void {
    file.mode = "seeding";
    file.retry.length = 0;
    this.#deps.events.fileComplete(file.id);
  }

  // ------------------------------------------------------------------ loss detection

  /** Declares lost what the answers since prove lost (RFC 9002 §6.1), oldest first. */
  #detectLosses(remote: RemotePeer, now: number): void {
    const lossDelay = remote.rtt.lossDelay(remote.timeThreshold);
    for (let o = remote.front(); o !== undefined; o = remote.front()) {
      const cutoff = remote.highestPos - remote.reorderThreshold;
      const laterAnswered = remote.highestPos >= o.basePos;
      const timeLost = laterAnswered && now - o.sentAt > lossDelay;
      // Positions grow with i: from the first chunk still pending, stop at the first one
      // that neither threshold can declare lost (this runs for every chunk received).
      while (o.scanFrom < o.chunks.length && o.states[o.scanFrom] !== ChunkAnswer.pending) o.scanFrom++;
      for (let i = o.scanFrom; i < o.chunks.length; i++) {
        const pos = o.basePos + i;
        if (pos > cutoff && !(timeLost && pos < remote.highestPos)) break;
        if (o.states[i] !== ChunkAnswer.pending) continue;
        this.#lose(o, i, pos <= cutoff ? "reorder" : "time");
      }
      if (o.pending > 0) break;
      this.#retire(o);
    }
  }

  /** Chunk i of `o` will not be answered: lost (counted by detector) or abandoned (not counted). */
  #lose(o: Outstanding, i: number, why: "reorder" | "time" | "timeout" | "abandoned"): void {
    o.states[i] = ChunkAnswer.lost;
    o.pending--;
    o.remote.inflightChunks--;
    this.#inflight--;
    if (why === "reorder") this.counters.lostByReorder++;
    else if (why === "time") this.counters.lostByTime++;
    else if (why === "timeout") this.counters.lostByTimeout++;
    this.#release(o.file, o.chunks[i] ?? -1);
  }

  /** A chunk is no longer in flight from some request: if still missing, ask again first. */
  #release(file: FileState, chunk: number): void {
    const piece = file.active.get(file.pieceOf(chunk));
    if (piece === undefined) return;
    const local = chunk - piece.firstChunk;
    piece.dropInflight(local);
    if (piece.have.has(local) || (piece.inflight[local] ?? 0) > 0) return;
    piece.release(local);
    file.retry.push(chunk);
  }

  /**
   * The timer checks after the datagrams already waiting in the socket are handled (a
   * late timer after a stalled event loop would otherwise blame the network).
   */
  #onTimer(): void {
    this.#timer = undefined;
    this.#timerAt = Number.POSITIVE_INFINITY;
    if (this.#closed) return;
    this.#deps.defer(() => this.#checkTimers());
  }

  #checkTimers(): void {
    if (this.#closed) return;
    const now = this.#deps.clock.now();
    for (const remote of this.#remotes.values()) {
      this.#detectLosses(remote, now);
      for (let o = remote.front(); o !== undefined; o = remote.front()) {
        if (now < this.#deadline(remote, o)) break;
        this.counters.timeouts++;
        if (!o.answered) {
          remote.rtt.onTimeout();
          remote.window.onTimeout(remote.rtt.smoothed ?? remote.rtt.rto(), now);
          remote.consecutiveTimeouts++;
          if (remote.consecutiveTimeouts >= this.#maxBackoffs && !remote.suspect) {
            remote.suspect = true;
            for (const file of this.#files.values()) {
              for (const piece of file.active.values()) if (piece.owner === remote.id) piece.owner = undefined;
            }
          }
        }
        for (let i = 0; i < o.chunks.length; i++) if (o.states[i] === ChunkAnswer.pending) this.#lose(o, i, "timeout");
        this.#retire(o);
      }
    }
    this.#armTimer();
    this.#schedulePump();
  }

  /** One timer for the whole engine, at the earliest deadline of any request in flight. */
  #armTimer(): void {
    if (this.#closed) return;
    let at = Number.POSITIVE_INFINITY;
    for (const remote of this.#remotes.values()) {
      const o = remote.front();
      if (o === undefined) continue;
      at = Math.min(at, this.#deadline(remote, o));
      // The time threshold applies only to chunks an answer has overtaken.
      const firstPending = o.states.indexOf(ChunkAnswer.pending);
      if (firstPending >= 0 && o.basePos + firstPending < remote.highestPos) {
        at = Math.min(at, o.sentAt + remote.rtt.lossDelay(remote.timeThreshold) + 0.001);
      }
    }
    if (at === Number.POSITIVE_INFINITY || at >= this.#timerAt) return;
    if (this.#timer !== undefined) this.#deps.clock.clearTimer(this.#timer);
    this.#timerAt = at;
    this.#timer = this.#deps.clock.setTimer(Math.max(0, at - this.#deps.clock.now()), () => this.#onTimer());
  }

  /**
   * A request times out when its peer has been silent for a whole RTO since it was sent
   * (as TCP restarts its timer on every ACK): while answers flow, loss is found by the
   * reordering and time thresholds, and only silence backs off and shrinks the window.
   */
  #deadline(remote: RemotePeer, o: Outstanding): number {
    return Math.max(o.sentAt, remote.lastHeardAt) + remote.rtt.rto();
  }

  #retire(o: Outstanding): void {
    if (o.retired) return;
    o.retired = true;
    this.#outstanding.delete(o.seq);
    this.#retired.set(o.seq, o);
    if (this.#retired.size > RETIRED_MEMORY) {
      const oldest = this.#retired.keys().next();
      if (!oldest.done) this.#retired.delete(oldest.value);
    }
    const finish = o.finish;
    o.finish = undefined;
    finish?.();
  }

  /** Gives up on a request (its peer or file is gone): its missing chunks go back to the pool. */
  #abandon(o: Outstanding): void {
    for (let i = 0; i < o.chunks.length; i++) if (o.states[i] === ChunkAnswer.pending) this.#lose(o, i, "abandoned");
    this.#retire(o);
  }

  // ------------------------------------------------------------------ requesting

  #requestSlots(remote: RemotePeer): number {
    if (remote.suspect) return 1;
    return Math.max(1, Math.ceil(remote.window.chunks / this.#perRequest));
  }

  #schedulePump(): void {
    if (this.#pumpScheduled || this.#closed) return;
    this.#pumpScheduled = true;
    this.#deps.defer(() => {
      this.#pumpScheduled = false;
      this.#pump();
    });
  }

  /** Fills every peer's window with requests, starting with a different peer each time. */
  #pump(): void {
    if (this.#closed) return;
    const remotes = [...this.#remotes.values()];
    if (remotes.length === 0) return;
    // A peer that sent mostly bad data is used only while no trustworthy one is left.
    const trusted = remotes.some((r) => !r.banned && !r.suspect);
    this.#rotate = (this.#rotate + 1) % remotes.length;
    for (let k = 0; k < remotes.length; k++) {
      const remote = remotes[(this.#rotate + k) % remotes.length];
      if (remote === undefined || (remote.banned && trusted)) continue;
      const queue = remote.queue;
      queue.concurrency = this.#requestSlots(remote);
      while (queue.pending + queue.size < queue.concurrency) {
        const plan = this.#plan(remote);
        if (plan === undefined) break;
        const o = this.#reserve(remote, plan);
        queue.add(() => this.#send(o)).catch(() => {});
      }
    }
  }

  /** Chooses the next chunks to ask `remote` for, or undefined when there is nothing. */
  #plan(remote: RemotePeer): Plan | undefined {
    let budget = Math.min(this.#perRequest, this.#maxInflight - this.#inflight);
    budget = Math.min(budget, remote.window.chunks - remote.inflightChunks);
    if (remote.suspect && remote.inflightChunks > 0) return undefined;
    if (budget <= 0) return undefined;
    const files = [...this.#files.values()].filter((f) => f.mode === "downloading");
    if (files.length === 0) return undefined;
    const start = this.#rotate % files.length;
    for (let k = 0; k < files.length; k++) {
      const file = files[(start + k) % files.length];
      if (file === undefined) continue;
      const plan =
        this.#planRetry(file, remote, budget) ??
        this.#planActive(file, remote, budget) ??
        this.#planNew(file, remote, budget);
      if (plan !== undefined) return plan;
    }
    for (const file of files) {
      const plan = this.#planEndgame(file, remote, budget);
      if (plan !== undefined) return plan;
    }
    return undefined;
  }

  /** Chunks declared lost, asked again first (from any peer holding them). */
  #planRetry(file: FileState, remote: RemotePeer, budget: number): Plan | undefined {
    const retry = file.retry;
    // A piece's losses go out again together once its round is over (see nextChunks).
    const held = new Set<PieceAssembly>();
    for (const chunk of retry) {
      const p = file.active.get(file.pieceOf(chunk));
      if (p !== undefined && p.inflightTotal > 0) held.add(p);
    }
    let piece: PieceAssembly | undefined;
    const chunks: number[] = [];
    let low = Number.POSITIVE_INFINITY;
    let high = Number.NEGATIVE_INFINITY;
    let w = 0;
    for (let r = 0; r < retry.length; r++) {
      const chunk = retry[r] ?? -1;
      const p = file.active.get(file.pieceOf(chunk));
      const local = p === undefined ? -1 : chunk - p.firstChunk;
      if (p === undefined || p.have.has(local) || (p.inflight[local] ?? 0) > 0) continue; // stale entry
      // One request spans at most one piece, whatever order the retry list is in.
      const fits =
        !held.has(p) &&
        chunks.length < budget &&
        file.holds(remote.id, p.piece) &&
        (piece === undefined || (p === piece && Math.max(high, chunk) - Math.min(low, chunk) < MAX_REQUEST_SPAN));
      if (fits && !chunks.includes(chunk)) {
        piece = p;
        chunks.push(chunk);
        low = Math.min(low, chunk);
        high = Math.max(high, chunk);
      } else if (!chunks.includes(chunk)) retry[w++] = chunk;
    }
    retry.length = w;
    if (piece === undefined || chunks.length === 0) return undefined;
    chunks.sort((a, b) => a - b);
    this.counters.retransmissions += chunks.length;
    return { file, piece, chunks };
  }

  /** Unrequested chunks of pieces this peer is fetching (or that nobody owns any more). */
  #planActive(file: FileState, remote: RemotePeer, budget: number): Plan | undefined {
    for (const piece of file.active.values()) {
      if (piece.owner !== undefined && piece.owner !== remote.id) continue;
      if (!file.holds(remote.id, piece.piece)) continue;
      const chunks = this.#window(piece.nextChunks(budget));
      if (chunks.length === 0) continue;
      piece.owner = remote.id;
      return { file, piece, chunks };
    }
    return undefined;
  }

  #planNew(file: FileState, remote: RemotePeer, budget: number): Plan | undefined {
    const p = file.pickNewPiece(remote.id, () => this.#deps.random.u32());
    if (p === undefined) return undefined;
    const piece = file.startPiece(p, remote.id);
    const chunks = this.#window(piece.unrequested(budget));
    return chunks.length === 0 ? undefined : { file, piece, chunks };
  }

  /**
   * Endgame: nothing is left to start, so the chunks still in flight elsewhere are asked of
   * this peer too (at most two requests per chunk); the first answer wins, the other is a
   * counted duplicate. Keeps a transfer from hanging on one slow peer at 99%.
   */
  #planEndgame(file: FileState, remote: RemotePeer, budget: number): Plan | undefined {
    if (file.done.count + file.active.size < file.pieces || file.retry.length > 0) return undefined;
    for (const piece of file.active.values()) {
      if (!file.holds(remote.id, piece.piece)) continue;
      const chunks: number[] = [];
      for (let i = 0; i < piece.chunkCount && chunks.length < budget; i++) {
        if (piece.have.has(i) || (piece.inflight[i] ?? 0) >= 2) continue;
        if (piece.requestedFrom[i] === remote.id && (piece.inflight[i] ?? 0) > 0) continue;
        const chunk = piece.firstChunk + i;
        if (chunks.length > 0 && chunk - (chunks[0] ?? chunk) >= MAX_REQUEST_SPAN) break;
        chunks.push(chunk);
      }
      if (chunks.length > 0) return { file, piece, chunks };
    }
    return undefined;
  }

  /** Keeps a list of ascending chunks within one request's span. */
  #window(chunks: number[]): number[] {
    const first = chunks[0];
    if (first === undefined) return chunks;
    let n = 0;
    while (n < chunks.length && (chunks[n] ?? first) - first < MAX_REQUEST_SPAN) n++;
    return n === chunks.length ? chunks : chunks.slice(0, n);
  }

  /** Marks the plan's chunks in flight and creates its request. */
  #reserve(remote: RemotePeer, plan: Plan): Outstanding {
    const first = plan.chunks[0] ?? 0;
    const o: Outstanding = {
      seq: this.#requestSeq,
      token: this.#deps.random.u32(),
      remote,
      file: plan.file,
      first,
      chunks: plan.chunks,
      states: new Uint8Array(plan.chunks.length),
      basePos: remote.nextPos,
      sentAt: this.#deps.clock.now(),
      pending: plan.chunks.length,
      scanFrom: 0,
      answered: false,
      retired: false,
      finish: undefined,
    };
    this.#requestSeq = (this.#requestSeq + 1) >>> 0;
    remote.nextPos += plan.chunks.length;
    remote.inflightChunks += plan.chunks.length;
    this.#inflight += plan.chunks.length;
    for (const chunk of plan.chunks) {
      const local = chunk - plan.piece.firstChunk;
      plan.piece.addInflight(local);
      plan.piece.requestedFrom[local] = remote.id;
    }
    this.#outstanding.set(o.seq, o);
    remote.push(o);
    return o;
  }

  /** The p-queue task of one request: send it, and hold its window slot until it retires. */
  #send(o: Outstanding): Promise<void> {
    if (o.retired) return Promise.resolve();
    o.sentAt = this.#deps.clock.now();
    const bytes = encodeRequest(o.seq, o.file.id, o.first, o.chunks, o.token, o.remote.outboundAuth);
    this.counters.requestsSent++;
    this.counters.chunksRequested += o.chunks.length;
    this.#sendDatagram(bytes, o.remote);
    this.#armTimer();
    return new Promise((resolve) => {
      o.finish = resolve;
    });
  }
}
