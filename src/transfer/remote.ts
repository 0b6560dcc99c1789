import type PQueue from "p-queue";
import { SourceTrust } from "./block-repair.js";
import type { ServedClient } from "./chunk-server.js";
import type { FileState } from "./file-state.js";
import type { LossReason, RequestTracker, TrackedRequest } from "./request-tracker.js";
import type { RttOptions } from "./rtt.js";
import { WindowController, type WindowOptions } from "./window.js";

export { ChunkAnswer } from "./request-tracker.js";

/** One request datagram we sent and have not finished with. */
export type Request = TrackedRequest & {
  readonly token: number;
  readonly remote: RemotePeer;
  readonly file: FileState;
  readonly first: number;
  /** Ends the request's p-queue task (frees its slot in the window). */
  finish: (() => void) | undefined;
};

export type RemoteOptions = { readonly rtt?: RttOptions; readonly window?: WindowOptions };

export type { LossReason };

/** How one remote peer has served one file: what makes it dropped as a holder of that file. */
export type FileSource = {
  /** Requests for the file that got no answer at all, in a row. */
  silent: number;
  /** When the first of those timed out (ms, engine clock), while `silent` > 0. */
  silentSince: number;
  /** Pieces that failed verification with chunks from it, and pieces verified with some. */
  badPieces: number;
  goodPieces: number;
  /** No longer asked for the file (its later holdings are ignored). */
  dropped: boolean;
  /** Times it was dropped for its silence and asked again later (each doubles the wait). */
  silentDrops: number;
  /** Its silence was reported (it was the only holder). */
  reported: boolean;
};

/**
 * One other peer of the swarm, as the parts of the engine see it: a source of chunks (its
 * request tracker, window and request queue, how far its data is trusted) and a client
 * we serve (its ServedClient, owned by the chunk server).
 */
export class RemotePeer {
  readonly id: number;
  readonly host: string;
  readonly port: number;
  /** How drops of its datagrams are labelled in the counters. */
  readonly label: string;
  readonly tracker: RequestTracker<Request>;
  readonly window: WindowController;
  readonly queue: PQueue;
  readonly client: ServedClient;
  readonly trust = new SourceTrust();
  /** What our requests to this peer carry. */
  readonly outboundAuth: Uint8Array;
  /** Hosts besides `host` that datagrams from this peer come from (same port). */
  readonly aliases: string[] = [];
  consecutiveTimeouts = 0;
  /** Stopped answering: no new work except one probe request at a time. */
  suspect = false;
  /** How it served each file we fetched from it, by file id. */
  readonly files = new Map<number, FileSource>();
  /** The latest AddressCookie this peer sent us: our requests to it echo it. */
  cookie: Uint8Array = new Uint8Array(0);

  constructor(
    id: number,
    host: string,
    port: number,
    parts: {
      readonly tracker: RequestTracker<Request>;
      readonly queue: PQueue;
      readonly client: ServedClient;
      readonly outboundAuth: Uint8Array;
      readonly window?: WindowOptions;
    },
  ) {
    this.id = id;
    this.host = host;
    this.port = port;
    this.label = `peer ${id}`;
    this.tracker = parts.tracker;
    this.queue = parts.queue;
    this.client = parts.client;
    this.outboundAuth = parts.outboundAuth;
    this.window = new WindowController(parts.window);
  }

  /**
   * One request at a time: the peer stopped answering, or its listed address never
   * answered yet (so a client that lists someone else's address cannot aim our requests
   * at it).
   */
  get probing(): boolean {
    return this.suspect || !this.client.validated;
  }

  source(fileId: number): FileSource {
    let s = this.files.get(fileId);
    if (s === undefined) {
      s = { silent: 0, silentSince: 0, badPieces: 0, goodPieces: 0, dropped: false, silentDrops: 0, reported: false };
      this.files.set(fileId, s);
    }
    return s;
  }

  get windowChunks(): number {
    return this.window.chunks;
  }

  get inflightChunks(): number {
    return this.tracker.inflightChunks;
  }

  rto(): number {
    return this.tracker.rtt.rto();
  }
}
