import { randomBytes } from "node:crypto";
import { isIPv4 } from "node:net";
import { byNameBytes } from "../util/output-lines.js";
import { requestAuth, SECRET_BYTES } from "../wire/auth.js";
import { Bitmap, flattenRuns, parseRuns } from "../wire/bitmap.js";
import type { udpswarm } from "../wire/gen/swarm.js";
import { type CheckedManifest, type FrameBody, manifestToWire, RefusalReason } from "../wire/tracker-frame.js";
import { acquiredLine, connectBlock, disconnectBlock, updateBlock } from "./output.js";
import { CLASSIC_TAG, tagToWire, VersionBook, type VersionTag, versionFrom } from "./versions.js";

/**
 * The tracker's knowledge of the swarm, free of I/O: who is alive, which files exist,
 * which chunks each peer holds, and who may leave. Every change is turned into effects on
 * the injected sink (stdout blocks, frames to peers, diagnostics). The registry could be
 * rebuilt from what live peers re-announce: it holds nothing they do not tell it.
 */
export interface RegistrySink {
  /** One whole block of stdout lines. */
  print(lines: string[]): void;
  send(peerId: number, body: FrameBody): void;
  /** One diagnostic line (stderr). */
  log(line: string): void;
}

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
  /** File ids this peer offered at connect (accepted offers). */
  readonly offered: Set<number>;
  /** Names whose offer was refused (conflict): this peer neither serves nor fetches them. */
  readonly refusedNames: Set<string>;
  readonly holdings: Map<number, Holding>;
  /** Names of files this peer received whole from others (the DISCONNECT block). */
  readonly receivedWhole: Set<string>;
  /** The peer's latest transfer counters (for observers only). */
  stats: PeerTransferStats | undefined;
  /** SYNC (§9): a live-folder peer; it sees the newest version of each name. */
  readonly sync: boolean;
};

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
  /** Peers holding at least one chunk (or the whole of an empty file). */
  readonly holders: Set<number>;
  readonly completeHolders: Set<number>;
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
    /** Names whose offer was refused (name conflict): this peer never fetches them. */
    refusedNames: string[];
    stats: PeerTransferStats | undefined;
  }>;
  files: Array<{ id: number; name: string; size: number; chunks: number; completeHolders: number }>;
};

export class Registry {
  readonly #sink: RegistrySink;
  readonly #randomBytes: (n: number) => Buffer;
  readonly #peers = new Map<number, PeerRecord>();
  readonly #files = new Map<number, FileRecord>();
  /** What classic peers see: the first record of each name (§8). */
  readonly #fileIdByName = new Map<string, number>();
  /** SYNC (§9): what sync peers see: the newest version of each name. */
  readonly #book = new VersionBook();
  #nextPeerId = 1;
  #nextFileId = 1;

  /** `random` makes the peers' secrets (injectable so tests are repeatable). */
  constructor(sink: RegistrySink, random: (n: number) => Buffer = randomBytes) {
    this.#sink = sink;
    this.#randomBytes = random;
  }

  get peerCount(): number {
    return this.#peers.size;
  }

