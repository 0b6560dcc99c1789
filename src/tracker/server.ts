import { createServer, type Server, type Socket } from "node:net";
import type { Clock, TimerHandle } from "../util/clock.js";
import { SwarmError } from "../util/errors.js";
import { FrameDecoder } from "../wire/framing.js";
import { MAX_FRAME_BYTES } from "../wire/limits.js";
import {
  type CheckedManifest,
  checkManifest,
  decodeTrackerFrame,
  encodeTrackerFrame,
  type FrameBody,
  TRACKER_PROTOCOL_VERSION,
} from "../wire/tracker-frame.js";
import { Registry, type RegistrySink } from "./registry.js";
import { CLASSIC_TAG, syncUpdate, tagFromWire, type VersionTag } from "./versions.js";

export type TrackerOptions = {
  /** Largest file size a peer may announce (bytes). */
  readonly maxFileSize: number;
  /** Interval between keepalive pings (ms). @default 2000 */
  readonly pingIntervalMs?: number;
  /** A peer silent for this long is gone (ms). @default 10000 */
  readonly idleTimeoutMs?: number;
  /** Time a new connection has to say Hello (ms). @default 10000 */
  readonly helloTimeoutMs?: number;
  /** A peer whose unsent frames exceed this is too slow to keep (bytes). @default 256 MiB */
  readonly maxQueuedBytes?: number;
};

/** Counters of what the tracker refused or dropped (telemetry and test oracle). */
export type TrackerCounters = {
  connections: number;
  framesIn: number;
  framesOut: number;
  badFrames: number;
  refusedOffers: number;
  idleTimeouts: number;
};

type Connection = {
  readonly socket: Socket;
  readonly decoder: FrameDecoder;
  readonly label: string;
  peerId: number | undefined;
  lastHeard: number;
  timer: TimerHandle | undefined;
  closed: boolean;
};

/** Binds the registry to TCP: framing, hello, keepalives, and the peer's lifetime. */
export class TrackerServer {
  readonly registry: Registry;
  readonly counters: TrackerCounters = {
    connections: 0,
    framesIn: 0,
    framesOut: 0,
    badFrames: 0,
    refusedOffers: 0,
    idleTimeouts: 0,
  };
  readonly #clock: Clock;
  readonly #options: Required<TrackerOptions>;
  readonly #server: Server;
  readonly #byPeer = new Map<number, Connection>();
  readonly #connections = new Set<Connection>();
  readonly #print: (lines: string[]) => void;
  readonly #log: (line: string) => void;

