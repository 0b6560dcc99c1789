import { RateWindow } from "../../util/rate-window.js";
import { CHUNK_SIZE } from "../../wire/limits.js";
import type { PeerState } from "../registry.js";

/**
 * The web view's model, free of I/O: turns what the registry knows (its snapshot and
 * per-holding chunk runs) into the JSON the page draws. Time is passed in, so tests
 * drive it with made-up clocks. Names travel as plain JSON strings; the page puts them
 * into the DOM as text only.
 */

/** Most cells in one piece bar; a file with fewer chunks gets one cell per chunk. */
export const MAX_BAR_CELLS = 200;
/** Download rates are averaged over this long (ms). */
export const RATE_WINDOW_MS = 3000;
/** Departed peers kept for the "recently departed" table. */
export const MAX_DEPARTED = 20;

/** What the view needs from the registry (`Registry` fits). */
export interface ViewSource {
  snapshot(): SourceSnapshot;
  holding(
    peerId: number,
    fileId: number,
  ): { complete: boolean; runs: ReadonlyArray<readonly [number, number]> } | undefined;
}

/** The part of `RegistrySnapshot` the view reads. */
export type SourceSnapshot = {
  readonly peers: ReadonlyArray<{
    readonly id: number;
    readonly host: string;
    readonly udpPort: number;
    readonly state: PeerState;
    readonly files: ReadonlyArray<{ readonly fileId: number; readonly held: number; readonly complete: boolean }>;
    /** Names whose offer was refused (name conflict): such a peer never fetches them. Used when present. */
    readonly refusedNames?: readonly string[];
    /** The peer's own transfer totals (PeerStats), once it reported them. */
    readonly stats?: { readonly bytesSent: number; readonly retransmissions: number } | undefined;
  }>;
  readonly files: ReadonlyArray<{
    readonly id: number;
    readonly name: string;
    readonly size: number;
    readonly chunks: number;
    readonly completeHolders: number;
  }>;
};

/**
 * What a live peer is doing, for people: "downloading" while it lacks a file it is meant
 * to hold (whatever its departure state), "seeding" once it holds them all, "ready" when
 * it also asked to leave (its MIN_ALIVE passed; it waits for the others), "leaving" once
 * the tracker let it go.
 */
export type PeerActivity = "downloading" | "seeding" | "ready" | "leaving";

export type PeerView = {
  id: number;
  /** host:udpPort ([host]:udpPort for IPv6). */
  address: string;
  /** The registry's departure state: "active", "ready" (asked to leave), "leaving" (granted). */
  state: PeerState;
  activity: PeerActivity;
  filesComplete: number;
  /** Files this peer is meant to hold (every file, less those refused to it). */
  filesTotal: number;
  chunksHeld: number;
  chunksTotal: number;
  /** Chunks this peer reported acquired per second (from its ACQUIRED reports), over RATE_WINDOW_MS. */
  downloadChunksPerSec: number;
  /** Bytes per second the peer reports sending (its PeerStats), over RATE_WINDOW_MS; null before its first report. */
  uploadBytesPerSec: number | null;
  /** Chunks the peer asked for again after a loss (its PeerStats); null before its first report. */
  retransmissions: number | null;
};

export type BarView = {
  peerId: number;
  held: number;
  /** 0..100, floored: 100 only when the peer holds the whole file. */
  percent: number;
  /**
   * One character per cell, "0" (no chunk of the cell held) to "9" (every chunk held),
   * "1".."8" in between; "" when the bar is uniform (nothing held, or complete).
   */
  cells: string;
};

export type FileView = {
  id: number;
  name: string;
  size: number;
  chunks: number;
  completeHolders: number;
  /** One bar per live peer meant to hold the file, by peer ID. */
  bars: BarView[];
};

export type DepartedView = {
  id: number;
  /** "" when the peer left before the view ever listed it. */
  address: string;
  /** Wall-clock time (ms since the epoch) the view noticed the departure. */
  leftAt: number;
  /** The files its DISCONNECT block listed (received whole from others), in that order; null if not seen. */
  received: string[] | null;
};

export type ViewModel = {
  version: 1;
  chunkSize: number;
  peers: PeerView[];
  files: FileView[];
  /** Most recent first. */
  departed: DepartedView[];
};

export type ViewBuilderOptions = {
  /** @default MAX_BAR_CELLS */
  readonly maxCells?: number;
  /** @default RATE_WINDOW_MS */
  readonly rateWindowMs?: number;
  /** @default MAX_DEPARTED */
  readonly maxDeparted?: number;
};

type CachedBar = { held: number; complete: boolean; cells: string };

