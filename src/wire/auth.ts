import { type Cipher, createCipheriv, createHmac } from "node:crypto";

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

/** Bytes of a chunk's receipt share and of a piece's receipt (their XOR). */
export const RECEIPT_BYTES = 8;
const RECEIPT_LABEL = Buffer.from("udpswarm receipt");
const AES_BLOCK = 16;

/**
 * The key of the receipt shares `secret`'s owner puts in the chunks of `fileId` it sends to
 * `toPeerId` (see ChunkHeader in proto/swarm.proto). The tracker knows every peer's secret,
 * so it can check a receipt; the receiver cannot make one.
 */
export function receiptKey(secret: Uint8Array, toPeerId: number, fileId: number): Buffer {
  const msg = Buffer.allocUnsafe(RECEIPT_LABEL.length + 8);
  RECEIPT_LABEL.copy(msg, 0);
  msg.writeUInt32BE(toPeerId >>> 0, RECEIPT_LABEL.length);
  msg.writeUInt32BE(fileId >>> 0, RECEIPT_LABEL.length + 4);
  return createHmac("sha256", secret).update(msg).digest().subarray(0, 16);
}

/**
 * The receipt shares of `chunks` (0-based chunk indices) under `key`: share i is at
 * `i * 16` of the result (its first RECEIPT_BYTES bytes count). One cipher call for all.
 */
export function receiptShares(key: Uint8Array, chunks: ArrayLike<number>, from = 0, to = chunks.length): Buffer {
  return new ReceiptCipher(key).shares(chunks, from, to);
}

/**
 * The shares of one (receiver, file) key: the cipher is kept for the file's next requests
 * (ECB has no state between blocks, so it can be reused).
 */
export class ReceiptCipher {
  readonly #cipher: Cipher;

  constructor(key: Uint8Array) {
    this.#cipher = createCipheriv("aes-128-ecb", key, null);
    this.#cipher.setAutoPadding(false);
  }

  /** As receiptShares. */
  shares(chunks: ArrayLike<number>, from = 0, to = chunks.length): Buffer {
    const plain = Buffer.alloc((to - from) * AES_BLOCK);
    for (let i = from; i < to; i++) plain.writeUInt32BE((chunks[i] ?? 0) >>> 0, (i - from) * AES_BLOCK + 12);
    return this.#cipher.update(plain);
  }

  /** As receiptOf. */
  receipt(chunks: ArrayLike<number>): Buffer {
    return xorShares(this.shares(chunks), chunks.length, AES_BLOCK);
  }
}

/** The XOR of the first `count` receipt shares in `shares`, one every `stride` bytes: a receipt. */
export function xorShares(shares: Buffer, count: number, stride: number): Buffer {
  let hi = 0;
  let lo = 0;
  for (let i = 0; i < count; i++) {
    hi ^= shares.readUInt32BE(i * stride);
    lo ^= shares.readUInt32BE(i * stride + 4);
  }
  const out = Buffer.allocUnsafe(RECEIPT_BYTES);
  out.writeUInt32BE(hi >>> 0, 0);
  out.writeUInt32BE(lo >>> 0, 4);
  return out;
}

/** Stride of receiptShares' result. */
export const RECEIPT_SHARE_STRIDE = AES_BLOCK;

/** The receipt of `chunks` under `key`: the XOR of their shares. */
export function receiptOf(key: Uint8Array, chunks: ArrayLike<number>): Buffer {
  return new ReceiptCipher(key).receipt(chunks);
}
