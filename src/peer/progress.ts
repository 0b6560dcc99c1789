import { RateWindow } from "../util/rate-window.js";
import { CHUNK_SIZE } from "../wire/limits.js";

/**
 * The progress display on stderr: a pure model (successive looks at the files, with the
 * time given) and a drawer that redraws it in place on a terminal or prints plain lines
 * elsewhere. It reads a plain view of each file that the peer builds, not the engine's
 * state, so it does not change when the data path does.
 */

/** One file as the peer sees it. */
export type DownloadView = {
  readonly id: number;
  readonly name: string;
  readonly size: number;
  readonly chunks: number;
  /** "offered": in ./Shared from the start; "complete": fetched whole; else "downloading". */
  readonly state: "offered" | "downloading" | "complete";
  /** Chunks held and verified. */
  readonly doneChunks: number;
  /** Other live peers holding some of it. */
  readonly holders: number;
  /** When this peer learnt of it (ms, the clock of `now`); set for fetched files. */
  readonly startedAt?: number;
  /** When its last piece was verified (ms); set for complete files. */
  readonly completedAt?: number;
};

/** One file's progress, as shown. */
export type FileProgress = {
  readonly name: string;
  readonly state: DownloadView["state"];
  readonly percent: number;
  /** Downloading: over the last few seconds. Complete: the average of the whole download, frozen. */
  readonly bytesPerSecond: number | undefined;
  /** Downloading: seconds to go at the current rate (undefined: unknown). Complete: how long it took. */
  readonly seconds: number | undefined;
  readonly holders: number;
};

/** Files of at most this many chunks (one piece) show no average rate once complete. */
const MIN_CHUNKS_FOR_AVERAGE = 128;

/** Turns successive looks at the files into progress (pure: the caller gives the time). */
export class ProgressModel {
  readonly #rates = new Map<number, RateWindow>();
  readonly #windowMs: number;

  constructor(windowMs = 3000) {
    this.#windowMs = windowMs;
  }