  get fileCount(): number {
    return this.#files.size;
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

  hasPeer(peerId: number): boolean {
    return this.#peers.has(peerId);
  }

  /**
   * A peer connected and offered `offers` (already validated). Assigns its id, prints the
   * CONNECT block, welcomes it with the whole swarm, and tells everyone else.
   */
  join(
    host: string,
    udpPort: number,
    offers: readonly CheckedManifest[],
    onAssigned?: (peerId: number) => void,
    addresses: readonly string[] = [],
    sync?: { readonly tags: readonly VersionTag[] },
    /** SYNC (§9): the version a classic peer's offers are at, for sync peers (CLASSIC_TAG when absent). */
    classicTags?: readonly VersionTag[],
  ): JoinResult {
    const peer: PeerRecord = {
      id: this.#nextPeerId++,
      secret: this.#randomBytes(SECRET_BYTES),
      host,
      addresses: [...new Set(addresses.filter((a) => isIPv4(a) && !isLoopback(a)))].slice(0, MAX_ADDRESSES),
      udpPort,
      state: "active",
      offered: new Set(),
      refusedNames: new Set(),
      holdings: new Map(),
      receivedWhole: new Set(),
      stats: undefined,
      sync: sync !== undefined,
    };
    const refusals: udpswarm.IRefusal[] = [];
    const accepted: CheckedManifest[] = [];
    const newFiles: FileRecord[] = [];
    const seenNames = new Set<string>();
    const superseded: number[] = [];
    for (const [i, offer] of offers.entries()) {
      if (seenNames.has(offer.name)) continue;
      seenNames.add(offer.name);
      if (sync !== undefined) {
        // SYNC (§9): a different content is a version, not a conflict; an older one is not held.
        const file = this.#syncOffer(offer, sync.tags[i] ?? CLASSIC_TAG, newFiles, superseded);
        if (file === undefined) continue;
        this.#holdWhole(peer, file);
        accepted.push(offer);
        continue;
      }
      const existingId = this.#fileIdByName.get(offer.name);
      const existing = existingId === undefined ? undefined : this.#files.get(existingId);
      if (existing !== undefined && !sameContent(existing.manifest, offer)) {
        peer.refusedNames.add(offer.name);
        refusals.push({
          reason: RefusalReason.REASON_NAME_CONFLICT,
          fileName: offer.name,
          detail: `a different file named "${offer.name}" is already offered by the swarm`,
        });
        this.#sink.log(`peer ${peer.id}: refused "${offer.name}": name conflict (same name, different content)`);
        continue;
      }
      const file = existing ?? this.#addFile(offer, classicTags?.[i] ?? CLASSIC_TAG);
      if (existing === undefined) newFiles.push(file);
      this.#holdWhole(peer, file);
      accepted.push(offer);
    }
    this.#peers.set(peer.id, peer);
    onAssigned?.(peer.id);

    this.#sink.print(connectBlock(peer.id, accepted));
    // The others hear of the newcomer before it hears of them: its first requests then
    // rarely reach a peer that does not know its address yet (and would drop them).
    for (const other of this.#peers.values()) {
      if (other.id === peer.id || other.state === "leaving") continue;
      this.#sink.send(other.id, { peerJoined: { peer: peerAddress(peer, other) } });
      for (const file of newFiles) {
        if (this.#sees(other, file)) this.#sink.send(other.id, { fileAdded: { file: fileInfo(file) } });
      }
      for (const fileId of peer.offered) {
        this.#sink.send(other.id, { holdersChanged: { peerId: peer.id, fileId, runs: [], complete: true } });
      }
    }
    this.#sink.send(peer.id, {
      welcome: {
        peerId: peer.id,
        files: [...this.#files.values()].filter((f) => this.#sees(peer, f)).map(fileInfo),
        peers: [...this.#peers.values()]
          .filter((p) => p.id !== peer.id && p.state !== "leaving")
          .map((p) => peerAddress(p, peer)),
        holders: this.#holdersSnapshot(peer.id),
        refused: refusals,
        accepted: [...peer.offered].map((id) => this.#files.get(id)).flatMap((f) => (f ? [fileInfo(f)] : [])),
        secret: peer.secret,
      },
    });
    for (const id of superseded) this.#supersede(id);
    this.#evaluateDepartures();
    return { peerId: peer.id };
  }

  // ---------------------------------------------------------------- SYNC (§9) hooks

  /**
   * A sync peer's new file or new version while connected. The newest of its name becomes
   * a record of its own: UPDATE block, FileAdded to those who see it (the author learns its
   * id), and the version it replaces is no longer held by sync peers.
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
    const previous = this.#book.newestId(manifest.name);
    const file = this.#addVersion(manifest, tag);
    this.#holdWhole(peer, file);
    this.#sink.print(updateBlock(peer.id, manifest.name, manifest.chunks));
    for (const other of this.#peers.values()) {
      if (other.state === "leaving") continue;
      if (this.#sees(other, file)) this.#sink.send(other.id, { fileAdded: { file: fileInfo(file) } });
      if (other.id !== peer.id) {
        this.#sink.send(other.id, { holdersChanged: { peerId: peer.id, fileId: file.id, runs: [], complete: true } });
      }
    }
    if (previous !== undefined) this.#supersede(previous);
    return undefined;
  }

  /**
   * The peer no longer holds any of `fileId` (deleted or changed on disk, or a download it
   * dropped). Nothing is printed (deletions are not propagated); the others stop asking it,
   * and a file nobody can complete any more is removed.
   */
  withdraw(peerId: number, fileId: number): string | undefined {
    const peer = this.#peers.get(peerId);
    if (peer === undefined) return "unknown peer";
    const file = this.#files.get(fileId);
    if (file === undefined || !peer.holdings.delete(fileId)) return undefined; // stale, not bad
    peer.offered.delete(fileId);
    file.holders.delete(peer.id);
    file.completeHolders.delete(peer.id);
    for (const other of this.#peers.values()) {
      if (other.id === peer.id || other.state === "leaving") continue;
      this.#sink.send(other.id, { holdersChanged: { peerId: peer.id, fileId, runs: [], withdrawn: true } });
    }
    if (!this.#isAvailable(file)) this.#removeFile(file);
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
    const id = peer.sync ? this.#book.newestId(file.manifest.name) : this.#fileIdByName.get(file.manifest.name);
    return id === file.id;
  }

  #syncOffer(
    offer: CheckedManifest,
    tag: VersionTag,
    newFiles: FileRecord[],
    superseded: number[],
  ): FileRecord | undefined {
    const standing = this.#book.standing(versionFrom(offer, tag));
    if (standing === "older") return undefined;
    if (standing === "same") return this.#files.get(this.#book.newestId(offer.name) ?? 0);
    const previous = this.#book.newestId(offer.name);
    if (previous !== undefined) superseded.push(previous);
    const file = this.#addVersion(offer, tag);
    newFiles.push(file);
    return file;
  }

  #addVersion(manifest: CheckedManifest, tag: VersionTag): FileRecord {
    const file = this.#addFile(manifest, tag);
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
        old.holders.delete(p.id);
        old.completeHolders.delete(p.id);
      }
      if (p.state !== "leaving") this.#sink.send(p.id, { fileRemoved: { fileId: old.id } });
    }
    if (!this.#isAvailable(old)) this.#removeFile(old);
  }

  // ---------------------------------------------------------------- end of SYNC hooks

  #holdWhole(peer: PeerRecord, file: FileRecord): void {
    peer.offered.add(file.id);
    peer.holdings.set(file.id, { bits: undefined, complete: true });
    file.holders.add(peer.id);
    file.completeHolders.add(peer.id);
  }

