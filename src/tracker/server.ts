import { createServer, type Server, type Socket } from "node:net";
import type { ClientConnections, ClientHandler } from "../accounts/connections.js";
import type { Clock, TimerHandle } from "../util/clock.js";
import type { udpswarm } from "../wire/gen/swarm.js";
import { MAX_FRAME_BYTES } from "../wire/limits.js";
import {
  type CheckedManifest,
  checkManifest,
  encodeTrackerFrame,
  type FrameBody,
  isManifestProblem,
  RefusalReason,
  TRACKER_PROTOCOL_VERSION,
  type TrackerFrame,
} from "../wire/tracker-frame.js";
import { FramedLink, type LinkFailure } from "../wire/tracker-link.js";
import { Registry, type RegistrySink } from "./registry.js";
import { CLASSIC_TAG, syncUpdate, tagFromWire, type VersionTag } from "./versions.js";

export type TrackerOptions = {
  /** Largest file size a peer may announce (bytes). */
  readonly maxFileSize: number;
  /** Interval between keepalive pings (ms). @default 2000 */
  readonly pingIntervalMs?: number;
  /** A peer silent for this long is gone (ms). @default 10000 */
  readonly idleTimeoutMs?: number;
  /** Time a new connection has to say Hello, counted from its accept (ms). @default 10000 */
  readonly helloTimeoutMs?: number;
  /** A peer whose unsent frames exceed this is too slow to keep (bytes). @default 256 MiB */
  readonly maxQueuedBytes?: number;
  /** ACCOUNTS (§10): takes the connections that open with ClientHello (--store only). */
  readonly accounts?: ClientConnections;
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
  readonly link: FramedLink;
  readonly label: string;
  peerId: number | undefined;
  /** Drops the connection if no Hello has come by then (armed at accept, never moved). */
  helloTimer: TimerHandle | undefined;
  closed: boolean;
  /** ACCOUNTS (§10): a client connection, handed to the accounts front. */
  client?: ClientHandler;
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
  readonly #options: Required<Omit<TrackerOptions, "accounts">>;
  readonly #accounts: ClientConnections | undefined;
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
    this.#accounts = options.accounts;
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
        },
      ),
      label: `${socket.remoteAddress ?? "?"}:${socket.remotePort ?? "?"}`,
      peerId: undefined,
      helloTimer: undefined,
      closed: false,
    };
    this.#connections.add(conn);
    // From the accept, not from the last byte: trickling bytes must not keep a
    // connection that never says Hello.
    conn.helloTimer = this.#clock.setTimer(this.#options.helloTimeoutMs, () => {
      conn.helloTimer = undefined;
      if (conn.peerId === undefined && conn.client === undefined)
        this.#drop(conn, `no Hello within ${this.#options.helloTimeoutMs} ms`, true);
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
        this.#drop(conn, "no frame for too long (keepalive timeout)", true);
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
      default:
        this.counters.badFrames++;
        this.#log(`peer ${peerId}: unexpected ${frame.body ?? "empty"} frame ignored`);
        return;
    }
  }

  #onHello(
    conn: Connection,
    udpPort: number,
    offers: readonly udpswarm.IManifest[],
    addresses: readonly string[],
    sync = false,
  ): void {
    if (!Number.isInteger(udpPort) || udpPort <= 0 || udpPort > 65535) {
      this.counters.badFrames++;
      conn.link.send({ refusal: { reason: RefusalReason.REASON_BAD_MESSAGE, detail: `bad UDP port ${udpPort}` } });
      this.#drop(conn, `bad UDP port ${udpPort}`, true);
      return;
    }
    const checked: CheckedManifest[] = [];
    const tags: VersionTag[] = [];
    const refusals: udpswarm.IRefusal[] = [];
    for (const offer of offers) {
      const result = checkManifest(offer, this.#options.maxFileSize);
      if (isManifestProblem(result)) {
        this.counters.refusedOffers++;
        refusals.push({ reason: result.reason, detail: result.detail, fileName: offer.name ?? "" });
        this.#log(`${conn.label}: refused offer ${JSON.stringify(offer.name ?? "")}: ${result.detail}`);
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
      conn.link.send({ refusal: { reason: RefusalReason.REASON_BAD_MESSAGE, detail } });
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
    for (const refusal of refusals) conn.link.send({ refusal });
  }

  /** ACCOUNTS (§10): the connection is a client's from now on. */
  #openClient(conn: Connection, accounts: ClientConnections, hello: udpswarm.IClientHello): void {
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

  #write(conn: Connection, bytes: Buffer): void {
    if (conn.closed) return;
    this.counters.framesOut++;
    conn.socket.write(bytes);
    if (conn.socket.writableLength > this.#options.maxQueuedBytes) {
      this.#drop(conn, "peer too slow to read its frames", true);
    }
  }

  /** Ends a connection once; a joined peer leaves the registry (DISCONNECT block). */
  #drop(conn: Connection, reason: string | undefined, announce: boolean): void {
    if (conn.closed) return;
    conn.closed = true;
    this.#connections.delete(conn);
    conn.link.close();
    if (conn.helloTimer !== undefined) this.#clock.clearTimer(conn.helloTimer);
    if (reason !== undefined) {
      const who = conn.peerId === undefined ? conn.label : `peer ${conn.peerId}`;
      this.#log(`${who}: connection closed: ${reason}`);
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
