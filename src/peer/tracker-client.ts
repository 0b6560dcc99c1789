import { connect, type Socket } from "node:net";
import type { Clock } from "../util/clock.js";
import { SwarmError } from "../util/errors.js";
import { CROWDED_LOAD, hostLoad, processLag } from "../util/lag-monitor.js";
import { MAX_FRAME_BYTES } from "../wire/limits.js";
import {
  encodeTrackerFrame,
  type FrameBody,
  RefusalReason,
  TRACKER_PROTOCOL_VERSION,
  type TrackerFrame,
} from "../wire/tracker-frame.js";
import { FramedLink, type LinkFailure } from "../wire/tracker-link.js";

export type TrackerClientOptions = {
  /** Give up connecting after (ms). @default 5000 */
  readonly connectTimeoutMs?: number;
  /**
   * A udpswarm tracker speaks first (a keepalive, at once): no valid frame within this
   * long, or anything else first, and the port is not a udpswarm tracker (ms). @default 2000
   */
  readonly greetingTimeoutMs?: number;
  /** Ping the tracker every (ms). @default 2000 */
  readonly pingIntervalMs?: number;
  /** Silence tolerated from the tracker at least (ms); more when its round trips or our stalls explain it. @default 15000 */
  readonly idleTimeoutMs?: number;
  /** Starts one TCP connection attempt (tests: attempts that never connect). @default node:net connect */
  readonly connectAttempt?: (host: string, port: number) => Socket;
};

export type TrackerClientHandlers = {
  frame(frame: TrackerFrame): void;
  /** The link failed for good (SwarmError ERR_TRACKER_LOST and friends). */
  lost(err: SwarmError): void;
  /** A frame that could not be decoded was dropped (counted). */
  badFrame?(reason: string): void;
};

export const DEFAULT_GREETING_TIMEOUT_MS = 2000;
/** A new connection attempt while none is established after this long (ms)... */
const CONNECT_RACE_MS = 400;
/** ...with at most this many at once. */
const CONNECT_RACE_MAX = 6;
/**
 * SEVERAL TRACKERS (§11): the link of a client or sync peer that can move to another
 * tracker. A tracker that dies closes the connection (seen at once); one that is alive but
 * cut off is judged by its silence, tolerated this long at least (more only when measured
 * round trips or our own stalls explain it), so that it is left within a few seconds.
 */
export const FAILOVER_LINK_OPTIONS = { pingIntervalMs: 1000, idleTimeoutMs: 4000, connectTimeoutMs: 3000 } as const;

/** The peer's end of the tracker link: a framed link over one TCP connection. */
export class TrackerClient {
  readonly #socket: Socket;
  readonly #clock: Clock;
  readonly #handlers: TrackerClientHandlers;
  readonly #link: FramedLink;
  /** HOST:PORT as the user gave it. */
  readonly #where: string;
  #closing = false;
  #failed = false;
  /** Until the tracker's first frame: how `connect` settles. */
  #greeting: { resolve: () => void; reject: (err: SwarmError) => void } | undefined;
  /** Until the Welcome: a refusal then is for this peer, not for one of its files. */
  #welcomed = false;

