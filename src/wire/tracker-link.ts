import type { Clock, TimerHandle } from "../util/clock.js";
import { SwarmError } from "../util/errors.js";
import { FrameDecoder } from "./framing.js";
import { Liveness } from "./liveness.js";
import { decodeTrackerFrame, encodeTrackerFrame, type FrameBody, type TrackerFrame } from "./tracker-frame.js";

/**
 * One end of the tracker link, shared by the tracker and the peer: frames in and out,
 * keepalives, and the judgement that the other end is gone (wire/liveness.ts). It owns no
 * socket: bytes come in through `receive` and go out through the injected `write`; timers
 * run on the injected clock, so tests drive it on a manual clock.
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
  /** A valid frame of this protocol arrived, keepalives included (e.g. proof of who answers). */
  valid?(): void;
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
  /**
   * Silence always tolerated (ms); beyond it the other end is dead unless its observed
   * round trips or our own stalls account for the silence. @default 10000
   */
  readonly idleTimeoutMs?: number;
  /** Silence never tolerated beyond this, whatever the round trips (ms). @default 60000 */
  readonly maxIdleTimeoutMs?: number;
  /** The process's running total of event-loop stall (ms), e.g. LagMonitor. @default none */
  readonly lag?: () => number;
  /**
   * Runs `fn` once input already waiting has been read (setImmediate in the shell): a
   * silence is judged only then. @default run at once
   */
  readonly defer?: (fn: () => void) => void;
};

export const DEFAULT_PING_INTERVAL_MS = 2000;
export const DEFAULT_IDLE_TIMEOUT_MS = 15_000;
export const DEFAULT_MAX_IDLE_TIMEOUT_MS = 60_000;
/** A timer later than this is our own stall (ms), counted as such. */
const LATE_TIMER_MS = 50;

export class FramedLink {
  readonly #clock: Clock;
  readonly #end: LinkEnd;
  readonly #decoder: FrameDecoder;
  readonly #pingEvery: number;
  readonly #liveness: Liveness;
  readonly #lag: () => number;
  readonly #defer: (fn: () => void) => void;
  /** Our own stall seen as late keepalive timers (ms, running total). */
  #lateMs = 0;
  #nextNonce = 1;
  #timer: TimerHandle | undefined;
  #closed = false;
  /** Reading is paused by the owner: silence meanwhile is ours, not the other end's. */
  #paused = false;

  constructor(clock: Clock, end: LinkEnd, options: LinkOptions) {
    this.#clock = clock;
    this.#end = end;
    this.#decoder = new FrameDecoder(options.maxFrameBytes);
    this.#pingEvery = options.pingIntervalMs ?? DEFAULT_PING_INTERVAL_MS;
    this.#lag = options.lag ?? (() => 0);
    this.#defer = options.defer ?? ((fn) => fn());
    this.#liveness = new Liveness(
      {
        pingIntervalMs: this.#pingEvery,
        minTimeoutMs: options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
        maxTimeoutMs: Math.max(
          options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
          options.maxIdleTimeoutMs ?? DEFAULT_MAX_IDLE_TIMEOUT_MS,
        ),
      },
      clock.now(),
      this.#stall(),
    );
    this.#arm();
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The current silence timeout (ms): it adapts to the round trips observed. */
  get timeoutMs(): number {
    return this.#liveness.timeoutMs;
  }

  get srttMs(): number | undefined {
    return this.#liveness.srttMs;
  }

  /**
   * The owner stopped (or resumed) reading from the transport, e.g. to bound what one end
   * may queue: while paused, silence is not held against the other end.
   */
  set paused(paused: boolean) {
    if (this.#paused && !paused) this.#liveness.heard(this.#clock.now(), this.#stall());
    this.#paused = paused;
  }

  /** Bytes received but not yet a whole frame. */
  get bufferedBytes(): number {
    return this.#decoder.bufferedBytes;
  }

  set maxFrameBytes(bytes: number) {
    this.#decoder.maxFrameBytes = bytes;
  }

  /** Declared length of the frame being received (0 between frames). */
  get pendingFrameBytes(): number {
    return this.#decoder.pendingFrameBytes;
  }

  /** Sends a keepalive now (e.g. a greeting: the first bytes a new connection hears). */
  ping(): void {
    if (this.#closed) return;
    const nonce = this.#nextNonce++;
    this.#liveness.pingSent(nonce, this.#clock.now(), this.#stall());
    this.send({ ping: { nonce } });
  }

  /** Feeds bytes from the transport. */
  receive(data: Buffer): void {
    if (this.#closed) return;
    const now = this.#clock.now();
    const stall = this.#stall();
    this.#liveness.heard(now, stall);
    let bodies: Buffer[];
    try {
      bodies = this.#decoder.push(data);
    } catch (err) {
      const error = err instanceof SwarmError ? err : new SwarmError("ERR_BAD_MESSAGE", String(err));
      this.#fail({ kind: "framing", error });
      return;
    }
    const decoded = bodies.map(decodeTrackerFrame);
    if (decoded.some((d) => d.ok)) this.#end.valid?.();
    // Keepalives first: answered before whatever bulk work the other frames cause, so a
    // busy end still looks alive to the other.
    for (const d of decoded) {
      if (!d.ok) continue;
      if (d.frame.body === "ping") this.send({ pong: { nonce: d.frame.ping?.nonce ?? 0 } });
      else if (d.frame.body === "pong") this.#liveness.pong(Number(d.frame.pong?.nonce ?? 0), now, stall);
    }
    for (const d of decoded) {
      if (this.#closed) return;
      if (!d.ok) {
        if (d.reason === "version") {
          this.#fail({ kind: "version", version: d.version ?? 0 });
          return;
        }
        this.#end.badFrame(d.reason);
        continue;
      }
      if (d.frame.body !== "ping" && d.frame.body !== "pong") this.#end.frame(d.frame);
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

  /** Our own stall so far (ms): the larger of two measures of the same thing. */
  #stall(): number {
    return Math.max(this.#lateMs, this.#lag());
  }

  #arm(): void {
    const due = this.#clock.now() + this.#pingEvery;
    this.#timer = this.#clock.setTimer(this.#pingEvery, () => {
      this.#timer = undefined;
      if (this.#closed) return;
      const late = this.#clock.now() - due;
      if (late > LATE_TIMER_MS) this.#lateMs += late;
      if (this.#paused || !this.#liveness.dead(this.#clock.now(), this.#stall())) {
        this.#ping();
        return;
      }
      // Suspect: judge only once input that already arrived has been read.
      this.#defer(() => {
        if (this.#closed) return;
        const now = this.#clock.now();
        const stall = this.#stall();
        if (this.#paused || !this.#liveness.dead(now, stall)) this.#ping();
        else this.#fail({ kind: "silence", silentMs: this.#liveness.silentMs(now, stall) });
      });
    });
  }

  #ping(): void {
    this.ping();
    this.#arm();
  }

  #fail(failure: LinkFailure): void {
    if (this.#closed) return;
    this.close();
    this.#end.failed(failure);
  }
}
