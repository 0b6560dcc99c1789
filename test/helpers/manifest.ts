import { createHash } from "node:crypto";
import type { RegistrySink } from "../../src/tracker/registry.js";
import { CHUNK_SIZE, CHUNKS_PER_BLOCK, CHUNKS_PER_PIECE, chunkCount, pieceCount } from "../../src/wire/limits.js";
import { type CheckedManifest, checkManifest, isManifestProblem } from "../../src/wire/tracker-frame.js";

const sha = (text: string): Buffer => createHash("sha256").update(text).digest();

/** A valid manifest for a file of `size` bytes named `name` (made-up hashes, fixed by name and size). */
export function testManifest(name: string, size: number): CheckedManifest {
  const checked = checkManifest(
    {
      name,
      size,
      chunkSize: CHUNK_SIZE,
      chunksPerPiece: CHUNKS_PER_PIECE,
      chunksPerBlock: CHUNKS_PER_BLOCK,
      sha256: sha(`${name}/${size}`),
      pieceSha256: Array.from({ length: pieceCount(chunkCount(size)) }, (_, i) => sha(`${name}/${size}/${i}`)),
    },
    Number.MAX_SAFE_INTEGER,
  );
  if (isManifestProblem(checked)) throw new Error(`bad test manifest ${name}: ${checked.detail}`);
  return checked;
}

/** A registry sink that does nothing: for tests that read the registry's state only. */
export const SILENT_SINK: RegistrySink = {
  print: () => {},
  acquired: () => {},
  send: () => {},
  sendUpdates: () => {},
  pending: () => {},
  log: () => {},
};
