import { createHmac } from "node:crypto";

/** Bytes of a peer's secret (tracker-issued) and of a request's proof of origin. */
export const SECRET_BYTES = 16;
export const AUTH_BYTES = 8;

/**
 * The proof a peer's requests to `toPeerId` carry: HMAC-SHA256 of the receiver's id under
 * the sender's secret, cut to 8 bytes. The tracker gives each receiver the value to
 * expect, so a datagram with a spoofed source address cannot get an answer (and the
 * receiver learns nothing that would let it impersonate the sender to anyone else).
 */
export function requestAuth(secret: Uint8Array, toPeerId: number): Buffer {
  const id = Buffer.allocUnsafe(4);
  id.writeUInt32BE(toPeerId >>> 0, 0);
  return createHmac("sha256", secret).update(id).digest().subarray(0, AUTH_BYTES);
}
