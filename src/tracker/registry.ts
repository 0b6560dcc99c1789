import { randomBytes, timingSafeEqual } from "node:crypto";
import { byNameBytes } from "../util/output-lines.js";
import { RECEIPT_BYTES, SECRET_BYTES } from "../wire/auth.js";
import { Bitmap, flattenRuns, parseRuns } from "../wire/bitmap.js";
import type { udpswarm } from "../wire/gen/swarm.js";
import { decodeReceipts } from "../wire/receipts.js";
import {
  type CheckedManifest,
  type FrameBody,
  manifestToWire,
  type PendingOffer,
  RefusalReason,
} from "../wire/tracker-frame.js";
import { manifestBytes } from "./limits.js";
import { connectBlock, disconnectBlock, updateBlock } from "./output.js";
import { announcedAddresses, isLoopback, peerAddress } from "./peer-address.js";
import { ReceiptCiphers } from "./receipt-ciphers.js";
import { CLASSIC_TAG, tagToWire, VersionBook, type VersionTag, versionFrom } from "./versions.js";

/**
 * The tracker's knowledge of the swarm, free of I/O: who is alive, which files exist,
 * which chunks each peer holds, and who may leave. Every change is turned into effects on
 * the injected sink (stdout blocks, frames to peers, diagnostics). The registry could be
 * rebuilt from what live peers re-announce: it holds nothing they do not tell it.
 *
 * Work grows with the change, not with the swarm: a chunk report costs its chunks; the
 * other peers hear of changes in one Updates frame per flush (see `flush`), so a burst of
 * joins or reports is not a frame per change per peer; and the departure rule reads a
 * running count of (peer, file) pairs still lacking instead of scanning peers x files.
 *
 * SYNC (§9): live-folder peers see the newest version of each name (a file record per
 * version, VersionBook), classic peers the first record of each name (`#fileIdByKey`).
 * The running count covers classic peers and the records they see; the few sync peers
 * are checked one by one when the count says a classic peer could go.
 */
export interface RegistrySink {
  /** One whole block of stdout lines. */
  print(lines: string[]): void;
  /**
   * Peer `peerId` newly holds `runs` ([first, count], 0-based) of a file of `chunks`
   * chunks: one ACQUIRED line per chunk, in order (the sink expands them as it writes).
   */
  acquired(peerId: number, name: string, chunks: number, runs: ReadonlyArray<readonly [number, number]>): void;
  /** A frame for one peer. */
  send(peerId: number, body: FrameBody): void;
  /**
   * One Updates frame for each receiver: `shared` (the same for all of them) merged with
   * what only that receiver hears (`own`, e.g. joined peers with their proof for it).
   */
  sendUpdates(
    receivers: readonly number[],
    shared: udpswarm.IUpdates,
    own: ReadonlyMap<number, udpswarm.IUpdates>,
  ): void;
  /**
   * Changes wait for `flush()`: the owner calls it soon (once per burst is enough), and
   * sooner when `urgent` (a peer or file came or went, a copy is whole), than when the
   * batch holds only progress (chunks acquired): that is most of the traffic, and every
   * report of it goes to every peer.
   */
  pending(urgent: boolean): void;
  /** One diagnostic line (stderr); `reason` groups lines for throttling. */
  log(line: string, reason?: string): void;
}

/** What one peer may offer and the swarm may hold (tracker/limits.ts has the defaults). */
export type OfferLimits = {
  readonly maxFilesPerPeer: number;
  readonly maxManifestBytesPerPeer: number;
  readonly maxManifestBytes: number;
  /**
   * Chunk reports must show the chunks were received (Have.receipts, issue 15 6b). The
   * tracker always sets it; unit tests of other rules leave it out and report freely.
   */
  readonly requireReceipts?: boolean;
};

const NO_LIMITS: OfferLimits = {
  maxFilesPerPeer: Number.POSITIVE_INFINITY,
  maxManifestBytesPerPeer: Number.POSITIVE_INFINITY,
  maxManifestBytes: Number.POSITIVE_INFINITY,
};

/** Holder entries' runs per Updates frame that follows a Welcome (keeps each frame small). */
const HOLDER_RUNS_PER_FRAME = 64 * 1024;

export type PeerState = "active" | "ready" | "leaving";

type Holding = {
  /** Chunks held; undefined once complete (then every chunk is held). */
  bits: Bitmap | undefined;
  complete: boolean;
};

type PeerRecord = {
  readonly id: number;
  /** Key of the proofs its requests carry (see wire/auth.ts). */
  readonly secret: Buffer;
  readonly host: string;
  /** The IPv4 interface addresses the peer announced (validated, loopback excluded). */
  readonly addresses: readonly string[];
  readonly udpPort: number;
  state: PeerState;
  /** File ids this peer offered (accepted offers). */
  readonly offered: Set<number>;
  /**
   * Offers refused for a name conflict, by name key (see nameKey): this peer neither serves
   * nor fetches a file of that name, and its own is offered again once the name is free.
   */
  readonly refused: Map<string, CheckedManifest>;
  /**
   * Name keys of files it offered and then withdrew (changed on its disk): it keeps its
   * own file of that name and neither serves nor fetches the swarm's.
   */
  readonly withdrawn: Set<string>;
  /** It reported new chunks since the last idle sweep (or joined since). */
  progressed: boolean;
  /** When the idle sweep last saw it make progress (sweep time), or undefined before its first sweep. */
  progressAt: number | undefined;
  /**
   * It lacks files and fetched nothing for the grace (SPEC §4.5): not acquiring data, it
   * holds nobody back (out of the running count) until it reports new chunks again.
   */
  idle: boolean;
  readonly holdings: Map<number, Holding>;
  /** Names of files this peer received whole from others (the DISCONNECT block). */
  readonly receivedWhole: Set<string>;
  /** The peer's latest transfer counters (for observers only). */
  stats: PeerTransferStats | undefined;
  /** SYNC (§9): a live-folder peer; it sees the newest version of each name. */
  readonly sync: boolean;
  /**
   * Offers in its Hello still being hashed (Manifest.hashing), by name key: printed in its
   * CONNECT block, told to nobody, and holding every departure back until settled.
   */
  readonly hashing: Map<string, PendingOffer>;
  /** Files it held and no longer holds (withdrawn, superseded): receipts it gave for them still count. */
  readonly formerlyHeld: Set<number>;
  /**
   * RESUME (§12): what its earlier life (Hello.resume_peer_id) had reported, per file: it may
   * report those chunks again without receipts.
   */
  inherited: Map<number, Bitmap | "complete"> | undefined;
  /** ...and that life's peer id: receipts addressed to it (Have.earlier_receipts) count too. */
  earlierId: number | undefined;
  /** SYNC (§9): manifests of the last versions of each name it held whole (by name key). */
  readonly syncHeld: Map<string, CheckedManifest[]>;
  /** Chunks it claimed without a valid receipt (not recorded, not printed). */
  unreceipted: number;
};

/** Departed peers whose secrets are kept so that receipts they gave, still in flight, count. */
export const DEPARTED_KEPT = 4096;
/** ...and the file ids kept with them, in all. */
const DEPARTED_FILES_KEPT = 1 << 20;
/** Earlier lives kept for a restart in the same folder (RESUME §12), at most... */
export const RESUMABLE_KEPT = 256;
/** ...with at most this many chunk bits of holdings in all (32 MiB). */
export const RESUMABLE_BITS_KEPT = 1 << 28;
/** Versions per name a sync peer's unreceipted claims may match piece hashes against. */
const SYNC_HELD_VERSIONS = 2;
const NO_RECEIPTS = new Uint8Array(0);

/** Totals a peer reports about its own transfers (PeerStats). */
export type PeerTransferStats = {
  readonly bytesSent: number;
  readonly bytesReceived: number;
  readonly chunksSent: number;
  readonly chunksReceived: number;
  readonly retransmissions: number;
  readonly requestsSent: number;
  readonly srttMs: number;
};

