import { createServer, type Server, type Socket } from "node:net";
import type { ClientConnections, ClientHandler } from "../accounts/connections.js";
import type { Clock, TimerHandle } from "../util/clock.js";
import { processLag } from "../util/lag-monitor.js";
import { udpswarm } from "../wire/gen/swarm.js";
import { CHUNK_SIZE, MAX_FRAME_BYTES } from "../wire/limits.js";
import {
  type CheckedManifest,
  checkManifest,
  checkPendingOffer,
  encodeTrackerFrame,
  encodeUpdatesFrame,
  type FrameBody,
  isManifestProblem,
  type ManifestProblem,
  type PendingOffer,
  RefusalReason,
  TRACKER_PROTOCOL_VERSION,
  type TrackerFrame,
} from "../wire/tracker-frame.js";
import { DEFAULT_IDLE_TIMEOUT_MS, FramedLink, type LinkFailure } from "../wire/tracker-link.js";
import { FlushSchedule } from "./flush-schedule.js";
import { DEFAULT_LIMITS, PRE_HELLO_FRAME_BYTES, type TrackerLimits } from "./limits.js";
import { ThrottledLog } from "./log-throttle.js";
import { Registry, type RegistrySink } from "./registry.js";
import { CLASSIC_TAG, classicTag, syncUpdate, tagFromWire, type VersionTag } from "./versions.js";

export type TrackerOptions = Partial<TrackerLimits> & {
  /** Largest file size a peer may announce (bytes). */
  readonly maxFileSize: number;
  /** Interval between keepalive pings (ms). @default 2000 */
  readonly pingIntervalMs?: number;
  /** Silence always tolerated from a peer; more when its round trips or our stalls explain it (ms). @default 15000 */
  readonly idleTimeoutMs?: number;
  /** Silence never tolerated beyond this (ms). @default 60000 */
  readonly maxIdleTimeoutMs?: number;
  /** While more ACQUIRED lines of one peer than this wait for stdout, its reports are not read. @default 1000000 */
  readonly maxPendingLines?: number;
  /** Changes for the peers are gathered this long before they go out in one Updates frame (ms). @default 10 */
  readonly flushMs?: number;
  /**
   * When the changes are only chunks acquired, this long (ms): with N peers each report
   * goes to N - 1 of them (10 -> 50: 8 x 4 MiB swarm 5-20% less CPU, see FlushSchedule's
   * commit). @default 50
   */
  readonly progressFlushMs?: number;
  /** ACCOUNTS (§10): takes the connections that open with ClientHello (--store only). */
  readonly accounts?: ClientConnections;
};

/** How often the registry looks for peers that fetch nothing (ms). */
const IDLE_SWEEP_MS = 1000;

/** Seconds of --max-claim-rate a peer may report at once (a burst after a pause). */
const CLAIM_BURST_SECONDS = 2;

/** The tracker's stdout (tracker/stdout-writer.ts in the process). */
export interface TrackerOutput {
  block(lines: readonly string[]): void;
  acquired(peerId: number, name: string, chunks: number, runs: ReadonlyArray<readonly [number, number]>): void;
  /** ACQUIRED lines of this peer still waiting to be written. */
  pendingLinesOf(peerId: number): number;
  /** Called by the output whenever lines were written. */
  onProgress: (() => void) | undefined;
}

/** Counters of what the tracker refused or dropped (telemetry and test oracle). */
export type TrackerCounters = {
  connections: number;
  framesIn: number;
  framesOut: number;
  updateFrames: number;
  badFrames: number;
  refusedOffers: number;
  idleTimeouts: number;
  pausedForOutput: number;
  pausedForClaims: number;
  refusedConnections: number;
  evictedConnections: number;
};

type PauseReason = "output" | "claims";

type Connection = {
  readonly socket: Socket;
  readonly link: FramedLink;
  readonly address: string;
  readonly label: string;
  peerId: number | undefined;
  /** Drops the connection if no Hello has come by then (armed at accept, never moved). */
  helloTimer: TimerHandle | undefined;
  /** Bytes of the Hello budget this connection holds (a large first frame). */
  reserved: number;
  /** Why it is not read now: its ACQUIRED lines wait for stdout, or it reported too fast. */
  readonly paused: Set<PauseReason>;
  /** Chunks it may still report now (refilled at --max-claim-rate). */
  claimTokens: number;
  claimCheckedAt: number;
  claimTimer: TimerHandle | undefined;
  /** The largest frame written to it: its queue may hold that much beyond --max-queued-bytes. */
  largestFrame: number;
  /** Frames read while it was paused for claims (at most one read's worth), handled in order on resume. */
  readonly deferred: TrackerFrame[];
  closed: boolean;
  /** ACCOUNTS (§10): a client connection, handed to the accounts front. */
  client?: ClientHandler;
};

