import { MAX_CHUNKS_PER_REQUEST } from "../wire/limits.js";
import { RttEstimator, type RttOptions } from "./rtt.js";

/** Answer state of each chunk a request names. */
export const ChunkAnswer = {
  pending: 0,
  received: 1,
  /** Declared lost by a detector: an answer may still come (a spurious loss). */
  lost: 2,
  /** Given up because its file or peer is gone: a late answer says nothing about the path. */
  abandoned: 3,
} as const;

export type LossReason = "reorder" | "time" | "timeout" | "abandoned";

/** What the tracker needs of a request; the engine's requests carry more (token, file…). */
export type TrackedRequest = {
  readonly seq: number;
  /** Absolute chunk indices, ascending. */
  readonly chunks: readonly number[];
  /** ChunkAnswer of each chunk. */
  readonly states: Uint8Array;
  /** Position of chunks[0] in the order the remote will answer (set by `sent`). */
  basePos: number;
  sentAt: number;
  /** Chunks still pending. */
  pending: number;
  /** Index below which no chunk of this request is pending any more (the loss scan starts here). */
  scanFrom: number;
  answered: boolean;
  retired: boolean;
};

/** Where the tracker's verdicts go: lost data back to its owner (as quic-go's OnLost callbacks). */
export interface TrackerEvents<R> {
  /** Chunk `index` of `request` will not be answered (or no longer matters: abandoned). */
  lost(request: R, index: number, why: LossReason): void;
  /**
   * A whole request timed out: its peer was silent for an RTO, or for a probe timeout
   * (`probe`: one of the last requests to a peer that answers, see #probes); `unanswered`
   * when no chunk of it ever came. An expired probe says little of the path (no backoff),
   * but an unanswered one still says the peer did not serve that request.
   */
  timedOut(request: R, unanswered: boolean, probe: boolean): void;
  /** The request is over: nothing of it is pending any more. */
  retired(request: R): void;
}

/** What one answer was, for the caller's counters. */
export type AnswerKind = "new" | "duplicate" | "spurious" | "abandoned";

export type RequestTrackerOptions = {
  readonly rtt?: RttOptions;
  /** Late answers to retired requests are still recognised for this many requests. @default 4096 */
  readonly retiredMemory?: number;
};

/** Reordering threshold at start (RFC 9002 §6.1.1) and its ceiling. */
const INITIAL_REORDER_THRESHOLD = 3;
const MAX_REORDER_THRESHOLD = 256;
/** Time threshold at start, as a multiple of the RTT (RFC 9002 §6.1.2), its ceiling and step. */
const INITIAL_TIME_THRESHOLD = 9 / 8;
const MAX_TIME_THRESHOLD = 3;
const TIME_THRESHOLD_STEP = 1 / 8;
/** The fifo is compacted once this many retired requests lead it (and they are at least half). */
const FIFO_COMPACT_AFTER = 1024;
/**
 * With at most this many chunks in flight to a peer (one full request: the end of a file,
 * or the first request), a lost request or a lost last chunk is found after a probe
 * timeout, not a whole RTO (see #probes).
 */
const TAIL_CHUNKS = MAX_CHUNKS_PER_REQUEST;
/** The probe timeout's floor (ms): a third of the RTO's, for the event loops' lag. */
const PROBE_FLOOR_MS = 10;
/** A peer is probed while it was heard within this many base RTOs of a request's sending. */
const PROBE_WINDOW_RTOS = 8;

/**
 * The requests in flight to one remote peer, in the order they were sent, and what their
 * answers prove: RTT samples, losses by reordering threshold, by time threshold and by
 * timeout (RFC 9002 §6), the adaptation of both thresholds to spurious losses, and the
 * next deadline. The in-flight counts change only in `sent` and `#take`, beside the maps
 * they describe (as quinn's PacketSpace `sent`/`take`).
 */
export class RequestTracker<R extends TrackedRequest> {
  readonly rtt: RttEstimator;
  readonly #events: TrackerEvents<R>;
  readonly #retiredMemory: number;
  readonly #outstanding = new Map<number, R>();
  readonly #retired = new Map<number, R>();
  /** Requests in send order; retired ones are skipped and compacted lazily. */
  #fifo: R[] = [];
  #fifoHead = 0;
  /**
   * The remote answers requests in arrival order and each request's chunks in order, so
   * every chunk we ask for gets a position; an answer at position p means the chunks at
   * positions up to p - reorderThreshold are lost (RFC 9002 §6.1.1 packet threshold).
   */
  #nextPos = 0;
  #highestPos = -1;
  #reorderThreshold = INITIAL_REORDER_THRESHOLD;
  /** Multiple of the RTT after which a chunk overtaken by a later answer is lost. */
  #timeThreshold = INITIAL_TIME_THRESHOLD;
  #inflightChunks = 0;
  /** When the last answer from this peer was handled: timeouts count from here. */
  #lastHeardAt = Number.NEGATIVE_INFINITY;
  /** Probes expired since the last answer: each doubles the probe timeout. */
  #probesInARow = 0;
  /** The RTT sample of the last `onAnswer`, or -1 when it gave none (not a request's first answer). */
  rttSample = -1;