type FileRecord = {
  readonly id: number;
  readonly manifest: CheckedManifest;
  readonly key: string;
  /** Wire bytes of its manifest (counted against the swarm's budget). */
  readonly bytes: number;
  /** Peers holding at least one chunk (or the whole of an empty file). */
  readonly holders: Set<number>;
  readonly completeHolders: Set<number>;
  /**
   * Staying classic peers that have neither it whole nor refused its name, while it is
   * the record classic peers see of its name (0 for a version only sync peers see).
   */
  lackers: number;
  /** SYNC (§9): the version's mtime and ancestry (CLASSIC_TAG for a classic peer's file). */
  readonly tag: VersionTag;
};

export type JoinResult = { readonly peerId: number };

/** A read-only snapshot for observers (web view, tests). */
export type RegistrySnapshot = {
  peers: Array<{
    id: number;
    host: string;
    udpPort: number;
    state: PeerState;
    files: Array<{ fileId: number; held: number; complete: boolean }>;
    /** Names of swarm files whose offer this peer saw refused (name conflict): it never fetches them. */
    refusedNames: string[];
    stats: PeerTransferStats | undefined;
  }>;
  files: Array<{ id: number; name: string; size: number; chunks: number; completeHolders: number }>;
};

/**
 * Names are compared in Unicode normalization form C: "café" typed on two systems may
 * arrive as different code points (NFC, NFD) that print the same, and two files whose
 * names print the same would be indistinguishable in every block.
 */
export function nameKey(name: string): string {
  return name.normalize("NFC");
}

/** Changes since the last flush, for the peers that were there before them. */
type Batch = {
  readonly joined: Set<number>;
  readonly added: Set<number>;
  /** Per "peer:file": what that peer newly holds of that file. */
  readonly holders: Map<
    string,
    { peerId: number; fileId: number; runs: number[]; complete: boolean; withdrawn?: boolean }
  >;
  readonly left: Set<number>;
  readonly removed: Set<number>;
  /** SYNC (§9): versions superseded by a newer one: sync peers stop holding and fetching them. */
  readonly superseded: Set<number>;
  /** Offers accepted after their peer joined (its refused name became free), per peer. */
  readonly accepted: Map<number, number[]>;
  /** Newcomers to welcome at the flush, with the frames that follow their Welcome. */
  readonly welcomes: Map<number, { refused: udpswarm.IRefusal[]; after: FrameBody[] }>;
  /** Peers granted departure: told last (a newcomer may be granted before its Welcome went out). */
  readonly granted: number[];
};

function emptyBatch(): Batch {
  return {
    joined: new Set(),
    added: new Set(),
    holders: new Map(),
    left: new Set(),
    removed: new Set(),
    superseded: new Set(),
    accepted: new Map(),
    welcomes: new Map(),
    granted: [],
  };
}

export class Registry {
  readonly #sink: RegistrySink;
  readonly #randomBytes: (n: number) => Buffer;
  readonly #limits: OfferLimits;
  /** Manifest bytes of every file in the swarm. */
  #manifestBytes = 0;
  readonly #peers = new Map<number, PeerRecord>();
  readonly #files = new Map<number, FileRecord>();
  /** What classic peers see: the first record of each name key (§8). */
  readonly #fileIdByKey = new Map<string, number>();
  /** SYNC (§9): what sync peers see: the newest version of each name. */
  readonly #book = new VersionBook();
  /** Peers in state "ready". */
  readonly #ready = new Set<number>();
  /** Staying peers (active or ready) that refused each name key. */
  readonly #refusers = new Map<string, number>();
  /** Staying classic peers (active or ready). */
  #staying = 0;
  /** Sum of FileRecord.lackers: no ready peer may leave while it is above 0. */
  #lacking = 0;
  /** Offers still being hashed (PeerRecord.hashing): files everyone else lacks, so nobody leaves. */
  #hashingOffers = 0;
  #batch: Batch = emptyBatch();
  #batchPending = false;
  #batchUrgent = false;
  #nextPeerId = 1;
  #nextFileId = 1;

  /** `random` makes the peers' secrets (injectable so tests are repeatable). */
  constructor(sink: RegistrySink, random: (n: number) => Buffer = randomBytes, limits: OfferLimits = NO_LIMITS) {
    this.#sink = sink;
    this.#randomBytes = random;
    this.#limits = limits;
  }

  get peerCount(): number {
    return this.#peers.size;
  }

  get fileCount(): number {
    return this.#files.size;
  }

  hasPeer(peerId: number): boolean {
    return this.#peers.has(peerId);
  }

  /**
   * The live peer already listed at the UDP endpoint `host`:`udpPort` (or at that port on
   * one of `addresses`), if any: a client announcing another peer's endpoint would have
   * the swarm's datagrams from that peer attributed to it, and its requests answered there.
   */
  udpEndpointOwner(host: string, udpPort: number, addresses: readonly string[] = []): number | undefined {
    const key = (h: string) => (isLoopback(h) ? "loopback" : h);
    const claimed = new Set([host, ...addresses].map(key));
    for (const peer of this.#peers.values()) {
      if (peer.udpPort !== udpPort) continue;
      if ([peer.host, ...peer.addresses].some((h) => claimed.has(key(h)))) return peer.id;
    }
    return undefined;
  }

