import { ReceiptCipher, receiptKey } from "../wire/auth.js";

/**
 * The ciphers that check receipts, by (holder's secret, receiver, file), the `max` used
 * last kept: a receiver reports a file's pieces from the same few holders again and again,
 * and a key (an HMAC) and a cipher made for each receipt were most of what checking one
 * cost.
 */
export class ReceiptCiphers {
  readonly #max: number;
  /** In order of last use, oldest first (a Map keeps insertion order). */
  readonly #byKey = new Map<string, ReceiptCipher>();

  constructor(max = 4096) {
    this.#max = max;
  }

  get(holderSecret: Uint8Array, toPeerId: number, fileId: number): ReceiptCipher {
    // The secret itself, not the holder's id, names the key: nothing can then pair an id
    // with a cipher made under another secret.
    const key = `${Buffer.from(holderSecret.buffer, holderSecret.byteOffset, holderSecret.byteLength).toString("base64")}/${toPeerId}/${fileId}`;
    let cipher = this.#byKey.get(key);
    if (cipher !== undefined) {
      this.#byKey.delete(key);
    } else {
      cipher = new ReceiptCipher(receiptKey(holderSecret, toPeerId, fileId));
      if (this.#byKey.size >= this.#max) {
        const oldest = this.#byKey.keys().next();
        if (oldest.done !== true) this.#byKey.delete(oldest.value);
      }
    }
    this.#byKey.set(key, cipher);
    return cipher;
  }

  get size(): number {
    return this.#byKey.size;
  }
}
