import { TimerTable } from "../util/timer-table.js";
import { PROOF_HASH_REQUEST, PROOF_REQUEST, RECEIPT_BYTES, requestProof, xorShares } from "../wire/auth.js";
import type { Bitmap } from "../wire/bitmap.js";
import { CHUNK_SIZE, chunkLength, MAX_CHUNKS_PER_REQUEST } from "../wire/limits.js";
import {
  CHUNK_DATA_OFFSET,
  ChunkHeader,
  type CookieDatagram,
  decodePeerDatagram,
  encodeHashRequest,
  encodeRequest,
  KIND_CHUNK,
  RECEIPT_SHARE_OFFSET,
} from "../wire/peer-datagram.js";
import type { CheckedManifest } from "../wire/tracker-frame.js";
import { AddressTable } from "./address-table.js";
import { BlockRepair } from "./block-repair.js";
import { ChunkServer, ServedClient } from "./chunk-server.js";
import { countDrop, type Drop, newCounters, type TransferCounters } from "./counters.js";
import { type FileMode, FileState, type PieceAssembly } from "./file-state.js";
import type { PieceReceipt, RemoteAuth, TransferDeps, TransferOptions } from "./io.js";
import type { DownloadingPiece, Pick, SecondAsk } from "./piece-picker.js";
import { type LossReason, type RemoteOptions, RemotePeer, type Request } from "./remote.js";
import { RequestScheduler } from "./request-scheduler.js";
import { RequestTracker, type TrackerEvents } from "./request-tracker.js";

export type * from "./io.js";

type Plan = { readonly file: FileState; readonly pick: Pick };

/**
 * Requests for one file to one holder that got no answer at all, in a row, after which it is
 * dropped as a holder of that file while another holder is left, or when its address never
 * answered anything (a holder that did answer before and is the only one is still asked,
 * one request at a time, and reported once).
 */
export const MAX_SILENT_REQUESTS = 8;
/**
 * ...and only once that silence has lasted this long (ms). On a crowded host (128 peers
 * on two cores) a holder can get no CPU for seconds: its requests time out in a row at
 * loopback RTOs, yet it serves again as soon as it runs. A holder is judged on time, as
 * the tracker judges a peer's link (its silence floor is 15 s too), not on a count alone.
 * An address that never answered anything is judged on the count alone.
 */
export const MIN_SILENT_MS = 15_000;
/** Pieces of one file failed with chunks from one holder (more than it helped verify) after which it is dropped as a holder of that file. */
export const MAX_BAD_PIECES = 8;
/**
 * A holder that answered before and was dropped for its silence (while others were left)
 * is asked again after this long (ms), doubling per such drop up to 8 times this: on a
 * crowded host (128 peers on two cores) a live peer can stay silent for minutes, and the
 * others may leave or turn out to hold only part of the file; a peer that is really gone
 * is reported by the tracker.
 */
export const REINSTATE_MS = 20_000;

/** The chunk runs of the pieces set in `pieces` (a holder's bitmap in the picker). */
function pieceRuns(pieces: Bitmap, file: FileState): Array<[number, number]> {
  return pieces.runs().map(([first, count]) => {
    const start = file.firstChunkOf(first);
    const end = first + count < file.pieces ? file.firstChunkOf(first + count) : file.chunks;
    return [start, end - start];
  });
}

/** Timer-table keys: this one for loss detection, REINSTATE_TIMER for dropped holders asked again, the others hash-request tokens. */
const LOSS_TIMER = "loss";
const REINSTATE_TIMER = "reinstate";

/**
 * The data path of one peer, wiring its parts together: membership (files and remote
 * peers), input dispatch, chunk acceptance and piece verification. Serving is the
 * ChunkServer's, request tracking and loss detection each remote's RequestTracker's,
 * windowed sending the RequestScheduler's, bad-block repair the BlockRepair's. I/O is
 * injected; time comes from the clock, so tests run it on a manual clock and a fake network.
 */