  /**
   * The peer reports chunks it has verified and stored. Prints one ACQUIRED line per
   * newly held chunk and tells the other peers. Returns a reason when the report is bad.
   */
  have(peerId: number, fileId: number, flatRuns: readonly number[]): string | undefined {
    const peer = this.#peers.get(peerId);
    if (peer === undefined) return "unknown peer";
    const file = this.#files.get(fileId);
    if (file === undefined) return undefined; // a file removed meanwhile: stale, not bad
    const chunks = file.manifest.chunks;
    const runs = parseRuns(flatRuns, chunks);
    if (runs === undefined) return `bad chunk runs for file ${fileId}`;
    if (peer.refusedNames.has(file.manifest.name)) return `report for refused file ${file.manifest.name}`;
    let holding = peer.holdings.get(fileId);
    if (holding === undefined) {
      holding = { bits: new Bitmap(chunks), complete: false };
      peer.holdings.set(fileId, holding);
    }
    const bits = holding.bits;
    if (holding.complete || bits === undefined) return undefined;
    const newRuns: Array<[number, number]> = [];
    const lines: string[] = [];
    for (const [first, count] of runs) {
      let runStart = -1;
      for (let c = first; c <= first + count; c++) {
        const added = c < first + count && bits.set(c);
        if (added) {
          lines.push(acquiredLine(peer.id, c, chunks, file.manifest.name));
          if (runStart < 0) runStart = c;
        } else if (runStart >= 0) {
          newRuns.push([runStart, c - runStart]);
          runStart = -1;
        }
      }
    }
    if (lines.length > 0) this.#sink.print(lines);
    if (bits.count > 0 || chunks === 0) file.holders.add(peer.id);
    const nowComplete = bits.complete;
    if (nowComplete) {
      holding.complete = true;
      holding.bits = undefined;
      file.completeHolders.add(peer.id);
      if (!peer.offered.has(fileId)) peer.receivedWhole.add(file.manifest.name);
    }
    if (newRuns.length > 0 || nowComplete) {
      for (const other of this.#peers.values()) {
        if (other.id === peer.id || other.state === "leaving") continue;
        this.#sink.send(other.id, {
          holdersChanged: { peerId: peer.id, fileId, runs: flattenRuns(newRuns), complete: nowComplete },
        });
      }
    }
    if (nowComplete) this.#evaluateDepartures();
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
    this.#sink.print(disconnectBlock(peer.id, peer.receivedWhole));
    if (peer.state !== "leaving") {
      for (const other of this.#peers.values()) {
        if (other.state !== "leaving") this.#sink.send(other.id, { peerLeft: { peerId } });
      }
    }
    this.#forgetHoldings(peer);
    this.#evaluateDepartures();
  }

  /** A peer's chunks no longer count: files no live peer can complete any more are dropped. */
  #forgetHoldings(peer: PeerRecord): void {
    for (const fileId of peer.holdings.keys()) {
      const file = this.#files.get(fileId);
      if (file === undefined) continue;
      file.holders.delete(peer.id);
      file.completeHolders.delete(peer.id);
      if (!this.#isAvailable(file)) this.#removeFile(file);
    }
    peer.holdings.clear();
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
        refusedNames: [...p.refusedNames],
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

  #addFile(manifest: CheckedManifest, tag: VersionTag): FileRecord {
    const file: FileRecord = { id: this.#nextFileId++, manifest, holders: new Set(), completeHolders: new Set(), tag };
    this.#files.set(file.id, file);
    // SYNC (§9): a name's first record is what classic peers see, and sync peers until a newer one.
    if (!this.#fileIdByName.has(manifest.name)) this.#fileIdByName.set(manifest.name, file.id);
    if (this.#book.newestId(manifest.name) === undefined) this.#book.record(file.id, versionFrom(manifest, tag));
    return file;
  }

  #removeFile(file: FileRecord): void {
    // Said only when it costs someone something: after a normal departure nobody lacks it.
    const lacking = [...this.#peers.values()]
      .filter((p) => p.state !== "leaving" && !p.refusedNames.has(file.manifest.name) && this.#sees(p, file))
      .map((p) => p.id);
    this.#files.delete(file.id);
    if (this.#fileIdByName.get(file.manifest.name) === file.id) this.#fileIdByName.delete(file.manifest.name);
    this.#book.forget(file.manifest.name, file.id);
    if (lacking.length > 0) {
      this.#sink.log(
        `file "${file.manifest.name}" is no longer available: no live peer holds all of it ` +
          `(${lacking.length === 1 ? "peer" : "peers"} ${lacking.join(", ")} did not get it)`,
      );
    }
    for (const peer of this.#peers.values()) {
      peer.holdings.delete(file.id);
      if (peer.state !== "leaving") this.#sink.send(peer.id, { fileRemoved: { fileId: file.id } });
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

  #holdersSnapshot(exceptPeer: number): udpswarm.IHoldersChanged[] {
    const out: udpswarm.IHoldersChanged[] = [];
    for (const peer of this.#peers.values()) {
      if (peer.id === exceptPeer || peer.state === "leaving") continue;
      for (const [fileId, h] of peer.holdings) {
        if (h.complete) out.push({ peerId: peer.id, fileId, runs: [], complete: true });
        else if (h.bits !== undefined && h.bits.count > 0) {
          out.push({ peerId: peer.id, fileId, runs: flattenRuns(h.bits.runs()), complete: false });
        }
      }
    }
    return out;
  }

  /** Whether `peer` holds every available file it has not refused. */
  #holdsEverything(peer: PeerRecord): boolean {
    for (const file of this.#files.values()) {
      if (peer.refusedNames.has(file.manifest.name) || !this.#sees(peer, file)) continue;
      if (!file.completeHolders.has(peer.id)) return false;
    }
    return true;
  }

  /**
   * Grants departure to every ready peer that holds every available file while every other
   * live peer holds them too (so nothing it holds is still lacked by anyone). Runs only on
   * events that can change the answer: a join, a completed file, a departure, a new ready.
   */
  #evaluateDepartures(): void {
    const ready = [...this.#peers.values()].filter((p) => p.state === "ready");
    if (ready.length === 0) return;
    let granted = false;
    for (const peer of ready) {
      if (!this.#holdsEverything(peer)) continue;
      let someoneLacks = false;
      for (const other of this.#peers.values()) {
        if (other.id === peer.id || other.state === "leaving") continue;
        for (const file of this.#files.values()) {
          if (other.refusedNames.has(file.manifest.name) || !this.#sees(other, file)) continue;
          // SYNC (§9): a sync peer lacking a version the ready peer does not see is no reason to stay.
          if (other.sync && !this.#sees(peer, file)) continue;
          if (!file.completeHolders.has(other.id)) {
            someoneLacks = true;
            break;
          }
        }
        if (someoneLacks) break;
      }
      if (someoneLacks) continue;
      peer.state = "leaving";
      this.#sink.send(peer.id, { leaveGranted: {} });
      for (const other of this.#peers.values()) {
        if (other.id !== peer.id && other.state !== "leaving")
          this.#sink.send(other.id, { peerLeft: { peerId: peer.id } });
      }
      // From now on it is gone for everyone else: a newcomer must not count on its chunks.
      this.#forgetHoldings(peer);
      granted = true;
    }
    // Files that went with a granted peer may free ready peers examined before it.
    if (granted) this.#evaluateDepartures();
  }
}

function sameContent(a: CheckedManifest, b: CheckedManifest): boolean {
  return a.size === b.size && a.sha256.equals(b.sha256);
}

function fileInfo(file: FileRecord): udpswarm.IFileInfo {
  return { fileId: file.id, manifest: { ...manifestToWire(file.manifest), ...tagToWire(file.tag) } };
}

/** Interface addresses kept per peer. */
const MAX_ADDRESSES = 8;

function isLoopback(host: string): boolean {
  return host.startsWith("127.") || host === "::1";
}

/**
 * How `peer` is introduced to `receiver`, with the proof its requests will carry. The
 * address is the one the tracker sees, unless that is a loopback address and the receiver
 * is elsewhere: then one the peer announced.
 */
function peerAddress(peer: PeerRecord, receiver: PeerRecord): udpswarm.IPeerAddress {
  const host =
    isLoopback(peer.host) && !isLoopback(receiver.host) && peer.addresses[0] !== undefined
      ? peer.addresses[0]
      : peer.host;
  const address: udpswarm.IPeerAddress = {
    peerId: peer.id,
    host,
    udpPort: peer.udpPort,
    expectedAuth: requestAuth(peer.secret, receiver.id),
  };
  if (peer.addresses.length > 0) address.aliases = [...new Set([peer.host, ...peer.addresses])];
  return address;
}
