import { write as fsWrite } from "node:fs";
import { writeAllSync } from "../util/stdout.js";
import { acquiredParts } from "./output.js";

/**
 * The tracker's stdout, written in bounded batches off the event loop: blocks and
 * ACQUIRED reports queue here in order, and at most `batchBytes` of text is built and
 * written at a time, one write in flight, so a report of a million chunks neither builds a
 * million lines in memory nor blocks the loop, and lines are never written one per call.
 * ACQUIRED reports wait as chunk runs and become text only when their turn comes.
 */
export interface OutputTarget {
  /** Writes all of `bytes`, then calls `done` (with an error if it could not). */
  write(bytes: Buffer, done: (err: Error | null) => void): void;
  /** Writes all of `bytes` before returning (used at exit). */
  writeSync(bytes: Buffer): void;
}

type Item =
  | { readonly kind: "block"; readonly text: string }
  | {
      readonly kind: "acquired";
      readonly peerId: number;
      readonly head: string;
      readonly tail: string;
      readonly runs: ReadonlyArray<readonly [number, number]>;
      /** Next run to print, and the next chunk in it. */
      run: number;
      next: number;
      /** Lines not printed yet. */
      left: number;
    };

/** Text built per write (bytes, about). @default 64 KiB */
export const DEFAULT_BATCH_BYTES = 64 * 1024;

export class StdoutWriter {
  readonly #target: OutputTarget;
  readonly #batchBytes: number;
  readonly #schedule: (fn: () => void) => void;
  readonly #items: Item[] = [];
  #head = 0;
  #writing = false;
  #scheduled = false;
  #pendingLines = 0;
  readonly #pendingByPeer = new Map<number, number>();
  /** Called after each write with the lines still pending (e.g. to resume paused readers). */
  onProgress: (() => void) | undefined;
  /** Write errors other than a closed pipe are reported here once each. */
  onError: ((err: Error) => void) | undefined;
  writes = 0;

  constructor(target: OutputTarget, options: { batchBytes?: number; schedule?: (fn: () => void) => void } = {}) {
    this.#target = target;
    this.#batchBytes = options.batchBytes ?? DEFAULT_BATCH_BYTES;
    this.#schedule = options.schedule ?? ((fn) => setImmediate(fn));
  }

  /** Lines queued and not written yet. */
  get pendingLines(): number {
    return this.#pendingLines;
  }

  /** ACQUIRED lines of one peer queued and not written yet. */
  pendingLinesOf(peerId: number): number {
    return this.#pendingByPeer.get(peerId) ?? 0;
  }

  /** One whole block (written in one piece, never split across writes). */
  block(lines: readonly string[]): void {
    if (lines.length === 0) return;
    this.#items.push({ kind: "block", text: `${lines.join("\n")}\n` });
    this.#pendingLines += lines.length;
    this.#kick();
  }

  /** One ACQUIRED line per chunk of `runs` ([first, count], 0-based), in order. */
  acquired(peerId: number, name: string, chunks: number, runs: ReadonlyArray<readonly [number, number]>): void {
    let lines = 0;
    for (const [, count] of runs) lines += count;
    if (lines === 0) return;
    const first = runs[0];
    if (first === undefined) return;
    const { head, tail } = acquiredParts(peerId, chunks, name);
    this.#items.push({ kind: "acquired", peerId, head, tail: `${tail}\n`, runs, run: 0, next: first[0], left: lines });
    this.#pendingLines += lines;
    this.#pendingByPeer.set(peerId, this.pendingLinesOf(peerId) + lines);
    this.#kick();
  }

  /** Writes everything still queued before returning (at exit: no line is lost). */
  flushSync(): void {
    for (;;) {
      const text = this.#take(Number.POSITIVE_INFINITY);
      if (text === "") return;
      this.#target.writeSync(Buffer.from(text, "utf8"));
    }
  }

  #kick(): void {
    if (this.#writing || this.#scheduled) return;
    this.#scheduled = true;
    // Later in this turn of the loop, so that reports arriving together go out together.
    this.#schedule(() => {
      this.#scheduled = false;
      this.#writeNext();
    });
  }

  #writeNext(): void {
    if (this.#writing) return;
    const text = this.#take(this.#batchBytes);
    if (text === "") return;
    this.#writing = true;
    this.writes++;
    this.#target.write(Buffer.from(text, "utf8"), (err) => {
      this.#writing = false;
      if (err !== null && (err as NodeJS.ErrnoException).code !== "EPIPE") this.onError?.(err);
      this.onProgress?.();
      this.#writeNext();
    });
  }

  /** Up to about `budget` bytes of text from the head of the queue (whole lines, whole blocks). */
  #take(budget: number): string {
    const parts: string[] = [];
    let size = 0;
    while (this.#head < this.#items.length && size < budget) {
      const item = this.#items[this.#head];
      if (item === undefined) break;
      if (item.kind === "block") {
        if (size > 0 && size + item.text.length > budget) break;
        parts.push(item.text);
        size += item.text.length;
        this.#pendingLines -= countLines(item.text);
        this.#head++;
        continue;
      }
      let printed = 0;
      while (item.left > 0 && size < budget) {
        const run = item.runs[item.run];
        if (run === undefined) break;
        const line = `${item.head}${item.next + 1}${item.tail}`;
        parts.push(line);
        size += line.length;
        printed++;
        item.left--;
        item.next++;
        if (item.next >= run[0] + run[1]) {
          item.run++;
          item.next = item.runs[item.run]?.[0] ?? 0;
        }
      }
      this.#pendingLines -= printed;
      const left = this.pendingLinesOf(item.peerId) - printed;
      if (left > 0) this.#pendingByPeer.set(item.peerId, left);
      else this.#pendingByPeer.delete(item.peerId);
      if (item.left === 0) this.#head++;
    }
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items.splice(0, this.#head);
      this.#head = 0;
    }
    return parts.join("");
  }
}

function countLines(text: string): number {
  let n = 0;
  for (let i = text.indexOf("\n"); i >= 0; i = text.indexOf("\n", i + 1)) n++;
  return n;
}

/**
 * A file descriptor as an OutputTarget: asynchronous writes on libuv's thread pool, so a
 * slow reader of the pipe never blocks the event loop; EAGAIN (a non-blocking pipe that is
 * full) is retried shortly.
 */
export function fdTarget(fd: number): OutputTarget {
  const writeAll = (bytes: Buffer, offset: number, done: (err: Error | null) => void): void => {
    fsWrite(fd, bytes, offset, bytes.length - offset, null, (err, written) => {
      if (err !== null) {
        if (err.code === "EAGAIN") {
          setTimeout(() => writeAll(bytes, offset, done), 1);
          return;
        }
        done(err);
        return;
      }
      if (offset + written < bytes.length) writeAll(bytes, offset + written, done);
      else done(null);
    });
  };
  return {
    write: (bytes, done) => writeAll(bytes, 0, done),
    writeSync: (bytes) => writeAllSync(fd, bytes),
  };
}
