import { createHmac } from "node:crypto";

/** Bytes of a peer's secret (tracker-issued), of a pair key, and of a request's proof of origin. */
export const SECRET_BYTES = 16;
export const AUTH_BYTES = 8;
export const PROOF_BYTES = 8;

/**
 * The key of the proofs a peer's requests to `toPeerId` carry: HMAC-SHA256 of the
 * receiver's id under the sender's secret, cut to 8 bytes. The tracker gives each receiver
 * the key of each sender (over TCP); it never crosses the peer link, so a datagram with a
 * spoofed source address cannot carry a valid proof, and the receiver learns nothing that
 * would let it impersonate the sender to anyone else.
 */
export function requestAuth(secret: Uint8Array, toPeerId: number): Buffer {
  const id = Buffer.allocUnsafe(4);
  id.writeUInt32BE(toPeerId >>> 0, 0);
  return createHmac("sha256", secret).update(id).digest().subarray(0, AUTH_BYTES);
}

/** Body kinds a proof is bound to (a request's proof is no hash request's). */
export const PROOF_REQUEST = 1;
export const PROOF_HASH_REQUEST = 2;

/**
 * The proof of one request (see AddressCookie in proto/swarm.proto): bound to its kind,
 * sequence number, token and file, so it is valid for that one request only; the receiver
 * accepts each sequence number once. One HMAC per request (up to 64 chunks), none per chunk.
 */
export function requestProof(key: Uint8Array, kind: number, seq: number, token: number, fileId: number): Buffer {
  const msg = Buffer.allocUnsafe(13);
  msg[0] = kind;
  msg.writeUInt32BE(seq >>> 0, 1);
  msg.writeUInt32BE(token >>> 0, 5);
  msg.writeUInt32BE(fileId >>> 0, 9);
  return createHmac("sha256", key).update(msg).digest().subarray(0, PROOF_BYTES);
}