/** Binds the registry to TCP: framing, hello, keepalives, batching, and the peer's lifetime. */
export class TrackerServer {
  readonly registry: Registry;
  readonly counters: TrackerCounters = {
    connections: 0,
    framesIn: 0,
    framesOut: 0,
    updateFrames: 0,
    badFrames: 0,
    refusedOffers: 0,
    idleTimeouts: 0,
    pausedForOutput: 0,
    pausedForClaims: 0,
    refusedConnections: 0,
    evictedConnections: 0,
  };
  /** Diagnostics, a bounded number per reason per 10 s. */
  readonly log: ThrottledLog;
  readonly #clock: Clock;
  readonly #options: Required<Omit<TrackerOptions, "accounts">>;
  readonly #accounts: ClientConnections | undefined;
  readonly #server: Server;
  readonly #byPeer = new Map<number, Connection>();
  readonly #connections = new Set<Connection>();
  /** Open connections per remote address, in accept order. */
  readonly #byAddress = new Map<string, Set<Connection>>();
  readonly #pausedForOutput = new Set<Connection>();
  readonly #output: TrackerOutput;
  /** Hello budget in use (bytes). */
  #helloBytes = 0;
  readonly #flushes: FlushSchedule;
  #idleTimer: TimerHandle | undefined;