  private constructor(
    socket: Socket,
    clock: Clock,
    handlers: TrackerClientHandlers,
    options: TrackerClientOptions,
    where: string,
  ) {
    this.#socket = socket;
    this.#clock = clock;
    this.#handlers = handlers;
    this.#where = where;
    const lag = processLag();
    const link = new FramedLink(
      clock,
      {
        write: (bytes) => socket.write(bytes),
        frame: (frame) => this.#onFrame(frame),
        valid: () => this.#greeted(),
        badFrame: (reason) => {
          if (this.#greeting !== undefined) this.#fail(`its first frame is ${reason}`);
          else handlers.badFrame?.(reason);
        },
        failed: (failure) => this.#onLinkFailed(failure),
      },
      {
        maxFrameBytes: MAX_FRAME_BYTES,
        lag: () => lag.stalledMs(),
        defer: (fn) => setImmediate(fn),
        ...(options.pingIntervalMs === undefined ? {} : { pingIntervalMs: options.pingIntervalMs }),
        ...(options.idleTimeoutMs === undefined ? {} : { idleTimeoutMs: options.idleTimeoutMs }),
      },
    );
    this.#link = link;
    socket.on("data", (data: Buffer) => link.receive(data));
    socket.on("error", (err) => this.#fail(`connection to the tracker failed: ${err.message}`));
    socket.on("close", () => this.#fail("the tracker closed the connection"));
  }

  /**
   * Connects over TCP (IPv4: the address the tracker sees is the one other peers use) and
   * resolves once the tracker has spoken: a port that is not a udpswarm tracker is
   * ERR_TRACKER_UNREACHABLE "not a udpswarm tracker at HOST:PORT" within the greeting timeout.
   */
  static async connect(
    host: string,
    port: number,
    clock: Clock,
    handlers: TrackerClientHandlers,
    options: TrackerClientOptions = {},
  ): Promise<TrackerClient> {
    const socket = await TrackerClient.#tcp(host, port, options);
    const client = new TrackerClient(socket, clock, handlers, options, `${host}:${port}`);
    // Our first bytes at once, a keepalive (a tracker answers it before any Hello): if the
    // last packet of the handshake was lost, the tracker has not accepted the connection
    // yet and would greet us only after re-sending its SYN-ACK a second later, and again
    // two seconds after that; data of ours completes the handshake at our own TCP's pace.
    client.#link.ping();
    await client.#awaitGreeting(options.greetingTimeoutMs ?? DEFAULT_GREETING_TIMEOUT_MS);
    return client;
  }

  /**
   * A TCP connection to the tracker. While none is established, another attempt starts
   * every CONNECT_RACE_MS (CONNECT_RACE_MAX at most at once) and the first to connect
   * wins: on a lossy link a lost SYN or SYN-ACK is re-sent only after 1, then 2, then 4 s,
   * and at 30% loss each way one peer in thirty could not connect within 5 s. A refusal
   * (nothing listens there) ends every attempt at once.
   */
  static #tcp(host: string, port: number, options: TrackerClientOptions): Promise<Socket> {
    const open = options.connectAttempt ?? ((h, p) => connect({ host: h, port: p, family: 4, noDelay: true }));
    return new Promise((resolve, reject) => {
      const attempts = new Set<Socket>();
      let race: NodeJS.Timeout | undefined;
      const end = (): void => {
        clearTimeout(timeout);
        clearTimeout(race);
        for (const s of attempts) s.destroy();
        attempts.clear();
      };
      const fail = (detail: string): void => {
        end();
        reject(new SwarmError("ERR_TRACKER_UNREACHABLE", `cannot reach the tracker at ${host}:${port}: ${detail}`));
      };
      const attempt = (): void => {
        const socket = open(host, port);
        attempts.add(socket);
        socket.once("error", (err) => fail(err.message));
        socket.once("connect", () => {
          attempts.delete(socket);
          end();
          socket.removeAllListeners("error");
          socket.setKeepAlive(true, 1000);
          resolve(socket);
        });
        // Decided after the poll phase: a peer whose event loop stalled past the race time
        // (128 starting on 2 cores) finds its connection established, and adds none.
        const again = (): void => {
          if (attempts.size > 0) attempt();
        };
        if (attempts.size < CONNECT_RACE_MAX) race = setTimeout(() => setImmediate(again), CONNECT_RACE_MS);
      };
      const timeout = setTimeout(() => fail("timed out"), options.connectTimeoutMs ?? 5000);
      attempt();
    });
  }

  #awaitGreeting(timeoutMs: number): Promise<void> {
    if (this.#failed) return Promise.reject(new SwarmError("ERR_TRACKER_UNREACHABLE", this.#notATracker("closed")));
    return new Promise((resolve, reject) => {
      this.#greeting = { resolve, reject };
      const lag = processLag();
      const since = this.#clock.now();
      const stallSince = lag.stalledMs();
      const check = (): void => {
        if (this.#greeting === undefined) return;
        // Our own stall does not count against the tracker, a busy host stretches the wait
        // (a tracker there runs in slices far apart), and input already here is read first.
        // The stretch is the load up to CROWDED_LOAD; above it, the lag monitor leaves the
        // share the host could not give out of `waited`, so the two make L times in all.
        const waited = this.#clock.now() - since - (lag.stalledMs() - stallSince);
        const allowed = timeoutMs * Math.min(CROWDED_LOAD, hostLoad());
        if (waited < allowed) this.#clock.setTimer(allowed - waited, () => setImmediate(check));
        else this.#fail(`no word from it within ${(waited / 1000).toFixed(1)} s`);
      };
      this.#clock.setTimer(timeoutMs, () => setImmediate(check));
    });
  }

  #notATracker(detail: string): string {
    return `not a udpswarm tracker at ${this.#where} (${detail})`;
  }

  #greeted(): void {
    const greeting = this.#greeting;
    if (greeting === undefined) return;
    this.#greeting = undefined;
    greeting.resolve();
  }

  #onFrame(frame: TrackerFrame): void {
    if (frame.body === "welcome") this.#welcomed = true;
    if (frame.body === "refusal" && !this.#welcomed && !frame.refusal?.fileName) {
      const detail = frame.refusal?.detail ?? "";
      if (frame.refusal?.reason === RefusalReason.REASON_VERSION) {
        this.#fail(`the tracker refused this peer: ${detail}`, "ERR_PROTOCOL_VERSION");
      } else this.#fail(`the tracker refused this peer: ${detail}`, "ERR_TRACKER_REFUSED");
      return;
    }
    this.#handlers.frame(frame);
  }

