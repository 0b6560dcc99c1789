import type { Clock, TimerHandle } from "../util/clock.js";
import { SwarmError } from "../util/errors.js";
import { FrameDecoder } from "./framing.js";
import { decodeTrackerFrame, encodeTrackerFrame, type FrameBody, type TrackerFrame } from "./tracker-frame.js";

/**
 * One end of the tracker link, shared by the tracker and the peer: frames in and out,
 * keepalives, and the judgement that the other end is gone. It owns no socket: bytes come
 * in through `receive` and go out through the injected `write`; timers run on the
 * injected clock, so tests drive it on a manual clock.
 */
export type LinkFailure =
  /** The byte stream cannot be split into frames any more (oversize or bad length prefix). */
  | { readonly kind: "framing"; readonly error: SwarmError }
  /** The other end speaks another protocol version. */
  | { readonly kind: "version"; readonly version: number }
  /** Nothing heard for longer than the link tolerates. */
  | { readonly kind: "silence"; readonly silentMs: number };

export interface LinkEnd {
  /** Bytes for the transport. */
  write(bytes: Buffer): void;
  /** A decoded frame; keepalives are answered by the link and not passed on. */
  frame(frame: TrackerFrame): void;
  /** A frame that could not be decoded was dropped. */
  badFrame(reason: "malformed" | "empty"): void;
  /** The link cannot go on. Called at most once; the link is closed by then. */
  failed(failure: LinkFailure): void;
}

export type LinkOptions = {
  /** Largest frame accepted (bytes); `maxFrameBytes` may change it later. */
  readonly maxFrameBytes: number;
  /** Interval between keepalive pings (ms). @default 2000 */
  readonly pingIntervalMs?: number;
  /** The other end is gone when silent this long (ms). @default 10000 */
  readonly idleTimeoutMs?: number;
};

export const DEFAULT_PING_INTERVAL_MS = 2000;
export const DEFAULT_IDLE_TIMEOUT_MS = 10_000;

export class FramedLink {
  readonly #clock: Clock;
  readonly #end: LinkEnd;
  readonly #decoder: FrameDecoder;
  readonly #pingEvery: number;
  readonly #idleTimeout: number;
  #lastHeard: number;
  #timer: TimerHandle | undefined;
  #closed = false;

  constructor(clock: Clock, end: LinkEnd, options: LinkOptions) {
    this.#clock = clock;
    this.#end = end;
    this.#decoder = new FrameDecoder(options.maxFrameBytes);
    this.#pingEvery = options.pingIntervalMs ?? DEFAULT_PING_INTERVAL_MS;
    this.#idleTimeout = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
    this.#lastHeard = clock.now();
    this.#arm();
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Bytes received but not yet a whole frame. */
  get bufferedBytes(): number {
    return this.#decoder.bufferedBytes;
  }

  set maxFrameBytes(bytes: number) {
    this.#decoder.maxFrameBytes = bytes;
  }

  /** Feeds bytes from the transport. */
  receive(data: Buffer): void {
    if (this.#closed) return;
    this.#lastHeard = this.#clock.now();
    let bodies: Buffer[];
    try {
      bodies = this.#decoder.push(data);
    } catch (err) {
      const error = err instanceof SwarmError ? err : new SwarmError("ERR_BAD_MESSAGE", String(err));
      this.#fail({ kind: "framing", error });
      return;
    }
    for (const body of bodies) {
      if (this.#closed) return;
      const decoded = decodeTrackerFrame(body);
      if (!decoded.ok) {
        if (decoded.reason === "version") {
          this.#fail({ kind: "version", version: decoded.version ?? 0 });
          return;
        }
        this.#end.badFrame(decoded.reason);
        continue;
      }
      const frame = decoded.frame;
      if (frame.body === "ping") this.send({ pong: { nonce: frame.ping?.nonce ?? 0 } });
      else if (frame.body !== "pong") this.#end.frame(frame);
    }
  }

  send(body: FrameBody): void {
    if (this.#closed) return;
    this.#end.write(encodeTrackerFrame(body));
  }

  /** Stops the keepalives; nothing is sent or passed on afterwards. Safe to call twice. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer !== undefined) this.#clock.clearTimer(this.#timer);
    this.#timer = undefined;
  }

  #arm(): void {
    this.#timer = this.#clock.setTimer(this.#pingEvery, () => {
      this.#timer = undefined;
      if (this.#closed) return;
      const silentMs = this.#clock.now() - this.#lastHeard;
      if (silentMs > this.#idleTimeout) {
        this.#fail({ kind: "silence", silentMs });
        return;
      }
      this.send({ ping: { nonce: Math.floor(this.#clock.now()) } });
      this.#arm();
    });
  }

  #fail(failure: LinkFailure): void {
    if (this.#closed) return;
    this.close();
    this.#end.failed(failure);
  }
}