  /**
   * A peer connected and offered `offers` (already validated). Assigns its id, prints the
   * CONNECT block, and welcomes it at the next flush (after the others heard of it);
   * `after` are frames for it that must follow its Welcome.
   */
  join(
    host: string,
    udpPort: number,
    offers: readonly CheckedManifest[],
    onAssigned?: (peerId: number) => void,
    addresses: readonly string[] = [],
    after: readonly FrameBody[] = [],
    sync?: { readonly tags: readonly VersionTag[] },
    /** SYNC (§9): the version a classic peer's offers are at, for sync peers (CLASSIC_TAG when absent). */
    classicTags?: readonly VersionTag[],
    /** A classic peer's offers still being hashed (see hashed). */
    hashing: readonly PendingOffer[] = [],
    /** RESUME (§12): the id and secret of this peer's earlier life (Hello.resume_peer_id). */
    resume?: { readonly peerId: number; readonly secret: Uint8Array },
  ): JoinResult {
    const peer: PeerRecord = {
      id: this.#nextPeerId++,
      secret: this.#randomBytes(SECRET_BYTES),
      host,
      addresses: announcedAddresses(addresses),
      udpPort,
      state: "active",
      offered: new Set(),
      refused: new Map(),
      withdrawn: new Set(),
      progressed: true,
      progressAt: undefined,
      idle: false,
      holdings: new Map(),
      receivedWhole: new Set(),
      stats: undefined,
      sync: sync !== undefined,
      hashing: new Map(),
      formerlyHeld: new Set(),
      inherited: undefined,
      earlierId: undefined,
      syncHeld: new Map(),
      unreceipted: 0,
    };
    const refusals: udpswarm.IRefusal[] = [];
    const overLimit: FrameBody[] = [];
    const accepted: CheckedManifest[] = [];
    const seenKeys = new Set<string>();
    let peerBytes = 0;
    /** Whether one more offer fits the limits; if not, it is refused after the Welcome. */
    const fits = (offer: CheckedManifest, isNew: boolean): boolean => {
      const bytes = manifestBytes(offer);
      const limit = this.#overLimit(accepted.length, peerBytes, bytes, isNew);
      if (limit !== undefined) {
        overLimit.push({ refusal: { reason: RefusalReason.REASON_LIMIT, fileName: offer.name, detail: limit } });
        this.#sink.log(`peer ${peer.id}: refused ${JSON.stringify(offer.name)}: ${limit}`, "limit");
        return false;
      }
      peerBytes += bytes;
      return true;
    };
    const superseded: number[] = [];
    this.#peers.set(peer.id, peer);
    if (!peer.sync) this.#staying++;
    if (resume !== undefined) {
      peer.inherited = this.#inherit(resume.peerId, resume.secret);
      if (peer.inherited !== undefined) peer.earlierId = resume.peerId;
    }
    // Files it lacks among those already there (its own offers are settled below).
    const before = [...this.#files.values()];
    for (const [i, offer] of offers.entries()) {
      const key = nameKey(offer.name);
      if (seenKeys.has(key)) continue;
      seenKeys.add(key);
      if (sync !== undefined) {
        // SYNC (§9): a different content is a version, not a conflict; an older one is not held.
        const tag = sync.tags[i] ?? CLASSIC_TAG;
        const standing = this.#book.standing(versionFrom(offer, tag));
        if (standing === "older") continue;
        const same = standing === "same" ? this.#files.get(this.#book.newestId(offer.name) ?? 0) : undefined;
        if (!fits(offer, same === undefined)) continue;
        let file = same;
        if (file === undefined) {
          const previous = this.#book.newestId(offer.name);
          if (previous !== undefined) superseded.push(previous);
          file = this.#addVersion(offer, tag);
        }
        peer.offered.add(file.id);
        this.#holdWhole(peer, file);
        accepted.push(offer);
        continue;
      }
      const existing = this.#fileByKey(key);
      if (existing !== undefined && !sameFile(existing.manifest, offer)) {
        refusals.push(this.#refuseConflict(peer, existing, offer));
        continue;
      }
      if (!fits(offer, existing === undefined)) continue;
      const file = existing ?? this.#addFile(offer, classicTags?.[i] ?? CLASSIC_TAG, peer);
      peer.offered.add(file.id);
      this.#holdWhole(peer, file);
      accepted.push(offer);
    }
    for (const offer of hashing) {
      const key = nameKey(offer.name);
      if (seenKeys.has(key)) continue;
      seenKeys.add(key);
      // Its manifest's size is not known yet: the file count is checked now, the bytes when it comes.
      const detail = this.#overLimit(accepted.length + peer.hashing.size, 0, 0, false);
      if (detail !== undefined) {
        overLimit.push({ refusal: { reason: RefusalReason.REASON_LIMIT, fileName: offer.name, detail } });
        this.#sink.log(`peer ${peer.id}: refused ${JSON.stringify(offer.name)}: ${detail}`, "limit");
        continue;
      }
      peer.hashing.set(key, offer);
      this.#hashingOffers++;
    }
    for (const file of before) if (this.#lacks(peer, file)) this.#addLacker(file);
    onAssigned?.(peer.id);
    this.#sink.print(connectBlock(peer.id, [...accepted, ...peer.hashing.values()]));
    this.#batch.joined.add(peer.id);
    this.#batch.welcomes.set(peer.id, { refused: refusals, after: [...after, ...overLimit] });
    this.#markPending();
    for (const id of superseded) this.#supersede(id);
    this.#evaluateDepartures();
    return { peerId: peer.id };
  }

  /** A name conflict: `peer` neither serves nor fetches the swarm's `existing`; its offer waits for the name. */
  #refuseConflict(peer: PeerRecord, existing: FileRecord, offer: CheckedManifest): udpswarm.IRefusal {
    const key = existing.key;
    peer.refused.set(key, offer);
    if (this.#inCount(peer)) this.#refusers.set(key, (this.#refusers.get(key) ?? 0) + 1);
    const sameSpelling = existing.manifest.name === offer.name;
    this.#sink.log(
      `peer ${peer.id}: refused ${JSON.stringify(offer.name)}: name conflict (${
        sameSpelling ? "same name, different content" : "same name, another Unicode spelling"
      })`,
      "conflict",
    );
    return {
      reason: RefusalReason.REASON_NAME_CONFLICT,
      fileName: offer.name,
      detail: sameSpelling
        ? `a different file named "${offer.name}" is already offered by the swarm`
        : `the swarm already offers "${existing.manifest.name}", a name that prints the same (another Unicode spelling)`,
    };
  }

  isSync(peerId: number): boolean {
    return this.#peers.get(peerId)?.sync === true;
  }

  /**
   * A classic peer has hashed an offer its Hello made pending (Manifest.hashing): it is
   * settled as it would have been at the Hello (a name conflict or a limit refuses it) and
   * accepted through Updates.accepted. Returns a reason when the update is bad.
   */
  hashed(peerId: number, manifest: CheckedManifest, tag: VersionTag): string | undefined {
    const peer = this.#peers.get(peerId);
    if (peer === undefined) return "unknown peer";
    const key = nameKey(manifest.name);
    const pending = peer.hashing.get(key);
    if (pending === undefined) return `${JSON.stringify(manifest.name)} is not an offer it is hashing`;
    peer.hashing.delete(key);
    this.#hashingOffers--;
    const refuse = (reason: RefusalReason, detail: string) => {
      this.#sink.send(peer.id, { refusal: { reason, fileName: manifest.name, detail } });
      this.#sink.log(`peer ${peer.id}: refused ${JSON.stringify(manifest.name)}: ${detail}`, "limit");
    };
    const existing = this.#fileByKey(key);
    const lacked = existing !== undefined && this.#lacks(peer, existing);
    if (pending.name !== manifest.name || pending.size !== manifest.size) {
      refuse(RefusalReason.REASON_BAD_MESSAGE, `its size changed from ${pending.size} to ${manifest.size} bytes`);
    } else if (existing !== undefined && !sameFile(existing.manifest, manifest)) {
      if (lacked) this.#removeLacker(existing);
      this.#sink.send(peer.id, { refusal: this.#refuseConflict(peer, existing, manifest) });
    } else {
      let peerBytes = 0;
      for (const id of peer.offered) peerBytes += this.#files.get(id)?.bytes ?? 0;
      const limit = this.#overLimit(peer.offered.size, peerBytes, manifestBytes(manifest), existing === undefined);
      if (limit !== undefined) refuse(RefusalReason.REASON_LIMIT, limit);
      else {
        const file = existing ?? this.#addFile(manifest, tag, peer);
        peer.offered.add(file.id);
        this.#holdWhole(peer, file);
        if (lacked) this.#removeLacker(file);
        this.#noteAccepted(peer.id, file.id);
      }
    }
    this.#evaluateDepartures();
    return undefined;
  }

  /** A pending offer given up (Withdraw.pending_name): the file vanished or kept changing while hashed. */
  giveUpHashing(peerId: number, name: string): string | undefined {
    const peer = this.#peers.get(peerId);
    if (peer === undefined) return "unknown peer";
    const key = nameKey(name);
    if (!peer.hashing.delete(key)) return `${JSON.stringify(name)} is not an offer it is hashing`;
    this.#hashingOffers--;
    // Like a withdrawn file: it keeps whatever it has of that name and does not fetch the swarm's.
    const existing = this.#fileByKey(key);
    if (existing !== undefined && this.#lacks(peer, existing)) this.#removeLacker(existing);
    peer.withdrawn.add(key);
    if (this.#inCount(peer)) this.#refusers.set(key, (this.#refusers.get(key) ?? 0) + 1);
    this.#sink.log(
      `peer ${peer.id} gave up offering ${JSON.stringify(name)} (it changed while it was hashed)`,
      "withdrawn",
    );
    this.#evaluateDepartures();
    return undefined;
  }

  // ---------------------------------------------------------------- SYNC (§9) hooks

  /**
   * A sync peer's new file or new version while connected. The newest of its name becomes
   * a record of its own: UPDATE block, listed as added to those who see it (the author
   * learns its id), and the version it replaces is no longer held by sync peers.
   */
  update(peerId: number, manifest: CheckedManifest, tag: VersionTag): string | undefined {
    const peer = this.#peers.get(peerId);
    if (peer === undefined) return "unknown peer";
    if (!peer.sync) return "update from a classic peer";
    const standing = this.#book.standing(versionFrom(manifest, tag));
    if (standing === "same") return undefined;
    if (standing === "older") {
      this.#sink.send(peer.id, {
        refusal: {
          reason: RefusalReason.REASON_OLDER_VERSION,
          fileName: manifest.name,
          detail: "a newer version is known to the swarm",
        },
      });
      return undefined;
    }
    const bytes = manifestBytes(manifest);
    const limit =
      peer.offered.size >= this.#limits.maxFilesPerPeer
        ? `a peer may offer at most ${this.#limits.maxFilesPerPeer} files`
        : this.#manifestBytes + bytes > this.#limits.maxManifestBytes
          ? `the swarm's manifests would exceed ${this.#limits.maxManifestBytes} bytes (this one: ${bytes})`
          : undefined;
    if (limit !== undefined) {
      this.#sink.send(peer.id, {
        refusal: { reason: RefusalReason.REASON_LIMIT, fileName: manifest.name, detail: limit },
      });
      this.#sink.log(`peer ${peer.id}: refused update ${JSON.stringify(manifest.name)}: ${limit}`, "limit");
      return undefined;
    }
    const previous = this.#book.newestId(manifest.name);
    const file = this.#addVersion(manifest, tag);
    peer.offered.add(file.id);
    this.#holdWhole(peer, file);
    this.#sink.print(updateBlock(peer.id, manifest.name, manifest.chunks));
    if (previous !== undefined) this.#supersede(previous);
    this.#evaluateDepartures();
    return undefined;
  }

  /** The newest version of `name` (an Update's piece delta is against it). */
  newestManifest(name: string): CheckedManifest | undefined {
    const id = this.#book.newestId(name);
    return id === undefined ? undefined : this.#files.get(id)?.manifest;
  }

  refuse(peerId: number, refusal: udpswarm.IRefusal): void {
    if (this.#peers.has(peerId)) this.#sink.send(peerId, { refusal });
  }

  /** Whether `peer` is shown `file`: sync peers see the newest versions, classic peers the first records. */
  #sees(peer: PeerRecord, file: FileRecord): boolean {
    return peer.sync ? this.#book.newestId(file.manifest.name) === file.id : this.#isClassicView(file);
  }

  #isClassicView(file: FileRecord): boolean {
    return this.#fileIdByKey.get(file.key) === file.id;
  }

  #addVersion(manifest: CheckedManifest, tag: VersionTag): FileRecord {
    const file = this.#addFile(manifest, tag, undefined);
    this.#book.record(file.id, versionFrom(manifest, tag));
    return file;
  }

  /** A newer version replaced `fileId`: sync peers stop holding (and serving) it. */
  #supersede(fileId: number): void {
    const old = this.#files.get(fileId);
    if (old === undefined) return;
    for (const p of this.#peers.values()) {
      if (!p.sync) continue;
      if (p.holdings.delete(old.id)) {
        p.formerlyHeld.add(old.id);
        old.holders.delete(p.id);
        old.completeHolders.delete(p.id);
      }
    }
    this.#batch.superseded.add(old.id);
    this.#markPending();
    if (!this.#isAvailable(old)) this.#removeFile(old);
  }

  /**
   * SYNC (§9): whether a staying sync peer lacks a record classic peers see too (it holds
   * classic peers back like any other peer; a version they do not see does not).
   */
  #syncPeerLacks(): boolean {
    for (const peer of this.#peers.values()) {
      if (!peer.sync || peer.state === "leaving") continue;
      for (const file of this.#files.values()) {
        if (this.#isClassicView(file) && this.#sees(peer, file) && !file.completeHolders.has(peer.id)) return true;
      }
    }
    return false;
  }

  // ---------------------------------------------------------------- end of SYNC hooks

  /**
   * The peer reports chunks it has verified and stored. Prints one ACQUIRED line per
   * newly held chunk and tells the other peers. Returns a reason when the report is bad.
   */
  have(
    peerId: number,
    fileId: number,
    flatRuns: readonly number[],
    receipts: Uint8Array = NO_RECEIPTS,
    earlierReceipts: Uint8Array = NO_RECEIPTS,
  ): string | undefined {
    const peer = this.#peers.get(peerId);
    if (peer === undefined) return "unknown peer";
    const file = this.#files.get(fileId);
    if (file === undefined) return undefined; // a file removed meanwhile: stale, not bad
    const chunks = file.manifest.chunks;
    const claimed = parseRuns(flatRuns, chunks);
    if (claimed === undefined) return `bad chunk runs for file ${fileId}`;
    const runs =
      this.#limits.requireReceipts === true ? this.#received(peer, file, claimed, receipts, earlierReceipts) : claimed;
    if (typeof runs === "string") return runs;
    if (peer.refused.has(file.key)) return `report for refused file ${file.manifest.name}`;
    if (peer.withdrawn.has(file.key)) return `report for withdrawn file ${file.manifest.name}`;
    // Granted peers held everything they had reported when they were granted.
    if (peer.state === "leaving") return undefined;
    let holding = peer.holdings.get(fileId);
    if (holding === undefined) {
      holding = { bits: new Bitmap(chunks), complete: false };
      peer.holdings.set(fileId, holding);
    }
    const bits = holding.bits;
    if (holding.complete || bits === undefined) return undefined;
    const newRuns: Array<[number, number]> = [];
    for (const [first, count] of runs) bits.setRange(first, count, (start, n) => newRuns.push([start, n]));
    if (newRuns.length > 0) {
      this.#sink.acquired(peer.id, file.manifest.name, chunks, newRuns);
      peer.progressed = true;
      if (peer.idle) this.#setIdle(peer, false);
    }
    if (bits.count > 0 || chunks === 0) file.holders.add(peer.id);
    const nowComplete = bits.complete;
    if (nowComplete) {
      holding.complete = true;
      holding.bits = undefined;
      file.completeHolders.add(peer.id);
      this.#noteSyncHeld(peer, file);
      if (!peer.offered.has(fileId)) peer.receivedWhole.add(file.manifest.name);
      if (this.#counts(peer, file)) this.#removeLacker(file);
    }
    if (newRuns.length > 0 || nowComplete) {
      this.#noteHolding(peer.id, fileId, flattenRuns(newRuns), nowComplete);
      this.#markPending(!nowComplete);
    }
    if (nowComplete) this.#evaluateDepartures();
    return undefined;
  }

  /**
   * SPEC §4.5: a client that has fetched nothing for its grace while data was there for it
   * is not acquiring data and holds nobody back. The owner calls this about once a second
   * with its clock (`now`, ms); a peer's grace counts from the first sweep after its join or
   * its last report of new chunks, so the owner's own stalls may be left out of `now`.
   * `grace` may differ per peer (a peer slow to answer keepalives is slow, not idle).
   */
  sweepIdle(now: number, grace: number | ((peerId: number) => number)): void {
    let changed = false;
    for (const peer of this.#peers.values()) {
      if (peer.sync || peer.state === "leaving" || peer.idle) continue;
      if (peer.progressed || peer.progressAt === undefined) {
        peer.progressed = false;
        peer.progressAt = now;
        continue;
      }
      const silentMs = now - peer.progressAt;
      if (silentMs < (typeof grace === "number" ? grace : grace(peer.id))) continue;
      if (![...this.#files.values()].some((f) => this.#lacks(peer, f))) {
        peer.progressAt = now; // nothing to fetch: the grace starts when something comes
        continue;
      }
      this.#setIdle(peer, true);
      this.#sink.log(
        `peer ${peer.id} has fetched nothing for ${Math.round(silentMs / 1000)} s while files it lacks were ` +
          "there for it: not acquiring data, it holds no other peer back until it reports chunks again",
        "idle",
      );
      changed = true;
    }
    if (changed) this.#evaluateDepartures();
  }

  /** Into or out of the running count (see sweepIdle). */
  #setIdle(peer: PeerRecord, idle: boolean): void {
    if (idle) {
      for (const file of this.#files.values()) if (this.#lacks(peer, file)) this.#removeLacker(file);
      this.#countPeer(peer, -1);
      peer.idle = true;
    } else {
      peer.idle = false;
      this.#countPeer(peer, 1);
      for (const file of this.#files.values()) if (this.#lacks(peer, file)) this.#addLacker(file);
      this.#sink.log(`peer ${peer.id} is fetching again: it holds others back as before`, "idle");
    }
  }

  /**
   * The peer no longer holds any of `fileId`: the file changed or went from its disk
   * (issue 15, 8), or a sync peer's file was deleted or replaced (SPEC §9), or it dropped
   * a download. It stops being a holder and the others hear so (HoldersChanged.withdrawn):
   * they stop asking it. A classic peer keeps its own file of that name and neither serves
   * nor fetches the swarm's (as for a refused name). A file nobody else can complete goes.
   * Nothing is printed on stdout (deletions are not propagated). Returns a reason when the
   * report is bad.
   */
  withdraw(peerId: number, fileId: number): string | undefined {
    const peer = this.#peers.get(peerId);
    if (peer === undefined) return "unknown peer";
    const file = this.#files.get(fileId);
    if (file === undefined) return undefined; // removed meanwhile
    if (peer.state === "leaving" || !peer.holdings.has(fileId)) return undefined;
    if (!peer.sync && !declined(peer, file.key)) {
      if (this.#lacks(peer, file)) this.#removeLacker(file);
      peer.withdrawn.add(file.key);
      if (this.#inCount(peer)) this.#refusers.set(file.key, (this.#refusers.get(file.key) ?? 0) + 1);
    }
    peer.holdings.delete(fileId);
    peer.offered.delete(fileId);
    peer.formerlyHeld.add(fileId);
    file.holders.delete(peer.id);
    file.completeHolders.delete(peer.id);
    this.#noteWithdrawn(peer.id, fileId);
    this.#sink.log(
      `peer ${peer.id} withdrew ${JSON.stringify(file.manifest.name)}: it no longer serves it`,
      "withdrawn",
    );
    if (!this.#isAvailable(file)) this.#removeFile(file);
    this.#evaluateDepartures();
    return undefined;
  }

  /** The peer's own counters, kept for observers; nothing is printed or sent. */
  stats(peerId: number, stats: PeerTransferStats): void {
    const peer = this.#peers.get(peerId);
    if (peer !== undefined) peer.stats = stats;
  }

  /** The peer's MIN_ALIVE has passed: it leaves as soon as no one depends on it. */
  readyToLeave(peerId: number): void {
    const peer = this.#peers.get(peerId);
    if (peer === undefined || peer.state !== "active") return;
    peer.state = "ready";
    this.#ready.add(peerId);
    this.#evaluateDepartures();
  }

  /**
   * The peer said goodbye or its connection was lost: prints its DISCONNECT block, forgets
   * its chunks, and drops files no live peer can complete any more.
   */
  leave(peerId: number): void {
    const peer = this.#peers.get(peerId);
    if (peer === undefined) return;
    this.#peers.delete(peerId);
    this.#hashingOffers -= peer.hashing.size;
    peer.hashing.clear();
    this.#sink.print(disconnectBlock(peer.id, peer.receivedWhole));
    this.#retire(peer);
    if (peer.state !== "leaving") {
      for (const file of this.#files.values()) if (this.#lacks(peer, file)) this.#removeLacker(file);
      this.#stopStaying(peer);
      this.#noteLeft(peer.id);
    }
    this.#forgetHoldings(peer);
    this.#evaluateDepartures();
  }

  /**
   * Sends what changed since the last flush: one Updates frame to every peer that was
   * there before (what it must hear first), then the Welcome of each newcomer, built now.
   */
  flush(): void {
    if (!this.#batchPending) return;
    const batch = this.#batch;
    this.#batch = emptyBatch();
    this.#batchPending = false;
    this.#batchUrgent = false;
    const joined = [...batch.joined].flatMap((id) => {
      const p = this.#peers.get(id);
      return p !== undefined && p.state !== "leaving" ? [p] : [];
    });
    const shared: udpswarm.IUpdates = {};
    if (batch.removed.size > 0) shared.removed = [...batch.removed];
    if (batch.left.size > 0) shared.left = [...batch.left];
    const receiverRecords = [...this.#peers.values()].filter((p) => p.state !== "leaving" && !batch.welcomes.has(p.id));
    // A file everyone sees goes in the shared part; a version only some see (SYNC §9), in theirs.
    const addedFiles = [...batch.added].flatMap((id) => {
      const f = this.#files.get(id);
      return f === undefined ? [] : [f];
    });
    const addedForAll = addedFiles.filter((f) => receiverRecords.every((p) => this.#sees(p, f)));
    const addedForSome = addedFiles.filter((f) => !addedForAll.includes(f));
    if (addedForAll.length > 0) shared.added = addedForAll.map(fileInfo);
    const supersededNow = [...batch.superseded].filter((id) => !batch.removed.has(id));
    const holders = [...batch.holders.values()].filter(
      (h) => this.#peers.get(h.peerId)?.state !== "leaving" && this.#peers.has(h.peerId) && this.#files.has(h.fileId),
    );
    if (holders.length > 0) {
      shared.holders = holders.map((h) =>
        h.withdrawn === true
          ? { peerId: h.peerId, fileId: h.fileId, runs: [], withdrawn: true }
          : { peerId: h.peerId, fileId: h.fileId, runs: h.complete ? [] : h.runs, complete: h.complete },
      );
    }
    const receivers: number[] = [];
    const own = new Map<number, udpswarm.IUpdates>();
    for (const receiver of receiverRecords) {
      receivers.push(receiver.id);
      const mine: udpswarm.IUpdates = {};
      if (receiver.sync && supersededNow.length > 0) mine.removed = supersededNow;
      const seen = addedForSome.filter((f) => this.#sees(receiver, f));
      if (seen.length > 0) mine.added = seen.map(fileInfo);
      const introductions = joined.filter((p) => p.id !== receiver.id).map((p) => peerAddress(p, receiver));
      if (introductions.length > 0) mine.joined = introductions;
      const accepted = batch.accepted.get(receiver.id)?.flatMap((id) => {
        const f = this.#files.get(id);
        return f === undefined ? [] : [fileInfo(f)];
      });
      if (accepted !== undefined && accepted.length > 0) mine.accepted = accepted;
      if (Object.keys(mine).length > 0) own.set(receiver.id, mine);
    }
    const anything =
      shared.removed !== undefined ||
      shared.left !== undefined ||
      shared.added !== undefined ||
      shared.holders !== undefined;
    const addressed = anything ? receivers : receivers.filter((id) => own.has(id));
    if (addressed.length > 0) this.#sink.sendUpdates(addressed, shared, own);
    for (const [peerId, welcome] of batch.welcomes) {
      const peer = this.#peers.get(peerId);
      if (peer === undefined) continue;
      const { welcome: w, holders: known } = this.#welcome(peer, welcome.refused);
      // What every peer holds goes in groups of bounded size: the first in the Welcome, the
      // rest in Updates frames (the Welcome stays within the frame budget).
      const [first, ...rest] = holderFrames(known);
      w.holders = first ?? [];
      this.#sink.send(peerId, { welcome: w });
      for (const holders of rest) this.#sink.send(peerId, { updates: { holders } });
      for (const body of welcome.after) this.#sink.send(peerId, body);
    }
    for (const peerId of batch.granted) if (this.#peers.has(peerId)) this.#sink.send(peerId, { leaveGranted: {} });
  }

  snapshot(): RegistrySnapshot {
    return {
      peers: [...this.#peers.values()].map((p) => ({
        id: p.id,
        host: p.host,
        udpPort: p.udpPort,
        state: p.state,
        files: [...p.holdings].flatMap(([fileId, h]) => {
          const file = this.#files.get(fileId);
          if (file === undefined) return [];
          return [{ fileId, held: h.complete ? file.manifest.chunks : (h.bits?.count ?? 0), complete: h.complete }];
        }),
        refusedNames: [...p.refused].map(([key, offer]) => this.#fileByKey(key)?.manifest.name ?? offer.name),
        stats: p.stats,
      })),
      files: [...this.#files.values()]
        .map((f) => ({
          id: f.id,
          name: f.manifest.name,
          size: f.manifest.size,
          chunks: f.manifest.chunks,
          completeHolders: f.completeHolders.size,
        }))
        .sort((a, b) => byNameBytes(a.name, b.name)),
    };
  }

  /** Chunk bitmap of one holding (for observers); undefined when the peer holds nothing of it. */
  holding(peerId: number, fileId: number): { complete: boolean; runs: Array<[number, number]> } | undefined {
    const h = this.#peers.get(peerId)?.holdings.get(fileId);
    if (h === undefined) return undefined;
    return { complete: h.complete, runs: h.complete ? [] : (h.bits?.runs() ?? []) };
  }

  // ---------------------------------------------------------------- receipts (issue 15, 6b)

  /** Chunks claimed without a valid receipt, in all (not recorded, not printed). */
  unreceiptedChunks = 0;
  /** Departed peers: secret and the files they held, oldest first (see DEPARTED_KEPT). */
  readonly #departed = new Map<number, { readonly secret: Buffer; readonly files: ReadonlySet<number> }>();
  #departedFiles = 0;
  /** Earlier lives of peers that left without completing everything (RESUME §12), oldest first. */
  readonly #resumable = new Map<
    number,
    { readonly secret: Buffer; readonly holdings: Map<number, Bitmap | "complete">; readonly bits: number }
  >();
  #resumableBits = 0;
  readonly #receiptCiphers = new ReceiptCiphers();

  /**
   * The part of `claimed` the peer can show it received: chunks of pieces covered by a
   * valid receipt from a holder of them, chunks its earlier life had reported (inherited),
   * and, for a sync peer, pieces whose hash is in a version of that name it held whole (it
   * copied them from its local file). The rest is counted and logged, never recorded.
   */
  #received(
    peer: PeerRecord,
    file: FileRecord,
    claimed: ReadonlyArray<readonly [number, number]>,
    receiptBytes: Uint8Array,
    earlierBytes: Uint8Array,
  ): Array<[number, number]> | string {
    const mine = receiptBytes.length === 0 ? [] : decodeReceipts(receiptBytes);
    const earlier = earlierBytes.length === 0 ? [] : decodeReceipts(earlierBytes);
    if (mine === undefined || earlier === undefined) return `malformed receipts for file ${file.id}`;
    const earlierId = peer.earlierId;
    const entries = [
      ...mine.map((e) => ({ ...e, to: peer.id })),
      ...(earlierId === undefined ? [] : earlier.map((e) => ({ ...e, to: earlierId }))),
    ];
    const m = file.manifest;
    const per = m.chunksPerPiece;
    /** Per piece: true (all its chunks proven) or the mask of those proven. */
    const proven = new Map<number, true | Uint8Array>();
    let bad = 0;
    for (const e of entries) {
      const first = e.piece * per;
      const n = Math.min(per, m.chunks - first);
      const secret = first < m.chunks ? this.#holderSecret(peer, e.holder, file, first, n) : undefined;
      const chunks: number[] = [];
      for (let i = 0; i < n; i++)
        if (e.mask === undefined || ((e.mask[i >> 3] ?? 0) >> (i & 7)) & 1) chunks.push(first + i);
      if (
        secret === undefined ||
        chunks.length === 0 ||
        e.receipt.length !== RECEIPT_BYTES ||
        !timingSafeEqual(this.#receiptCiphers.get(secret, e.to, file.id).receipt(chunks), e.receipt)
      ) {
        bad++;
        continue;
      }
      const had = proven.get(e.piece);
      if (had === true) continue;
      if (e.mask === undefined || chunks.length === n) {
        proven.set(e.piece, true);
        continue;
      }
      const mask = had ?? new Uint8Array(Math.ceil(per / 8));
      for (const c of chunks) mask[(c - first) >> 3] = (mask[(c - first) >> 3] ?? 0) | (1 << ((c - first) & 7));
      proven.set(e.piece, mask);
    }
    const inherited = peer.inherited?.get(file.id);
    const localHashes = peer.sync ? this.#syncHashes(peer, file) : undefined;
    const out: Array<[number, number]> = [];
    let refused = 0;
    const accept = (c: number): void => {
      const last = out[out.length - 1];
      if (last !== undefined && last[0] + last[1] === c) last[1]++;
      else out.push([c, 1]);
    };
    /** The sync rule, decided once per piece. */
    let localPiece = -1;
    let localOk = false;
    const local = (piece: number): boolean => {
      if (localHashes === undefined) return false;
      if (piece !== localPiece) {
        localPiece = piece;
        localOk = localHashes.has(hashKey(m.pieceSha256[piece]));
      }
      return localOk;
    };
    for (const [start, count] of claimed) {
      for (let c = start; c < start + count; c++) {
        const piece = Math.floor(c / per);
        const p = proven.get(piece);
        const ok =
          p === true ||
          (p !== undefined && ((p[(c - piece * per) >> 3] ?? 0) >> ((c - piece * per) & 7)) & 1) === 1 ||
          inherited === "complete" ||
          inherited?.has(c) === true ||
          local(piece);
        if (ok) accept(c);
        else refused++;
      }
    }
    if (refused > 0 || bad > 0) {
      this.unreceiptedChunks += refused;
      const firstTime = peer.unreceipted === 0;
      peer.unreceipted += refused;
      if (firstTime) {
        this.#sink.log(
          `peer ${peer.id}: ${refused} chunks of ${JSON.stringify(m.name)} claimed without a valid receipt ` +
            `(${bad} bad receipts): not recorded, not printed; later ones from it are counted only`,
          "unreceipted",
        );
      }
    }
    return out;
  }

  /**
   * The secret of `holderId` if it may have sent `claimant` chunks [first, first + n) of
   * `file`: a live holder of them, one that held the file and withdrew it, or a departed
   * holder of the file (receipts in flight when it left). Never the claimant itself.
   */
  #holderSecret(
    claimant: PeerRecord,
    holderId: number,
    file: FileRecord,
    first: number,
    n: number,
  ): Buffer | undefined {
    if (holderId === claimant.id || holderId === claimant.earlierId) return undefined;
    const live = this.#peers.get(holderId);
    if (live !== undefined) {
      const h = live.holdings.get(file.id);
      if (h?.complete === true || h?.bits?.hasAll(first, n) === true) return live.secret;
      return live.formerlyHeld.has(file.id) ? live.secret : undefined;
    }
    const gone = this.#departed.get(holderId);
    return gone?.files.has(file.id) === true ? gone.secret : undefined;
  }

  /** SYNC (§9): the piece hashes of the other versions of `file`'s name the peer held whole. */
  #syncHashes(peer: PeerRecord, file: FileRecord): Set<string> | undefined {
    const held = peer.syncHeld.get(file.key)?.filter((m) => m !== file.manifest);
    if (held === undefined || held.length === 0) return undefined;
    return new Set(held.flatMap((m) => m.pieceSha256.map(hashKey)));
  }

  #noteSyncHeld(peer: PeerRecord, file: FileRecord): void {
    if (!peer.sync) return;
    const list = peer.syncHeld.get(file.key) ?? [];
    if (list.includes(file.manifest)) return;
    list.push(file.manifest);
    if (list.length > SYNC_HELD_VERSIONS) list.shift();
    peer.syncHeld.set(file.key, list);
  }

  /**
   * A peer leaves: its secret is kept (bounded) so that receipts it gave still count, and
   * what it had fetched, for a restart in the same folder (RESUME §12).
   */
  #retire(peer: PeerRecord): void {
    const files = new Set([...peer.holdings.keys(), ...peer.formerlyHeld]);
    this.#departed.set(peer.id, { secret: peer.secret, files });
    this.#departedFiles += files.size;
    for (const [id, d] of this.#departed) {
      if (this.#departed.size <= DEPARTED_KEPT && this.#departedFiles <= DEPARTED_FILES_KEPT) break;
      this.#departed.delete(id);
      this.#departedFiles -= d.files.size;
    }
    const holdings = new Map<number, Bitmap | "complete">();
    let bits = 0;
    for (const [fileId, h] of peer.holdings) {
      if (peer.offered.has(fileId)) continue;
      if (h.complete) holdings.set(fileId, "complete");
      else if (h.bits !== undefined && h.bits.count > 0) {
        holdings.set(fileId, h.bits);
        bits += h.bits.size;
      }
    }
    // A granted departure had everything (its staging is emptied); a lost or killed peer may come back.
    if (peer.state === "leaving" || bits > RESUMABLE_BITS_KEPT) return;
    this.#resumable.set(peer.id, { secret: peer.secret, holdings, bits });
    this.#resumableBits += bits;
    for (const [id, r] of this.#resumable) {
      if (this.#resumable.size <= RESUMABLE_KEPT && this.#resumableBits <= RESUMABLE_BITS_KEPT) break;
      this.#resumable.delete(id);
      this.#resumableBits -= r.bits;
    }
  }

  /** RESUME (§12): the holdings of an earlier life, once, if its secret matches. */
  #inherit(oldId: number, secret: Uint8Array): Map<number, Bitmap | "complete"> | undefined {
    const r = this.#resumable.get(oldId);
    if (r === undefined || secret.length !== r.secret.length || !timingSafeEqual(secret, r.secret)) return undefined;
    this.#resumable.delete(oldId);
    this.#resumableBits -= r.bits;
    return r.holdings;
  }

  // ---------------------------------------------------------------- files and holders

  #fileByKey(key: string): FileRecord | undefined {
    const id = this.#fileIdByKey.get(key);
    return id === undefined ? undefined : this.#files.get(id);
  }

  /** Why an offer is over a limit, or undefined when it fits. */
  #overLimit(acceptedSoFar: number, peerBytes: number, bytes: number, isNew: boolean): string | undefined {
    const l = this.#limits;
    if (acceptedSoFar >= l.maxFilesPerPeer) return `a peer may offer at most ${l.maxFilesPerPeer} files`;
    if (peerBytes + bytes > l.maxManifestBytesPerPeer) {
      return `manifests of more than ${l.maxManifestBytesPerPeer} bytes from one peer (this one: ${bytes})`;
    }
    if (isNew && this.#manifestBytes + bytes > l.maxManifestBytes) {
      return `the swarm's manifests would exceed ${l.maxManifestBytes} bytes (this one: ${bytes})`;
    }
    return undefined;
  }

  /**
   * A new file, offered whole by `offerer` (undefined: a sync peer): every other peer in
   * the running count lacks it unless it declined the name, or it is a version classic
   * peers do not see.
   */
  #addFile(manifest: CheckedManifest, tag: VersionTag, offerer: PeerRecord | undefined): FileRecord {
    const key = nameKey(manifest.name);
    const file: FileRecord = {
      id: this.#nextFileId++,
      manifest,
      key,
      bytes: manifestBytes(manifest),
      holders: new Set(),
      completeHolders: new Set(),
      lackers: 0,
      tag,
    };
    this.#manifestBytes += file.bytes;
    this.#files.set(file.id, file);
    // SYNC (§9): a name's first record is what classic peers see, and sync peers until a newer one.
    if (this.#book.newestId(manifest.name) === undefined) this.#book.record(file.id, versionFrom(manifest, tag));
    if (!this.#fileIdByKey.has(key)) {
      this.#fileIdByKey.set(key, file.id);
      const lackers =
        this.#staying - (offerer !== undefined && this.#inCount(offerer) ? 1 : 0) - (this.#refusers.get(key) ?? 0);
      file.lackers = lackers;
      this.#lacking += lackers;
    }
    this.#batch.added.add(file.id);
    this.#markPending();
    return file;
  }

  #holdWhole(peer: PeerRecord, file: FileRecord): void {
    this.#noteSyncHeld(peer, file);
    peer.holdings.set(file.id, { bits: undefined, complete: true });
    file.holders.add(peer.id);
    file.completeHolders.add(peer.id);
    this.#noteHolding(peer.id, file.id, [], true);
  }

  #removeFile(file: FileRecord): void {
    const classicView = this.#isClassicView(file);
    // Said only when it costs someone something: after a normal departure nobody lacks it.
    const lacking = [...this.#peers.values()]
      .filter(
        (p) =>
          p.state !== "leaving" && !declined(p, file.key) && !file.completeHolders.has(p.id) && this.#sees(p, file),
      )
      .map((p) => p.id);
    this.#files.delete(file.id);
    this.#manifestBytes -= file.bytes;
    if (classicView) this.#fileIdByKey.delete(file.key);
    this.#book.forget(file.manifest.name, file.id);
    this.#lacking -= file.lackers;
    if (lacking.length > 0) {
      this.#sink.log(
        `file "${file.manifest.name}" is no longer available: no live peer holds all of it ` +
          `(${lacking.length === 1 ? "peer" : "peers"} ${lacking.slice(0, 20).join(", ")}${lacking.length > 20 ? ", ..." : ""} did not get it)`,
        "removed",
      );
    }
    for (const peerId of file.holders) this.#peers.get(peerId)?.holdings.delete(file.id);
    if (this.#batch.added.delete(file.id)) {
      // Added and gone within one flush: the others never hear of it.
    } else this.#batch.removed.add(file.id);
    this.#markPending();
    if (classicView) this.#offerAgain(file.key);
  }

  /**
   * A name is free again: the earliest staying peer whose offer of it was refused now
   * offers it (SPEC §8), and so does every refused peer with the same content.
   */
  #offerAgain(key: string): void {
    const candidates = [...this.#peers.values()].filter((p) => p.state !== "leaving" && p.refused.has(key));
    const first = candidates[0];
    const manifest = first?.refused.get(key);
    if (first === undefined || manifest === undefined) return;
    // Within the swarm's budget only (the name stays refused otherwise).
    if (this.#manifestBytes + manifestBytes(manifest) > this.#limits.maxManifestBytes) return;
    const holders = candidates.filter((p) => {
      const offer = p.refused.get(key);
      return offer !== undefined && sameFile(offer, manifest);
    });
    for (const p of holders) {
      p.refused.delete(key);
      if (this.#inCount(p)) this.#refusers.set(key, (this.#refusers.get(key) ?? 1) - 1);
    }
    if (this.#refusers.get(key) === 0) this.#refusers.delete(key);
    // Every peer in the count but `first` lacks it for now; the other holders are settled below.
    const file = this.#addFile(manifest, CLASSIC_TAG, first);
    for (const p of holders) {
      p.offered.add(file.id);
      this.#holdWhole(p, file);
      if (p !== first && this.#inCount(p)) this.#removeLacker(file);
      this.#noteAccepted(p.id, file.id);
      this.#sink.log(
        `peer ${p.id}: ${JSON.stringify(manifest.name)} offered again now that the name is free`,
        "reoffer",
      );
    }
  }

  /** A peer's chunks no longer count: files no live peer can complete any more are dropped. */
  #forgetHoldings(peer: PeerRecord): void {
    const fileIds = [...peer.holdings.keys()];
    peer.holdings.clear();
    for (const fileId of fileIds) {
      const file = this.#files.get(fileId);
      if (file === undefined) continue;
      file.holders.delete(peer.id);
      file.completeHolders.delete(peer.id);
      if (!this.#isAvailable(file)) this.#removeFile(file);
    }
  }

  /** A file is available while the live peers' chunks together cover it. */
  #isAvailable(file: FileRecord): boolean {
    if (file.completeHolders.size > 0) return true;
    if (file.holders.size === 0) return false;
    const union = new Bitmap(file.manifest.chunks);
    for (const peerId of file.holders) {
      const bits = this.#peers.get(peerId)?.holdings.get(file.id)?.bits;
      if (bits === undefined) continue;
      for (const [first, count] of bits.runs()) union.setRange(first, count);
      if (union.complete) return true;
    }
    return union.complete;
  }

  // ---------------------------------------------------------------- who may leave

  /** Whether `peer` is in the running count: a staying classic peer that is not idle. */
  #inCount(peer: PeerRecord): boolean {
    return !peer.sync && !peer.idle && peer.state !== "leaving";
  }

  /** Whether `peer` and `file` are in the running count: a peer in it and the record classic peers see. */
  #counts(peer: PeerRecord, file: FileRecord): boolean {
    return this.#inCount(peer) && this.#isClassicView(file);
  }

  /** Whether a peer counts as lacking `file` (neither holds it whole nor declined its name). */
  #lacks(peer: PeerRecord, file: FileRecord): boolean {
    return this.#counts(peer, file) && !file.completeHolders.has(peer.id) && !declined(peer, file.key);
  }

  /** Names it neither serves nor fetches: refused offers and withdrawn files (each key in one only). */
  #declinedKeys(peer: PeerRecord): string[] {
    return [...peer.refused.keys(), ...peer.withdrawn];
  }

  /** The peer enters (+1) or leaves (-1) the running count: staying peers and who declined each name. */
  #countPeer(peer: PeerRecord, sign: 1 | -1): void {
    this.#staying += sign;
    for (const key of this.#declinedKeys(peer)) {
      const n = (this.#refusers.get(key) ?? 0) + sign;
      if (n > 0) this.#refusers.set(key, n);
      else this.#refusers.delete(key);
    }
  }

  #addLacker(file: FileRecord): void {
    file.lackers++;
    this.#lacking++;
  }

  #removeLacker(file: FileRecord): void {
    file.lackers--;
    this.#lacking--;
  }

  /** The peer no longer stays (granted, or gone; called before its state changes): it leaves the count. */
  #stopStaying(peer: PeerRecord): void {
    if (this.#inCount(peer)) this.#countPeer(peer, -1);
    this.#ready.delete(peer.id);
  }

  /**
   * Grants departure to every ready peer once no staying peer lacks any file (then each
   * ready peer holds everything, and nothing it holds is lacked by anyone). Runs only on
   * events that can change the answer: a join, a completed file, a departure, a new ready.
   */
  #evaluateDepartures(): void {
    this.#wakeIdleWithNothingToLack();
    while (this.#lacking === 0 && this.#hashingOffers === 0 && this.#ready.size > 0 && !this.#syncPeerLacks()) {
      // An idle ready peer is out of the count because it lacks files: it waits.
      const granted = [...this.#ready].flatMap((id) => {
        const p = this.#peers.get(id);
        return p === undefined || p.idle ? [] : [p];
      });
      if (granted.length === 0) return;
      for (const peer of granted) {
        this.#stopStaying(peer);
        peer.state = "leaving";
        this.#batch.granted.push(peer.id);
        this.#noteLeft(peer.id);
      }
      // From now on they are gone for everyone else: a newcomer must not count on their
      // chunks. Files that go with them may free a name someone else offers again.
      for (const peer of granted) this.#forgetHoldings(peer);
      this.#wakeIdleWithNothingToLack();
    }
  }

  /**
   * An idle ready peer whose every lacked file went (their holders left) lacks nothing now:
   * it is in the count again (and may go); otherwise it would wait for ever for chunks of
   * files nobody has any more.
   */
  #wakeIdleWithNothingToLack(): void {
    for (const id of this.#ready) {
      const peer = this.#peers.get(id);
      if (peer === undefined || !peer.idle) continue;
      const lacksSome = [...this.#files.values()].some(
        (f) => this.#isClassicView(f) && !f.completeHolders.has(peer.id) && !declined(peer, f.key),
      );
      if (lacksSome) continue;
      peer.idle = false;
      this.#countPeer(peer, 1);
      this.#sink.log(`peer ${peer.id} lacks nothing any more: no longer idle`, "idle");
    }
  }

  // ---------------------------------------------------------------- updates for the others

  /** `progressOnly`: the change is chunks acquired, which may wait a little longer. */
  #markPending(progressOnly = false): void {
    const urgent = !progressOnly;
    if (this.#batchPending && (this.#batchUrgent || !urgent)) return;
    this.#batchPending = true;
    if (urgent) this.#batchUrgent = true;
    this.#sink.pending(urgent);
  }

  #noteHolding(peerId: number, fileId: number, runs: number[], complete: boolean): void {
    const key = `${peerId}:${fileId}`;
    const entry = this.#batch.holders.get(key);
    if (entry === undefined || entry.withdrawn === true)
      this.#batch.holders.set(key, { peerId, fileId, runs, complete });
    else {
      entry.complete ||= complete;
      if (!entry.complete) for (const r of runs) entry.runs.push(r);
    }
  }

  /** What the others heard of `peerId` holding `fileId` this flush no longer stands. */
  /** Its offer is accepted after its Welcome: it hears the file's id in Updates.accepted. */
  #noteAccepted(peerId: number, fileId: number): void {
    let ids = this.#batch.accepted.get(peerId);
    if (ids === undefined) {
      ids = [];
      this.#batch.accepted.set(peerId, ids);
    }
    ids.push(fileId);
    this.#markPending();
  }

  #noteWithdrawn(peerId: number, fileId: number): void {
    this.#batch.holders.set(`${peerId}:${fileId}`, { peerId, fileId, runs: [], complete: false, withdrawn: true });
    this.#markPending();
  }

  #noteLeft(peerId: number): void {
    // Joined and gone within one flush: the others never hear of it.
    if (!this.#batch.joined.delete(peerId)) this.#batch.left.add(peerId);
    this.#markPending();
  }

  #welcome(
    peer: PeerRecord,
    refused: udpswarm.IRefusal[],
  ): { welcome: udpswarm.IWelcome; holders: udpswarm.IHoldersChanged[] } {
    const others = [...this.#peers.values()].filter((p) => p.id !== peer.id && p.state !== "leaving");
    const holders: udpswarm.IHoldersChanged[] = [];
    for (const p of others) {
      for (const [fileId, h] of p.holdings) {
        if (h.complete) holders.push({ peerId: p.id, fileId, runs: [], complete: true });
        else if (h.bits !== undefined && h.bits.count > 0) {
          holders.push({ peerId: p.id, fileId, runs: flattenRuns(h.bits.runs()), complete: false });
        }
      }
    }
    const welcome: udpswarm.IWelcome = {
      peerId: peer.id,
      files: [...this.#files.values()].filter((f) => this.#sees(peer, f)).map(fileInfo),
      peers: others.map((p) => peerAddress(p, peer)),
      refused,
      accepted: [...peer.offered].flatMap((id) => {
        const f = this.#files.get(id);
        return f === undefined ? [] : [fileInfo(f)];
      }),
      secret: peer.secret,
    };
    if (peer.inherited !== undefined) {
      welcome.resumed = true;
      welcome.resumable = [...peer.inherited].flatMap(([fileId, h]) => {
        const f = this.#files.get(fileId);
        if (f === undefined || !this.#sees(peer, f)) return [];
        return [
          h === "complete"
            ? { peerId: peer.id, fileId, runs: [], complete: true }
            : { peerId: peer.id, fileId, runs: flattenRuns(h.runs()), complete: false },
        ];
      });
    }
    return { welcome, holders };
  }
}

/** A piece hash as a map key. */
function hashKey(hash: Uint8Array | undefined): string {
  return hash === undefined ? "" : Buffer.from(hash.buffer, hash.byteOffset, hash.length).toString("latin1");
}

/** Holder entries in groups of at most HOLDER_RUNS_PER_FRAME runs (a long entry is split: holdings add up). */
function holderFrames(entries: readonly udpswarm.IHoldersChanged[]): udpswarm.IHoldersChanged[][] {
  const frames: udpswarm.IHoldersChanged[][] = [];
  let current: udpswarm.IHoldersChanged[] = [];
  let runs = 0;
  const push = (entry: udpswarm.IHoldersChanged, n: number): void => {
    if (runs + n > HOLDER_RUNS_PER_FRAME && current.length > 0) {
      frames.push(current);
      current = [];
      runs = 0;
    }
    current.push(entry);
    runs += n;
  };
  for (const entry of entries) {
    const flat = entry.runs ?? [];
    if (flat.length / 2 <= HOLDER_RUNS_PER_FRAME) {
      push(entry, Math.max(1, flat.length / 2));
      continue;
    }
    for (let i = 0; i < flat.length; i += 2 * HOLDER_RUNS_PER_FRAME) {
      push({ ...entry, runs: flat.slice(i, i + 2 * HOLDER_RUNS_PER_FRAME) }, HOLDER_RUNS_PER_FRAME);
    }
  }
  if (current.length > 0) frames.push(current);
  return frames;
}

function declined(peer: PeerRecord, key: string): boolean {
  return peer.refused.has(key) || peer.withdrawn.has(key);
}

function sameFile(a: CheckedManifest, b: CheckedManifest): boolean {
  return a.name === b.name && a.size === b.size && a.sha256.equals(b.sha256);
}

function fileInfo(file: FileRecord): udpswarm.IFileInfo {
  return { fileId: file.id, manifest: { ...manifestToWire(file.manifest), ...tagToWire(file.tag) } };
}
