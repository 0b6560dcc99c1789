import { connect, type Socket } from "node:net";
import type { Clock, TimerHandle } from "../util/clock.js";
import { SwarmError } from "../util/errors.js";
import { FrameDecoder } from "../wire/framing.js";
import { MAX_FRAME_BYTES } from "../wire/limits.js";
import {
  decodeTrackerFrame,
  encodeTrackerFrame,
  type FrameBody,
  TRACKER_PROTOCOL_VERSION,
  type TrackerFrame,
} from "../wire/tracker-frame.js";

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

/** The peer's end of the tracker link: framing, keepalives, and loss detection. */
export class TrackerClient {
  readonly #socket: Socket;
  readonly #clock: Clock;
  readonly #handlers: TrackerClientHandlers;
  readonly #decoder = new FrameDecoder(MAX_FRAME_BYTES);
  readonly #pingEvery: number;
  readonly #idleTimeout: number;
  #lastHeard: number;
  #timer: TimerHandle | undefined;
  #closing = false;
  #failed = false;

  private constructor(socket: Socket, clock: Clock, handlers: TrackerClientHandlers, options: TrackerClientOptions) {
    this.#socket = socket;
    this.#clock = clock;
    this.#handlers = handlers;
    this.#pingEvery = options.pingIntervalMs ?? 2000;
    this.#idleTimeout = options.idleTimeoutMs ?? 10_000;
    this.#lastHeard = clock.now();
    socket.on("data", (data: Buffer) => this.#onData(data));
    socket.on("error", (err) => this.#fail(`connection to the tracker failed: ${err.message}`));
    socket.on("close", () => this.#fail("the tracker closed the connection"));
    this.#arm();
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
    this.#socket.write(encodeTrackerFrame(body));
  }

  /** Says goodbye and closes; resolves once the bytes are handed to the kernel. */
  goodbye(): Promise<void> {
    if (this.#closing || this.#failed) return Promise.resolve();
    this.#closing = true;
    if (this.#timer !== undefined) this.#clock.clearTimer(this.#timer);
    return new Promise((resolve) => {
      this.#socket.end(encodeTrackerFrame({ goodbye: {} }), () => resolve());
      setTimeout(resolve, 1000).unref();
    });
  }

  /** Drops the link without a word. Safe to call twice. */
  close(): void {
    this.#closing = true;
    if (this.#timer !== undefined) this.#clock.clearTimer(this.#timer);
    this.#socket.destroy();
  }

  #onData(data: Buffer): void {
    this.#lastHeard = this.#clock.now();
    let frames: Buffer[];
    try {
      frames = this.#decoder.push(data);
    } catch (err) {
      this.#fail(`bad data from the tracker: ${(err as Error).message}`);
      return;
    }
    for (const bytes of frames) {
      if (this.#closing || this.#failed) return;
      const decoded = decodeTrackerFrame(bytes);
      if (!decoded.ok) {
        if (decoded.reason === "version") {
          this.#fail(
            `the tracker speaks protocol version ${decoded.version ?? 0}, this peer speaks ${TRACKER_PROTOCOL_VERSION}`,
            "ERR_PROTOCOL_VERSION",
          );
          return;
        }
        this.#handlers.badFrame?.(decoded.reason);
        continue;
      }
      const frame = decoded.frame;
      if (frame.body === "ping") this.send({ pong: { nonce: frame.ping?.nonce ?? 0 } });
      else if (frame.body !== "pong") this.#handlers.frame(frame);
    }
  }

  #arm(): void {
    this.#timer = this.#clock.setTimer(this.#pingEvery, () => {
      if (this.#closing || this.#failed) return;
      if (this.#clock.now() - this.#lastHeard > this.#idleTimeout) {
        this.#fail("the tracker stopped answering (keepalive timeout)");
        return;
      }
      this.send({ ping: { nonce: Math.floor(this.#clock.now()) } });
      this.#arm();
    });
  }

  #fail(message: string, code: "ERR_TRACKER_LOST" | "ERR_PROTOCOL_VERSION" = "ERR_TRACKER_LOST"): void {
    if (this.#closing || this.#failed) return;
    this.#failed = true;
    if (this.#timer !== undefined) this.#clock.clearTimer(this.#timer);
    this.#socket.destroy();
    this.#handlers.lost(new SwarmError(code, message));
  }
}