export class TransferEngine {
  readonly counters: TransferCounters = newCounters();
  readonly #deps: TransferDeps;
  readonly #perRequest: number;
  readonly #maxBackoffs: number;
  readonly #remoteOptions: RemoteOptions;
  readonly #files = new Map<number, FileState>();
  readonly #remotes = new Map<number, RemotePeer>();
  readonly #byAddress = new AddressTable<RemotePeer>();
  readonly #scheduler: RequestScheduler<RemotePeer>;
  readonly #timers: TimerTable<typeof LOSS_TIMER | typeof REINSTATE_TIMER | number>;
  /** Holders dropped for their silence, each asked again at `at` with what it held (see REINSTATE_MS). */
  #reinstating: Array<{ at: number; remote: RemotePeer; file: FileState; held: Bitmap | "complete" }> = [];
  readonly #server: ChunkServer;
  readonly #repair: BlockRepair<RemotePeer>;
  readonly #trackerEvents: TrackerEvents<Request> = {
    lost: (o, i, why) => this.#onLost(o, i, why),
    timedOut: (o, unanswered, probe) => this.#onTimedOut(o, unanswered, probe),
    retired: (o) => this.#scheduler.finish(o),
  };
  #requestSeq: number;
  /** Downloading files (set per pump), and the one the next request starts from. */
  #order: FileState[] = [];
  #turn = 0;
  #closed = false;
  /** The header of the chunk datagram being handled (one object, reused). */
  readonly #chunkHeader = new ChunkHeader();
  /** #pump as one function: a pump is asked for per chunk received, and no closure is made for it. */
  readonly #pumpNow = (): void => this.#pump();

  constructor(deps: TransferDeps, options: TransferOptions = {}) {
    this.#deps = deps;
    this.#perRequest = Math.min(MAX_CHUNKS_PER_REQUEST, Math.max(1, options.chunksPerRequest ?? 64));
    this.#maxBackoffs = options.maxBackoffs ?? 8;
    // The window moves in whole requests: grows by one per RTT, never below four.
    const remote = options.remote ?? {};
    this.#remoteOptions = {
      ...remote,
      window: { step: this.#perRequest, min: 4 * this.#perRequest, ...remote.window },
    };
    this.#scheduler = new RequestScheduler({
      perRequest: this.#perRequest,
      maxInflight: options.maxInflight ?? 3072,
      defer: deps.defer,
    });
    this.#timers = new TimerTable(deps.clock, (now) => this.#onTimers(now));
    this.#requestSeq = deps.random.u32();
    this.#server = new ChunkServer(
      {
        store: deps.store,
        counters: this.counters,
        file: (id) => this.#files.get(id),
        send: (bytes, to) => this.#send(bytes, to.host, to.port),
        now: () => deps.clock.now(),
        withdraw: (file, why) => this.#withdraw(file, why),
        fatal: (err) => deps.events.fatal(err),
        ...(deps.receiptSecret && { receiptSecret: deps.receiptSecret }),
      },
      deps.random.u32(),
    );
    this.#repair = new BlockRepair({
      counters: this.counters,
      holders: (file, piece) => [...this.#remotes.values()].filter((r) => file.holds(r.id, piece)),
      peer: (id) => this.#remotes.get(id),
      current: (file, piece) => this.#files.get(file.id) === file && file.picker.activePiece(piece.piece) !== undefined,
      sendHashRequest: (to, fileId, piece, token) => {
        const seq = this.#requestSeq;
        const proof = this.#proof(to, PROOF_HASH_REQUEST, seq, token, fileId);
        this.#send(encodeHashRequest(seq, fileId, piece, token, proof, to.cookie), to.host, to.port);
        this.#requestSeq = (this.#requestSeq + 1) >>> 0;
      },
      token: () => deps.random.u32(),
      now: () => deps.clock.now(),
      timers: { set: (token, at) => this.#timers.set(token, at), clear: (token) => this.#timers.clear(token) },
      wake: () => this.#schedulePump(),
      maxBadChunks: options.maxBadChunks ?? 64,
      failedPiece: (file, sources) => {
        for (const remote of sources) {
          const src = remote.source(file.id);
          src.badPieces++;
          if (src.badPieces >= MAX_BAD_PIECES && src.badPieces > src.goodPieces) {
            this.#dropHolder(remote, file, `${src.badPieces} pieces from it failed verification`);
          }
        }
      },
    });
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
    for (const remote of this.#remotes.values()) remote.tracker.abandonAll((o) => o.file === file);
    file.abandon();
    this.#forgetReinstating((r) => r.file === file);
  }

  /**
   * A peer of the swarm at host:port. With `auth`, its requests must prove who they are
   * from; without (tests), any request from its address is served.
   */
  addRemote(id: number, host: string, port: number, auth?: RemoteAuth, aliases: readonly string[] = []): void {
    if (this.#remotes.has(id) || this.#closed) return;
    const remote = new RemotePeer(id, host, port, {
      tracker: new RequestTracker(this.#trackerEvents, {
        ...(this.#remoteOptions.rtt && { rtt: this.#remoteOptions.rtt }),
      }),
      queue: this.#scheduler.newQueue(() => this.#schedulePump()),
      client: new ServedClient(host, port, auth?.inbound, id),
      outboundAuth: auth?.outbound ?? new Uint8Array(0),
      ...(this.#remoteOptions.window && { window: this.#remoteOptions.window }),
    });
    this.#remotes.set(id, remote);
    // An address stays with the peer that was listed at it first: a later peer listed at
    // the same address (a client announcing someone else's port) gets no datagram from it
    // and cannot take it over or, leaving, take it away.
    if (!this.#byAddress.add(host, port, remote)) this.counters.addressConflicts++;
    // The other addresses its datagrams may come from (a host with several interfaces).
    for (const alias of aliases) if (this.#byAddress.add(alias, port, remote)) remote.aliases.push(alias);
  }

  removeRemote(id: number): void {
    const remote = this.#remotes.get(id);
    if (remote === undefined) return;
    this.#remotes.delete(id);
    // Only the entries it owns go (see addRemote).
    for (const host of [remote.host, ...remote.aliases]) this.#byAddress.delete(host, remote.port, remote);
    remote.queue.clear();
    remote.tracker.abandonAll();
    for (const file of this.#files.values()) file.picker.removeHolder(id);
    this.#repair.peerGone(remote);
    this.#forgetReinstating((r) => r.remote === remote);
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
    if (file === undefined || this.#remotes.get(peerId)?.files.get(fileId)?.dropped === true) return;
    file.picker.addHolder(peerId, runs, complete);
    this.#schedulePump();
  }

  /** `peerId` no longer holds any of the file (it withdrew it): it is not asked for it until it holds some again. */
  holderWithdrew(peerId: number, fileId: number): void {
    const file = this.#files.get(fileId);
    const remote = this.#remotes.get(peerId);
    if (file === undefined) return;
    file.picker.removeHolder(peerId);
    remote?.tracker.abandonAll((o) => o.file === file);
    this.#schedulePump();
  }

  get remoteCount(): number {
    return this.#remotes.size;
  }

  /** Per-peer transport state, for --stats. */
  remoteStats(): Array<Record<string, number | boolean | undefined>> {
    return [...this.#remotes.values()].map((r) => ({
      peer: r.id,
      srttMs: r.tracker.rtt.smoothed,
      rttvarMs: r.tracker.rtt.variance,
      minRttMs: r.tracker.rtt.min,
      rtoMs: r.tracker.rtt.rto(),
      windowChunks: r.window.chunks,
      windowDecreases: r.window.decreases,
      inflightChunks: r.tracker.inflightChunks,
      reorderThreshold: r.tracker.reorderThreshold,
      suspect: r.suspect,
      banned: r.trust.banned,
      badChunks: r.trust.badChunks,
      chunksFrom: r.trust.chunksFrom,
      proven: r.client.proven,
      validated: r.client.validated,
      unvalidatedIn: r.client.unvalidatedIn,
      unvalidatedOut: r.client.unvalidatedOut,
    }));
  }

  /** A snapshot of the download state, for diagnostics (--debug). */
  debugState(): Record<string, unknown> {
    return {
      inflight: this.#inflight(),
      outstanding: [...this.#remotes.values()].reduce((n, r) => n + r.tracker.outstanding, 0),
      hashRequests: this.#repair.pending,
      timerAt: this.#timers.nextTimeout(),
      now: this.#deps.clock.now(),
      files: [...this.#files.values()].map((f) => ({
        id: f.id,
        mode: f.mode,
        done: f.done.count,
        pieces: f.pieces,
        lost: f.picker.lostChunks,
        active: [...f.picker.active()].map((p) => ({
          piece: p.piece,
          have: p.received,
          of: p.chunkCount,
          owner: p.owner,
          inflight: p.requestsTotal,
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
    this.#timers.close();
    this.#scheduler.close(this.#remotes.values());
    for (const remote of this.#remotes.values()) remote.tracker.close();
    this.#repair.close();
  }

  // ------------------------------------------------------------------ input

  /** One datagram from the socket. Never throws: bad input is counted (under one reason) and dropped. */
  onDatagram(bytes: Buffer, host: string, port: number): void {
    const c = this.counters;
    c.datagramsReceived++;
    c.bytesReceived += bytes.length;
    if (this.#closed) return;
    const remote = this.#byAddress.get(host, port);
    if (remote === undefined) {
      countDrop(c, "unknown-source", `${host}:${port}`);
      return;
    }
    let drop: Drop | undefined;
    if (bytes[0] === KIND_CHUNK) {
      // Most datagrams: read in place, no decoded object per chunk.
      const h = this.#chunkHeader;
      drop = h.read(bytes) ?? this.#onChunk(remote, h, bytes);
      if (drop !== undefined) countDrop(c, drop, remote.label);
      return;
    }
    const d = decodePeerDatagram(bytes);
    switch (d.kind) {
      case "invalid":
        drop = d.reason;
        break;
      case "request":
        drop = this.#forbidden(d.fileId, remote) ?? this.#server.onRequest(remote.client, d, bytes.length);
        break;
      case "hash-request":
        drop = this.#forbidden(d.fileId, remote) ?? this.#server.onHashRequest(remote.client, d, bytes.length);
        break;
      case "hash-reply":
        drop = this.#repair.onReply(remote, d);
        break;
      case "cookie":
        drop = this.#onCookie(remote, d);
        break;
    }
    if (drop !== undefined) countDrop(c, drop, remote.label);
  }

  /** ACCOUNTS (§10): a request for a file of a group the tracker did not list for that peer. */
  #forbidden(fileId: number, remote: RemotePeer): Drop | undefined {
    const may = this.#deps.mayServe;
    return may === undefined || may(fileId, remote.id) ? undefined : "forbidden";
  }

  #send(bytes: Buffer, host: string, port: number): void {
    this.counters.datagramsSent++;
    this.counters.bytesSent += bytes.length;
    this.#deps.port.send(bytes, host, port);
  }

  // ------------------------------------------------------------------ receiving

  /** A chunk datagram (`bytes`, its header read into `d`). */
  #onChunk(remote: RemotePeer, d: ChunkHeader, bytes: Buffer): Drop | undefined {
    const c = this.counters;
    const chunk = d.chunk;
    const tracker = remote.tracker;
    const o = tracker.find(d.requestSeq);
    if (o === undefined) return "stale";
    if (o.token !== d.token || o.file.id !== d.fileId) return "bad-token";
    // It echoed a random token we sent only to its listed address: the address answers.
    remote.client.validated = true;
    // Most requests name consecutive chunks: then the index is the offset from the first.
    const offset = chunk - o.first;
    const idx = o.chunks[offset] === chunk ? offset : o.chunks.indexOf(chunk);
    if (idx < 0) return "range";
    const file = o.file;
    if (d.dataLength !== chunkLength(file.manifest.size, chunk)) return "length";
    const now = this.#deps.clock.now();
    const kind = tracker.onAnswer(o, idx, now);
    if (tracker.rttSample >= 0) {
      const rtt = tracker.rtt;
      remote.window.onRttSample(rtt.latest, rtt.min ?? rtt.latest, rtt.smoothed ?? rtt.latest, now);
      remote.consecutiveTimeouts = 0;
      remote.suspect = false;
      remote.source(file.id).silent = 0;
    }
    switch (kind) {
      case "duplicate":
        c.duplicates++;
        return undefined;
      case "spurious":
        c.spuriousLosses++;
        break;
      case "new":
        file.picker.requestAnswered(chunk);
        break;
      case "abandoned":
        break;
    }
    remote.window.onAck(1);
    if (kind !== "abandoned") this.#accept(file, remote, chunk, bytes);
    tracker.detectLosses(now, o);
    this.#schedulePump();
    // An answer to a request given up with its file: nothing of it is used.
    return kind === "abandoned" ? "stale" : undefined;
  }

  /**
   * The peer wants its listed address validated before it serves us: keep the cookie for
   * every later request, and ask again at once for what the request named. The echoed
   * token proves the peer received our request at its listed address.
   */
  #onCookie(remote: RemotePeer, d: CookieDatagram): Drop | undefined {
    const o = remote.tracker.find(d.requestSeq);
    const ours = o !== undefined ? o.token === d.token : this.#repair.asked(remote, d.token);
    if (!ours) return "stale";
    this.counters.cookiesReceived++;
    remote.cookie = Buffer.from(d.cookie);
    remote.client.validated = true;
    if (o !== undefined && !o.retired) remote.tracker.abandon(o);
    this.#schedulePump();
    return undefined;
  }

  /** The proof of origin our request to `remote` carries (none without a key: tests). */
  #proof(remote: RemotePeer, kind: number, seq: number, token: number, fileId: number): Uint8Array {
    const key = remote.outboundAuth;
    return key.length === 0 ? key : requestProof(key, kind, seq, token, fileId);
  }

  /** Chunk `chunk` arrived from `remote` in datagram `dg`. */
  #accept(file: FileState, remote: RemotePeer, chunk: number, dg: Buffer): void {
    if (!file.picker.markReceived(chunk, remote.id)) {
      this.counters.duplicates++;
      return;
    }
    const p = file.pieceOf(chunk);
    const assembly = file.assembly(p);
    const local = chunk - file.firstChunkOf(p);
    dg.copy(assembly.data, local * CHUNK_SIZE, CHUNK_DATA_OFFSET);
    // Byte moves: V8 inlines them; a copy() or readInt32 call per chunk costs more.
    const shares = assembly.shares;
    const to = local * RECEIPT_BYTES;
    for (let b = 0; b < RECEIPT_BYTES; b++) shares[to + b] = dg[RECEIPT_SHARE_OFFSET + b] as number;
    remote.trust.chunksFrom++;
    this.counters.chunksReceived++;
    const piece = file.picker.activePiece(p);
    if (piece?.complete === true) this.#completePiece(file, piece);
  }

  #completePiece(file: FileState, piece: DownloadingPiece): void {
    const assembly = file.assembly(piece.piece);
    const verdict = file.verify(assembly);
    if (!verdict.ok) {
      this.#repair.pieceFailed(file, piece, assembly, verdict.blocks);
      return;
    }
    try {
      this.#deps.store.writePiece(file.id, piece.piece, piece.firstChunk, assembly.data);
    } catch (err) {
      this.#deps.events.fatal(err);
      return;
    }
    for (const id of this.#sourcesOf(file, piece)) {
      const remote = this.#remotes.get(id);
      if (remote !== undefined) remote.source(file.id).goodPieces++;
    }
    const receipts = this.#receiptsOf(file, piece, assembly);
    file.picker.markVerified(piece);
    file.dropAssembly(piece.piece);
    this.counters.piecesVerified++;
    this.counters.chunksAcquired += piece.chunkCount;
    this.#deps.events.acquired(file.id, piece.firstChunk, piece.chunkCount, receipts);
    if (file.done.complete) this.#completeFile(file);
  }

  /**
   * The receipts of a verified piece: per holder that sent chunks of it, the XOR of their
   * shares, with the mask of which chunks when there were several holders (see Have.receipts).
   */
  #receiptsOf(file: FileState, piece: DownloadingPiece, assembly: PieceAssembly): PieceReceipt[] {
    const picker = file.picker;
    const first = picker.sourceOf(piece, 0);
    let single = true;
    for (let i = 1; i < piece.chunkCount && single; i++) single = picker.sourceOf(piece, i) === first;
    const shares = assembly.shares;
    if (single) {
      return [
        {
          piece: piece.piece,
          holder: first,
          receipt: xorShares(shares, piece.chunkCount, RECEIPT_BYTES),
          mask: undefined,
        },
      ];
    }
    const byHolder = new Map<number, { receipt: Buffer; mask: Buffer }>();
    for (let i = 0; i < piece.chunkCount; i++) {
      const holder = picker.sourceOf(piece, i);
      let entry = byHolder.get(holder);
      if (entry === undefined) {
        entry = { receipt: Buffer.alloc(RECEIPT_BYTES), mask: Buffer.alloc(Math.ceil(piece.chunkCount / 8)) };
        byHolder.set(holder, entry);
      }
      for (let b = 0; b < RECEIPT_BYTES; b++)
        entry.receipt[b] = (entry.receipt[b] ?? 0) ^ (shares[i * RECEIPT_BYTES + b] ?? 0);
      entry.mask[i >> 3] = (entry.mask[i >> 3] ?? 0) | (1 << (i & 7));
    }
    return [...byHolder].map(([holder, e]) => ({ piece: piece.piece, holder, receipt: e.receipt, mask: e.mask }));
  }

  /** The peers that sent chunks of `piece`. */
  #sourcesOf(file: FileState, piece: DownloadingPiece): Set<number> {
    const ids = new Set<number>();
    for (let i = 0; i < piece.chunkCount; i++) ids.add(file.picker.sourceOf(piece, i));
    return ids;
  }

  /** `remote` is no longer asked for `file`: what it holds of it is forgotten, its requests for it abandoned. */
  #dropHolder(remote: RemotePeer, file: FileState, why: string, askAgain = false): void {
    const src = remote.source(file.id);
    if (src.dropped) return;
    src.dropped = true;
    this.counters.holdersDropped++;
    const held = file.picker.holders.get(remote.id);
    file.picker.removeHolder(remote.id);
    remote.tracker.abandonAll((o) => o.file === file);
    let retryInMs: number | undefined;
    if (askAgain && held !== undefined) {
      retryInMs = REINSTATE_MS * 2 ** Math.min(3, src.silentDrops++);
      this.#reinstating.push({ at: this.#deps.clock.now() + retryInMs, remote, file, held });
      this.#armReinstate();
    }
    this.#deps.events.holderFailed?.({
      fileId: file.id,
      peerId: remote.id,
      why,
      dropped: true,
      holdersLeft: file.holders.size,
      ...(retryInMs !== undefined && { retryInMs }),
    });
    this.#schedulePump();
  }

  #forgetReinstating(which: (r: { remote: RemotePeer; file: FileState }) => boolean): void {
    if (this.#reinstating.length === 0) return;
    this.#reinstating = this.#reinstating.filter((r) => !which(r));
    this.#armReinstate();
  }

  #armReinstate(): void {
    const next = Math.min(...this.#reinstating.map((r) => r.at));
    if (Number.isFinite(next)) this.#timers.set(REINSTATE_TIMER, next);
    else this.#timers.clear(REINSTATE_TIMER);
  }

  /** Holders dropped for their silence whose wait is over are asked again, for what they held. */
  #reinstate(now: number): void {
    const due = this.#reinstating.filter((r) => r.at <= now);
    this.#reinstating = this.#reinstating.filter((r) => r.at > now);
    for (const { remote, file, held } of due) {
      const src = remote.source(file.id);
      if (this.#remotes.get(remote.id) !== remote || this.#files.get(file.id) !== file || !src.dropped) continue;
      if (file.mode !== "downloading") continue;
      src.dropped = false;
      src.silent = 0;
      src.reported = false;
      file.picker.addHolder(remote.id, held === "complete" ? [] : pieceRuns(held, file), held === "complete");
    }
    this.#armReinstate();
    this.#schedulePump();
  }

  /** A request for `file` to `remote` got no answer at all. */
  #silent(remote: RemotePeer, file: FileState): void {
    const src = remote.source(file.id);
    const now = this.#deps.clock.now();
    if (src.silent++ === 0) src.silentSince = now;
    const silentMs = now - src.silentSince;
    // An address that never answered anything may not be a peer at all: the count alone.
    if (src.silent < MAX_SILENT_REQUESTS || (remote.client.validated && silentMs < MIN_SILENT_MS)) return;
    if (src.dropped || file.mode !== "downloading") return;
    const why = `${src.silent} requests in a row over ${Math.round(silentMs / 1000)} s got no answer`;
    // An address that never answered anything may not be a peer at all: it is not asked again.
    const others = [...file.holders.keys()].some((id) => id !== remote.id);
    if (others || !remote.client.validated) this.#dropHolder(remote, file, why, remote.client.validated);
    else if (!src.reported) {
      src.reported = true;
      this.#deps.events.holderFailed?.({ fileId: file.id, peerId: remote.id, why, dropped: false, holdersLeft: 0 });
    }
  }

  /** A file we served changed or cannot be read any more: it is no longer served (the peer goes on). */
  #withdraw(file: FileState, why: string): void {
    if (file.mode === "ignored") return;
    file.mode = "ignored";
    this.counters.filesWithdrawn++;
    this.#deps.events.withdrawn?.(file.id, why);
  }

  #completeFile(file: FileState): void {
    file.mode = "seeding";
    this.#forgetReinstating((r) => r.file === file);
    this.#deps.events.fileComplete(file.id);
  }

  // ------------------------------------------------------------------ loss and timers

  /** Chunk i of `o` will not be answered: lost (counted by detector) or abandoned (not counted). */
  #onLost(o: Request, i: number, why: LossReason): void {
    if (why === "reorder") this.counters.lostByReorder++;
    else if (why === "time") this.counters.lostByTime++;
    else if (why === "timeout") this.counters.lostByTimeout++;
    o.file.picker.markLost(o.chunks[i] ?? -1);
  }

  /**
   * A whole request timed out. One that got no answer at all counts against its holder of
   * that file, probe or not: a peer that answers requests for other files can still hold
   * nothing it serves of this one. Only one that was not a probe backs off and shrinks the
   * window (a probe's timeout is too short to say the path is congested).
   */
  #onTimedOut(o: Request, unanswered: boolean, probe: boolean): void {
    this.counters.timeouts++;
    if (!unanswered) return;
    const remote = o.remote;
    this.#silent(remote, o.file);
    if (probe) return;
    const rtt = remote.tracker.rtt;
    remote.window.onTimeout(rtt.smoothed ?? rtt.rto(), this.#deps.clock.now());
    remote.consecutiveTimeouts++;
    if (remote.consecutiveTimeouts >= this.#maxBackoffs && !remote.suspect) {
      remote.suspect = true;
      for (const file of this.#files.values()) file.picker.disown(remote.id);
    }
  }

  /**
   * Loss checks run after the datagrams already waiting in the socket are handled (a late
   * timer after a stalled event loop would otherwise blame the network).
   */
  #onTimers(now: number): void {
    for (const key of this.#timers.expired(now)) {
      if (key === LOSS_TIMER) this.#deps.defer(() => this.#checkTimers());
      else if (key === REINSTATE_TIMER) this.#reinstate(now);
      else this.#repair.onTimeout(key);
    }
  }

  #checkTimers(): void {
    if (this.#closed) return;
    const now = this.#deps.clock.now();
    for (const remote of this.#remotes.values()) remote.tracker.onTimeout(now);
    this.#armTimer();
    this.#schedulePump();
  }

  /** The loss timer, at the earliest deadline of any remote's requests. */
  #armTimer(): void {
    if (this.#closed) return;
    let at = Number.POSITIVE_INFINITY;
    for (const remote of this.#remotes.values()) at = Math.min(at, remote.tracker.nextDeadline());
    if (at === Number.POSITIVE_INFINITY || at >= (this.#timers.get(LOSS_TIMER) ?? Number.POSITIVE_INFINITY)) return;
    this.#timers.set(LOSS_TIMER, at);
  }

  // ------------------------------------------------------------------ requesting

  #inflight(): number {
    let n = 0;
    for (const remote of this.#remotes.values()) n += remote.tracker.inflightChunks;
    return n;
  }

  #schedulePump(): void {
    if (!this.#closed) this.#scheduler.schedule(this.#pumpNow);
  }

  /** Fills every peer's window with requests; a peer that sent mostly bad data only while no trustworthy one is left. */
  #pump(): void {
    this.#order = [...this.#files.values()].filter((f) => f.mode === "downloading");
    const remotes = [...this.#remotes.values()];
    const trusted = remotes.some((r) => !r.trust.banned && !r.suspect);
    this.#scheduler.pump(
      remotes,
      (r) => !(r.trust.banned && trusted),
      () => this.#inflight(),
      (r, budget) => {
        const plan = this.#plan(r, budget);
        return plan === undefined ? undefined : this.#reserve(r, plan);
      },
      (o) => this.#sendRequest(o),
    );
  }

  /**
   * The next chunks to ask `remote` for: lost chunks, then active pieces, then a new piece,
   * from each file in turn, starting one file further at every request (so a small file
   * next to a big one gets its turn at once, and peers' uploads are shared across files);
   * then the endgame.
   */
  #plan(remote: RemotePeer, budget: number): Plan | undefined {
    const files = this.#order;
    if (files.length === 0) return undefined;
    const start = this.#turn++ % files.length;
    for (let k = 0; k < files.length; k++) {
      const file = files[(start + k) % files.length];
      const pick = file?.picker.pick(remote.id, budget, this.#deps.random);
      if (file !== undefined && pick !== undefined) return { file, pick };
    }
    let worthAsking: SecondAsk | undefined;
    for (const file of files) {
      if (!file.picker.inEndgame) continue;
      if (worthAsking === undefined) {
        const now = this.#deps.clock.now();
        worthAsking = (holder, askedAt) => this.#worthAsking(remote, holder, askedAt, now);
      }
      const pick = file.picker.pickEndgame(remote.id, budget, worthAsking);
      if (pick !== undefined) return { file, pick };
    }
    return undefined;
  }

  /**
   * The endgame asks `asker` for a chunk already asked of `holder` at `askedAt` only when
   * the holder is late (its srtt + 4·rttvar has passed since the chunk was asked, or since
   * the holder was last heard from: at once if it never was) or `asker` would answer within
   * half the time the holder still needs. Asking every idle peer for everything in flight
   * made the end of each file a burst of duplicates: 2.3% of the chunk datagrams of an
   * 8-peer swarm, where queueing makes every round trip ~300 ms and the first answer is
   * rarely much sooner than the one already coming.
   */
  #worthAsking(asker: RemotePeer, holderId: number, askedAt: number, now: number): boolean {
    const holder = this.#remotes.get(holderId);
    if (holder === undefined || holder.suspect) return true;
    const rtt = holder.tracker.rtt;
    const patience = rtt.probeTimeout(0, 0);
    if (now >= Math.min(askedAt, holder.tracker.lastHeardAt) + patience) return true;
    const askerRtt = asker.tracker.rtt.smoothed ?? asker.tracker.rtt.rto();
    return now + 2 * askerRtt < askedAt + (rtt.smoothed ?? rtt.rto());
  }

  /** Marks the plan's chunks in flight and creates its request. */
  #reserve(remote: RemotePeer, plan: Plan): Request {
    const { piece, chunks, again } = plan.pick;
    if (again) this.counters.retransmissions += chunks.length;
    const o: Request = {
      seq: this.#requestSeq,
      token: this.#deps.random.u32(),
      remote,
      file: plan.file,
      first: chunks[0] ?? 0,
      chunks,
      states: new Uint8Array(chunks.length),
      basePos: 0,
      sentAt: 0,
      pending: 0,
      scanFrom: 0,
      answered: false,
      retired: false,
      finish: undefined,
    };
    this.#requestSeq = (this.#requestSeq + 1) >>> 0;
    const now = this.#deps.clock.now();
    remote.tracker.sent(o, now);
    plan.file.picker.markRequested(piece, chunks, remote.id, now);
    return o;
  }

  /** The request's turn in its peer's queue: it goes out now. */
  #sendRequest(o: Request): void {
    o.remote.tracker.transmitted(o, this.#deps.clock.now());
    const remote = o.remote;
    const proof = this.#proof(remote, PROOF_REQUEST, o.seq, o.token, o.file.id);
    const bytes = encodeRequest(o.seq, o.file.id, o.first, o.chunks, o.token, proof, remote.cookie);
    this.counters.requestsSent++;
    this.counters.chunksRequested += o.chunks.length;
    this.#send(bytes, o.remote.host, o.remote.port);
    this.#armTimer();
  }
}
