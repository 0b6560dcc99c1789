import { open } from "node:fs/promises";
import { ManifestBuilder, PIECE_BYTES } from "../peer/scan.js";
import type { CheckedManifest } from "../wire/tracker-frame.js";

/** Pieces read at once: one read and ~2 ms of hashing between two turns of the event loop. */
const PIECES_PER_READ = 16;

/**
 * The manifest of a file (wire format of peer/scan.ts), read asynchronously so that
 * hashing a big file while the peer serves others does not stall the data path (the
 * synchronous hashFile holds the event loop for ~150 ms per 64 MiB). Hashes the content
 * up to end of file: the caller compares the file's size and times before and after, and
 * drops the result when the file moved meanwhile.
 */
export async function hashFileAsync(path: string, name: string): Promise<CheckedManifest> {
  const handle = await open(path, "r");
  try {
    const builder = new ManifestBuilder(name);
    const buf = Buffer.allocUnsafe(PIECE_BYTES * PIECES_PER_READ);
    let position = 0;
    for (;;) {
      let filled = 0;
      while (filled < buf.length) {
        const { bytesRead } = await handle.read(buf, filled, buf.length - filled, position + filled);
        if (bytesRead === 0) break;
        filled += bytesRead;
      }
      for (let off = 0; off < filled; off += PIECE_BYTES) {
        builder.add(buf.subarray(off, Math.min(filled, off + PIECE_BYTES)));
      }
      position += filled;
      if (filled < buf.length) return builder.finish();
    }
  } finally {
    await handle.close();
  }
}