  send(body: FrameBody): void {
    if (this.#closing || this.#failed) return;
    this.#link.send(body);
  }

  /** A keepalive now (it also makes a lost frame sent just before it found sooner). */
  ping(): void {
    if (!this.#closing && !this.#failed) this.#link.ping();
  }

  /** Says goodbye and closes; resolves once the bytes are handed to the kernel. */
  goodbye(): Promise<void> {
    if (this.#closing || this.#failed) return Promise.resolve();
    this.#closing = true;
    this.#link.close();
    return new Promise((resolve) => {
      this.#socket.end(encodeTrackerFrame({ goodbye: {} }), () => resolve());
      setTimeout(resolve, 1000).unref();
    });
  }

  /** Drops the link without a word. Safe to call twice. */
  close(): void {
    this.#closing = true;
    this.#link.close();
    this.#socket.destroy();
  }

  #onLinkFailed(failure: LinkFailure): void {
    switch (failure.kind) {
      case "framing":
        this.#fail(`bad data from the tracker: ${failure.error.message}`);
        return;
      case "version":
        this.#fail(
          `the tracker speaks protocol version ${failure.version}, this peer speaks ${TRACKER_PROTOCOL_VERSION}`,
          "ERR_PROTOCOL_VERSION",
        );
        return;
      case "silence":
        this.#fail("the tracker stopped answering (keepalive timeout)");
        return;
    }
  }

  #fail(
    message: string,
    code: "ERR_TRACKER_LOST" | "ERR_PROTOCOL_VERSION" | "ERR_TRACKER_REFUSED" = "ERR_TRACKER_LOST",
  ): void {
    if (this.#closing || this.#failed) return;
    this.#failed = true;
    this.#link.close();
    this.#socket.destroy();
    const greeting = this.#greeting;
    if (greeting !== undefined) {
      // Nothing valid was heard: whatever answered on that port is not a udpswarm tracker.
      this.#greeting = undefined;
      greeting.reject(
        code === "ERR_TRACKER_LOST"
          ? new SwarmError("ERR_TRACKER_UNREACHABLE", this.#notATracker(message))
          : new SwarmError(code, message),
      );
      return;
    }
    this.#handlers.lost(new SwarmError(code, message));
  }
}
