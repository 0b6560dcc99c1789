import { createSocket, type Socket } from "node:dgram";
import { lookup } from "node:dns";
import { existsSync, rmdirSync, writeFileSync } from "node:fs";
import { isIP } from "node:net";
import { networkInterfaces } from "node:os";
import { parseRuns } from "../transfer/bitmap.js";
import { type DatagramPort, TransferEngine, type TransferOptions } from "../transfer/engine.js";
import { type Clock, RealClock, type TimerHandle } from "../util/clock.js";
import { ExitStatus, SwarmError } from "../util/errors.js";
import { shutdownBlock } from "../util/output-lines.js";
import { SeededRandom } from "../util/random.js";
import { writeBlock } from "../util/stdout.js";
import { requestAuth } from "../wire/auth.js";
import type { udpswarm } from "../wire/gen/swarm.js";
import { CHUNK_SIZE } from "../wire/limits.js";
import { checkManifest, isManifestProblem, RefusalReason, type TrackerFrame } from "../wire/tracker-frame.js";
import { type FaultConfig, FaultInjector, hasFaults } from "./faults.js";
import { ProgressDisplay } from "./progress.js";
import { hashFile, type LocalFile, listShareable } from "./scan.js";
import { FileStore } from "./store.js";
import { TrackerClient } from "./tracker-client.js";