  constructor(events: TrackerEvents<R>, options: RequestTrackerOptions = {}) {
    this.#events = events;
    this.rtt = new RttEstimator(options.rtt);
    this.#retiredMemory = options.retiredMemory ?? 4096;
  }

  get inflightChunks(): number {
    return this.#inflightChunks;
  }

  get reorderThreshold(): number {
    return this.#reorderThreshold;
  }

  get timeThreshold(): number {
    return this.#timeThreshold;
  }

  get highestPos(): number {
    return this.#highestPos;
  }

  get lastHeardAt(): number {
    return this.#lastHeardAt;
  }

  /** Requests not retired yet. */
  get outstanding(): number {
    return this.#outstanding.size;
  }

  /** `request` goes out now: its chunks get the next positions and count as in flight. */
  sent(request: R, now: number): void {
    request.basePos = this.#nextPos;
    request.sentAt = now;
    request.pending = request.chunks.length;
    this.#nextPos += request.chunks.length;
    this.#inflightChunks += request.chunks.length;
    this.#outstanding.set(request.seq, request);
    if (this.#fifoHead > FIFO_COMPACT_AFTER && this.#fifoHead * 2 > this.#fifo.length) {
      this.#fifo = this.#fifo.slice(this.#fifoHead);
      this.#fifoHead = 0;
    }
    this.#fifo.push(request);
  }

  /** The request waited in its peer's queue and goes out only now: its RTT counts from here. */
  transmitted(request: R, now: number): void {
    request.sentAt = now;
  }

  /** The request (in flight, or retired not long ago) that sequence number `seq` names. */
  find(seq: number): R | undefined {
    return this.#outstanding.get(seq) ?? this.#retired.get(seq);
  }

