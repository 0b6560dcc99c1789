/**
 * Binds the live-folder state (sync-state.ts) to one file: read once at start, written
 * atomically (write, fsync, rename) at most every `everyMs` after a change, one write at a
 * time off the event loop, and once more synchronously at exit.
 */
import { readFileSync } from "node:fs";
import { writeDurable, writeDurableSync } from "../util/durable-write.js";
import { decodeSyncState, encodeSyncState } from "./sync-state.js";
import type { LocalCopy } from "./version.js";

export class SyncStateFile {
  readonly #path: string;
  readonly #everyMs: number;
  readonly #log: (line: string) => void;
  #copies: () => ReadonlyMap<string, LocalCopy> = () => new Map();
  #timer: NodeJS.Timeout | undefined;
  #writing: Promise<void> | undefined;
  #dirty = false;
  #closed = false;

  constructor(path: string, log: (line: string) => void, everyMs = 200) {
    this.#path = path;
    this.#log = log;
    this.#everyMs = everyMs;
  }

  /** The copies saved by an earlier run; empty when there is no (readable) state. */
  load(): Map<string, LocalCopy> {
    let bytes: Buffer;
    try {
      bytes = readFileSync(this.#path);
    } catch {
      return new Map();
    }
    const state = decodeSyncState(bytes);
    if (typeof state === "string") {
      this.#log(`ignoring the saved live-folder state (${state}): every file counts as a local edit`);
      return new Map();
    }
    return state;
  }

  /** Where the copies to save come from (read when a write starts). */
  source(copies: () => ReadonlyMap<string, LocalCopy>): void {
    this.#copies = copies;
  }

  /** The copies changed: saved within `everyMs`. */
  changed(): void {
    this.#dirty = true;
    if (this.#closed || this.#timer !== undefined || this.#writing !== undefined) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#write();
    }, this.#everyMs);
  }

  #write(): void {
    if (this.#closed || !this.#dirty) return;
    this.#dirty = false;
    const bytes = encodeSyncState(this.#copies());
    this.#writing = writeDurable(`${this.#path}.tmp`, this.#path, bytes, () => !this.#closed).then(
      () => this.#afterWrite(),
      (err: unknown) => {
        this.#log(`cannot save the live-folder state: ${(err as Error).message}`);
        this.#afterWrite();
      },
    );
  }

  #afterWrite(): void {
    this.#writing = undefined;
    if (this.#dirty) this.changed();
  }

  /** Saves now, synchronously (exit paths), and stops. Safe to call twice. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    try {
      writeDurableSync(`${this.#path}.sync.tmp`, this.#path, encodeSyncState(this.#copies()));
    } catch (err) {
      this.#log(`cannot save the live-folder state: ${(err as Error).message}`);
    }
  }
}
