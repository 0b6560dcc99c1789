import { encodedReceiptBytes, encodeReceipts, type ReceiptEntry } from "../wire/receipts.js";

/**
 * The last `limit` receipts of one file, kept encoded (Have.receipts bytes, oldest first).
 * Its staging record carries them (RESUME §12), rewritten every checkpoint while the file
 * downloads: each receipt is encoded once as it comes, not all of them again per record
 * (re-encoding 512 entries scattered in memory every 20 ms was ~3% of a downloader's CPU).
 */
export class RecentReceipts {
  readonly #limit: number;
  /** The encoded entries kept are bytes [#start, #end) of #buf. */
  #buf = Buffer.alloc(0);
  #start = 0;
  #end = 0;
  /** Encoded length of each entry kept, oldest first, from #first on. */
  #lengths: number[] = [];
  #first = 0;

  constructor(limit: number) {
    this.#limit = limit;
  }

  /** Entries kept. */
  get count(): number {
    return this.#lengths.length - this.#first;
  }

  /** Adds `entries` after the others; the oldest beyond the limit are dropped. */
  add(entries: readonly ReceiptEntry[]): void {
    const bytes = encodeReceipts(entries);
    this.#reserve(bytes.length);
    bytes.copy(this.#buf, this.#end);
    this.#end += bytes.length;
    for (const e of entries) this.#lengths.push(encodedReceiptBytes(e));
    while (this.count > this.#limit) this.#start += this.#lengths[this.#first++] ?? 0;
    if (this.#first > this.#limit) {
      this.#lengths = this.#lengths.slice(this.#first);
      this.#first = 0;
    }
  }

  /** The entries kept, encoded as encodeReceipts encodes them (a copy). */
  bytes(): Buffer {
    return Buffer.from(this.#buf.subarray(this.#start, this.#end));
  }

  /** Room for `n` more bytes at #end: the kept bytes move to the front, into a larger buffer if need be. */
  #reserve(n: number): void {
    if (this.#end + n <= this.#buf.length) return;
    const kept = this.#end - this.#start;
    if (this.#buf.length >= 2 * (kept + n)) this.#buf.copyWithin(0, this.#start, this.#end);
    else {
      const grown = Buffer.alloc(4 * (kept + n));
      this.#buf.copy(grown, 0, this.#start, this.#end);
      this.#buf = grown;
    }
    this.#start = 0;
    this.#end = kept;
  }
}
