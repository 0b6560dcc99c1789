import type { TransferEngine } from "../transfer/engine.js";
import { requestAuth } from "../wire/auth.js";
import type { udpswarm } from "../wire/tracker-frame.js";

/** What this peer (or client) is on the swarm: its id, its secret, its own addresses. */
export type OwnIdentity = {
  readonly peerId: number;
  readonly secret: Uint8Array;
  readonly localAddresses: ReadonlySet<string>;
};

/**
 * Hands a peer the tracker introduced to the engine, with the proofs both ways. Returns its
 * id, or undefined when the introduction names nobody or ourselves.
 */
export function addRemoteFrom(engine: TransferEngine, p: udpswarm.IPeerAddress, own: OwnIdentity): number | undefined {
  const id = p.peerId ?? 0;
  if (id === 0 || id === own.peerId) return undefined;
  const host = p.host ?? "";
  const aliases = [...(p.aliases ?? [])];
  // A peer on this very host may reach us through loopback: its datagrams then come from 127.0.0.1.
  if (host.startsWith("127.") || aliases.some((a) => own.localAddresses.has(a))) aliases.push("127.0.0.1");
  engine.addRemote(
    id,
    host,
    p.udpPort ?? 0,
    { inbound: p.expectedAuth ?? new Uint8Array(0), outbound: requestAuth(own.secret, id) },
    aliases,
  );
  return id;
}
