import type PQueue from "p-queue";
import type { FileState } from "./file-state.js";
import { RttEstimator, type RttOptions } from "./rtt.js";
import { WindowController, type WindowOptions } from "./window.js";

/** Answer state of each chunk a request names. */
export const ChunkAnswer = { pending: 0, received: 1, lost: 2 } as const;

/** One request datagram we sent and have not finished with. */
export type Outstanding = {
  readonly seq: number;
  readonly token: number;
  readonly remote: RemotePeer;
  readonly file: FileState;
  readonly first: number;
  /** Absolute chunk indices, ascending, all within [first, first + 64). */
  readonly chunks: readonly number[];
  readonly states: Uint8Array;
  /** Position of chunks[0] in the order the remote will answer (see RemotePeer.nextPos). */
  readonly basePos: number;
  sentAt: number;
  pending: number;
  /** Index below which no chunk of this request is pending any more (the loss scan starts here). */
  scanFrom: number;
  answered: boolean;
  retired: boolean;
  /** Ends the request's p-queue task (frees its slot in the window). */
  finish: (() => void) | undefined;
};

export type RemoteOptions = { readonly rtt?: RttOptions; readonly window?: WindowOptions };

/**
 * What this peer knows about one other peer as a source of chunks: its address, the RTT
 * estimate and window, and the requests in flight to it in the order they were sent.
 */
export class RemotePeer {
  readonly id: number;
  readonly host: string;
  readonly port: number;
  readonly rtt: RttEstimator;
  readonly window: WindowController;
  /** Enforces the window in requests: one task per request in flight. */
  readonly queue: PQueue;
  /** Requests in send order; retired ones are skipped and compacted lazily. */
  fifo: Outstanding[] = [];
  fifoHead = 0;
  /**
   * The remote answers requests in arrival order and each request's chunks in order, so
   * every chunk we ask for gets a position; an answer at position p means the chunks at
   * positions below p - reorderThreshold are lost (RFC 9002 §6.1.1 packet threshold).
   */
  nextPos = 0;
  highestPos = -1;
  reorderThreshold = 3;
  /**
   * Multiple of the RTT after which a chunk overtaken by a later answer is lost (RFC 9002
   * §6.1.2's 9/8); raised, like the reordering threshold, each time a "lost" chunk arrives.
   */
  timeThreshold = 9 / 8;
  inflightChunks = 0;
  /** When the last valid answer from this peer was handled: timeouts count from here. */
  lastHeardAt = Number.NEGATIVE_INFINITY;
  consecutiveTimeouts = 0;
  /** Stopped answering: no new work except one probe request at a time. */
  suspect = false;
  /** Chunks from this peer in blocks that failed verification, and all chunks it sent us. */
  badChunks = 0;
  chunksFrom = 0;
  /** Sent mostly corrupt data: asked only while no trustworthy peer is left. */
  banned = false;
  /** What this peer's requests must carry (undefined: not checked), and what ours carry. */
  inboundAuth: Buffer | undefined;
  outboundAuth: Uint8Array = new Uint8Array(0);
  /** Address keys besides `key` that datagrams from this peer come from. */
  readonly aliasKeys: string[] = [];
  /** A request from this address proved it is the listed peer. */
  proven = false;
  /** Bytes received in, and sent in answer to, requests that did not prove themselves. */
  unprovenBytesIn = 0;
  unprovenBytesOut = 0;
  /** Token bucket limiting the HashReplies this peer can make us compute. */
  hashTokens = 10;
  hashTokensAt = 0;

  constructor(id: number, host: string, port: number, queue: PQueue, options: RemoteOptions = {}) {
    this.id = id;
    this.host = host;
    this.port = port;
    this.queue = queue;
    this.rtt = new RttEstimator(options.rtt);
    this.window = new WindowController(options.window);
  }

  get key(): string {
    return addressKey(this.host, this.port);
  }

  /** The oldest request still in flight, skipping retired ones. */
  front(): Outstanding | undefined {
    while (this.fifoHead < this.fifo.length) {
      const o = this.fifo[this.fifoHead];
      if (o !== undefined && !o.retired) return o;
      this.fifoHead++;
    }
    if (this.fifoHead > 0) {
      this.fifo = [];
      this.fifoHead = 0;
    }
    return undefined;
  }

  push(o: Outstanding): void {
    if (this.fifoHead > 1024 && this.fifoHead * 2 > this.fifo.length) {
      this.fifo = this.fifo.slice(this.fifoHead);
      this.fifoHead = 0;
    }
    this.fifo.push(o);
  }

  /** Requests in flight, oldest first. */
  *inFlight(): Generator<Outstanding> {
    for (let i = this.fifoHead; i < this.fifo.length; i++) {
      const o = this.fifo[i];
      if (o !== undefined && !o.retired) yield o;
    }
  }
}

export function addressKey(host: string, port: number): string {
  return `${host}|${port}`;
}