export type PeerConfig = {
  readonly trackerHost: string;
  readonly trackerPort: number;
  readonly minAliveSeconds: number;
  readonly sharedDir: string;
  readonly stagingRoot: string;
  readonly udpPort: number;
  readonly maxFileSize: number;
  readonly faults: FaultConfig;
  readonly statsFile: string | undefined;
  readonly transfer: TransferOptions;
  readonly log: (line: string) => void;
  /** Progress on stderr: "auto" when stderr is a terminal. */
  readonly progress: "auto" | "on" | "off";
  /** No progress and no counters on stderr (errors still are). */
  readonly quiet: boolean;
};

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
  #peerId = 0;
  #secret: Uint8Array = new Uint8Array(0);
  readonly #local = new Map<string, LocalFile>();
  /** The names of #local in Unicode form C: a file whose name prints the same is ours too. */
  readonly #localKeys = new Set<string>();
  /** Whether ./Shared was there before this peer (it is not left behind if the tracker cannot be reached). */
  readonly #sharedExisted: boolean;
  readonly #pendingHave = new Map<number, Array<[number, number]>>();
  #haveTimer: TimerHandle | undefined;
  #progress: ProgressDisplay | undefined;
  /** Files whole and verified piece by piece, being checked whole and moved into Shared/. */
  readonly #finalizing = new Map<number, Promise<void>>();
  #leaving = false;
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
    this.#store = new FileStore(config.sharedDir, config.stagingRoot);
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
    this.#engine = new TransferEngine(
      {
        clock: this.#clock,
        port,
        store: this.#store,
        random: new SeededRandom(config.faults.seed ^ process.pid),
        defer: (fn) => setImmediate(fn),
        events: {
          acquired: (fileId, first, count) => this.#onAcquired(fileId, first, count),
          fileComplete: (fileId) => this.#onFileComplete(fileId),
          fatal: (err) => this.#fail(err),
        },
      },
      config.transfer,
    );
  }

  /** Runs the peer to the end; resolves with the exit status. */
  async run(): Promise<number> {
    const tty = process.stderr.isTTY === true;
    if (!this.#config.quiet && (this.#config.progress === "on" || (this.#config.progress === "auto" && tty))) {
      const display = new ProgressDisplay((text) => process.stderr.write(text), tty);
      this.#progress = display;
      setInterval(() => display.draw(this.#engine.files(), this.#clock.now()), tty ? 250 : 1000).unref();
    }
    if (process.env.UDPSWARM_DEBUG) {
      setInterval(
        () => this.#config.log(`debug ${JSON.stringify(this.#engine.debugState())}`),
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
    const names = listShareable(this.#config.sharedDir, (line) => this.#config.log(line));
    for (const name of names) {
      const local = hashFile(this.#config.sharedDir, name);
      if (local.manifest.size > this.#config.maxFileSize) {
        this.#config.log(`not offering ${JSON.stringify(name)}: larger than --max-file-size`);
        continue;
      }
      this.#local.set(name, local);
      this.#localKeys.add(name.normalize("NFC"));
    }
    const udpPort = await this.#bind();
    this.#tracker = await TrackerClient.connect(this.#config.trackerHost, this.#config.trackerPort, this.#clock, {
      frame: (frame) => this.#onFrame(frame),
      lost: (err) => this.#fail(err),
      badFrame: () => {
        this.#badFrames++;
      },
    });
    if (this.#ended) return;
    this.#tracker.send({
      hello: {
        udpPort,
        addresses: [...this.#localAddresses],
        offers: [...this.#local.values()].map((f) => ({
          name: f.manifest.name,
          size: f.manifest.size,
          chunkSize: CHUNK_SIZE,
          chunksPerPiece: f.manifest.chunksPerPiece,
          chunksPerBlock: f.manifest.chunksPerBlock,
          sha256: f.manifest.sha256,
          pieceSha256: [...f.manifest.pieceSha256],
        })),
      },
    });
    this.#clock.setTimer(this.#config.minAliveSeconds * 1000, () => this.#tracker?.send({ readyToLeave: {} }));
    this.#reportStats();
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
          this.#config.log("could not enlarge the UDP socket buffers; expect more loss at high rates");
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
        if (r?.reason === RefusalReason.REASON_VERSION) {
          this.#fail(new SwarmError("ERR_PROTOCOL_VERSION", `the tracker refused this peer: ${r.detail ?? ""}`));
          return;
        }
        this.#config.log(
          `the tracker refused ${r?.fileName ? JSON.stringify(r.fileName) : "a message"}: ${r?.detail ?? ""}`,
        );
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
    for (const info of u.added ?? []) this.#learnFile(info);
    for (const h of u.holders ?? []) this.#onHolders(h);
  }

  #removeFile(fileId: number): void {
    const file = this.#engine.file(fileId);
    if (file?.mode === "downloading") {
      this.#config.log(`"${file.manifest.name}" is no longer available in the swarm; dropping the partial copy`);
      this.#store.abandon(fileId);
    }
    this.#engine.removeFile(fileId);
    this.#pendingHave.delete(fileId);
  }

  /** One of our own offers, accepted by the tracker under `info.fileId`: we serve it. */
  #seed(info: udpswarm.IFileInfo): void {
    const local = this.#local.get(info.manifest?.name ?? "");
    if (local === undefined) return;
    const id = info.fileId ?? 0;
    this.#store.addSeed(id, local.manifest.name, local.manifest.size);
    this.#engine.addFile(id, local.manifest, "seeding");
  }

  #onWelcome(w: udpswarm.IWelcome): void {
    this.#peerId = w.peerId ?? 0;
    this.#secret = w.secret ?? new Uint8Array(0);
    for (const r of w.refused ?? []) {
      this.#config.log(
        `peer ${this.#peerId}: the tracker refused ${JSON.stringify(r.fileName ?? "")}: ${r.detail ?? "conflict"}; keeping the local file, not fetching the other`,
      );
    }
    for (const info of w.accepted ?? []) this.#seed(info);
    for (const info of w.files ?? []) this.#learnFile(info);
    for (const p of w.peers ?? []) this.#addRemote(p);
    for (const h of w.holders ?? []) this.#onHolders(h);
  }

  #addRemote(p: udpswarm.IPeerAddress): void {
    const id = p.peerId ?? 0;
    if (id === this.#peerId || id === 0) return;
    const host = p.host ?? "";
    const aliases = [...(p.aliases ?? [])];
    // A peer on this very host may reach us through loopback: its datagrams then come from 127.0.0.1.
    if (host.startsWith("127.") || aliases.some((a) => this.#localAddresses.has(a))) aliases.push("127.0.0.1");
    this.#engine.addRemote(
      id,
      host,
      p.udpPort ?? 0,
      { inbound: p.expectedAuth ?? new Uint8Array(0), outbound: requestAuth(this.#secret, id) },
      aliases,
    );
  }

  #learnFile(info: udpswarm.IFileInfo): void {
    const id = info.fileId ?? 0;
    if (this.#engine.file(id) !== undefined || info.manifest === undefined || info.manifest === null) return;
    const checked = checkManifest(info.manifest, this.#config.maxFileSize);
    if (isManifestProblem(checked)) {
      this.#config.log(`ignoring file ${id} from the tracker: ${checked.detail}`);
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
    try {
      this.#store.startDownload(id, checked.name, checked.size);
    } catch (err) {
      this.#fail(err);
      return;
    }
    this.#engine.addFile(id, checked, "downloading");
  }

  #onHolders(h: udpswarm.IHoldersChanged): void {
    const peerId = h.peerId ?? 0;
    if (peerId === this.#peerId) return;
    const file = this.#engine.file(h.fileId ?? 0);
    if (file === undefined) return;
    const runs = parseRuns(h.runs ?? [], file.chunks);
    if (runs === undefined) {
      this.#badFrames++;
      return;
    }
    this.#engine.holdersChanged(peerId, file.id, runs, h.complete === true);
  }

  // ------------------------------------------------------------------ progress reports

  #onAcquired(fileId: number, first: number, count: number): void {
    let runs = this.#pendingHave.get(fileId);
    if (runs === undefined) {
      runs = [];
      this.#pendingHave.set(fileId, runs);
    }
    const last = runs[runs.length - 1];
    if (last !== undefined && last[0] + last[1] === first) last[1] += count;
    else runs.push([first, count]);
    if (this.#haveTimer === undefined) {
      this.#haveTimer = this.#clock.setTimer(HAVE_FLUSH_MS, () => {
        this.#haveTimer = undefined;
        this.#flushHave();
      });
    }
  }

  #flushHave(onlyFile?: number): void {
    for (const [fileId, runs] of this.#pendingHave) {
      if (onlyFile !== undefined && fileId !== onlyFile) continue;
      this.#tracker?.send({ have: { fileId, runs: runs.flat() } });
      this.#pendingHave.delete(fileId);
    }
  }

  /**
   * Every piece is verified and stored: the last chunks are reported at once (their
   * ACQUIRED lines are not held back), and the whole file is checked and moved into
   * Shared/ meanwhile; the peer leaves only after every such move is done.
   */
  #onFileComplete(fileId: number): void {
    const file = this.#engine.file(fileId);
    if (file === undefined) return;
    if (file.chunks === 0) this.#tracker?.send({ have: { fileId, runs: [] } });
    else this.#flushHave(fileId);
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
    if (this.#ended) return;
    this.#progress?.draw(this.#engine.files(), this.#clock.now());
    this.#progress?.finish();
    writeBlock(shutdownBlock(this.#peerId, this.#store.sharedNames()));
    this.#ended = true;
    await this.#tracker?.goodbye();
    this.#finish(0);
  }

  /** SIGINT/SIGTERM: leave without a word, removing the staging folder; no SHUTDOWN block. */
  interrupt(signal: string, code: number): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#config.log(`interrupted by ${signal}; partial downloads removed`);
    this.#finish(code);
  }

  #fail(err: unknown): void {
    if (this.#ended) return;
    this.#ended = true;
    const message = err instanceof Error ? err.message : String(err);
    this.#config.log(message);
    const code = err instanceof SwarmError ? err.code : "ERR_IO";
    this.#finish(
      code === "ERR_TRACKER_UNREACHABLE" ? 3 : code === "ERR_PROTOCOL_VERSION" ? 6 : code === "ERR_IO" ? 5 : 4,
    );
  }

  #finish(code: number): void {
    this.#tracker?.close();
    this.#engine.close();
    try {
      this.#socket.close();
    } catch {
      // not bound yet
    }
    this.#store.close();
    if (code === ExitStatus.trackerUnreachable && !this.#sharedExisted) {
      try {
        rmdirSync(this.#config.sharedDir); // only if still empty: nothing was shared or fetched
      } catch {
        // not empty, or already gone
      }
    }
    this.#writeStats(code);
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
      memory: process.memoryUsage(),
      peakRssKiB: process.resourceUsage().maxRSS,
    };
  }

  /** Counters go to --stats FILE, or to stderr after a normal exit (an error's one line stays alone). */
  #writeStats(code: number): void {
    const json = JSON.stringify(this.stats());
    if (this.#config.statsFile !== undefined) {
      try {
        writeFileSync(this.#config.statsFile, `${json}\n`);
      } catch (err) {
        this.#config.log(`cannot write stats to ${this.#config.statsFile}: ${(err as Error).message}`);
      }
    } else if (code === 0 && !this.#config.quiet) this.#config.log(`stats ${json}`);
  }
}
