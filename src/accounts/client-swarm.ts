import { randomBytes } from "node:crypto";
import { announcedAddresses, peerAddress } from "../tracker/peer-address.js";
import { SECRET_BYTES } from "../wire/auth.js";
import type { FrameBody } from "../wire/tracker-frame.js";

type LiveClient = {
  readonly id: number;
  readonly secret: Buffer;
  readonly host: string;
  readonly udpPort: number;
  readonly addresses: readonly string[];
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

  constructor(sink: ClientSwarmSink, random: (n: number) => Buffer = randomBytes) {
    this.#sink = sink;
    this.#random = random;
  }

  get size(): number {
    return this.#clients.size;
  }

  /** The live client already at that UDP endpoint, if any (a client may not take another's). */
  endpointOwner(host: string, udpPort: number): number | undefined {
    for (const c of this.#clients.values()) if (c.host === host && c.udpPort === udpPort) return c.id;
    return undefined;
  }

  /** A client connected: its peer id and the secret its request proofs derive from. */
  open(host: string, udpPort: number, addresses: readonly string[]): { peerId: number; secret: Buffer } {
    const client: LiveClient = {
      id: this.#nextId++,
      secret: this.#random(SECRET_BYTES),
      host,
      udpPort,
      addresses: announcedAddresses(addresses),
      user: undefined,
      groups: new Set(),
      sharing: new Map(),
      wants: new Map(),
    };
    this.#clients.set(client.id, client);
    return { peerId: client.id, secret: client.secret };
  }

  userOf(peerId: number): { readonly id: number; readonly name: string } | undefined {
    return this.#clients.get(peerId)?.user;
  }

  /** The client logged in as `user`, a member of `groups`. */
  login(peerId: number, user: { id: number; name: string }, groups: readonly string[]): void {
    const client = this.#clients.get(peerId);
    if (client === undefined) return;
    if (client.user !== undefined) this.logout(peerId);
    client.user = user;
    this.#setGroups(client, new Set(groups));
  }

  /** The client logged out (or went): it is no longer introduced to anyone, and serves and fetches nothing. */
  logout(peerId: number): void {
    const client = this.#clients.get(peerId);
    if (client === undefined || client.user === undefined) return;
    for (const fileId of [...client.sharing.keys()]) this.unshare(peerId, fileId);
    client.wants.clear();
    this.#setGroups(client, new Set());
    client.user = undefined;
  }

  close(peerId: number): void {
    this.logout(peerId);
    this.#clients.delete(peerId);
  }

  /** `userId`'s memberships changed: every client logged in as that user is re-introduced. */
  groupsChanged(userId: number, groups: readonly string[]): void {
    for (const client of this.#clients.values()) {
      if (client.user?.id !== userId) continue;
      const now = new Set(groups);
      for (const [fileId, group] of client.sharing) if (!now.has(group)) this.unshare(client.id, fileId);
      for (const [fileId, group] of client.wants) if (!now.has(group)) client.wants.delete(fileId);
      this.#setGroups(client, now);
    }
  }

  /** The client serves `fileId` (of `group`) from now on: those fetching it hear of it. */
  share(peerId: number, fileId: number, group: string): void {
    const client = this.#clients.get(peerId);
    if (client === undefined || client.user === undefined) return;
    client.sharing.set(fileId, group);
    client.wants.delete(fileId);
    for (const other of this.#clients.values()) {
      if (other.id !== peerId && other.wants.has(fileId)) this.#announceHolder(other, client, fileId);
    }
  }

  unshare(peerId: number, fileId: number): void {
    this.#clients.get(peerId)?.sharing.delete(fileId);
  }

  /** Every live client of `userId` stops serving `fileId` (the user's share was removed). */
  unshareUser(userId: number, fileId: number): void {
    for (const c of this.#clients.values()) if (c.user?.id === userId) c.sharing.delete(fileId);
  }

  /** The file's record is gone: nobody serves or fetches it any more. */
  fileDeleted(fileId: number): void {
    for (const c of this.#clients.values()) {
      const involved = c.sharing.delete(fileId) || c.wants.delete(fileId);
      if (involved) this.#sink.send(c.id, { updates: { removed: [fileId] } });
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

  #announceHolder(to: LiveClient, holder: LiveClient, fileId: number): void {
    // Only between clients introduced to each other (they share the file's group).
    if (sharedGroups(to, holder).length === 0) return;
    this.#sink.send(to.id, { updates: { holders: [{ peerId: holder.id, fileId, runs: [], complete: true }] } });
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
        this.#sink.send(other.id, { updates: { left: [client.id] } });
        this.#sink.send(client.id, { updates: { left: [other.id] } });
        continue;
      }
      // The newcomer is told of the other first, so its first requests find keys there.
      this.#sink.send(other.id, { updates: { joined: [peerAddress(client, other, now)] } });
      this.#sink.send(client.id, { updates: { joined: [peerAddress(other, client, now)] } });
      if (was.length === 0) {
        for (const fileId of client.wants.keys())
          if (other.sharing.has(fileId)) this.#announceHolder(client, other, fileId);
        for (const fileId of other.wants.keys())
          if (client.sharing.has(fileId)) this.#announceHolder(other, client, fileId);
      }
    }
  }
}

function sharedGroups(a: LiveClient, b: LiveClient): string[] {
  if (a.user === undefined || b.user === undefined) return [];
  return [...a.groups].filter((g) => b.groups.has(g)).sort();
}
