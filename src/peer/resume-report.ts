import { runsOf } from "../transfer/bitmap.js";
import type { CheckedManifest } from "../wire/tracker-frame.js";
import type { ResumeResult } from "./store.js";

/**
 * What resume (SPEC §12) tells, the same for a peer and a client: the counters of what
 * restarts kept (in --stats), the line saying what a restart kept of a partial download,
 * and the line saying what an interruption left for the next start.
 */

export type ResumeCounters = { files: number; pieces: number; chunks: number; checked: number; failed: number };

export function resumeCounters(): ResumeCounters {
  return { files: 0, pieces: 0, chunks: 0, checked: 0, failed: 0 };
}

/** Counts what a restart kept of one partial; returns the kept chunks as [first, count] runs. */
export function countResumed(
  c: ResumeCounters,
  manifest: CheckedManifest,
  result: ResumeResult,
): Array<readonly [number, number]> {
  c.files++;
  c.pieces += result.kept.length;
  c.checked += result.checked;
  c.failed += result.failed;
  const cpp = manifest.chunksPerPiece;
  const chunkRuns: Array<readonly [number, number]> = [];
  for (const [first, count] of runsOf(result.kept)) {
    const firstChunk = first * cpp;
    const chunks = Math.min(manifest.chunks, (first + count) * cpp) - firstChunk;
    c.chunks += chunks;
    chunkRuns.push([firstChunk, chunks]);
  }
  return chunkRuns;
}

/** `resuming "NAME": K of P pieces kept from an earlier run`, with what failed its check. */
export function resumedLine(name: string, pieces: number, result: ResumeResult): string {
  const n = result.failed;
  const failed =
    n === 0
      ? ""
      : `; ${n} kept piece${n === 1 ? " failed its check and is" : "s failed their check and are"} fetched again`;
  const lost = result.record === "missing" ? " (its record was missing or damaged: every piece was checked)" : "";
  const u = result.unrecognised ?? 0;
  const unrecognised =
    u === 0 ? "" : `; ${u} piece${u === 1 ? "" : "s"} the tracker does not know this peer had, fetched again`;
  return `resuming ${JSON.stringify(name)}: ${result.kept.length} of ${pieces} pieces kept from an earlier run${failed}${unrecognised}${lost}`;
}

/** What an interruption left, in words: "nothing was being downloaded", "2 partial downloads kept in DIR for the next start: a, b". */
export function interruptedDownloads(names: readonly string[], where: string): string {
  if (names.length === 0) return "nothing was being downloaded";
  const shown = names.slice(0, 3).map((n) => JSON.stringify(n));
  const more = names.length > 3 ? ` and ${names.length - 3} more` : "";
  const what = `${names.length === 1 ? "1 partial download" : `${names.length} partial downloads`} kept in ${where} for the next start`;
  return `${what}: ${shown.join(", ")}${more}`;
}