/**
 * Builds view models from successive registry snapshots. Keeps what the registry does
 * not: per-peer samples for download rates, the bars already drawn (a bar is redrawn only
 * when its holder's count changed), and the peers seen leaving.
 */
export class ViewBuilder {
  readonly #maxCells: number;
  readonly #rateWindowMs: number;
  readonly #maxDeparted: number;
  readonly #bars = new Map<string, CachedBar>();
  /** Rate samples by key: "<peer id>" (chunks held), "<peer id>:up" (bytes sent). */
  readonly #samples = new Map<string, RateWindow>();
  #lastPeers = new Map<number, PeerView>();
  #departed: DepartedView[] = [];
  /** DISCONNECT blocks printed since the last build, by peer ID (at most maxDeparted). */
  readonly #disconnects = new Map<number, { received: string[]; at: number }>();

  constructor(options: ViewBuilderOptions = {}) {
    this.#maxCells = Math.max(1, Math.floor(options.maxCells ?? MAX_BAR_CELLS));
    this.#rateWindowMs = options.rateWindowMs ?? RATE_WINDOW_MS;
    this.#maxDeparted = options.maxDeparted ?? MAX_DEPARTED;
  }

  /**
   * The tracker printed peer `peerId`'s DISCONNECT block, listing `received`: the departed
   * table shows exactly that, not a count from an older snapshot.
   */
  noteDisconnect(peerId: number, received: readonly string[], wallNow: number): void {
    this.#disconnects.delete(peerId);
    this.#disconnects.set(peerId, { received: [...received], at: wallNow });
    // Nobody may be watching (no builds): keep no more than the table can show.
    for (const oldest of this.#disconnects.keys()) {
      if (this.#disconnects.size <= this.#maxDeparted) break;
      this.#disconnects.delete(oldest);
    }
  }

  /** `now`: monotonic ms (rates); `wallNow`: ms since the epoch (departure times). */
  build(source: ViewSource, now: number, wallNow: number): ViewModel {
    const snap = source.snapshot();
    const peersById = [...snap.peers].sort((a, b) => a.id - b.id);
    const refused = new Map(peersById.map((p) => [p.id, new Set(p.refusedNames ?? [])]));
    const seenBars = new Set<string>();

    const files: FileView[] = snap.files.map((f) => ({
      id: f.id,
      name: f.name,
      size: f.size,
      chunks: f.chunks,
      completeHolders: f.completeHolders,
      bars: [],
    }));

    const peers: PeerView[] = peersById.map((p) => {
      const heldByFile = new Map(p.files.map((h) => [h.fileId, h]));
      const refusedHere = refused.get(p.id);
      let filesComplete = 0;
      let filesTotal = 0;
      let chunksHeld = 0;
      let chunksTotal = 0;
      for (const file of files) {
        if (refusedHere?.has(file.name) === true) continue;
        const h = heldByFile.get(file.id);
        const complete = h?.complete === true;
        const held = complete ? file.chunks : Math.min(h?.held ?? 0, file.chunks);
        filesTotal++;
        if (complete) filesComplete++;
        chunksHeld += held;
        chunksTotal += file.chunks;
        const key = `${p.id}:${file.id}`;
        seenBars.add(key);
        file.bars.push({
          peerId: p.id,
          held,
          percent: percentOf(held, file.chunks, complete),
          cells: this.#cells(key, source, p.id, file.id, file.chunks, held, complete),
        });
      }
      return {
        id: p.id,
        address: formatAddress(p.host, p.udpPort),
        state: p.state,
        activity: activityOf(p.state, filesComplete, filesTotal),
        filesComplete,
        filesTotal,
        chunksHeld,
        chunksTotal,
        downloadChunksPerSec: this.#rate(`${p.id}`, chunksHeld, now),
        uploadBytesPerSec: p.stats === undefined ? null : Math.round(this.#rate(`${p.id}:up`, p.stats.bytesSent, now)),
        retransmissions: p.stats === undefined ? null : p.stats.retransmissions,
      };
    });

    for (const key of this.#bars.keys()) if (!seenBars.has(key)) this.#bars.delete(key);
    const live = new Map(peers.map((p) => [p.id, p]));
    for (const key of this.#samples.keys()) if (!live.has(Number.parseInt(key, 10))) this.#samples.delete(key);
    const gone: DepartedView[] = [];
    for (const [id, last] of this.#lastPeers) {
      if (live.has(id)) continue;
      const note = this.#disconnects.get(id);
      gone.push({ id, address: last.address, leftAt: note?.at ?? wallNow, received: note?.received ?? null });
      this.#disconnects.delete(id);
    }
    // Peers that joined and left between two builds: known only from their DISCONNECT block.
    for (const [id, note] of this.#disconnects) {
      if (!live.has(id)) gone.push({ id, address: "", leftAt: note.at, received: note.received });
    }
    this.#disconnects.clear();
    // Most recent first (then by ID).
    this.#departed.unshift(...gone.sort((a, b) => b.leftAt - a.leftAt || a.id - b.id));
    if (this.#departed.length > this.#maxDeparted) this.#departed.length = this.#maxDeparted;
    this.#lastPeers = live;

    return { version: 1, chunkSize: CHUNK_SIZE, peers, files, departed: [...this.#departed] };
  }

  #cells(
    key: string,
    source: ViewSource,
    peerId: number,
    fileId: number,
    chunks: number,
    held: number,
    complete: boolean,
  ): string {
    if (complete || held === 0) {
      this.#bars.delete(key);
      return "";
    }
    const cached = this.#bars.get(key);
    if (cached !== undefined && cached.held === held && cached.complete === complete) return cached.cells;
    const runs = source.holding(peerId, fileId)?.runs ?? [];
    const cells = barCells(chunks, runs, this.#maxCells);
    this.#bars.set(key, { held, complete, cells });
    return cells;
  }

  /** Chunks per second over the window; a drop in the total (a file removed) restarts it. */
  #rate(key: string, total: number, now: number): number {
    let window = this.#samples.get(key);
    if (window === undefined) {
      window = new RateWindow(this.#rateWindowMs);
      this.#samples.set(key, window);
    }
    return Math.round(window.add(total, now) * 10) / 10;
  }
}

export function activityOf(state: PeerState, filesComplete: number, filesTotal: number): PeerActivity {
  if (state === "leaving") return "leaving";
  if (filesComplete < filesTotal) return "downloading";
  return state === "ready" ? "ready" : "seeding";
}

/**
 * Reads a DISCONNECT block as the tracker prints it (tracker/output.ts):
 * `PEER N DISCONNECT: RECEIVED R` then R lines `N    NAME`. Undefined for any other block.
 */
export function parseDisconnectBlock(lines: readonly string[]): { peerId: number; received: string[] } | undefined {
  const head = /^PEER (\d+) DISCONNECT: RECEIVED (\d+)$/.exec(lines[0] ?? "");
  if (head === null) return undefined;
  const peerId = Number(head[1]);
  const prefix = `${peerId}    `;
  const body = lines.slice(1);
  if (body.length !== Number(head[2]) || !body.every((l) => l.startsWith(prefix))) return undefined;
  return { peerId, received: body.map((l) => l.slice(prefix.length)) };
}

/** 0..100, floored, so that 100 means complete. An empty file is 0 until held, then 100. */
export function percentOf(held: number, chunks: number, complete: boolean): number {
  if (complete) return 100;
  if (chunks <= 0) return 0;
  return Math.min(99, Math.floor((held * 100) / chunks));
}

/**
 * The piece bar of a partly held file: min(chunks, maxCells) cells, cell i covering
 * chunks [floor(i·chunks/n), floor((i+1)·chunks/n)), each a digit for how much of it is
 * held ("0" none, "9" all). Work is O(runs + cells), whatever the file's size.
 */
export function barCells(chunks: number, runs: ReadonlyArray<readonly [number, number]>, maxCells: number): string {
  if (chunks <= 0) return "";
  const n = Math.min(chunks, Math.max(1, Math.floor(maxCells)));
  const start = (i: number): number => Math.floor((i * chunks) / n);
  const heldIn = new Float64Array(n);
  for (const [first, count] of runs) {
    const from = Math.max(0, first);
    const end = Math.min(chunks, first + count);
    if (end <= from) continue;
    let i = Math.min(n - 1, Math.floor((from * n) / chunks));
    while (i > 0 && start(i) > from) i--;
    while (i < n - 1 && start(i + 1) <= from) i++;
    for (; i < n && start(i) < end; i++) {
      const overlap = Math.min(end, start(i + 1)) - Math.max(from, start(i));
      if (overlap > 0) heldIn[i] = (heldIn[i] ?? 0) + overlap;
    }
  }
  let out = "";
  for (let i = 0; i < n; i++) {
    const size = start(i + 1) - start(i);
    const h = heldIn[i] ?? 0;
    out += h <= 0 ? "0" : h >= size ? "9" : String(Math.min(8, 1 + Math.floor((h / size) * 8)));
  }
  return out;
}

export function formatAddress(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}