  constructor(
    clock: Clock,
    options: TrackerOptions,
    output: TrackerOutput,
    log: (line: string) => void,
    observer?: (event: "changed", block?: readonly string[]) => void,
  ) {
    this.#clock = clock;
    this.#options = {
      ...DEFAULT_LIMITS,
      pingIntervalMs: 2000,
      idleTimeoutMs: DEFAULT_IDLE_TIMEOUT_MS,
      maxIdleTimeoutMs: 60_000,
      maxPendingLines: 1_000_000,
      flushMs: 10,
      progressFlushMs: 50,
      ...options,
    };
    this.#output = output;
    this.log = new ThrottledLog(clock, log, this.#options.logLinesPerReason);
    output.onProgress = () => this.#resumeReaders();
    this.#accounts = options.accounts;
    const sink: RegistrySink = {
      print: (lines) => {
        output.block(lines);
        observer?.("changed", lines);
      },
      acquired: (peerId, name, chunks, runs) => {
        output.acquired(peerId, name, chunks, runs);
        observer?.("changed");
      },
      send: (peerId, body) => this.#send(peerId, body),
      sendUpdates: (receivers, shared, own) => this.#sendUpdates(receivers, shared, own),
      pending: (urgent) => this.#flushes.request(urgent),
      log: (line, reason) => this.log.line(reason ?? "registry", line),
    };
    this.#flushes = new FlushSchedule(clock, this.#options.flushMs, this.#options.progressFlushMs, () =>
      this.registry.flush(),
    );
    this.registry = new Registry(sink, undefined, { ...this.#options, requireReceipts: true });
    this.#server = createServer({ noDelay: true }, (socket) => this.#accept(socket));
  }

  /** Listens on all interfaces; resolves with the TCP port. */
  listen(port = 0, host?: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.#server.once("error", reject);
      const onListening = () => {
        this.#server.off("error", reject);
        this.#server.on("error", (err) => this.log.line("server", `server error: ${err.message}`));
        const address = this.#server.address();
        if (address === null || typeof address === "string") reject(new Error("tracker: no TCP address"));
        else resolve(address.port);
      };
      if (host === undefined) this.#server.listen(port, onListening);
      else this.#server.listen(port, host, onListening);
      this.#sweepIdle();
    });
  }

  /**
   * The fetch grace is judged on our clock less our own stalls (a blocked tracker saw no
   * reports), and stretches with each peer's keepalive timeout, which grows with its round
   * trips: a peer that answers late is starved of CPU or far away, not idle.
   */
  #sweepIdle(): void {
    const lag = processLag();
    const { fetchGraceMs, idleTimeoutMs } = this.#options;
    // stalledMs() leaves out our stalls and, on a crowded host, the share of the time the
    // host could not give (see LagMonitor): 128 peers starting on 2 cores fetch nothing for
    // minutes while they are not idle at all (measured: a 30 s grace judged the downloaders
    // of a converging 128-peer swarm idle, their seeder left, and the swarm lost a file).
    this.registry.sweepIdle(this.#clock.now() - lag.stalledMs(), (peerId) => {
      const timeout = this.#byPeer.get(peerId)?.link.timeoutMs ?? idleTimeoutMs;
      return fetchGraceMs * Math.max(1, timeout / idleTimeoutMs);
    });
    this.#idleTimer = this.#clock.setTimer(IDLE_SWEEP_MS, () => this.#sweepIdle());
  }

  /** Stops listening and drops every connection. Safe to call twice. */
  close(): void {
    this.#server.close();
    this.log.flush();
    this.#flushes.close();
    if (this.#idleTimer !== undefined) this.#clock.clearTimer(this.#idleTimer);
    this.#idleTimer = undefined;
    for (const conn of this.#connections) this.#drop(conn, undefined, false);
  }

  #accept(socket: Socket): void {
    this.counters.connections++;
    const address = normalizeHost(socket.remoteAddress ?? "?");
    const label = `${socket.remoteAddress ?? "?"}:${socket.remotePort ?? "?"}`;
    const fromThere = this.#byAddress.get(address) ?? new Set<Connection>();
    const full =
      this.#connections.size >= this.#options.maxConnections
        ? `the tracker has ${this.#connections.size} connections (--max-connections)`
        : fromThere.size >= this.#options.maxConnectionsPerAddress
          ? `${fromThere.size} connections from ${address} already (--max-connections-per-address)`
          : undefined;
    if (full !== undefined) {
      this.#refuseConnection(socket, label, full);
      return;
    }
    // A newer connection from the same address evicts the oldest one that has not said
    // Hello: those can only be slow to start, or an attack holding slots.
    const unjoined = [...fromThere].filter((c) => c.peerId === undefined && c.client === undefined);
    if (unjoined.length >= this.#options.maxUnjoinedPerAddress && unjoined[0] !== undefined) {
      this.counters.evictedConnections++;
      this.#drop(
        unjoined[0],
        `no Hello yet, and ${unjoined.length} newer connections from ${address} (--max-unjoined-per-address)`,
        true,
        "evicted",
      );
    }
    socket.setKeepAlive(true, 1000);
    const lag = processLag();
    const conn: Connection = {
      socket,
      link: new FramedLink(
        this.#clock,
        {
          write: (bytes) => this.#write(conn, bytes),
          frame: (frame) => this.#onFrame(conn, frame),
          badFrame: (reason) => this.#onBadFrame(conn, reason),
          failed: (failure) => this.#onLinkFailed(conn, failure),
        },
        {
          // A Hello may carry manifests up to the per-peer budget, no more.
          maxFrameBytes: Math.min(MAX_FRAME_BYTES, this.#options.maxManifestBytesPerPeer + PRE_HELLO_FRAME_BYTES),
          pingIntervalMs: this.#options.pingIntervalMs,
          idleTimeoutMs: this.#options.idleTimeoutMs,
          maxIdleTimeoutMs: this.#options.maxIdleTimeoutMs,
          lag: () => lag.stalledMs(),
          defer: (fn) => setImmediate(fn),
        },
      ),
      address,
      label,
      peerId: undefined,
      helloTimer: undefined,
      reserved: 0,
      paused: new Set(),
      claimTokens: this.#claimBurst(),
      claimCheckedAt: this.#clock.now(),
      claimTimer: undefined,
      deferred: [],
      largestFrame: 0,
      closed: false,
    };
    this.#connections.add(conn);
    fromThere.add(conn);
    this.#byAddress.set(address, fromThere);
    // The first bytes a client hears: proof that this is a udpswarm tracker.
    conn.link.ping();
    // From the accept, not from the last byte: trickling bytes must not keep a
    // connection that never says Hello. Our own stalls do not count (a burst of joins
    // blocks us too), and a Hello already waiting in the socket is read before judging.
    const acceptedAt = this.#clock.now();
    const stallAtAccept = lag.stalledMs();
    const judgeHello = (): void => {
      conn.helloTimer = undefined;
      if (conn.peerId !== undefined || conn.client !== undefined || conn.closed) return;
      const waited = this.#clock.now() - acceptedAt - (lag.stalledMs() - stallAtAccept);
      const left = this.#options.helloTimeoutMs - waited;
      if (left > 0) conn.helloTimer = this.#clock.setTimer(left, () => setImmediate(judgeHello));
      else this.#drop(conn, `no Hello within ${Math.round(waited)} ms`, true);
    };
    conn.helloTimer = this.#clock.setTimer(this.#options.helloTimeoutMs, () => setImmediate(judgeHello));
    socket.on("data", (data: Buffer) => {
      conn.link.receive(data);
      if (conn.peerId === undefined && conn.client === undefined && !conn.closed) this.#holdHelloBudget(conn);
    });
    socket.on("error", () => this.#drop(conn, undefined, true));
    socket.on("close", () => this.#drop(conn, undefined, true));
  }

  /** Says why in a frame (so the client knows it reached a tracker), then closes. */
  #refuseConnection(socket: Socket, label: string, why: string): void {
    this.counters.refusedConnections++;
    this.log.line("refused-connection", `${label}: connection refused: ${why}`);
    socket.on("error", () => {});
    socket.end(encodeTrackerFrame({ refusal: { reason: RefusalReason.REASON_LIMIT, detail: why } }));
    socket.destroySoon();
  }

  /**
   * A first frame above PRE_HELLO_FRAME_BYTES (large manifests) is read only within the
   * Hello budget shared by every connection that has not said Hello.
   */
  #holdHelloBudget(conn: Connection): void {
    const want = conn.link.pendingFrameBytes;
    if (want <= PRE_HELLO_FRAME_BYTES || conn.reserved >= want) return;
    if (this.#helloBytes - conn.reserved + want > this.#options.helloBudgetBytes) {
      this.#drop(
        conn,
        `a Hello of ${want} bytes, with ${this.#helloBytes} bytes of Hellos already being read (--hello-budget)`,
        true,
        "hello-budget",
      );
      return;
    }
    this.#helloBytes += want - conn.reserved;
    conn.reserved = want;
  }

  #releaseHelloBudget(conn: Connection): void {
    this.#helloBytes -= conn.reserved;
    conn.reserved = 0;
  }

  #onLinkFailed(conn: Connection, failure: LinkFailure): void {
    switch (failure.kind) {
      case "framing":
        this.counters.badFrames++;
        this.#drop(conn, failure.error.message, true);
        return;
      case "version":
        this.counters.badFrames++;
        // The link is closed for frames by now; the refusal goes straight to the socket.
        this.#write(
          conn,
          encodeTrackerFrame({
            refusal: {
              reason: RefusalReason.REASON_VERSION,
              detail: `protocol version ${failure.version} is not supported (tracker speaks version ${TRACKER_PROTOCOL_VERSION})`,
            },
          }),
        );
        this.#drop(conn, `protocol version ${failure.version} not supported`, true);
        return;
      case "silence":
        this.counters.idleTimeouts++;
        this.#drop(
          conn,
          `no frame for ${Math.round(failure.silentMs)} ms (keepalive timeout ${Math.round(conn.link.timeoutMs)} ms)`,
          true,
          "keepalive",
        );
        return;
    }
  }

  #onBadFrame(conn: Connection, reason: string): void {
    this.counters.badFrames++;
    if (conn.peerId === undefined && conn.client === undefined) this.#drop(conn, `bad first frame (${reason})`, true);
  }

  #onFrame(conn: Connection, frame: TrackerFrame): void {
    this.counters.framesIn++;
    // ACCOUNTS (§10): a client's frames all go to the accounts front.
    if (conn.client !== undefined) {
      conn.client.frame(frame);
      return;
    }
    if (conn.paused.has("claims")) {
      conn.deferred.push(frame);
      return;
    }
    if (conn.peerId === undefined) {
      if (frame.body === "clientHello" && this.#accounts !== undefined) {
        this.#openClient(conn, this.#accounts, frame.clientHello ?? {});
        return;
      }
      if (frame.body !== "hello" || frame.hello === null || frame.hello === undefined) {
        this.counters.badFrames++;
        this.#drop(conn, "first frame was not Hello", true);
        return;
      }
      this.#onHello(
        conn,
        frame.hello.udpPort ?? 0,
        frame.hello.offers ?? [],
        frame.hello.addresses ?? [],
        frame.hello.sync === true,
        frame.hello.resumePeerId ?? 0,
        frame.hello.resumeSecret ?? new Uint8Array(0),
      );
      return;
    }
    const peerId = conn.peerId;
    switch (frame.body) {
      case "have": {
        const runs = frame.have?.runs ?? [];
        if (!this.#claim(conn, runs)) return;
        const have = frame.have;
        const problem = this.registry.have(
          peerId,
          have?.fileId ?? 0,
          runs,
          have?.receipts ?? undefined,
          have?.earlierReceipts ?? undefined,
        );
        if (problem !== undefined) {
          this.counters.badFrames++;
          this.log.line("ignored-report", `peer ${peerId}: ignored report: ${problem}`);
        }
        if (this.#output.pendingLinesOf(peerId) > this.#options.maxPendingLines) {
          this.counters.pausedForOutput++;
          this.#setPaused(conn, "output", true);
          this.#pausedForOutput.add(conn);
        }
        return;
      }
      case "readyToLeave":
        this.registry.readyToLeave(peerId);
        return;
      case "withdraw": {
        const pendingName = frame.withdraw?.pendingName ?? "";
        const problem =
          pendingName !== ""
            ? this.registry.giveUpHashing(peerId, pendingName)
            : this.registry.withdraw(peerId, frame.withdraw?.fileId ?? 0);
        if (problem !== undefined) {
          this.counters.badFrames++;
          this.log.line("ignored-withdraw", `peer ${peerId}: ignored withdrawal: ${problem}`);
        }
        return;
      }
      case "update": {
        // A classic peer's update is the manifest of an offer it was still hashing.
        const problem = this.registry.isSync(peerId)
          ? syncUpdate(this.registry, peerId, frame.update?.manifest, this.#options.maxFileSize)
          : this.#hashed(peerId, frame.update?.manifest);
        if (problem !== undefined) {
          this.counters.badFrames++;
          this.log.line("ignored-update", `peer ${peerId}: ignored update: ${problem}`);
        }
        return;
      }
      case "stats": {
        const s = frame.stats;
        const num = (v: number | null | undefined) => (typeof v === "number" && Number.isFinite(v) && v >= 0 ? v : 0);
        this.registry.stats(peerId, {
          bytesSent: num(s?.bytesSent),
          bytesReceived: num(s?.bytesReceived),
          chunksSent: num(s?.chunksSent),
          chunksReceived: num(s?.chunksReceived),
          retransmissions: num(s?.retransmissions),
          requestsSent: num(s?.requestsSent),
          srttMs: num(s?.srttMs),
        });
        return;
      }
      case "goodbye":
        this.#drop(conn, undefined, true);
        return;
      default:
        this.counters.badFrames++;
        this.log.line("unexpected-frame", `peer ${peerId}: unexpected ${frame.body ?? "empty"} frame ignored`);
        return;
    }
  }

  #onHello(
    conn: Connection,
    udpPort: number,
    offers: readonly udpswarm.IManifest[],
    addresses: readonly string[],
    sync = false,
    resumePeerId = 0,
    resumeSecret: Uint8Array = new Uint8Array(0),
  ): void {
    if (!Number.isInteger(udpPort) || udpPort <= 0 || udpPort > 65535) {
      this.counters.badFrames++;
      conn.link.send({ refusal: { reason: RefusalReason.REASON_BAD_MESSAGE, detail: `bad UDP port ${udpPort}` } });
      this.#drop(conn, `bad UDP port ${udpPort}`, true);
      return;
    }
    const checked: CheckedManifest[] = [];
    const tags: VersionTag[] = [];
    const refusals: FrameBody[] = [];
    const hashing: PendingOffer[] = [];
    const refuse = (offer: udpswarm.IManifest, problem: ManifestProblem) => {
      this.counters.refusedOffers++;
      refusals.push({ refusal: { reason: problem.reason, detail: problem.detail, fileName: offer.name ?? "" } });
      this.log.line(
        "refused-offer",
        `${conn.label}: refused offer ${JSON.stringify(offer.name ?? "")}: ${problem.detail}`,
      );
    };
    for (const offer of offers) {
      if (offer.hashing === true && !sync) {
        const pending = checkPendingOffer(offer, this.#options.maxFileSize);
        if (isManifestProblem(pending)) refuse(offer, pending);
        else hashing.push(pending);
        continue;
      }
      const result = checkManifest(offer, this.#options.maxFileSize);
      if (isManifestProblem(result)) refuse(offer, result);
      else {
        checked.push(result);
        // SYNC (§9): a sync offer's version fields (a bad one counts as the oldest version);
        // a classic offer is at its file's mtime (see classicTag).
        const tag = sync ? tagFromWire(offer) : classicTag(offer, Date.now());
        tags.push(typeof tag === "string" ? CLASSIC_TAG : tag);
      }
    }
    const host = conn.address;
    const owner = this.registry.udpEndpointOwner(host, udpPort, addresses);
    if (owner !== undefined) {
      this.counters.badFrames++;
      const detail = `UDP endpoint ${host}:${udpPort} is peer ${owner}'s`;
      conn.link.send({ refusal: { reason: RefusalReason.REASON_BAD_MESSAGE, detail } });
      this.#drop(conn, detail, true);
      return;
    }
    if (conn.helloTimer !== undefined) this.#clock.clearTimer(conn.helloTimer);
    conn.helloTimer = undefined;
    this.#releaseHelloBudget(conn);
    conn.link.maxFrameBytes = this.#options.maxFrameBytes;
    this.registry.join(
      host,
      udpPort,
      checked,
      (peerId) => {
        conn.peerId = peerId;
        this.#byPeer.set(peerId, conn);
      },
      addresses,
      refusals,
      sync ? { tags } : undefined,
      sync ? undefined : tags,
      hashing,
      resumePeerId > 0 && resumeSecret.length > 0 ? { peerId: resumePeerId, secret: resumeSecret } : undefined,
    );
  }

  /** A classic peer finished hashing an offer it made pending in its Hello. */
  #hashed(peerId: number, wire: udpswarm.IManifest | null | undefined): string | undefined {
    if (wire === undefined || wire === null) return "no manifest";
    const manifest = checkManifest(wire, this.#options.maxFileSize);
    if (isManifestProblem(manifest)) {
      this.registry.giveUpHashing(peerId, wire.name ?? "");
      this.registry.refuse(peerId, { reason: manifest.reason, detail: manifest.detail, fileName: wire.name ?? "" });
      return `${JSON.stringify(wire.name ?? "")}: ${manifest.detail}`;
    }
    return this.registry.hashed(peerId, manifest, classicTag(wire, Date.now()));
  }

  // ---------------------------------------------------------------- frames out

  /** ACCOUNTS (§10): the connection is a client's from now on. */
  #openClient(conn: Connection, accounts: ClientConnections, hello: udpswarm.IClientHello): void {
    // A ClientHello is a Hello: the connection has joined (no deadline, no Hello budget).
    // Its frames stay as large as a Hello's: an upload carries a whole manifest.
    if (conn.helloTimer !== undefined) this.#clock.clearTimer(conn.helloTimer);
    conn.helloTimer = undefined;
    this.#releaseHelloBudget(conn);
    const handler = accounts.open(
      {
        host: normalizeHost(conn.socket.remoteAddress ?? ""),
        label: conn.label,
        send: (body) => conn.link.send(body),
        close: (reason) => this.#drop(conn, reason, false),
      },
      hello,
    );
    if (handler !== undefined && !conn.closed) conn.client = handler;
  }

  #send(peerId: number, body: FrameBody): void {
    this.#byPeer.get(peerId)?.link.send(body);
  }

  #sendUpdates(
    receivers: readonly number[],
    shared: udpswarm.IUpdates,
    own: ReadonlyMap<number, udpswarm.IUpdates>,
  ): void {
    const sharedBytes = udpswarm.Updates.encode(shared).finish();
    let sharedFrame: Buffer | undefined;
    for (const peerId of receivers) {
      const conn = this.#byPeer.get(peerId);
      if (conn === undefined || conn.closed) continue;
      const mine = own.get(peerId);
      let frame: Buffer;
      if (mine === undefined) {
        sharedFrame ??= encodeUpdatesFrame(sharedBytes, new Uint8Array(0));
        frame = sharedFrame;
      } else frame = encodeUpdatesFrame(sharedBytes, udpswarm.Updates.encode(mine).finish());
      this.counters.updateFrames++;
      this.#write(conn, frame);
    }
  }

  #write(conn: Connection, bytes: Buffer): void {
    if (conn.closed) return;
    this.counters.framesOut++;
    conn.socket.write(bytes);
    conn.largestFrame = Math.max(conn.largestFrame, bytes.length);
    if (conn.socket.writableLength - conn.largestFrame > this.#options.maxQueuedBytes) {
      this.#drop(
        conn,
        `peer too slow to read its frames (${conn.socket.writableLength} bytes queued, --max-queued-bytes)`,
        true,
        "slow-reader",
      );
    }
  }

  // ---------------------------------------------------------------- reading paused

  /** Whether a report of `flatRuns` fits the peer's claim budget; over it, reading waits for the refill. */
  #claim(conn: Connection, flatRuns: readonly number[]): boolean {
    let claimed = 0;
    for (let i = 1; i < flatRuns.length; i += 2) claimed += Math.max(0, Number(flatRuns[i]) || 0);
    const perMs = this.#options.maxClaimBytesPerSecond / CHUNK_SIZE / 1000;
    const now = this.#clock.now();
    conn.claimTokens = Math.min(this.#claimBurst(), conn.claimTokens + (now - conn.claimCheckedAt) * perMs);
    conn.claimCheckedAt = now;
    if (claimed > this.#claimBurst()) {
      this.counters.badFrames++;
      this.log.line(
        "claim",
        `peer ${conn.peerId}: ignored report of ${claimed} chunks: more than a peer can have received ` +
          `since its last report (--max-claim-rate ${this.#options.maxClaimBytesPerSecond})`,
      );
      return false;
    }
    conn.claimTokens -= claimed;
    if (conn.claimTokens < 0 && conn.claimTimer === undefined) {
      // In debt: its next reports wait until the budget has refilled.
      this.counters.pausedForClaims++;
      this.#setPaused(conn, "claims", true);
      conn.claimTimer = this.#clock.setTimer(-conn.claimTokens / perMs, () => {
        conn.claimTimer = undefined;
        this.#setPaused(conn, "claims", false);
        const waiting = conn.deferred.splice(0);
        for (const [i, f] of waiting.entries()) {
          if (conn.closed) return;
          if (conn.paused.has("claims")) {
            conn.deferred.push(...waiting.slice(i));
            return;
          }
          this.counters.framesIn--;
          this.#onFrame(conn, f);
        }
      });
    }
    return true;
  }

  #claimBurst(): number {
    return (this.#options.maxClaimBytesPerSecond * CLAIM_BURST_SECONDS) / CHUNK_SIZE;
  }

  #setPaused(conn: Connection, reason: PauseReason, on: boolean): void {
    if (conn.closed) return;
    const was = conn.paused.size > 0;
    if (on) conn.paused.add(reason);
    else conn.paused.delete(reason);
    const is = conn.paused.size > 0;
    if (was === is) return;
    conn.link.paused = is;
    if (is) conn.socket.pause();
    else conn.socket.resume();
  }

  #resumeReaders(): void {
    for (const conn of this.#pausedForOutput) {
      const peerId = conn.peerId;
      if (
        !conn.closed &&
        peerId !== undefined &&
        this.#output.pendingLinesOf(peerId) > this.#options.maxPendingLines / 2
      )
        continue;
      this.#pausedForOutput.delete(conn);
      this.#setPaused(conn, "output", false);
    }
  }

  /** Ends a connection once; a joined peer leaves the registry (DISCONNECT block). */
  #drop(conn: Connection, reason: string | undefined, announce: boolean, logReason = "closed"): void {
    if (conn.closed) return;
    conn.closed = true;
    this.#connections.delete(conn);
    const fromThere = this.#byAddress.get(conn.address);
    fromThere?.delete(conn);
    if (fromThere?.size === 0) this.#byAddress.delete(conn.address);
    this.#pausedForOutput.delete(conn);
    this.#releaseHelloBudget(conn);
    conn.link.close();
    if (conn.helloTimer !== undefined) this.#clock.clearTimer(conn.helloTimer);
    if (conn.claimTimer !== undefined) this.#clock.clearTimer(conn.claimTimer);
    if (reason !== undefined) {
      const who = conn.peerId === undefined ? conn.label : `peer ${conn.peerId}`;
      this.log.line(logReason, `${who}: connection closed: ${reason}`);
    }
    conn.socket.end();
    conn.socket.destroySoon();
    conn.client?.closed();
    if (conn.peerId !== undefined) {
      this.#byPeer.delete(conn.peerId);
      if (announce) this.registry.leave(conn.peerId);
    }
  }
}

/** IPv4 peers reached over a dual-stack socket appear as ::ffff:a.b.c.d. */
export function normalizeHost(address: string): string {
  return address.startsWith("::ffff:") && address.includes(".") ? address.slice(7) : address;
}
