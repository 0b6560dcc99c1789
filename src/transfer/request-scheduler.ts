import PQueue from "p-queue";

/** What the scheduler reads of one remote peer (the engine's Remote). */
export interface SchedulerLane {
  /** One task per batch request in flight to this peer (never one per chunk: see PERF-NOTES). */
  readonly queue: PQueue;
  /** Chunks the window allows in flight, and chunks in flight. */
  readonly windowChunks: number;
  readonly inflightChunks: number;
  /** Stopped answering, or not validated yet: only one probe request at a time. */
  readonly probing: boolean;
}

/** A request as the scheduler holds it: its task ends when the request retires. */
export type ScheduledRequest = { retired: boolean; finish: (() => void) | undefined };

export type SchedulerOptions = {
  /** Chunks one request names at most. */
  readonly perRequest: number;
  /** Chunks in flight from all peers together. */
  readonly maxInflight: number;
  /** Runs `fn` once the current batch of events is handled. */
  readonly defer: (fn: () => void) => void;
};

/**
 * The windowed request scheduler: a p-queue per remote peer whose tasks are batch
 * requests, each holding its slot until the request retires. `room()` is the one place the
 * window is enforced (slots, the peer's chunk window, the global cap, the suspect's
 * single probe); `pump` fills every peer's room, starting with a different peer each time.
 */
export class RequestScheduler<L extends SchedulerLane> {
  readonly #perRequest: number;
  readonly #maxInflight: number;
  readonly #defer: (fn: () => void) => void;
  #pumpScheduled = false;
  #closed = false;
  #rotate = 0;

  constructor(options: SchedulerOptions) {
    this.#perRequest = options.perRequest;
    this.#maxInflight = options.maxInflight;
    this.#defer = options.defer;
  }

  /** A new p-queue for a peer; it asks for a pump whenever one of its requests retires. */
  newQueue(onFreed: () => void): PQueue {
    const queue = new PQueue({ concurrency: 1 });
    queue.on("next", onFreed);
    return queue;
  }

  /**
   * Chunks the next request to `lane` may name now (0: none). Requests in flight are
   * bounded in number (window / chunks per request, so that small re-requests cannot
   * multiply them) and in chunks (the peer's window and the global cap).
   */
  room(lane: L, totalInflight: number): number {
    const slots = lane.probing ? 1 : Math.max(1, Math.ceil(lane.windowChunks / this.#perRequest));
    const queue = lane.queue;
    if (queue.concurrency !== slots) queue.concurrency = slots;
    if (queue.pending + queue.size >= slots) return 0;
    if (lane.probing && lane.inflightChunks > 0) return 0;
    return Math.max(
      0,
      Math.min(this.#perRequest, this.#maxInflight - totalInflight, lane.windowChunks - lane.inflightChunks),
    );
  }

  /** Queues the task of `request`: `send` it, then hold the slot until `finish(request)`. */
  submit(lane: L, request: ScheduledRequest, send: () => void): void {
    lane.queue
      .add(() => {
        if (request.retired) return Promise.resolve();
        send();
        return new Promise<void>((resolve) => {
          request.finish = resolve;
        });
      })
      .catch(() => {});
  }

  /** The request retired: its slot is free. */
  finish(request: ScheduledRequest): void {
    const finish = request.finish;
    request.finish = undefined;
    finish?.();
  }

  /** Runs `pump` once soon (coalesced). */
  schedule(pump: () => void): void {
    if (this.#pumpScheduled || this.#closed) return;
    this.#pumpScheduled = true;
    this.#defer(() => {
      this.#pumpScheduled = false;
      if (!this.#closed) pump();
    });
  }

  /**
   * Fills every usable lane's room with the requests `plan` makes (undefined: nothing to
   * ask of that peer now), starting with a different lane each time.
   */
  pump<R extends ScheduledRequest>(
    lanes: readonly L[],
    usable: (lane: L) => boolean,
    totalInflight: () => number,
    plan: (lane: L, budget: number) => R | undefined,
    send: (request: R) => void,
  ): void {
    if (this.#closed || lanes.length === 0) return;
    this.#rotate = (this.#rotate + 1) % lanes.length;
    for (let k = 0; k < lanes.length; k++) {
      const lane = lanes[(this.#rotate + k) % lanes.length];
      if (lane === undefined || !usable(lane)) continue;
      for (let budget = this.room(lane, totalInflight()); budget > 0; budget = this.room(lane, totalInflight())) {
        const request = plan(lane, budget);
        if (request === undefined) break;
        this.submit(lane, request, () => send(request));
      }
    }
  }

  close(lanes: Iterable<L>): void {
    this.#closed = true;
    for (const lane of lanes) lane.queue.clear();
  }
}
