import { createServer, type Server, type Socket } from "node:net";
import type { Clock, TimerHandle } from "../util/clock.js";
import { processLag } from "../util/lag-monitor.js";
import { udpswarm } from "../wire/gen/swarm.js";
import { MAX_FRAME_BYTES } from "../wire/limits.js";
import {
  type CheckedManifest,
  checkManifest,
  encodeTrackerFrame,
  encodeUpdatesFrame,
  type FrameBody,
  isManifestProblem,
  RefusalReason,
  TRACKER_PROTOCOL_VERSION,
  type TrackerFrame,
} from "../wire/tracker-frame.js";
import { FramedLink, type LinkFailure } from "../wire/tracker-link.js";
import { Registry, type RegistrySink } from "./registry.js";

export type TrackerOptions = {
  /** Largest file size a peer may announce (bytes). */
  readonly maxFileSize: number;
  /** Interval between keepalive pings (ms). @default 2000 */
  readonly pingIntervalMs?: number;
  /** Silence always tolerated from a peer; more when its round trips or our stalls explain it (ms). @default 10000 */
  readonly idleTimeoutMs?: number;
  /** Silence never tolerated beyond this (ms). @default 60000 */
  readonly maxIdleTimeoutMs?: number;
  /** Time a new connection has to say Hello, counted from its accept (ms). @default 10000 */
  readonly helloTimeoutMs?: number;
  /** A peer with more than this unsent to it (bytes, beyond the frame being sent) is too slow to keep. @default 16 MiB */
  readonly maxQueuedBytes?: number;
  /** While more ACQUIRED lines of one peer than this wait for stdout, its reports are not read. @default 1000000 */
  readonly maxPendingLines?: number;
  /** Changes for the peers are gathered this long before they go out in one Updates frame (ms). @default 10 */
  readonly flushMs?: number;
};

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
};

