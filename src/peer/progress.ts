import type { FileState } from "../transfer/file-state.js";
import { RateWindow } from "../util/rate-window.js";
import { CHUNK_SIZE } from "../wire/limits.js";

/** One file's progress as shown on stderr. */
export type FileProgress = {
  readonly name: string;
  readonly percent: number;
  readonly bytesPerSecond: number;
  /** Seconds to completion at the current rate; undefined when unknown (no progress yet). */
  readonly etaSeconds: number | undefined;
  readonly holders: number;
  readonly complete: boolean;
};

/**
 * Turns successive looks at the downloads into progress lines (pure: the caller gives the
 * time and prints). Rates are averaged over the last few seconds.
 */
export class ProgressModel {
  readonly #rates = new Map<number, RateWindow>();
  readonly #windowMs: number;

  constructor(windowMs = 3000) {
    this.#windowMs = windowMs;
  }

  look(files: Iterable<FileState>, now: number): FileProgress[] {
    const out: FileProgress[] = [];
    for (const file of files) {
      if (file.mode === "ignored") continue;
      const chunks = file.chunks;
      const doneChunks =
        file.mode === "seeding" ? chunks : Math.min(chunks, file.done.count * file.manifest.chunksPerPiece);
      let window = this.#rates.get(file.id);
      if (window === undefined) {
        window = new RateWindow(this.#windowMs);
        this.#rates.set(file.id, window);
      }
      const rate = window.add(doneChunks, now);
      const complete = file.mode === "seeding";
      out.push({
        name: file.manifest.name,
        percent: chunks === 0 ? (complete ? 100 : 0) : Math.floor((doneChunks * 100) / chunks),
        bytesPerSecond: rate * CHUNK_SIZE,
        etaSeconds: complete ? 0 : rate > 0 ? (chunks - doneChunks) / rate : undefined,
        holders: file.holders.size,
        complete,
      });
    }
    return out;
  }
}

export function formatProgressLine(p: FileProgress, nameWidth = 32): string {
  const name = p.name.length > nameWidth ? `${p.name.slice(0, nameWidth - 1)}…` : p.name.padEnd(nameWidth);
  const bar = `${"#".repeat(Math.floor(p.percent / 5))}${".".repeat(20 - Math.floor(p.percent / 5))}`;
  const eta = p.complete ? "done" : p.etaSeconds === undefined ? "--" : `${Math.ceil(p.etaSeconds)}s`;
  return `${name} [${bar}] ${String(p.percent).padStart(3)}% ${formatRate(p.bytesPerSecond).padStart(10)} eta ${eta.padStart(5)}  ${p.holders} holder${p.holders === 1 ? "" : "s"}`;
}

export function formatRate(bytesPerSecond: number): string {
  if (bytesPerSecond >= 1024 * 1024) return `${(bytesPerSecond / (1024 * 1024)).toFixed(1)} MiB/s`;
  if (bytesPerSecond >= 1024) return `${(bytesPerSecond / 1024).toFixed(1)} KiB/s`;
  return `${Math.round(bytesPerSecond)} B/s`;
}

/**
 * Draws the progress on stderr: redrawn in place on a terminal, or one plain line per
 * file per second when forced on a pipe or file. Never touches stdout.
 */
export class ProgressDisplay {
  readonly #write: (text: string) => void;
  readonly #tty: boolean;
  readonly #model = new ProgressModel();
  #drawnLines = 0;

  constructor(write: (text: string) => void, tty: boolean) {
    this.#write = write;
    this.#tty = tty;
  }

  draw(files: Iterable<FileState>, now: number): void {
    const lines = this.#model.look(files, now).map((p) => formatProgressLine(p));
    if (!this.#tty) {
      if (lines.length > 0) this.#write(`${lines.map((l) => `progress ${l}`).join("\n")}\n`);
      return;
    }
    let text = this.#drawnLines > 0 ? `\x1b[${this.#drawnLines}A` : "";
    for (const line of lines) text += `\x1b[2K${line}\n`;
    this.#drawnLines = lines.length;
    this.#write(text);
  }

  /** Leaves the last frame on screen; later stderr lines start below it. */
  finish(): void {
    this.#drawnLines = 0;
  }
}