  /**
   * Chunk `index` of `request` arrived at `now` (the caller checked that it belongs there).
   * Sets `rttSample` when it is the request's first answer. Loss detection is separate
   * (`detectLosses(now, request)`, which also retires the request once it is complete), so
   * the caller can store the chunk in between.
   */
  onAnswer(request: R, index: number, now: number): AnswerKind {
    this.#lastHeardAt = now;
    this.#probesInARow = 0;
    this.rttSample = -1;
    if (!request.answered) {
      request.answered = true;
      this.rttSample = now - request.sentAt;
      this.rtt.sample(this.rttSample);
    }
    const state = request.states[index];
    if (state === ChunkAnswer.received) return "duplicate";
    request.states[index] = ChunkAnswer.received;
    let kind: AnswerKind = "new";
    if (state === ChunkAnswer.lost) {
      // Declared lost, yet here: the reordering was deeper than the thresholds allowed.
      kind = "spurious";
      this.#reorderThreshold = Math.min(MAX_REORDER_THRESHOLD, this.#reorderThreshold * 2);
      this.#timeThreshold = Math.min(MAX_TIME_THRESHOLD, this.#timeThreshold + TIME_THRESHOLD_STEP);
    } else if (state === ChunkAnswer.abandoned) {
      kind = "abandoned";
    } else {
      this.#take(request);
    }
    const pos = request.basePos + index;
    if (pos > this.#highestPos) this.#highestPos = pos;
    return kind;
  }

  /**
   * Declares lost what the answers so far prove lost (RFC 9002 §6.1), oldest first; then
   * retires `answered` (the request just answered) if nothing of it is pending any more.
   */
  detectLosses(now: number, answered?: R): void {
    const lossDelay = this.rtt.lossDelay(this.#timeThreshold);
    for (let o = this.#front(); o !== undefined; o = this.#front()) {
      const cutoff = this.#highestPos - this.#reorderThreshold;
      const laterAnswered = this.#highestPos >= o.basePos;
      const timeLost = laterAnswered && now - o.sentAt > lossDelay;
      // Positions grow with i: from the first chunk still pending, stop at the first one
      // that neither threshold can declare lost (this runs for every chunk received).
      while (o.scanFrom < o.chunks.length && o.states[o.scanFrom] !== ChunkAnswer.pending) o.scanFrom++;
      for (let i = o.scanFrom; i < o.chunks.length; i++) {
        const pos = o.basePos + i;
        if (pos > cutoff && !(timeLost && pos < this.#highestPos)) break;
        if (o.states[i] !== ChunkAnswer.pending) continue;
        this.#lose(o, i, pos <= cutoff ? "reorder" : "time");
      }
      if (o.pending > 0) break;
      this.#retire(o);
    }
    if (answered !== undefined && answered.pending === 0) this.#retire(answered);
  }

  /**
   * The timer fired: losses first, then every request whose peer has been silent for a
   * whole RTO since it was sent times out (backing off the RTO when none of it came).
   */
  onTimeout(now: number): void {
    this.detectLosses(now);
    let probed = false;
    for (let o = this.#front(); o !== undefined; o = this.#front()) {
      if (now < this.#deadline(o)) break;
      // A probe that expires says little of the path: no RTO backoff.
      const probe = this.#probes(o);
      probed ||= probe;
      if (!o.answered && !probe) this.rtt.onTimeout();
      this.#events.timedOut(o, !o.answered, probe);
      for (let i = 0; i < o.chunks.length; i++) if (o.states[i] === ChunkAnswer.pending) this.#lose(o, i, "timeout");
      this.#retire(o);
    }
    if (probed) this.#probesInARow++;
  }

  /** When `onTimeout` should run next (infinity when nothing is in flight). */
  nextDeadline(): number {
    const o = this.#front();
    if (o === undefined) return Number.POSITIVE_INFINITY;
    let at = this.#deadline(o);
    // The time threshold applies only to chunks an answer has overtaken.
    const firstPending = o.states.indexOf(ChunkAnswer.pending);
    if (firstPending >= 0 && o.basePos + firstPending < this.#highestPos) {
      at = Math.min(at, o.sentAt + this.rtt.lossDelay(this.#timeThreshold) + 0.001);
    }
    return at;
  }

  /** Gives up on a request (its peer or file is gone): its pending chunks are reported `abandoned`. */
  abandon(request: R): void {
    for (let i = 0; i < request.chunks.length; i++) {
      if (request.states[i] === ChunkAnswer.pending) this.#lose(request, i, "abandoned");
    }
    this.#retire(request);
  }

  /** Abandons every request in flight that `which` selects (all by default), oldest first. */
  abandonAll(which: (request: R) => boolean = () => true): void {
    for (const o of [...this.#inFlight()]) if (which(o)) this.abandon(o);
  }

  /** Forgets every request without a verdict on its chunks (the engine is closing). */
  close(): void {
    for (const o of [...this.#outstanding.values()]) this.#retire(o);
  }

  /**
   * A request times out when its peer has been silent for a whole RTO since it was sent
   * (as TCP restarts its timer on every ACK): while answers flow, loss is found by the
   * reordering and time thresholds, and only silence backs off and shrinks the window.
   */
  #deadline(o: R): number {
    const from = Math.max(o.sentAt, this.#lastHeardAt);
    return from + (this.#probes(o) ? this.rtt.probeTimeout(PROBE_FLOOR_MS, this.#probesInARow) : this.rtt.rto());
  }

  /**
   * Whether `o` is one of the last requests to a peer that answers (heard within an RTO of
   * sending it): its loss is then declared after a probe timeout, the RTO without its
   * 30 ms floor (RFC 9002 §6.2's PTO; RFC 8985's tail loss probe), doubled by each probe
   * in a row that expires. While answers flow, losses are found by the thresholds; at the
   * end of a file no later answer can overtake the last chunks, and at 30% loss each way a
   * one-chunk request fails half the time: whole RTOs, doubling at each unanswered one
   * (30, 60, 120, 240 ms), left the last pieces waiting 200-350 ms in 2-4 runs of 10. A
   * peer silent for PROBE_WINDOW_RTOS base RTOs gets RTOs again, backing off.
   */
  #probes(o: R): boolean {
    return this.#inflightChunks <= TAIL_CHUNKS && o.sentAt < this.#lastHeardAt + PROBE_WINDOW_RTOS * this.rtt.baseRto();
  }

  /** The one place a chunk stops counting as in flight. */
  #take(o: R): void {
    o.pending--;
    this.#inflightChunks--;
  }

  #lose(o: R, i: number, why: LossReason): void {
    o.states[i] = why === "abandoned" ? ChunkAnswer.abandoned : ChunkAnswer.lost;
    this.#take(o);
    this.#events.lost(o, i, why);
  }

  #retire(o: R): void {
    if (o.retired) return;
    o.retired = true;
    this.#outstanding.delete(o.seq);
    this.#retired.set(o.seq, o);
    if (this.#retired.size > this.#retiredMemory) {
      const oldest = this.#retired.keys().next();
      if (!oldest.done) this.#retired.delete(oldest.value);
    }
    this.#events.retired(o);
  }

  /** The oldest request still in flight, skipping retired ones. */
  #front(): R | undefined {
    while (this.#fifoHead < this.#fifo.length) {
      const o = this.#fifo[this.#fifoHead];
      if (o !== undefined && !o.retired) return o;
      this.#fifoHead++;
    }
    if (this.#fifoHead > 0) {
      this.#fifo = [];
      this.#fifoHead = 0;
    }
    return undefined;
  }

  *#inFlight(): Generator<R> {
    for (let i = this.#fifoHead; i < this.#fifo.length; i++) {
      const o = this.#fifo[i];
      if (o !== undefined && !o.retired) yield o;
    }
  }
}