  constructor(
    clock: Clock,
    options: TrackerOptions,
    print: (lines: string[]) => void,
    log: (line: string) => void,
    observer?: (event: "changed") => void,
  ) {
    this.#clock = clock;
    this.#options = {
      pingIntervalMs: 2000,
      idleTimeoutMs: 10_000,
      helloTimeoutMs: 10_000,
      maxQueuedBytes: 256 * 1024 * 1024,
      ...options,
    };
    this.#print = print;
    this.#log = log;
    const sink: RegistrySink = {
      print: (lines) => {
        this.#print(lines);
        observer?.("changed");
      },
      send: (peerId, body) => this.#send(peerId, body),
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
        this.#server.on("error", (err) => this.#log(`server error: ${err.message}`));
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
    for (const conn of this.#connections) this.#drop(conn, undefined, false);
  }

  #accept(socket: Socket): void {
    this.counters.connections++;
    socket.setKeepAlive(true, 1000);
    const conn: Connection = {
      socket,
      decoder: new FrameDecoder(MAX_FRAME_BYTES),
      label: `${socket.remoteAddress ?? "?"}:${socket.remotePort ?? "?"}`,
      peerId: undefined,
      lastHeard: this.#clock.now(),
      timer: undefined,
      closed: false,
    };
    this.#connections.add(conn);
    socket.on("data", (data: Buffer) => this.#onData(conn, data));
    socket.on("error", () => this.#drop(conn, undefined, true));
    socket.on("close", () => this.#drop(conn, undefined, true));
    this.#armKeepalive(conn);
  }

  #onData(conn: Connection, data: Buffer): void {
    if (conn.closed) return;
    conn.lastHeard = this.#clock.now();
    let frames: Buffer[];
    try {
      frames = conn.decoder.push(data);
    } catch (err) {
      this.counters.badFrames++;
      this.#drop(conn, err instanceof SwarmError ? err.message : "bad framing", true);
      return;
    }
    for (const frame of frames) {
      if (conn.closed) return;
      this.counters.framesIn++;
      this.#onFrame(conn, frame);
    }
  }

  #onFrame(conn: Connection, bytes: Buffer): void {
    const decoded = decodeTrackerFrame(bytes);
    if (!decoded.ok) {
      this.counters.badFrames++;
      if (decoded.reason === "version") {
        this.#write(conn, {
          refusal: {
            reason: 1, // REASON_VERSION
            detail: `protocol version ${decoded.version ?? 0} is not supported (tracker speaks version ${TRACKER_PROTOCOL_VERSION})`,
          },
        });
        this.#drop(conn, `protocol version ${decoded.version ?? 0} not supported`, true);
      } else if (conn.peerId === undefined) {
        this.#drop(conn, `bad first frame (${decoded.reason})`, true);
      }
      return;
    }
    const frame = decoded.frame;
    if (conn.peerId === undefined) {
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
      );
      return;
    }
    const peerId = conn.peerId;
    switch (frame.body) {
      case "have": {
        const problem = this.registry.have(peerId, frame.have?.fileId ?? 0, frame.have?.runs ?? []);
        if (problem !== undefined) {
          this.counters.badFrames++;
          this.#log(`peer ${peerId}: ignored report: ${problem}`);
        }
        return;
      }
      case "readyToLeave":
        this.registry.readyToLeave(peerId);
        return;
      case "update": {
        // SYNC (§9)
        const problem = syncUpdate(this.registry, peerId, frame.update?.manifest, this.#options.maxFileSize);
        if (problem !== undefined) {
          this.counters.badFrames++;
          this.#log(`peer ${peerId}: ignored update: ${problem}`);
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
      case "ping":
        this.#write(conn, { pong: { nonce: frame.ping?.nonce ?? 0 } });
        return;
      case "pong":
        return;
      default:
        this.counters.badFrames++;
        this.#log(`peer ${peerId}: unexpected ${frame.body ?? "empty"} frame ignored`);
        return;
    }
  }

  #onHello(
    conn: Connection,
    udpPort: number,
    offers: readonly import("../wire/gen/swarm.js").udpswarm.IManifest[],
    addresses: readonly string[],
    sync = false,
  ): void {
    if (!Number.isInteger(udpPort) || udpPort <= 0 || udpPort > 65535) {
      this.counters.badFrames++;
      this.#write(conn, { refusal: { reason: 5, detail: `bad UDP port ${udpPort}` } });
      this.#drop(conn, `bad UDP port ${udpPort}`, true);
      return;
    }
    const checked: CheckedManifest[] = [];
    const tags: VersionTag[] = [];
    const refusals: Array<{ name: string; reason: number; detail: string }> = [];
    for (const offer of offers) {
      const result = checkManifest(offer, this.#options.maxFileSize);
      if (typeof result === "string") {
        this.counters.refusedOffers++;
        refusals.push({
          name: offer.name ?? "",
          reason: result.startsWith("size") ? 4 : result.startsWith("bad file name") ? 3 : 5,
          detail: result,
        });
        this.#log(`${conn.label}: refused offer ${JSON.stringify(offer.name ?? "")}: ${result}`);
      } else {
        checked.push(result);
        // SYNC (§9): a sync offer's version fields; a bad one counts as the oldest version.
        const tag = sync ? tagFromWire(offer) : CLASSIC_TAG;
        tags.push(typeof tag === "string" ? CLASSIC_TAG : tag);
      }
    }
    const host = normalizeHost(conn.socket.remoteAddress ?? "");
    const owner = this.registry.udpEndpointOwner(host, udpPort, addresses);
    if (owner !== undefined) {
      this.counters.badFrames++;
      const detail = `UDP endpoint ${host}:${udpPort} is peer ${owner}'s`;
      this.#write(conn, { refusal: { reason: 5, detail } });
      this.#drop(conn, detail, true);
      return;
    }
    this.registry.join(
      host,
      udpPort,
      checked,
      (peerId) => {
        conn.peerId = peerId;
        this.#byPeer.set(peerId, conn);
      },
      addresses,
      sync ? { tags } : undefined,
    );
    for (const r of refusals) {
      this.#write(conn, { refusal: { reason: r.reason, detail: r.detail, fileName: r.name } });
    }
  }

  #send(peerId: number, body: FrameBody): void {
    const conn = this.#byPeer.get(peerId);
    if (conn !== undefined) this.#write(conn, body);
  }

  #write(conn: Connection, body: FrameBody): void {
    if (conn.closed) return;
    this.counters.framesOut++;
    conn.socket.write(encodeTrackerFrame(body));
    if (conn.socket.writableLength > this.#options.maxQueuedBytes) {
      this.#drop(conn, "peer too slow to read its frames", true);
    }
  }

  #armKeepalive(conn: Connection): void {
    conn.timer = this.#clock.setTimer(this.#options.pingIntervalMs, () => {
      if (conn.closed) return;
      if (this.#clock.now() - conn.lastHeard > this.#options.idleTimeoutMs) {
        this.counters.idleTimeouts++;
        this.#drop(conn, "no frame for too long (keepalive timeout)", true);
        return;
      }
      if (conn.peerId === undefined && this.#clock.now() - conn.lastHeard > this.#options.helloTimeoutMs) {
        this.#drop(conn, "no Hello", true);
        return;
      }
      if (conn.peerId !== undefined) this.#write(conn, { ping: { nonce: Math.floor(this.#clock.now()) } });
      this.#armKeepalive(conn);
    });
  }

  /** Ends a connection once; a joined peer leaves the registry (DISCONNECT block). */
  #drop(conn: Connection, reason: string | undefined, announce: boolean): void {
    if (conn.closed) return;
    conn.closed = true;
    this.#connections.delete(conn);
    if (conn.timer !== undefined) this.#clock.clearTimer(conn.timer);
    if (reason !== undefined) {
      const who = conn.peerId === undefined ? conn.label : `peer ${conn.peerId}`;
      this.#log(`${who}: connection closed: ${reason}`);
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
