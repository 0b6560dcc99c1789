/**
 * Binds the live-folder state (sync-state.ts) to one file: read once at start, written
 * atomically (write, fsync, rename) at most every `everyMs` after a change, one write at a
 * time off the event loop, and once more synchronously at exit.
 */
import { readFileSync } from "node:fs";
import { writeDurable, writeDurableSync } from "../util/durable-write.js";
import { decodeSyncState, encodeSyncState, type SyncState } from "./sync-state.js";

export class SyncStateFile {
  readonly #path: string;
  readonly #everyMs: number;
  readonly #log: (line: string) => void;
  #state: () => SyncState = () => ({ copies: new Map(), deleted: new Map() });
  #timer: NodeJS.Timeout | undefined;
  #writing: Promise<void> | undefined;
  #dirty = false;
  #closed = false;

  constructor(path: string, log: (line: string) => void, everyMs = 200) {
    this.#path = path;
    this.#log = log;
    this.#everyMs = everyMs;
  }

  /** What an earlier run saved; empty when there is no (readable) state. */
  load(): SyncState {
    const empty: SyncState = { copies: new Map(), deleted: new Map() };
    let bytes: Buffer;
    try {
      bytes = readFileSync(this.#path);
    } catch {
      return empty;
    }
    const state = decodeSyncState(bytes);
    if (typeof state === "string") {
      this.#log(`ignoring the saved live-folder state (${state}): every file counts as a local edit`);
      return empty;
    }
    return state;
  }

  /** Where the state to save comes from (read when a write starts). */
  source(state: () => SyncState): void {
    this.#state = state;
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
    const bytes = this.#encode();
    this.#writing = writeDurable(`${this.#path}.tmp`, this.#path, bytes, () => !this.#closed).then(
      () => this.#afterWrite(),
      (err: unknown) => {
        this.#log(`cannot save the live-folder state: ${(err as Error).message}`);
        this.#afterWrite();
      },
    );
  }

  #encode(): Buffer {
    const { copies, deleted } = this.#state();
    return encodeSyncState(copies, deleted);
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
      writeDurableSync(`${this.#path}.sync.tmp`, this.#path, this.#encode());
    } catch (err) {
      this.#log(`cannot save the live-folder state: ${(err as Error).message}`);
    }
  }
}