type Connection = {
  readonly socket: Socket;
  readonly link: FramedLink;
  readonly label: string;
  peerId: number | undefined;
  /** Drops the connection if no Hello has come by then (armed at accept, never moved). */
  helloTimer: TimerHandle | undefined;
  /** Not read while its ACQUIRED lines wait for stdout. */
  paused: boolean;
  closed: boolean;
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
  };
  readonly #clock: Clock;
  readonly #options: Required<TrackerOptions>;
  readonly #server: Server;
  readonly #byPeer = new Map<number, Connection>();
  readonly #connections = new Set<Connection>();
  readonly #paused = new Set<Connection>();
  readonly #output: TrackerOutput;
  readonly #log: (line: string) => void;
  #flushTimer: TimerHandle | undefined;
  #lastFlush = Number.NEGATIVE_INFINITY;

  constructor(
    clock: Clock,
    options: TrackerOptions,
    output: TrackerOutput,
    log: (line: string) => void,
    observer?: (event: "changed") => void,
  ) {
    this.#clock = clock;
    this.#options = {
      pingIntervalMs: 2000,
      idleTimeoutMs: 10_000,
      maxIdleTimeoutMs: 60_000,
      helloTimeoutMs: 10_000,
      maxQueuedBytes: 16 * 1024 * 1024,
      maxPendingLines: 1_000_000,
      flushMs: 10,
      ...options,
    };
    this.#output = output;
    this.#log = log;
    output.onProgress = () => this.#resumeReaders();
    const sink: RegistrySink = {
      print: (lines) => {
        output.block(lines);
        observer?.("changed");
      },
      acquired: (peerId, name, chunks, runs) => {
        output.acquired(peerId, name, chunks, runs);
        observer?.("changed");
      },
      send: (peerId, body) => this.#send(peerId, body),
      sendUpdates: (receivers, shared, own) => this.#sendUpdates(receivers, shared, own),
      pending: () => this.#scheduleFlush(),
      log: (line) => this.#log(line),
    };
    this.registry = new Registry(sink);
    this.#server = createServer({ noDelay: true }, (socket) => this.#accept(socket));
  }

  /** Listens on all interfaces; resolves with the TCP port. */
  listen(port = 0, host?: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.#server.once("error", reject);
      const onListening = () => {
        this.#server.off("error", reject);
        this.#server.on("error", (err) => this.#log(`tracker: server error: ${err.message}`));
        const address = this.#server.address();
        if (address === null || typeof address === "string") reject(new Error("tracker: no TCP address"));
        else resolve(address.port);
      };
      if (host === undefined) this.#server.listen(port, onListening);
      else this.#server.listen(port, host, onListening);
    });
  }

  /** Stops listening and drops every connection. Safe to call twice. */
  close(): void {
    this.#server.close();
    if (this.#flushTimer !== undefined) this.#clock.clearTimer(this.#flushTimer);
    this.#flushTimer = undefined;
    for (const conn of this.#connections) this.#drop(conn, undefined, false);
  }

  #accept(socket: Socket): void {
    this.counters.connections++;
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
          maxFrameBytes: MAX_FRAME_BYTES,
          pingIntervalMs: this.#options.pingIntervalMs,
          idleTimeoutMs: this.#options.idleTimeoutMs,
          maxIdleTimeoutMs: this.#options.maxIdleTimeoutMs,
          lag: () => lag.stalledMs(),
          defer: (fn) => setImmediate(fn),
        },
      ),
      label: `${socket.remoteAddress ?? "?"}:${socket.remotePort ?? "?"}`,
      peerId: undefined,
      helloTimer: undefined,
      paused: false,
      closed: false,
    };
    this.#connections.add(conn);
    // From the accept, not from the last byte: trickling bytes must not keep a
    // connection that never says Hello.
    conn.helloTimer = this.#clock.setTimer(this.#options.helloTimeoutMs, () => {
      conn.helloTimer = undefined;
      if (conn.peerId === undefined) this.#drop(conn, `no Hello within ${this.#options.helloTimeoutMs} ms`, true);
    });
    socket.on("data", (data: Buffer) => conn.link.receive(data));
    socket.on("error", () => this.#drop(conn, undefined, true));
    socket.on("close", () => this.#drop(conn, undefined, true));
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
        );
        return;
    }
  }

  #onBadFrame(conn: Connection, reason: string): void {
    this.counters.badFrames++;
    if (conn.peerId === undefined) this.#drop(conn, `bad first frame (${reason})`, true);
  }

  #onFrame(conn: Connection, frame: TrackerFrame): void {
    this.counters.framesIn++;
    if (conn.peerId === undefined) {
      if (frame.body !== "hello" || frame.hello === null || frame.hello === undefined) {
        this.counters.badFrames++;
        this.#drop(conn, "first frame was not Hello", true);
        return;
      }
      this.#onHello(conn, frame.hello.udpPort ?? 0, frame.hello.offers ?? [], frame.hello.addresses ?? []);
      return;
    }
    const peerId = conn.peerId;
    switch (frame.body) {
      case "have": {
        const problem = this.registry.have(peerId, frame.have?.fileId ?? 0, frame.have?.runs ?? []);
        if (problem !== undefined) {
          this.counters.badFrames++;
          this.#log(`tracker: peer ${peerId}: ignored report: ${problem}`);
        }
        if (this.#output.pendingLinesOf(peerId) > this.#options.maxPendingLines) this.#pause(conn);
        return;
      }
      case "readyToLeave":
        this.registry.readyToLeave(peerId);
        return;
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
        this.#log(`tracker: peer ${peerId}: unexpected ${frame.body ?? "empty"} frame ignored`);
        return;
    }
  }

  #onHello(
    conn: Connection,
    udpPort: number,
    offers: readonly udpswarm.IManifest[],
    addresses: readonly string[],
  ): void {
    if (!Number.isInteger(udpPort) || udpPort <= 0 || udpPort > 65535) {
      this.counters.badFrames++;
      conn.link.send({ refusal: { reason: RefusalReason.REASON_BAD_MESSAGE, detail: `bad UDP port ${udpPort}` } });
      this.#drop(conn, `bad UDP port ${udpPort}`, true);
      return;
    }
    const checked: CheckedManifest[] = [];
    const refusals: FrameBody[] = [];
    for (const offer of offers) {
      const result = checkManifest(offer, this.#options.maxFileSize);
      if (isManifestProblem(result)) {
        this.counters.refusedOffers++;
        refusals.push({ refusal: { reason: result.reason, detail: result.detail, fileName: offer.name ?? "" } });
        this.#log(`tracker: ${conn.label}: refused offer ${JSON.stringify(offer.name ?? "")}: ${result.detail}`);
      } else checked.push(result);
    }
    if (conn.helloTimer !== undefined) this.#clock.clearTimer(conn.helloTimer);
    conn.helloTimer = undefined;
    const host = normalizeHost(conn.socket.remoteAddress ?? "");
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
    );
  }

  // ---------------------------------------------------------------- frames out

  #scheduleFlush(): void {
    if (this.#flushTimer !== undefined) return;
    const wait = Math.max(0, this.#lastFlush + this.#options.flushMs - this.#clock.now());
    this.#flushTimer = this.#clock.setTimer(wait, () => {
      this.#flushTimer = undefined;
      this.#lastFlush = this.#clock.now();
      this.registry.flush();
    });
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
    if (conn.socket.writableLength - bytes.length > this.#options.maxQueuedBytes) {
      this.#drop(conn, `peer too slow to read its frames (${conn.socket.writableLength} bytes queued)`, true);
    }
  }

  // ---------------------------------------------------------------- reading paused for stdout

  #pause(conn: Connection): void {
    if (conn.paused || conn.closed) return;
    conn.paused = true;
    conn.link.paused = true;
    conn.socket.pause();
    this.#paused.add(conn);
    this.counters.pausedForOutput++;
  }

  #resumeReaders(): void {
    for (const conn of this.#paused) {
      const peerId = conn.peerId;
      if (
        !conn.closed &&
        peerId !== undefined &&
        this.#output.pendingLinesOf(peerId) > this.#options.maxPendingLines / 2
      )
        continue;
      this.#paused.delete(conn);
      conn.paused = false;
      conn.link.paused = false;
      if (!conn.closed) conn.socket.resume();
    }
  }

  /** Ends a connection once; a joined peer leaves the registry (DISCONNECT block). */
  #drop(conn: Connection, reason: string | undefined, announce: boolean): void {
    if (conn.closed) return;
    conn.closed = true;
    this.#connections.delete(conn);
    this.#paused.delete(conn);
    conn.link.close();
    if (conn.helloTimer !== undefined) this.#clock.clearTimer(conn.helloTimer);
    if (reason !== undefined) {
      const who = conn.peerId === undefined ? conn.label : `peer ${conn.peerId}`;
      this.#log(`tracker: ${who}: connection closed: ${reason}`);
    }
    conn.socket.end();
    conn.socket.destroySoon();
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
