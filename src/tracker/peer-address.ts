import { isIPv4 } from "node:net";
import { requestAuth } from "../wire/auth.js";
import type { udpswarm } from "../wire/tracker-frame.js";

/** What the tracker knows of a connected peer (or client) that it introduces to others. */
export type Introduced = {
  readonly id: number;
  readonly host: string;
  readonly udpPort: number;
  readonly secret: Uint8Array;
  /** Addresses it announced, loopback ones left out. */
  readonly addresses: readonly string[];
};

/** Interface addresses kept per peer. */
const MAX_ADDRESSES = 8;

/** The addresses a peer announced that others may reach it by: IPv4, not loopback, at most 8. */
export function announcedAddresses(addresses: readonly string[]): string[] {
  return [...new Set(addresses.filter((a) => isIPv4(a) && !isLoopback(a)))].slice(0, MAX_ADDRESSES);
}

export function isLoopback(host: string): boolean {
  return host.startsWith("127.") || host === "::1";
}

/**
 * How `peer` is introduced to `receiver`, with the proof its requests will carry. The
 * address is the one the tracker sees, unless that is a loopback address and the receiver
 * is elsewhere: then one the peer announced. ACCOUNTS (§10): `groups`, the groups the two
 * share, when clients are introduced.
 */
export function peerAddress(
  peer: Introduced,
  receiver: Pick<Introduced, "id" | "host">,
  groups?: readonly string[],
): udpswarm.IPeerAddress {
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
  if (groups !== undefined) address.groups = [...groups];
  if (peer.addresses.length > 0) address.aliases = [...new Set([peer.host, ...peer.addresses])];
  return address;
}