  look(files: Iterable<DownloadView>, now: number): FileProgress[] {
    const out: FileProgress[] = [];
    const seen = new Set<number>();
    for (const file of files) {
      seen.add(file.id);
      const base = { name: file.name, state: file.state, holders: file.holders };
      if (file.state === "offered") {
        out.push({ ...base, percent: 100, bytesPerSecond: undefined, seconds: undefined });
        continue;
      }
      if (file.state === "complete") {
        this.#rates.delete(file.id);
        const took =
          file.startedAt === undefined || file.completedAt === undefined
            ? undefined
            : Math.max(0, file.completedAt - file.startedAt) / 1000;
        // An average means something only over several pieces and some time.
        const timed = took !== undefined && took >= 0.1 && file.chunks > MIN_CHUNKS_FOR_AVERAGE;
        const average = timed ? file.size / took : undefined;
        out.push({ ...base, percent: 100, bytesPerSecond: average, seconds: took });
        continue;
      }
      let window = this.#rates.get(file.id);
      if (window === undefined) {
        window = new RateWindow(this.#windowMs);
        this.#rates.set(file.id, window);
      }
      const done = Math.min(file.chunks, file.doneChunks);
      const rate = window.add(done, now);
      out.push({
        ...base,
        // Floored, and never 100 before the file is complete.
        percent: file.chunks === 0 ? 0 : Math.min(99, Math.floor((done * 100) / file.chunks)),
        bytesPerSecond: rate * CHUNK_SIZE,
        seconds: rate > 0 ? (file.chunks - done) / rate : undefined,
      });
    }
    for (const id of this.#rates.keys()) if (!seen.has(id)) this.#rates.delete(id);
    return out;
  }
}

const BAR_CELLS = 12;
/** Width of everything but the name: bar, percent, rate, time, status, and their gaps. */
const FIXED_WIDTH = BAR_CELLS + 2 + 5 + 2 + 14 + 2 + 10 + 2 + 10;
/** The name column when the terminal's width is unknown. */
export const DEFAULT_NAME_WIDTH = 32;

/** "movie.mkv  [######......]  50%      1.2 MiB/s  eta 3s      2 holders" */
export function formatProgressLine(p: FileProgress, nameWidth = DEFAULT_NAME_WIDTH): string {
  const chars = [...p.name];
  const name = chars.length > nameWidth ? `${chars.slice(0, nameWidth - 1).join("")}…` : p.name.padEnd(nameWidth);
  const filled = Math.floor((p.percent * BAR_CELLS) / 100);
  const bar = `[${"#".repeat(filled)}${".".repeat(BAR_CELLS - filled)}]`;
  let rate = p.bytesPerSecond === undefined ? "" : formatRate(p.bytesPerSecond);
  let time = "";
  let status: string;
  switch (p.state) {
    case "downloading":
      time = `eta ${p.seconds === undefined ? "--" : formatDuration(p.seconds)}`;
      status = `${p.holders} holder${p.holders === 1 ? "" : "s"}`;
      break;
    case "complete":
      if (rate !== "") rate = `avg ${rate}`;
      time = p.seconds === undefined ? "" : `took ${formatDuration(p.seconds)}`;
      status = "complete";
      break;
    case "offered":
      status = "offered";
      break;
  }
  const pct = `${String(p.percent).padStart(3)}%`;
  return `${name}  ${bar} ${pct}  ${rate.padStart(14)}  ${time.padEnd(10)}  ${status}`.trimEnd();
}

export function formatRate(bytesPerSecond: number): string {
  if (bytesPerSecond >= 1024 * 1024) return `${(bytesPerSecond / (1024 * 1024)).toFixed(1)} MiB/s`;
  if (bytesPerSecond >= 1024) return `${(bytesPerSecond / 1024).toFixed(1)} KiB/s`;
  return `${Math.round(bytesPerSecond)} B/s`;
}

/** "0.4s", "12s", "4m05s", "1h02m". */
export function formatDuration(seconds: number): string {
  if (seconds < 10) return `${(Math.ceil(seconds * 10) / 10).toFixed(1)}s`;
  const s = Math.ceil(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

/** The terminal's size, when stderr is one. */
export type TerminalSize = () => { columns: number; rows: number } | undefined;

/**
 * Draws the progress on stderr: redrawn in place on a terminal (fitted to its width and
 * height, so that no line wraps and the cursor can go back over the block), or one plain
 * line per file per draw when forced on a pipe or file. Never touches stdout. While a
 * block is on the terminal, other stderr lines go through `interject`.
 */
export class ProgressDisplay {
  readonly #write: (text: string) => void;
  readonly #tty: boolean;
  readonly #size: TerminalSize;
  readonly #model = new ProgressModel();
  #drawnLines = 0;
  #lastFrame: string[] = [];

  constructor(write: (text: string) => void, tty: boolean, size: TerminalSize = () => undefined) {
    this.#write = write;
    this.#tty = tty;
    this.#size = size;
  }

  draw(files: Iterable<DownloadView>, now: number): void {
    const progress = this.#model.look(files, now);
    if (!this.#tty) {
      const lines = progress.map((p) => `udpswarm peer: progress ${formatProgressLine(p)}`);
      if (lines.length > 0) this.#write(`${lines.join("\n")}\n`);
      return;
    }
    this.#lastFrame = this.#frame(progress);
    this.#write(this.#erase() + this.#render());
  }

  /** Writes other stderr output (through `write`) below the block, then redraws the block. */
  interject(write: () => void): void {
    if (!this.#tty || this.#drawnLines === 0) {
      write();
      return;
    }
    this.#write(this.#erase());
    write();
    this.#write(this.#render());
  }

  /** Leaves the last frame on screen; later stderr lines start below it. */
  finish(): void {
    this.#drawnLines = 0;
    this.#lastFrame = [];
  }

  /** The lines of one frame: files being fetched first; what does not fit is summed up. */
  #frame(progress: FileProgress[]): string[] {
    const size = this.#size();
    const nameWidth =
      size === undefined ? DEFAULT_NAME_WIDTH : Math.max(8, Math.min(48, size.columns - 1 - FIXED_WIDTH - 2));
    const order = { downloading: 0, complete: 1, offered: 2 } as const;
    const sorted = [...progress].sort((a, b) => order[a.state] - order[b.state]);
    const room = size === undefined ? sorted.length : Math.max(1, size.rows - 1);
    const shown = sorted.length > room ? sorted.slice(0, room - 1) : sorted;
    const lines = shown.map((p) => formatProgressLine(p, nameWidth));
    const rest = sorted.slice(shown.length);
    if (rest.length > 0) {
      const fetching = rest.filter((p) => p.state === "downloading").length;
      lines.push(`… and ${rest.length} more files (${fetching} downloading)`);
    }
    const columns = size?.columns;
    // A line as wide as the terminal would wrap (or leave the cursor in the last column).
    return columns === undefined ? lines : lines.map((l) => ([...l].length < columns ? l : clip(l, columns - 1)));
  }

  #erase(): string {
    // Up to the block's first line, then clear from there to the end of the screen.
    const text = this.#drawnLines > 0 ? `\x1b[${this.#drawnLines}A\r\x1b[J` : "";
    this.#drawnLines = 0;
    return text;
  }

  #render(): string {
    this.#drawnLines = this.#lastFrame.length;
    return this.#lastFrame.map((l) => `${l}\n`).join("");
  }
}

function clip(line: string, columns: number): string {
  return [...line].slice(0, Math.max(1, columns - 1)).join("") + "…";
}
