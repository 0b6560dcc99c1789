import { createSocket, type Socket } from "node:dgram";
import { lookup } from "node:dns";
import { existsSync, rmdirSync, statSync, writeFileSync } from "node:fs";
import { isIP } from "node:net";
import { networkInterfaces } from "node:os";
import { join, relative } from "node:path";
import { firstThatAnswers, type TrackerAddress, type TrackerList } from "../client/tracker-list.js";
import { hashFileAsync } from "../sync/hash-file.js";
import { sameSig } from "../sync/watch-core.js";
import { Bitmap, parseRuns, runsOf } from "../transfer/bitmap.js";
import { type DatagramPort, type HolderFailure, TransferEngine, type TransferOptions } from "../transfer/engine.js";
import { type Clock, RealClock, type TimerHandle } from "../util/clock.js";
import { ExitStatus, errorMessage, exitStatusFor, exitStatusForSignal, SwarmError } from "../util/errors.js";
import { byNameBytes, shutdownBlock } from "../util/output-lines.js";
import { SeededRandom } from "../util/random.js";
import { writeBlock } from "../util/stdout.js";
import type { udpswarm } from "../wire/gen/swarm.js";
import { CHUNK_SIZE, CHUNKS_PER_BLOCK, CHUNKS_PER_PIECE } from "../wire/limits.js";
import { encodeReceipts, type ReceiptEntry } from "../wire/receipts.js";
import {
  type CheckedManifest,
  checkManifest,
  isManifestProblem,
  RefusalReason,
  type TrackerFrame,
} from "../wire/tracker-frame.js";
import { CheckpointGate } from "./checkpoint-gate.js";
import { type FaultConfig, FaultInjector, hasFaults } from "./faults.js";
import { type DownloadView, ProgressDisplay } from "./progress.js";
import { RecentReceipts } from "./recent-receipts.js";
import { addRemoteFrom } from "./remote-address.js";
import { countResumed, interruptedDownloads, resumeCounters, resumedLine } from "./resume-report.js";
import { type LocalFile, readProblem, scanShared, type UnhashedFile } from "./scan.js";
import type { RecordOwner } from "./staging-record.js";
import { identityOf, stagingKey } from "./staging-record.js";
import { FileStore, type ResumeResult } from "./store.js";
import { SyncPeer, type SyncResume } from "./sync-peer.js";
import { FAILOVER_LINK_OPTIONS, TrackerClient, type TrackerClientOptions } from "./tracker-client.js";

export type PeerConfig = {
  readonly trackerHost: string;
  readonly trackerPort: number;
  /**
   * SEVERAL TRACKERS (§11): a sync peer's trackers file (BEP 12 tiers), used instead of
   * trackerHost/trackerPort; a lost tracker is then left for the next one that answers.
   */
  readonly trackers?: TrackerList;
  readonly minAliveSeconds: number;
  readonly sharedDir: string;
  readonly stagingRoot: string;
  readonly udpPort: number;
  readonly maxFileSize: number;
  readonly faults: FaultConfig;
  /** Counters at exit: a file's path, "stderr", or "off". */
  readonly stats: string;
  readonly transfer: TransferOptions;
  readonly log: (line: string) => void;
  /** Progress on stderr: "auto" when stderr is a terminal. */
  readonly progress: "auto" | "on" | "off";
  /** No progress and no counters on stderr (errors still are). */
  readonly quiet: boolean;
  /** SYNC (§9): a live-folder peer. */
  readonly sync?: boolean;
  /** Bytes of ./Shared hashed before joining; the other files are offered at once and hashed after. */
  readonly hashFirstBytes?: number;
};

/** Hashing a file offered unhashed is tried this many times while it keeps changing. */
const HASH_ATTEMPTS = 3;

/** Our own file as an offer. */
function offerOf(f: LocalFile): udpswarm.IManifest {
  return {
    name: f.manifest.name,
    size: f.manifest.size,
    chunkSize: CHUNK_SIZE,
    chunksPerPiece: f.manifest.chunksPerPiece,
    chunksPerBlock: f.manifest.chunksPerBlock,
    sha256: f.manifest.sha256,
    pieceSha256: [...f.manifest.pieceSha256],
    // SYNC (§9): sync peers on the same tracker see the file at this version.
    mtimeMs: f.mtimeMs,
  };
}

/**
 * Peer addresses are IP literals (from the tracker), so the socket resolves them at once:
 * Node's default lookup defers every send to the next tick through dns.lookup.
 */
function literalLookup(
  address: string,
  family: unknown,
  callback: (err: NodeJS.ErrnoException | null, address: string, family: number) => void,
): void {
  const version = isIP(address);
  if (version !== 0) {
    callback(null, address, version);
    return;
  }
  lookup(address, { family: family === 6 ? 6 : 4 }, (err, resolved, resolvedFamily) =>
    callback(err, resolved, resolvedFamily),
  );
}

/** Socket buffers asked for: the default 208 KiB drops datagrams at full rate. */
const SOCKET_BUFFER_BYTES = 4 * 1024 * 1024;
/** Completion reports are batched for this long (ms) so the tracker link stays light. */
const HAVE_FLUSH_MS = 20;
/**
 * Receipts of the pieces verified last kept per file, and written into its staging record
 * (~17 bytes each): the record is written before their Have goes, so after a kill -9 the
 * restart reports those pieces with them (RESUME §12). 512 pieces are 32 MiB, several
 * record intervals even at loopback rates.
 */
const RECENT_RECEIPTS = 512;
/**
 * Completion reports wait for the staging records that list their pieces; those are
 * written at most this often (ms). A record is one positional write (~12 µs, no fsync:
 * see StagingArea.writeRecord); when it was a write, an fsync and a rename, one per 20 ms
 * cost the downloader 12% more CPU on 64 MiB, and records were written every 100 ms.
 */
