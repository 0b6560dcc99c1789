import { randomBytes, timingSafeEqual } from "node:crypto";
import { announcedAddresses, peerAddress } from "../tracker/peer-address.js";
import { SECRET_BYTES } from "../wire/auth.js";
import type { FrameBody, udpswarm } from "../wire/tracker-frame.js";

type LiveClient = {
  readonly id: number;
  readonly secret: Buffer;
  host: string;
  udpPort: number;
  addresses: readonly string[];
  /** SEVERAL TRACKERS (§11): LOCAL when connected here, else the id of the tracker it is connected to. */
  owner: number;
  user: { readonly id: number; readonly name: string } | undefined;
  /** Names of the groups its user is a member of. */
  groups: ReadonlySet<string>;
  /** Files it serves, with their group. */
  readonly sharing: Map<number, string>;
  /** Files it is downloading, with their group. */
  readonly wants: Map<number, string>;
};

export interface ClientSwarmSink {
  send(peerId: number, body: FrameBody): void;
}

/** The owner of a client connected to this tracker. */
export const LOCAL = 0;
/** How long the id and secret of a client that went stay claimable by it (ms). */
export const RESUME_WINDOW_MS = 120_000;

/**
 * SEVERAL TRACKERS (§11): a change of live state made here, which the other trackers of
 * the service replay (accounts/live-log.ts). Soft state: rebuilt when clients re-announce.
 */
export type LiveChange =
  | {
      readonly kind: "online";
      readonly peerId: number;
      readonly host: string;
      readonly udpPort: number;
      readonly addresses: readonly string[];
      /** base64 */
      readonly secret: string;
      readonly user: { readonly id: number; readonly name: string };
      readonly groups: readonly string[];
    }
  | { readonly kind: "offline"; readonly peerId: number }
  | { readonly kind: "share"; readonly peerId: number; readonly fileId: number; readonly group: string }
  | { readonly kind: "unshare"; readonly peerId: number; readonly fileId: number }
  | { readonly kind: "user-groups"; readonly userId: number; readonly groups: readonly string[] }
  | { readonly kind: "unshare-user"; readonly userId: number; readonly fileId: number }
  | { readonly kind: "file-deleted"; readonly fileId: number };

/**
 * The live side of accounts mode, free of I/O: the connected clients, who is logged in as
 * whom, which groups they are in, which files each serves or fetches now. Two clients
 * are introduced to each other (Updates.joined, with the pair keys of the data path) only
 * while their users share a group, and each is told which groups: a client serves a peer
 * the files of those groups only. Holders of a file are announced only to clients that
 * fetch it, which the service lets only members do. Nothing here is durable: clients
 * re-announce what they share after a restart.
 */
export class ClientSwarm {
  readonly #sink: ClientSwarmSink;
  readonly #random: (n: number) => Buffer;
  readonly #clients = new Map<number, LiveClient>();
  #nextId = 1;
  /** Added to every id given here, so that the trackers of one service never give the same. */
  #idBase = 0;
  /** Listens to the changes made here (not to those replayed from other trackers). */
  #changed: ((change: LiveChange) => void) | undefined;
  /** Replaying another tracker's change: nothing is emitted. */
  #replaying = false;
  /** Clients that went (or whose tracker died): their secret, so they may claim their id again. */
  readonly #gone = new Map<number, { readonly secret: Buffer; readonly until: number }>();

  constructor(sink: ClientSwarmSink, random: (n: number) => Buffer = randomBytes) {
    this.#sink = sink;
    this.#random = random;
  }

  /** SEVERAL TRACKERS: ids given from now on are base + 1, base + 2, …; changes go to `changed`. */
  joinService(idBase: number, changed: (change: LiveChange) => void): void {
    this.#idBase = idBase;
    this.#changed = changed;
  }

  #emit(change: LiveChange): void {
    if (!this.#replaying) this.#changed?.(change);
  }

  /** To clients connected here only: another tracker tells its own clients the same news. */
  #send(peerId: number, body: FrameBody): void {
    if (this.#isLocal(peerId)) this.#sink.send(peerId, body);
  }

