/**
 * A fixed-size set of chunk (or piece) indices, 0-based, and the run encoding both links
 * use for sets of chunks (Have.runs, HoldersChanged.runs).
 */
/** A fixed-size set of chunk (or piece) indices, 0-based. */
export class Bitmap {
  readonly size: number;
  readonly #bits: Uint8Array;
  #count = 0;

  constructor(size: number) {
    this.size = size;
    this.#bits = new Uint8Array(Math.ceil(size / 8));
  }

  static full(size: number): Bitmap {
    const b = new Bitmap(size);
    b.setRange(0, size);
    return b;
  }

  /**
   * A bitmap from its bytes (bit i is byte i >> 3, bit i & 7); undefined when the length
   * is wrong or a bit past `size` is set.
   */
  static fromBytes(size: number, bytes: Uint8Array): Bitmap | undefined {
    const b = new Bitmap(size);
    if (bytes.length !== b.#bits.length) return undefined;
    for (let i = 0; i < bytes.length; i++) {
      const byte = bytes[i] ?? 0;
      if (byte === 0) continue;
      for (let bit = 0; bit < 8; bit++) {
        if ((byte & (1 << bit)) === 0) continue;
        const index = i * 8 + bit;
        if (index >= size) return undefined;
        b.set(index);
      }
    }
    return b;
  }

  /** A copy of the bits (see fromBytes). */
  toBytes(): Uint8Array {
    return this.#bits.slice();
  }

  get count(): number {
    return this.#count;
  }

  get complete(): boolean {
    return this.#count === this.size;
  }

  has(i: number): boolean {
    return i >= 0 && i < this.size && ((this.#bits[i >> 3] ?? 0) & (1 << (i & 7))) !== 0;
  }

  /** Sets bit i; returns true when it was not set before. */
  set(i: number): boolean {
    if (i < 0 || i >= this.size) throw new RangeError(`bit ${i} outside bitmap of ${this.size}`);
    const mask = 1 << (i & 7);
    const byte = this.#bits[i >> 3] ?? 0;
    if (byte & mask) return false;
    this.#bits[i >> 3] = byte | mask;
    this.#count++;
    return true;
  }

  /** Clears bit i; returns true when it was set before. */
  unset(i: number): boolean {
    if (!this.has(i)) return false;
    this.#bits[i >> 3] = (this.#bits[i >> 3] ?? 0) & ~(1 << (i & 7));
    this.#count--;
    return true;
  }

  /**
   * Sets [first, first+count); returns how many bits were newly set, and tells `onNew`
   * each maximal run of them ([start, length]). Whole bytes are set at once, so a long
   * run costs about a bit operation per 8 chunks.
   */
  setRange(first: number, count: number, onNew?: (start: number, length: number) => void): number {
    const end = first + count;
    if (count <= 0) return 0;
    if (first < 0 || end > this.size) throw new RangeError(`range ${first}+${count} outside bitmap of ${this.size}`);
    let added = 0;
    let runStart = -1;
    let i = first;
    while (i < end) {
      const byteIndex = i >> 3;
      const byte = this.#bits[byteIndex] ?? 0;
      if ((i & 7) === 0 && i + 8 <= end && (byte === 0 || byte === 0xff)) {
        if (byte === 0) {
          this.#bits[byteIndex] = 0xff;
          added += 8;
          if (runStart < 0) runStart = i;
        } else if (runStart >= 0) {
          onNew?.(runStart, i - runStart);
          runStart = -1;
        }
        i += 8;
        continue;
      }
      const mask = 1 << (i & 7);
      if ((byte & mask) === 0) {
        this.#bits[byteIndex] = byte | mask;
        added++;
        if (runStart < 0) runStart = i;
      } else if (runStart >= 0) {
        onNew?.(runStart, i - runStart);
        runStart = -1;
      }
      i++;
    }
    if (runStart >= 0) onNew?.(runStart, end - runStart);
    this.#count += added;
    return added;
  }

  clear(): void {
    this.#bits.fill(0);
    this.#count = 0;
  }

  /** Whether every index in [first, first + count) is set (and inside the bitmap). */
  hasAll(first: number, count: number): boolean {
    if (first < 0 || first + count > this.size) return false;
    for (let i = first; i < first + count; i++) {
      if ((i & 7) === 0 && i + 8 <= first + count && this.#bits[i >> 3] === 0xff) {
        i += 7;
        continue;
      }
      if (!this.has(i)) return false;
    }
    return true;
  }

  /** First clear index at or after `from`, or -1. */
  nextClear(from = 0): number {
    for (let i = Math.max(0, from); i < this.size; i++) {
      if ((this.#bits[i >> 3] ?? 0) === 0xff) {
        i |= 7;
        continue;
      }
      if (!this.has(i)) return i;
    }
    return -1;
  }

  /** Maximal runs of set bits as [first, count] pairs. */
  runs(): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    let start = -1;
    for (let i = 0; i <= this.size; i++) {
      const set = i < this.size && this.has(i);
      if (set && start < 0) start = i;
      else if (!set && start >= 0) {
        out.push([start, i - start]);
        start = -1;
      }
    }
    return out;
  }
}

/** Flattens [first, count] runs for the wire (Have.runs, HoldersChanged.runs). */
export function flattenRuns(runs: ReadonlyArray<readonly [number, number]>): number[] {
  const out: number[] = [];
  for (const [first, count] of runs) out.push(first, count);
  return out;
}

/**
 * Parses flattened runs from the wire; returns undefined when they are malformed
 * (odd length, empty runs, or outside [0, limit)).
 */
export function parseRuns(flat: readonly number[], limit: number): Array<[number, number]> | undefined {
  if (flat.length % 2 !== 0) return undefined;
  const out: Array<[number, number]> = [];
  for (let i = 0; i < flat.length; i += 2) {
    const first = flat[i] ?? -1;
    const count = flat[i + 1] ?? 0;
    if (!Number.isInteger(first) || !Number.isInteger(count) || first < 0 || count <= 0 || first + count > limit)
      return undefined;
    out.push([first, count]);
  }
  return out;
}

/** Runs of consecutive indices in an ascending list. */
export function runsOf(sortedIndices: readonly number[]): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (const i of sortedIndices) {
    const last = out[out.length - 1];
    if (last !== undefined && last[0] + last[1] === i) last[1]++;
    else out.push([i, 1]);
  }
  return out;
}