const CHECKPOINT_EVERY_MS = 20;
/** Counters go to the tracker this often (ms). */
const STATS_EVERY_MS = 1000;

/**
 * One peer process: binds the engine to a UDP socket, the file store, and the tracker
 * link; follows the tracker's view of the swarm; leaves when the tracker grants it.
 */
export class Peer {
  readonly #config: PeerConfig;
  readonly #clock: Clock = new RealClock();
  readonly #store: FileStore;
  readonly #socket: Socket;
  readonly #engine: TransferEngine;
  readonly #faultsOut: FaultInjector | undefined;
  readonly #faultsIn: FaultInjector | undefined;
  #tracker: TrackerClient | undefined;
  /** SEVERAL TRACKERS: the tracker in use (from config.trackers), and whether the peer is moving. */
  #where: TrackerAddress | undefined;
  #moving = false;
  /** Ids are the tracker's: a report made for an earlier tracker's ids is never sent (see #move). */
  #session = 0;
  #udpPort = 0;
  #peerId = 0;
  #secret: Uint8Array = new Uint8Array(0);
  readonly #local = new Map<string, LocalFile>();
  /** Our files offered before they were hashed (Manifest.hashing), by name; #local once hashed. */
  readonly #unhashed = new Map<string, UnhashedFile>();
  /** The names of #local and #unhashed in Unicode form C: a file whose name prints the same is ours too. */
  readonly #localKeys = new Set<string>();
  /** Whether ./Shared was there before this peer (it is not left behind if the tracker cannot be reached). */
  readonly #sharedExisted: boolean;
  readonly #pendingHave = new Map<number, Array<[number, number]>>();
  /** The receipts of the pieces in #pendingHave (Have.receipts), per file. */
  readonly #pendingReceipts = new Map<number, ReceiptEntry[]>();
  #haveTimer: TimerHandle | undefined;
  #lastHaveFlush = Number.NEGATIVE_INFINITY;
  #progress: ProgressDisplay | undefined;
  /** Files this peer offered from ./Shared (the others it fetched or ignores). */
  readonly #offered = new Set<number>();
  /** When each download started and ended (for the progress display's average). */
  readonly #downloadStarted = new Map<number, number>();
  readonly #downloadCompleted = new Map<number, number>();
  /** Files whole and verified piece by piece, being checked whole and moved into Shared/. */
  readonly #finalizing = new Map<number, Promise<void>>();
  /**
   * Downloads whose partial from an earlier run is being checked, with the holder reports
   * that came meanwhile (the engine learns of the file once the check is done).
   */
  readonly #resuming = new Map<
    number,
    { readonly key: string; readonly done: Promise<void>; held: udpswarm.IHoldersChanged[] }
  >();
  readonly #resumed = resumeCounters();
  /** RESUME (§12): the chunk runs our earlier life had reported, per file (Welcome.resumable). */
  readonly #resumable = new Map<number, readonly number[] | Bitmap | "complete">();
  /** RESUME (§12): the earlier life presented in the Hello, once the Welcome said it was recognised. */
  #earlier: RecordOwner | undefined;
  /** Receipts of the pieces verified last, per file: written into its staging record (RECENT_RECEIPTS at most). */
  readonly #recentReceipts = new Map<number, RecentReceipts>();
  /** Receipts of kept pieces addressed to the earlier life (Have.earlier_receipts), per file. */
  readonly #pendingEarlierReceipts = new Map<number, ReceiptEntry[]>();
  /** Completion reports wait for the staging records that cover them (see FileStore.checkpoint). */
  readonly #reports: CheckpointGate<{ readonly session: number; readonly have: udpswarm.IHave }>;
  /** Files whose lack of a serving holder was reported (once each). */
  readonly #stalled = new Set<number>();
  #leaving = false;
  /** SYNC (§9): the live-folder side, in --sync mode. */
  readonly #sync: SyncPeer | undefined;
  #finished: ((code: number) => void) | undefined;
  #ended = false;
  #badFrames = 0;
  #sendErrors = 0;
  readonly #startedAt: number;
  /** This host's IPv4 interface addresses (not loopback), announced to the tracker. */
  readonly #localAddresses = new Set(
    Object.values(networkInterfaces())
      .flatMap((list) => list ?? [])
      .filter((a) => a.family === "IPv4" && !a.internal)
      .map((a) => a.address),
  );

  constructor(config: PeerConfig) {
    this.#config = config;
    this.#startedAt = this.#clock.now();
    this.#sharedExisted = existsSync(config.sharedDir);
    this.#store = new FileStore(config.sharedDir, config.stagingRoot, config.log, config.sync === true);
    this.#reports = new CheckpointGate({
      clock: this.#clock,
      checkpoint: () => this.#store.checkpoint(),
      send: (reports) => {
        let last = false;
        for (const r of reports) {
          if (r.session !== this.#session) continue;
          this.#tracker?.send({ have: r.have });
          last ||= this.#engine.file(r.have.fileId ?? 0)?.mode === "seeding";
        }
        // A file's last reports (it is complete by now) are followed by a keepalive: if the
        // link loses a report's segment, the one after it gets it re-sent within a round
        // trip or two (its acknowledgement shows the gap, and Linux probes two segments in
        // flight after 2 RTT), where a lone lost segment waits 200 ms or more for TCP's probe.
        if (last) this.#tracker?.ping();
      },
      fail: (err) => this.#fail(err),
      everyMs: CHECKPOINT_EVERY_MS,
    });
    this.#socket = createSocket({ type: "udp4", lookup: literalLookup });
    const faulty = hasFaults(config.faults);
    this.#faultsOut = faulty ? new FaultInjector(config.faults, this.#clock, 1) : undefined;
    this.#faultsIn = faulty ? new FaultInjector(config.faults, this.#clock, 2) : undefined;
    const socket = this.#socket;
    // No per-send callback: with one, Node defers every successful send's callback to the
    // next tick; send errors reach the socket's "error" listener instead (counted).
    const raw: DatagramPort = { send: (bytes, host, port) => socket.send(bytes, port, host) };
    const faultsOut = this.#faultsOut;
    const port: DatagramPort =
      faultsOut === undefined ? raw : { send: (bytes, host, p) => faultsOut.apply(bytes, (b) => raw.send(b, host, p)) };
    this.#sync = config.sync === true ? this.#syncPeer() : undefined;
    this.#engine = new TransferEngine(
      {
        clock: this.#clock,
        port,
        store: this.#sync?.guard(this.#store) ?? this.#store,
        random: new SeededRandom(config.faults.seed ^ process.pid),
        defer: (fn) => setImmediate(fn),
        receiptSecret: () => this.#secret,
        events: {
          acquired: (fileId, first, count, receipts) => this.#onAcquired(fileId, first, count, receipts),
          fileComplete: (fileId) => this.#onFileComplete(fileId),
          fatal: (err) => {
            if (this.#sync?.onFatal(err) !== true) this.#fail(err);
          },
          holderFailed: (failure) => this.#onHolderFailed(failure),
          withdrawn: (fileId, why) => {
            const name = this.#engine.file(fileId)?.manifest.name ?? `file ${fileId}`;
            this.#log(`"${name}" changed on disk since it was offered (${why}): no longer serving it`);
            // The tracker stops listing us as a holder (others stop waiting for us).
            this.#tracker?.send({ withdraw: { fileId } });
          },
        },
      },
      config.transfer,
    );
  }

  #syncPeer(): SyncPeer {
    return new SyncPeer({
      engine: () => this.#engine,
      store: this.#store,
      sharedDir: this.#config.sharedDir,
      maxFileSize: this.#config.maxFileSize,
      send: (body) => this.#tracker?.send(body),
      acquired: (fileId, first, count) => this.#onAcquired(fileId, first, count),
      resume: (fileId, manifest, hooks) => this.#resume(fileId, manifest, stagingKey(identityOf(manifest)), hooks),
      peerId: () => this.#peerId,
      log: (line) => this.#log(line),
    });
  }

  /** Runs the peer to the end; resolves with the exit status. */
  async run(): Promise<number> {
    const tty = process.stderr.isTTY === true;
    if (!this.#config.quiet && (this.#config.progress === "on" || (this.#config.progress === "auto" && tty))) {
      const size = () =>
        process.stderr.isTTY === true ? { columns: process.stderr.columns, rows: process.stderr.rows } : undefined;
      const display = new ProgressDisplay((text) => process.stderr.write(text), tty, size);
      this.#progress = display;
      const timer = setInterval(
        () => {
          if (this.#ended) clearInterval(timer);
          else display.draw(this.#downloads(), this.#clock.now());
        },
        tty ? 250 : 1000,
      );
      timer.unref();
    }
    if (process.env.UDPSWARM_DEBUG) {
      setInterval(
        () => this.#log(`debug ${JSON.stringify(this.#engine.debugState())}`),
        Number(process.env.UDPSWARM_DEBUG) || 2000,
      ).unref();
    }
    const done = new Promise<number>((resolve) => {
      this.#finished = resolve;
    });
    try {
      await this.#start();
    } catch (err) {
      this.#fail(err);
    }
    return done;
  }

  async #start(): Promise<void> {
    const log = (line: string) => this.#log(line);
    const syncOffers = await this.#sync?.start();
    if (this.#sync === undefined) {
      const scan = scanShared(this.#config.sharedDir, this.#config.maxFileSize, log, this.#config.hashFirstBytes);
      for (const local of scan.hashed) {
        this.#local.set(local.manifest.name, local);
        this.#localKeys.add(local.manifest.name.normalize("NFC"));
      }
      for (const file of scan.later) {
        this.#unhashed.set(file.name, file);
        this.#localKeys.add(file.name.normalize("NFC"));
      }
    }
    const udpPort = await this.#bind();
    this.#udpPort = udpPort;
    if (this.#config.trackers !== undefined) await this.#reach(undefined);
    else this.#tracker = await this.#connect(this.#config.trackerHost, this.#config.trackerPort);
    if (this.#ended || this.#tracker === undefined) return;
    // RESUME (§12): the earlier life whose partials are here, so that its reports carry over.
    const earlier = this.#store.earlierLife();
    this.#earlier = earlier;
    const resume = earlier === undefined ? {} : { resumePeerId: earlier.peerId, resumeSecret: earlier.secret };
    if (syncOffers !== undefined) {
      // SYNC (§9): versions from the watcher's first listing; never asks to leave.
      this.#helloSync(syncOffers, resume);
      this.#reportStats();
      return;
    }
    this.#tracker.send({
      hello: {
        udpPort,
        addresses: [...this.#localAddresses],
        ...resume,
        offers: [
          ...[...this.#local.values()].map(offerOf),
          ...[...this.#unhashed.values()].map((f) => ({
            name: f.name,
            size: f.size,
            chunkSize: CHUNK_SIZE,
            chunksPerPiece: CHUNKS_PER_PIECE,
            chunksPerBlock: CHUNKS_PER_BLOCK,
            mtimeMs: f.mtimeMs,
            hashing: true,
          })),
        ],
      },
    });
    this.#clock.setTimer(this.#config.minAliveSeconds * 1000, () => this.#tracker?.send({ readyToLeave: {} }));
    this.#reportStats();
    void this.#hashUnhashed();
  }

  #connect(host: string, port: number, options?: TrackerClientOptions): Promise<TrackerClient> {
    const tracker = TrackerClient.connect(
      host,
      port,
      this.#clock,
      {
        frame: (frame) => this.#onFrame(frame),
        lost: (err) => {
          // SEVERAL TRACKERS: a sync peer with a trackers file moves on; any other peer stops.
          if (this.#config.trackers === undefined) this.#fail(err);
          else if (this.#tracker !== undefined && this.#tracker === current) void this.#move(err);
        },
        badFrame: () => {
          this.#badFrames++;
        },
      },
      options,
    );
    let current: TrackerClient | undefined;
    return tracker.then((t) => {
      current = t;
      return t;
    });
  }

  /** `resume`: the earlier life's identity (first Hello only: another tracker would not know it). */
  #helloSync(offers: udpswarm.IManifest[], resume: { resumePeerId?: number; resumeSecret?: Uint8Array } = {}): void {
    this.#tracker?.send({
      hello: { udpPort: this.#udpPort, addresses: [...this.#localAddresses], offers, sync: true, ...resume },
    });
  }

  /** SEVERAL TRACKERS: connects to the first tracker of the list that answers (`last` tried last). */
  async #reach(last: TrackerAddress | undefined): Promise<void> {
    const list = this.#config.trackers;
    if (list === undefined) return;
    const { tracker, link } = await firstThatAnswers(
      list.order(last),
      (t) => this.#connect(t.host, t.port, FAILOVER_LINK_OPTIONS),
      () => this.#ended,
    );
    if (this.#ended) {
      link.close();
      return;
    }
    this.#tracker = link;
    this.#where = tracker;
    list.answered(tracker);
  }

  /**
   * SEVERAL TRACKERS (§11): a sync peer's tracker is lost. Each tracker has its own peer and
   * file ids, so the peer joins the next one that answers as it joined the first: what was
   * under way against the old ids finishes first (pieces being checked, versions being put
   * in place, progress recorded in staging), the old ids are dropped (partial downloads stay
   * in staging and are taken up again), and the Hello offers every local copy again. Nothing
   * new on stdout; two lines on stderr. No tracker answers: the one clear error, exit 4.
   */
  async #move(err: SwarmError): Promise<void> {
    if (this.#ended || this.#moving) return;
    this.#moving = true;
    const lostAt = this.#clock.now();
    const from = this.#where;
    this.#tracker?.close();
    this.#tracker = undefined;
    const what = from === undefined ? "" : `${from.host}:${from.port} `;
    this.#log(`lost the tracker ${what}(${err.message}); moving to another`);
    await Promise.all([...this.#resuming.values()].map((r) => r.done));
    await this.#sync?.settled();
    this.#flushHave();
    await this.#reports.idle();
    if (this.#ended) return;
    this.#dropSession();
    try {
      await this.#reach(from);
    } catch (failure) {
      this.#fail(
        new SwarmError("ERR_TRACKER_LOST", `${err.message}; no other tracker answers (${errorMessage(failure)})`),
      );
      return;
    }
    this.#moving = false;
    if (this.#ended || this.#sync === undefined) return;
    const offers = this.#sync.offers();
    this.#helloSync(offers);
    const to = this.#where;
    this.#log(
      `moved to the tracker ${to?.host ?? "?"}:${to?.port ?? 0} in ${Math.round(this.#clock.now() - lostAt)} ms; offering ${offers.length} ${offers.length === 1 ? "file" : "files"} again`,
    );
  }

  /** Forgets every id the lost tracker gave: peers, files, reports not sent yet. */
  #dropSession(): void {
    this.#session++;
    this.#pendingHave.clear();
    // Receipts and the earlier life's reports are the lost tracker's: another cannot check them.
    this.#pendingReceipts.clear();
    this.#pendingEarlierReceipts.clear();
    this.#recentReceipts.clear();
    this.#resumable.clear();
    this.#earlier = undefined;
    if (this.#haveTimer !== undefined) this.#clock.clearTimer(this.#haveTimer);
    this.#haveTimer = undefined;
    for (const r of this.#engine.remoteStats()) this.#engine.removeRemote(Number(r.peer));
    for (const file of [...this.#engine.files()]) {
      this.#engine.removeFile(file.id);
      this.#store.abandon(file.id);
    }
    this.#resuming.clear();
    this.#stalled.clear();
    this.#offered.clear();
    this.#downloadStarted.clear();
    this.#downloadCompleted.clear();
    this.#sync?.reset();
  }

  /**
   * Hashes the files the Hello offered unhashed, one at a time and without holding the
   * event loop, then sends each manifest (Update): the tracker accepts it (Updates.accepted,
   * and we serve it) or refuses it. A file that vanishes, or changes under every attempt,
   * is given up (Withdraw.pending_name).
   */
  async #hashUnhashed(): Promise<void> {
    for (const file of [...this.#unhashed.values()]) {
      const path = join(this.#config.sharedDir, file.name);
      let local: LocalFile | undefined;
      let problem = "it kept changing while it was being hashed";
      for (let attempt = 0; attempt < HASH_ATTEMPTS && local === undefined; attempt++) {
        try {
          const before = statSync(path);
          const manifest = await hashFileAsync(path, file.name);
          const after = statSync(path);
          if (sameSig(before, after) && manifest.size === after.size) {
            local = { path, manifest, mtimeMs: Math.round(after.mtimeMs) };
          }
        } catch (err) {
          problem = readProblem(err);
          break;
        }
        if (this.#ended) return;
      }
      this.#unhashed.delete(file.name);
      if (local === undefined) {
        this.#log(`not offering ${JSON.stringify(file.name)} after all: ${problem}`);
        this.#tracker?.send({ withdraw: { pendingName: file.name } });
        continue;
      }
      this.#local.set(file.name, local);
      this.#tracker?.send({ update: { manifest: offerOf(local) } });
    }
  }

  /** Totals for observers (the tracker's web view), about once a second. */
  #reportStats(): void {
    if (this.#ended) return;
    const c = this.#engine.counters;
    const srtts = this.#engine.remoteStats().flatMap((r) => (typeof r.srttMs === "number" ? [r.srttMs] : []));
    this.#tracker?.send({
      stats: {
        bytesSent: c.bytesSent,
        bytesReceived: c.bytesReceived,
        chunksSent: c.chunksSent,
        chunksReceived: c.chunksReceived,
        retransmissions: c.retransmissions,
        requestsSent: c.requestsSent,
        srttMs: srtts.length === 0 ? 0 : srtts.reduce((a, b) => a + b, 0) / srtts.length,
      },
    });
    this.#clock.setTimer(STATS_EVERY_MS, () => this.#reportStats());
  }

  #bind(): Promise<number> {
    return new Promise((resolve, reject) => {
      const socket = this.#socket;
      socket.once("error", (err) => reject(new SwarmError("ERR_IO", `cannot bind UDP: ${err.message}`)));
      socket.bind(this.#config.udpPort, () => {
        socket.removeAllListeners("error");
        socket.on("error", () => {
          this.#sendErrors++;
        });
        try {
          socket.setRecvBufferSize(SOCKET_BUFFER_BYTES);
          socket.setSendBufferSize(SOCKET_BUFFER_BYTES);
        } catch {
          this.#log("could not enlarge the UDP socket buffers; expect more loss at high rates");
        }
        const faultsIn = this.#faultsIn;
        const engine = this.#engine;
        if (faultsIn === undefined) {
          socket.on("message", (msg, rinfo) => engine.onDatagram(msg, rinfo.address, rinfo.port));
        } else {
          socket.on("message", (msg, rinfo) =>
            faultsIn.apply(msg, (b) => engine.onDatagram(b, rinfo.address, rinfo.port)),
          );
        }
        resolve(socket.address().port);
      });
    });
  }

  // ------------------------------------------------------------------ tracker frames

  #onFrame(frame: TrackerFrame): void {
    if (this.#ended) return;
    switch (frame.body) {
      case "welcome":
        if (frame.welcome) this.#onWelcome(frame.welcome);
        return;
      case "updates":
        if (frame.updates) this.#onUpdates(frame.updates);
        return;
      case "leaveGranted":
        void this.#leave();
        return;
      case "refusal": {
        const r = frame.refusal;
        if (r !== undefined && r !== null && this.#sync?.refused(r) === true) return;
        if (r?.reason === RefusalReason.REASON_VERSION) {
          this.#fail(new SwarmError("ERR_PROTOCOL_VERSION", `the tracker refused this peer: ${r.detail ?? ""}`));
          return;
        }
        this.#log(`the tracker refused ${r?.fileName ? JSON.stringify(r.fileName) : "a message"}: ${r?.detail ?? ""}`);
        return;
      }
      default:
        this.#badFrames++;
        return;
    }
  }

  /** Changes in the swarm, applied in the order proto/swarm.proto gives for Updates. */
  #onUpdates(u: udpswarm.IUpdates): void {
    for (const fileId of u.removed ?? []) this.#removeFile(fileId);
    for (const peerId of u.left ?? []) this.#engine.removeRemote(peerId);
    for (const p of u.joined ?? []) this.#addRemote(p);
    for (const info of u.accepted ?? []) this.#seed(info);
    for (const info of u.added ?? []) {
      if (this.#sync !== undefined) this.#sync.fileAdded(info);
      else this.#learnFile(info);
    }
    for (const h of u.holders ?? []) this.#onHolders(h);
  }

  #removeFile(fileId: number): void {
    if (this.#sync !== undefined) {
      this.#resuming.delete(fileId);
      this.#sync.fileRemoved(fileId);
      this.#pendingHave.delete(fileId);
      this.#pendingReceipts.delete(fileId);
      this.#pendingEarlierReceipts.delete(fileId);
      this.#recentReceipts.delete(fileId);
      return;
    }
    const file = this.#engine.file(fileId);
    if (file?.mode === "downloading") {
      this.#log(
        `"${file.manifest.name}" is no longer available in the swarm; its partial copy stays in staging until this peer leaves`,
      );
      this.#store.abandon(fileId);
    }
    this.#resuming.delete(fileId);
    this.#engine.removeFile(fileId);
    this.#pendingHave.delete(fileId);
    this.#pendingReceipts.delete(fileId);
    this.#pendingEarlierReceipts.delete(fileId);
    this.#recentReceipts.delete(fileId);
    this.#downloadStarted.delete(fileId);
    this.#downloadCompleted.delete(fileId);
  }

  /** One of our own offers, accepted by the tracker under `info.fileId`: we serve it. */
  #seed(info: udpswarm.IFileInfo): void {
    // SYNC (§9): a sync peer's own versions are the SyncPeer's (never refused, never accepted later).
    if (this.#sync !== undefined) return;
    const local = this.#local.get(info.manifest?.name ?? "");
    if (local === undefined) return;
    const id = info.fileId ?? 0;
    this.#offered.add(id);
    this.#store.addSeed(id, local.manifest.name, local.manifest.size);
    this.#engine.addFile(id, local.manifest, "seeding");
  }

  #onWelcome(w: udpswarm.IWelcome): void {
    this.#peerId = w.peerId ?? 0;
    this.#secret = w.secret ?? new Uint8Array(0);
    this.#store.owner = { peerId: this.#peerId, secret: this.#secret };
    this.#store.recentReceipts = (fileId) => {
      return this.#recentReceipts.get(fileId)?.bytes();
    };
    if (w.resumed !== true) this.#earlier = undefined;
    for (const h of w.resumable ?? []) {
      this.#resumable.set(h.fileId ?? 0, h.complete === true ? "complete" : [...(h.runs ?? [])]);
    }
    for (const r of w.refused ?? []) {
      this.#log(
        `peer ${this.#peerId}: the tracker refused ${JSON.stringify(r.fileName ?? "")}: ${r.detail ?? "conflict"}; keeping the local file, not fetching the other`,
      );
    }
    if (this.#sync !== undefined) this.#sync.welcome(w);
    else {
      for (const info of w.accepted ?? []) this.#seed(info);
      for (const info of w.files ?? []) this.#learnFile(info);
    }
    for (const p of w.peers ?? []) this.#addRemote(p);
    for (const h of w.holders ?? []) this.#onHolders(h);
  }

  #addRemote(p: udpswarm.IPeerAddress): void {
    addRemoteFrom(this.#engine, p, {
      peerId: this.#peerId,
      secret: this.#secret,
      localAddresses: this.#localAddresses,
    });
  }

  #learnFile(info: udpswarm.IFileInfo): void {
    const id = info.fileId ?? 0;
    if (this.#engine.file(id) !== undefined || info.manifest === undefined || info.manifest === null) return;
    const checked = checkManifest(info.manifest, this.#config.maxFileSize);
    if (isManifestProblem(checked)) {
      this.#log(`ignoring file ${id} from the tracker: ${checked.detail}`);
      return;
    }
    const local = this.#local.get(checked.name);
    if (
      local !== undefined ||
      this.#localKeys.has(checked.name.normalize("NFC")) ||
      this.#store.existsInShared(checked.name)
    ) {
      // Same name as a file we keep (the tracker refused ours): neither served nor fetched.
      this.#engine.addFile(id, checked, "ignored");
      return;
    }
    const key = stagingKey(identityOf(checked));
    const busy = [...this.#resuming.values()].find((r) => r.key === key);
    if (busy !== undefined) {
      // The same version under an earlier id is still being checked: take it up after.
      void busy.done.then(() => {
        if (!this.#ended) this.#learnFile(info);
      });
      return;
    }
    if (this.#store.hasPartial(checked)) {
      this.#resume(id, checked, key);
      return;
    }
    try {
      this.#store.startDownload(id, checked);
    } catch (err) {
      this.#fail(err);
      return;
    }
    this.#downloadStarted.set(id, this.#clock.now());
    this.#engine.addFile(id, checked, "downloading");
  }

  /**
   * A partial of this very version is in staging: its pieces are checked in the background,
   * then the download starts from what passed, and those chunks are reported as held.
   */
  #resume(id: number, manifest: CheckedManifest, key: string, sync?: SyncResume): void {
    const state = {
      key,
      held: [] as udpswarm.IHoldersChanged[],
      done: this.#store
        .resumeDownload(
          id,
          manifest,
          "",
          (piece, receipted, owner) =>
            this.#mayReport(id, manifest, piece) ||
            (receipted && owner !== undefined && owner.peerId === this.#earlier?.peerId),
        )
        .then(
          (result) => this.#onResumeChecked(id, manifest, result, sync),
          (err: unknown) => this.#fail(err),
        ),
    };
    this.#resuming.set(id, state);
  }

  /**
   * RESUME (§12): whether a kept piece may be reported without receipts: the tracker said
   * our earlier life had reported all its chunks (Welcome.resumable). Any other is fetched.
   */
  #mayReport(fileId: number, manifest: CheckedManifest, piece: number): boolean {
    if (this.#earlier === undefined) return false;
    let held = this.#resumable.get(fileId);
    if (held === undefined) return false;
    if (held === "complete") return true;
    if (!(held instanceof Bitmap)) {
      const bits = new Bitmap(manifest.chunks);
      for (const [first, count] of parseRuns(held, manifest.chunks) ?? []) bits.setRange(first, count);
      this.#resumable.set(fileId, bits);
      held = bits;
    }
    const first = piece * manifest.chunksPerPiece;
    const end = Math.min(manifest.chunks, first + manifest.chunksPerPiece);
    return held.hasAll(first, end - first);
  }

  #onResumeChecked(id: number, manifest: CheckedManifest, result: ResumeResult, sync?: SyncResume): void {
    const state = this.#resuming.get(id);
    this.#resuming.delete(id);
    if (this.#ended) return;
    if (state === undefined || sync?.wanted() === false) {
      this.#store.abandon(id); // the swarm dropped the file meanwhile: the partial stays for later
      return;
    }
    // SYNC (§9): pieces the local copy has in common with the version are copied from it.
    const more = sync?.reuse(result.kept) ?? [];
    for (const [firstChunk, chunks] of countResumed(this.#resumed, manifest, result)) {
      this.#onAcquired(id, firstChunk, chunks);
    }
    // RESUME (§12): kept pieces the tracker had not heard of go with the earlier life's receipts.
    const earlier = (result.receipts ?? []).filter(
      (e) => result.owner?.peerId === this.#earlier?.peerId && !this.#mayReport(id, manifest, e.piece),
    );
    if (earlier.length > 0) this.#pendingEarlierReceipts.set(id, earlier);
    const cpp = manifest.chunksPerPiece;
    for (const [first, count] of runsOf(more)) {
      const firstChunk = first * cpp;
      this.#onAcquired(id, firstChunk, Math.min(manifest.chunks, (first + count) * cpp) - firstChunk);
    }
    if (!this.#config.quiet) this.#config.log(resumedLine(manifest.name, manifest.pieceSha256.length, result));
    this.#engine.addFile(id, manifest, "downloading", { verifiedPieces: [...result.kept, ...more] });
    for (const h of state.held) this.#onHolders(h);
  }

  #onHolders(h: udpswarm.IHoldersChanged): void {
    const peerId = h.peerId ?? 0;
    if (peerId === this.#peerId) return;
    const resuming = this.#resuming.get(h.fileId ?? 0);
    if (resuming !== undefined) {
      resuming.held.push(h);
      return;
    }
    const file = this.#engine.file(h.fileId ?? 0);
    if (file === undefined) return;
    if (h.withdrawn === true) {
      this.#engine.holderWithdrew(peerId, file.id);
      return;
    }
    const runs = parseRuns(h.runs ?? [], file.chunks);
    if (runs === undefined) {
      this.#badFrames++;
      return;
    }
    this.#engine.holdersChanged(peerId, file.id, runs, h.complete === true);
  }

  /** Says once per file that no holder serves it any more (and once per holder dropped). */
  #onHolderFailed({ fileId, peerId, why, dropped, holdersLeft, retryInMs }: HolderFailure): void {
    const name = JSON.stringify(this.#engine.file(fileId)?.manifest.name ?? `file ${fileId}`);
    if (dropped && retryInMs !== undefined) {
      this.#log(`peer ${peerId} not asked for ${name} for ${Math.round(retryInMs / 1000)} s: ${why}`);
      return;
    }
    if (dropped) this.#log(`peer ${peerId} no longer asked for ${name}: ${why}`);
    if (holdersLeft > 0 || this.#stalled.has(fileId)) return;
    this.#stalled.add(fileId);
    this.#log(
      dropped
        ? `${name}: no holder left that serves it; waiting for another`
        : `${name}: its only holder, peer ${peerId}, does not serve it (${why}); still asking it, waiting for another`,
    );
  }

  // ------------------------------------------------------------------ progress reports

  #onAcquired(fileId: number, first: number, count: number, receipts?: readonly ReceiptEntry[]): void {
    if (receipts !== undefined && receipts.length > 0) {
      const pending = this.#pendingReceipts.get(fileId);
      if (pending === undefined) this.#pendingReceipts.set(fileId, [...receipts]);
      else pending.push(...receipts);
      let recent = this.#recentReceipts.get(fileId);
      if (recent === undefined) {
        recent = new RecentReceipts(RECENT_RECEIPTS);
        this.#recentReceipts.set(fileId, recent);
      }
      recent.add(receipts);
    }
    let runs = this.#pendingHave.get(fileId);
    if (runs === undefined) {
      runs = [];
      this.#pendingHave.set(fileId, runs);
    }
    const last = runs[runs.length - 1];
    if (last !== undefined && last[0] + last[1] === first) last[1] += count;
    else runs.push([first, count]);
    if (this.#haveTimer === undefined) {
      // At most one flush per HAVE_FLUSH_MS, the first at once: a swarm's first ACQUIRED
      // line is not held back by the batching that keeps a busy link light.
      const wait = Math.max(0, this.#lastHaveFlush + HAVE_FLUSH_MS - this.#clock.now());
      this.#haveTimer = this.#clock.setTimer(wait, () => {
        this.#lastHaveFlush = this.#clock.now();
        this.#haveTimer = undefined;
        this.#flushHave();
      });
    }
  }

  /**
   * Reports the chunks acquired so far, once the staging records list their pieces: what
   * the tracker prints as ACQUIRED is never lost by a crash.
   */
  #flushHave(onlyFile?: number): void {
    const haves: udpswarm.IHave[] = [];
    for (const [fileId, runs] of this.#pendingHave) {
      if (onlyFile !== undefined && fileId !== onlyFile) continue;
      const receipts = this.#pendingReceipts.get(fileId);
      const earlier = this.#pendingEarlierReceipts.get(fileId);
      haves.push({
        fileId,
        runs: runs.flat(),
        ...(receipts && { receipts: encodeReceipts(receipts) }),
        ...(earlier && { earlierReceipts: encodeReceipts(earlier) }),
      });
      this.#pendingHave.delete(fileId);
      this.#pendingReceipts.delete(fileId);
      this.#pendingEarlierReceipts.delete(fileId);
    }
    this.#reports.push(
      haves.map((have) => ({ session: this.#session, have })),
      onlyFile !== undefined,
    );
  }

  /**
   * Every piece is verified and stored: the last chunks are reported at once (their
   * ACQUIRED lines are not held back), and the whole file is checked and moved into
   * Shared/ meanwhile; the peer leaves only after every such move is done.
   */
  #onFileComplete(fileId: number): void {
    const file = this.#engine.file(fileId);
    if (file === undefined) return;
    this.#downloadCompleted.set(fileId, this.#clock.now());
    if (file.chunks === 0) this.#reports.push([{ session: this.#session, have: { fileId, runs: [] } }], true);
    else this.#flushHave(fileId);
    if (this.#sync !== undefined) {
      this.#sync.fileComplete(fileId);
      return;
    }
    const done = this.#store.finalize(fileId, file.manifest).then(
      () => {
        this.#finalizing.delete(fileId);
      },
      (err: unknown) => {
        this.#finalizing.delete(fileId);
        this.#fail(err);
      },
    );
    this.#finalizing.set(fileId, done);
  }

  // ------------------------------------------------------------------ the end

  async #leave(): Promise<void> {
    if (this.#ended || this.#leaving) return;
    this.#leaving = true;
    this.#flushHave();
    // Files still being checked whole and moved into Shared/ must be there before SHUTDOWN lists it.
    while (this.#finalizing.size > 0) await Promise.all(this.#finalizing.values());
    await this.#reports.idle();
    if (this.#ended) return;
    this.#progress?.draw(this.#downloads(), this.#clock.now());
    this.#progress?.finish();
    writeBlock(shutdownBlock(this.#peerId, this.#store.sharedNames()));
    this.#ended = true;
    await this.#tracker?.goodbye();
    if (this.#sync !== undefined) {
      // SYNC (§9): stopping is a sync peer's way out, mid-download or not: partials are kept
      // for the next start (SPEC §12), and the folder's state is saved before staging closes.
      const unfinished = this.#unfinishedDownloads();
      this.#sync.close();
      this.#store.close("keep");
      const where = relative(process.cwd(), this.#store.stagingDir) || this.#store.stagingDir;
      if (unfinished.length > 0) this.#log(`stopped; ${interruptedDownloads(unfinished, where)}`);
      this.#finish(0);
      return;
    }
    // Every version still offered is whole in Shared: what staging holds is of versions nobody offers.
    this.#store.close("leave");
    this.#finish(0);
  }

  /**
   * SIGINT/SIGTERM: leave at once, without a SHUTDOWN block; partial downloads stay in
   * staging for the next start, and the one line says which (or that there were none).
   */
  interrupt(signal: "SIGINT" | "SIGTERM"): void {
    if (this.#ended) return;
    if (this.#sync !== undefined) {
      // SYNC (§9): stopping is how a live-folder peer leaves: SHUTDOWN block, exit 0.
      void this.#leave();
      return;
    }
    this.#ended = true;
    // The last progress frame stays as it was; on a terminal, Ctrl-C echoed "^C" below
    // it, where the cursor is: the message starts on the next line.
    this.#progress?.finish();
    if (signal === "SIGINT" && process.stderr.isTTY === true) writeBlock([""], 2);
    const unfinished = this.#unfinishedDownloads();
    this.#store.close("keep");
    const where = relative(process.cwd(), this.#store.stagingDir) || this.#store.stagingDir;
    this.#log(`interrupted by ${signal}; ${interruptedDownloads(unfinished, where)}`);
    this.#finish(exitStatusForSignal(signal));
  }

  /** One stderr line; while a progress block is on the terminal, it goes below it. */
  #log(line: string): void {
    const progress = this.#progress;
    if (progress === undefined) this.#config.log(line);
    else progress.interject(() => this.#config.log(line));
  }

  /** Every file of the swarm this peer offers or fetches, for the progress display. */
  #downloads(): DownloadView[] {
    const views: DownloadView[] = [];
    for (const file of this.#engine.files()) {
      if (file.mode === "ignored") continue;
      const offered = this.#offered.has(file.id);
      const startedAt = this.#downloadStarted.get(file.id);
      const completedAt = this.#downloadCompleted.get(file.id);
      views.push({
        id: file.id,
        name: file.manifest.name,
        size: file.manifest.size,
        chunks: file.chunks,
        state: offered ? "offered" : file.mode === "seeding" ? "complete" : "downloading",
        doneChunks: file.mode === "seeding" ? file.chunks : file.done.count * file.manifest.chunksPerPiece,
        holders: file.holders.size,
        ...(startedAt === undefined ? {} : { startedAt }),
        ...(completedAt === undefined ? {} : { completedAt }),
      });
    }
    return views;
  }

  /** Files being fetched (or checked and moved into Shared/) that are not there yet. */
  #unfinishedDownloads(): string[] {
    const names: string[] = [];
    for (const file of this.#engine.files()) {
      if (file.mode === "downloading" || this.#finalizing.has(file.id)) names.push(file.manifest.name);
    }
    return names.sort(byNameBytes);
  }

  #fail(err: unknown): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#progress?.finish();
    this.#log(errorMessage(err));
    this.#finish(exitStatusFor(err));
  }

  #finish(code: number): void {
    this.#sync?.close();
    this.#reports.close();
    this.#tracker?.close();
    this.#engine.close();
    try {
      this.#socket.close();
    } catch {
      // not bound yet
    }
    // An error keeps partial downloads for the next start; its one stderr line is already out.
    this.#store.close("keep");
    if (code === ExitStatus.trackerUnreachable && !this.#sharedExisted) {
      try {
        rmdirSync(this.#config.sharedDir); // only if still empty: nothing was shared or fetched
      } catch {
        // not empty, or already gone
      }
    }
    this.#writeStats();
    this.#finished?.(code);
  }

  stats(): Record<string, unknown> {
    return {
      peer: this.#peerId,
      elapsedMs: Math.round(this.#clock.now() - this.#startedAt),
      ...this.#engine.counters,
      trackerBadFrames: this.#badFrames,
      sendErrors: this.#sendErrors,
      faultsOut: this.#faultsOut?.counters,
      faultsIn: this.#faultsIn?.counters,
      remotes: this.#engine.remoteStats(),
      resumed: this.#resumed,
      descriptors: this.#store.descriptors,
      stagingRecordWrites: this.#store.recordWrites,
      memory: process.memoryUsage(),
      peakRssKiB: process.resourceUsage().maxRSS,
    };
  }

  /** Counters go where --stats says (a file, or stderr with "-"); nowhere by default. */
  #writeStats(): void {
    const target = this.#config.stats;
    if (target === "off") return;
    const json = JSON.stringify(this.stats());
    if (target === "stderr") {
      this.#log(`stats ${json}`);
      return;
    }
    try {
      writeFileSync(target, `${json}\n`);
    } catch (err) {
      this.#log(`cannot write stats to ${target}: ${(err as Error).message}`);
    }
  }
}