  #isLocal(peerId: number): boolean {
    return this.#clients.get(peerId)?.owner === LOCAL;
  }

  get size(): number {
    return this.#clients.size;
  }

  /** The live client already at that UDP endpoint, if any (a client may not take another's). */
  endpointOwner(host: string, udpPort: number): number | undefined {
    for (const c of this.#clients.values())
      if (c.host === host && c.udpPort === udpPort && c.owner === LOCAL) return c.id;
    return undefined;
  }

  /** A client connected: its peer id and the secret its request proofs derive from. */
  open(host: string, udpPort: number, addresses: readonly string[]): { peerId: number; secret: Buffer } {
    const client: LiveClient = {
      id: (this.#idBase + this.#nextId++) >>> 0,
      secret: this.#random(SECRET_BYTES),
      host,
      udpPort,
      addresses: announcedAddresses(addresses),
      owner: LOCAL,
      user: undefined,
      groups: new Set(),
      sharing: new Map(),
      wants: new Map(),
    };
    this.#clients.set(client.id, client);
    return { peerId: client.id, secret: client.secret };
  }

  /**
   * SEVERAL TRACKERS: a client that moved here from another tracker of the service claims
   * its peer id back, proving it with its secret. True when taken over: the client keeps
   * its id, secret, user, groups and shares, and no peer hears of any change.
   */
  adopt(
    peerId: number,
    secret: Uint8Array,
    host: string,
    udpPort: number,
    addresses: readonly string[],
    now: number,
  ): boolean {
    const known = this.#clients.get(peerId);
    const gone = this.#gone.get(peerId);
    const stored = known?.secret ?? (gone !== undefined && gone.until > now ? gone.secret : undefined);
    if (stored === undefined || stored.length !== secret.length || !timingSafeEqual(stored, secret)) return false;
    if (known !== undefined && known.owner === LOCAL) return false;
    this.#gone.delete(peerId);
    const client: LiveClient = known ?? {
      id: peerId,
      secret: Buffer.from(stored),
      host,
      udpPort,
      addresses: [],
      owner: LOCAL,
      user: undefined,
      groups: new Set(),
      sharing: new Map(),
      wants: new Map(),
    };
    client.owner = LOCAL;
    client.host = host;
    client.udpPort = udpPort;
    client.addresses = announcedAddresses(addresses);
    this.#clients.set(peerId, client);
    if (client.user !== undefined) this.#emit(onlineChange(client));
    return true;
  }

  /**
   * SEVERAL TRACKERS: a client adopted here (after its welcome) is introduced again to every
   * client it shares a group with, and told again of the holders of what it fetches. The
   * tracker it left may have lost some of those introductions on the way (it was cut off),
   * and the client ignores holders it was not introduced to. Harmless when it had them
   * all: a client keeps a peer it already knows as it is. Nobody else hears anything.
   */
  reintroduce(peerId: number): void {
    const client = this.#clients.get(peerId);
    if (client === undefined || client.owner !== LOCAL || client.user === undefined) return;
    const joined: udpswarm.IPeerAddress[] = [];
    for (const other of this.#clients.values()) {
      if (other.id === peerId || other.user === undefined) continue;
      const groups = sharedGroups(client, other);
      if (groups.length > 0) joined.push(peerAddress(other, client, groups));
    }
    if (joined.length > 0) this.#send(peerId, { updates: { joined } });
    for (const fileId of client.wants.keys())
      for (const other of this.#clients.values())
        if (other.id !== peerId && other.sharing.has(fileId)) this.#announceHolder(client, other, fileId);
  }

  userOf(peerId: number): { readonly id: number; readonly name: string } | undefined {
    return this.#clients.get(peerId)?.user;
  }

  /** The client logged in as `user`, a member of `groups`. */
  login(peerId: number, user: { id: number; name: string }, groups: readonly string[]): void {
    const client = this.#clients.get(peerId);
    if (client === undefined) return;
    // The same user again (a session resumed on the tracker it moved to): no churn.
    if (client.user !== undefined && client.user.id !== user.id) this.logout(peerId);
    client.user = user;
    this.#setGroups(client, new Set(groups));
    if (client.owner === LOCAL) this.#emit(onlineChange(client));
  }

  /** The client logged out (or went): it is no longer introduced to anyone, and serves and fetches nothing. */
  logout(peerId: number): void {
    const client = this.#clients.get(peerId);
    if (client === undefined || client.user === undefined) return;
    client.sharing.clear();
    client.wants.clear();
    this.#setGroups(client, new Set());
    client.user = undefined;
    if (client.owner === LOCAL) this.#emit({ kind: "offline", peerId });
  }

  /** The client's connection here closed (ignored once it moved to another tracker). */
  close(peerId: number, now = Date.now()): void {
    const client = this.#clients.get(peerId);
    if (client === undefined || client.owner !== LOCAL) return;
    this.#forget(client, now);
  }

  #forget(client: LiveClient, now: number): void {
    this.logout(client.id);
    this.#clients.delete(client.id);
    this.#gone.set(client.id, { secret: client.secret, until: now + RESUME_WINDOW_MS });
    for (const [id, g] of this.#gone) if (g.until <= now) this.#gone.delete(id);
  }

  /** `userId`'s memberships changed: every client logged in as that user is re-introduced. */
  groupsChanged(userId: number, groups: readonly string[]): void {
    this.#emit({ kind: "user-groups", userId, groups });
    for (const client of this.#clients.values()) {
      if (client.user?.id !== userId) continue;
      const now = new Set(groups);
      for (const [fileId, group] of client.sharing) if (!now.has(group)) client.sharing.delete(fileId);
      for (const [fileId, group] of client.wants) if (!now.has(group)) client.wants.delete(fileId);
      this.#setGroups(client, now);
    }
  }

  /** The client serves `fileId` (of `group`) from now on: those fetching it hear of it. */
  share(peerId: number, fileId: number, group: string): void {
    const client = this.#clients.get(peerId);
    if (client === undefined || client.user === undefined) return;
    if (client.owner === LOCAL) this.#emit({ kind: "share", peerId, fileId, group });
    client.sharing.set(fileId, group);
    client.wants.delete(fileId);
    for (const other of this.#clients.values()) {
      if (other.id !== peerId && other.wants.has(fileId)) this.#announceHolder(other, client, fileId);
    }
  }

  unshare(peerId: number, fileId: number): void {
    if (this.#isLocal(peerId)) this.#emit({ kind: "unshare", peerId, fileId });
    this.#clients.get(peerId)?.sharing.delete(fileId);
  }

  /** Every live client of `userId` stops serving `fileId` (the user's share was removed). */
  unshareUser(userId: number, fileId: number): void {
    this.#emit({ kind: "unshare-user", userId, fileId });
    for (const c of this.#clients.values()) if (c.user?.id === userId) c.sharing.delete(fileId);
  }

  /** The file's record is gone: nobody serves or fetches it any more. */
  fileDeleted(fileId: number): void {
    this.#emit({ kind: "file-deleted", fileId });
    for (const c of this.#clients.values()) {
      const involved = c.sharing.delete(fileId) || c.wants.delete(fileId);
      if (involved) this.#send(c.id, { updates: { removed: [fileId] } });
    }
  }

  /**
   * The client fetches `fileId` (of `group`): it is told of every live holder now, and of
   * later ones as they come. Returns how many live clients serve it (not counting itself).
   */
  want(peerId: number, fileId: number, group: string): number {
    const client = this.#clients.get(peerId);
    if (client === undefined) return 0;
    client.wants.set(fileId, group);
    let holders = 0;
    for (const other of this.#clients.values()) {
      if (other.id === peerId || !other.sharing.has(fileId)) continue;
      this.#announceHolder(client, other, fileId);
      holders++;
    }
    return holders;
  }

  /** Live clients serving the file, other than `exceptPeer`. */
  holderCount(fileId: number, exceptPeer = 0): number {
    let n = 0;
    for (const c of this.#clients.values()) if (c.id !== exceptPeer && c.sharing.has(fileId)) n++;
    return n;
  }

  /** Users with at least one live client serving the file. */
  onlineSharers(fileId: number): Set<number> {
    const users = new Set<number>();
    for (const c of this.#clients.values()) if (c.user !== undefined && c.sharing.has(fileId)) users.add(c.user.id);
    return users;
  }

  /**
   * SEVERAL TRACKERS: replays a change made on tracker `trackerId`. A client's changes count
   * only from the tracker it is connected to now (a late "offline" from the tracker it left
   * is ignored). `groupsOf` is the store's truth for the user of an "online" change.
   */
  replay(trackerId: number, change: LiveChange): void {
    this.#replaying = true;
    try {
      this.#replay(trackerId, change);
    } finally {
      this.#replaying = false;
    }
  }

  #replay(trackerId: number, change: LiveChange): void {
    const owned = (peerId: number) => this.#clients.get(peerId)?.owner === trackerId;
    switch (change.kind) {
      case "online": {
        const secret = Buffer.from(change.secret, "base64");
        let client = this.#clients.get(change.peerId);
        if (client !== undefined && !client.secret.equals(secret)) {
          this.#forget(client, Date.now());
          client = undefined;
        }
        if (client === undefined) {
          client = {
            id: change.peerId,
            secret,
            host: change.host,
            udpPort: change.udpPort,
            addresses: announcedAddresses(change.addresses),
            owner: trackerId,
            user: undefined,
            groups: new Set(),
            sharing: new Map(),
            wants: new Map(),
          };
          this.#clients.set(client.id, client);
        }
        // A client of ours that moved away: its old link here no longer speaks for it.
        client.owner = trackerId;
        client.host = change.host;
        client.udpPort = change.udpPort;
        this.#gone.delete(client.id);
        this.login(client.id, change.user, change.groups);
        return;
      }
      case "offline": {
        const client = this.#clients.get(change.peerId);
        if (client !== undefined && client.owner === trackerId) this.#forget(client, Date.now());
        return;
      }
      case "share":
        if (owned(change.peerId)) this.share(change.peerId, change.fileId, change.group);
        return;
      case "unshare":
        if (owned(change.peerId)) this.unshare(change.peerId, change.fileId);
        return;
      case "user-groups":
        this.groupsChanged(change.userId, change.groups);
        return;
      case "unshare-user":
        this.unshareUser(change.userId, change.fileId);
        return;
      case "file-deleted":
        this.fileDeleted(change.fileId);
        return;
    }
  }

  /** SEVERAL TRACKERS: tracker `trackerId` died: its clients are gone (until they come back elsewhere). */
  trackerGone(trackerId: number, now = Date.now()): number {
    let n = 0;
    this.#replaying = true;
    try {
      for (const c of [...this.#clients.values()]) {
        if (c.owner !== trackerId) continue;
        this.#forget(c, now);
        n++;
      }
    } finally {
      this.#replaying = false;
    }
    return n;
  }

  knows(peerId: number): boolean {
    return this.#clients.has(peerId);
  }

  /** Clients connected to the tracker `owner` (LOCAL: here). */
  clientsOf(owner: number): number {
    let n = 0;
    for (const c of this.#clients.values()) if (c.owner === owner) n++;
    return n;
  }

  #announceHolder(to: LiveClient, holder: LiveClient, fileId: number): void {
    // Only between clients introduced to each other (they share the file's group).
    if (sharedGroups(to, holder).length === 0) return;
    this.#send(to.id, { updates: { holders: [{ peerId: holder.id, fileId, runs: [], complete: true }] } });
  }

  /** Re-introduces the client to every other as the groups they share change. */
  #setGroups(client: LiveClient, groups: ReadonlySet<string>): void {
    const before = new Map<number, string[]>();
    for (const other of this.#clients.values()) {
      if (other.id !== client.id && other.user !== undefined) before.set(other.id, sharedGroups(client, other));
    }
    client.groups = groups;
    for (const other of this.#clients.values()) {
      if (other.id === client.id || other.user === undefined) continue;
      const was = before.get(other.id) ?? [];
      const now = client.user === undefined ? [] : sharedGroups(client, other);
      if (now.join("\u0000") === was.join("\u0000")) continue;
      if (now.length === 0) {
        this.#send(other.id, { updates: { left: [client.id] } });
        this.#send(client.id, { updates: { left: [other.id] } });
        continue;
      }
      // The newcomer is told of the other first, so its first requests find keys there.
      this.#send(other.id, { updates: { joined: [peerAddress(client, other, now)] } });
      this.#send(client.id, { updates: { joined: [peerAddress(other, client, now)] } });
      if (was.length === 0) {
        for (const fileId of client.wants.keys())
          if (other.sharing.has(fileId)) this.#announceHolder(client, other, fileId);
        for (const fileId of other.wants.keys())
          if (client.sharing.has(fileId)) this.#announceHolder(other, client, fileId);
      }
    }
  }
}

function onlineChange(c: LiveClient): LiveChange {
  return {
    kind: "online",
    peerId: c.id,
    host: c.host,
    udpPort: c.udpPort,
    addresses: c.addresses,
    secret: c.secret.toString("base64"),
    user: { id: c.user?.id ?? 0, name: c.user?.name ?? "" },
    groups: [...c.groups].sort(),
  };
}

function sharedGroups(a: LiveClient, b: LiveClient): string[] {
  if (a.user === undefined || b.user === undefined) return [];
  return [...a.groups].filter((g) => b.groups.has(g)).sort();
}
