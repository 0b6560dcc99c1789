import { closeSync, openSync } from "node:fs";

/** Descriptors kept open at most, whatever the number of files (a swarm may offer thousands). */
export const DEFAULT_OPEN_FILES = 32;

/**
 * Open file descriptors by path, at most `capacity` at once: the least recently used one
 * is closed when another is needed. Reads and writes of a piece are synchronous, so a
 * descriptor is never closed while in use; asynchronous readers open their own.
 */
export class FdPool {
  readonly #capacity: number;
  /** In use order: the first entry is the least recently used. */
  readonly #open = new Map<string, { readonly fd: number; readonly flags: string }>();
  #opened = 0;

  constructor(capacity = DEFAULT_OPEN_FILES) {
    this.#capacity = Math.max(1, capacity);
  }

  /** Descriptors open now. */
  get size(): number {
    return this.#open.size;
  }

  /** Descriptors opened in all (for --stats: churn shows a pool too small). */
  get opened(): number {
    return this.#opened;
  }

  /** An open descriptor for `path` with `flags` ("r", or "r+" to write too). Throws what open throws. */
  get(path: string, flags: "r" | "r+"): number {
    const entry = this.#open.get(path);
    if (entry !== undefined && (entry.flags === flags || entry.flags === "r+")) {
      this.#open.delete(path);
      this.#open.set(path, entry);
      return entry.fd;
    }
    if (entry !== undefined) this.close(path);
    while (this.#open.size >= this.#capacity) this.#closeOldest();
    let fd: number;
    try {
      fd = openSync(path, flags);
    } catch (err) {
      // Out of descriptors for other reasons: give back all of ours and try once more.
      if ((err as NodeJS.ErrnoException).code !== "EMFILE" || this.#open.size === 0) throw err;
      this.closeAll();
      fd = openSync(path, flags);
    }
    this.#opened++;
    this.#open.set(path, { fd, flags });
    return fd;
  }

  close(path: string): void {
    const entry = this.#open.get(path);
    if (entry === undefined) return;
    this.#open.delete(path);
    try {
      closeSync(entry.fd);
    } catch {
      // already closed: nothing to release
    }
  }

  closeAll(): void {
    for (const path of [...this.#open.keys()]) this.close(path);
  }

  #closeOldest(): void {
    const oldest = this.#open.keys().next();
    if (!oldest.done) this.close(oldest.value);
  }
}
