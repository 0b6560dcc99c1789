import { open } from "node:fs/promises";
import { pieceHash } from "../transfer/piece-hash.js";
import { SwarmError } from "../util/errors.js";
import { CHUNK_SIZE } from "../wire/limits.js";
import type { CheckedManifest } from "../wire/tracker-frame.js";

/** Pieces read at once when checking a partial. */
const VERIFY_READ_PIECES = 16;

/**
 * The candidates (ascending piece indices) whose bytes in the file at `path` match the
 * manifest's piece hashes: what a restart may keep of a partial download. Reads a run of
 * pieces at a time, asynchronously; a piece the file is too short for fails.
 */
export async function verifyPieces(
  path: string,
  manifest: CheckedManifest,
  candidates: readonly number[],
): Promise<number[]> {
  if (candidates.length === 0) return [];
  const pieceBytes = manifest.chunksPerPiece * CHUNK_SIZE;
  const kept: number[] = [];
  const handle = await open(path, "r").catch((err: unknown) => {
    throw new SwarmError("ERR_IO", `cannot read ${path}: ${(err as Error).message}`, { cause: err });
  });
  try {
    const buf = Buffer.allocUnsafe(VERIFY_READ_PIECES * pieceBytes);
    for (let i = 0; i < candidates.length; ) {
      const first = candidates[i] ?? 0;
      let j = i + 1;
      while (j < candidates.length && j - i < VERIFY_READ_PIECES && candidates[j] === first + (j - i)) j++;
      const start = first * pieceBytes;
      const end = Math.min(manifest.size, (first + (j - i)) * pieceBytes);
      let got = 0;
      while (got < end - start) {
        const { bytesRead } = await handle.read(buf, got, end - start - got, start + got);
        if (bytesRead === 0) break; // shorter than it was a moment ago: what is missing fails
        got += bytesRead;
      }
      for (let k = i; k < j; k++) {
        const p = candidates[k] ?? 0;
        const offset = (p - first) * pieceBytes;
        const length = Math.min(pieceBytes, manifest.size - p * pieceBytes);
        const expected = manifest.pieceSha256[p];
        if (offset + length > got || expected === undefined) continue;
        if (pieceHash(buf.subarray(offset, offset + length)).equals(expected)) kept.push(p);
      }
      i = j;
    }
  } catch (err) {
    if (err instanceof SwarmError) throw err;
    throw new SwarmError("ERR_IO", `cannot read ${path}: ${(err as Error).message}`, { cause: err });
  } finally {
    await handle.close().catch(() => {});
  }
  return kept;
}
