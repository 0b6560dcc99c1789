import { connect, type Socket } from "node:net";
import type { Clock } from "../util/clock.js";
import { SwarmError } from "../util/errors.js";
import { processLag } from "../util/lag-monitor.js";
import { MAX_FRAME_BYTES } from "../wire/limits.js";
import {
  encodeTrackerFrame,
  type FrameBody,
  TRACKER_PROTOCOL_VERSION,
  type TrackerFrame,
} from "../wire/tracker-frame.js";
import { FramedLink, type LinkFailure } from "../wire/tracker-link.js";

export type TrackerClientOptions = {
  /** Give up connecting after (ms). @default 5000 */
  readonly connectTimeoutMs?: number;
  /** Ping the tracker every (ms). @default 2000 */
  readonly pingIntervalMs?: number;
  /** The tracker is lost when silent this long (ms). @default 10000 */
  readonly idleTimeoutMs?: number;
};

export type TrackerClientHandlers = {
  frame(frame: TrackerFrame): void;
  /** The link failed for good (SwarmError ERR_TRACKER_LOST and friends). */
  lost(err: SwarmError): void;
  /** A frame that could not be decoded was dropped (counted). */
  badFrame?(reason: string): void;
};

/** The peer's end of the tracker link: a framed link over one TCP connection. */
export class TrackerClient {
  readonly #socket: Socket;
  readonly #handlers: TrackerClientHandlers;
  readonly #link: FramedLink;
  #closing = false;
  #failed = false;

  private constructor(socket: Socket, clock: Clock, handlers: TrackerClientHandlers, options: TrackerClientOptions) {
    this.#socket = socket;
    this.#handlers = handlers;
    const lag = processLag();
    const link = new FramedLink(
      clock,
      {
        write: (bytes) => socket.write(bytes),
        frame: (frame) => handlers.frame(frame),
        badFrame: (reason) => handlers.badFrame?.(reason),
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

  /** Connects over TCP (IPv4: the address the tracker sees is the one other peers use). */
  static connect(
    host: string,
    port: number,
    clock: Clock,
    handlers: TrackerClientHandlers,
    options: TrackerClientOptions = {},
  ): Promise<TrackerClient> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host, port, family: 4, noDelay: true });
      const timeout = setTimeout(() => {
        socket.destroy();
        reject(new SwarmError("ERR_TRACKER_UNREACHABLE", `cannot reach the tracker at ${host}:${port}: timed out`));
      }, options.connectTimeoutMs ?? 5000);
      socket.once("error", (err) => {
        clearTimeout(timeout);
        reject(
          new SwarmError("ERR_TRACKER_UNREACHABLE", `cannot reach the tracker at ${host}:${port}: ${err.message}`),
        );
      });
      socket.once("connect", () => {
        clearTimeout(timeout);
        socket.removeAllListeners("error");
        socket.setKeepAlive(true, 1000);
        resolve(new TrackerClient(socket, clock, handlers, options));
      });
    });
  }

  send(body: FrameBody): void {
    if (this.#closing || this.#failed) return;
    this.#link.send(body);
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

  #fail(message: string, code: "ERR_TRACKER_LOST" | "ERR_PROTOCOL_VERSION" = "ERR_TRACKER_LOST"): void {
    if (this.#closing || this.#failed) return;
    this.#failed = true;
    this.#link.close();
    this.#socket.destroy();
    this.#handlers.lost(new SwarmError(code, message));
  }
}
