import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { open, rename, unlink } from "node:fs/promises";

/**
 * Replaces `path` with `bytes` atomically: written to `tmp`, fsynced, renamed over. A
 * crash leaves the old file or the new one, never a torn one (only `tmp` may be torn).
 * `stillWanted` is asked before the rename: false leaves `tmp` removed and `path` as it was
 * (a newer write has happened meanwhile). Rejects with the underlying error.
 */
export async function writeDurable(
  tmp: string,
  path: string,
  bytes: Uint8Array,
  stillWanted: () => boolean = () => true,
): Promise<void> {
  try {
    const handle = await open(tmp, "w");
    try {
      await handle.writeFile(bytes);
      await handle.sync();
    } finally {
      await handle.close();
    }
    if (stillWanted()) await rename(tmp, path);
    else await unlink(tmp);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
}

/**
 * The same, synchronously: for exit paths, where nothing else runs any more. `fsync:
 * false` keeps the atomicity against a killed process (the page cache outlives it) but not
 * against a power loss, which may bring back the old file or none: for files whose loss
 * only costs work (staging records: every piece they list is checked again anyway).
 */
export function writeDurableSync(tmp: string, path: string, bytes: Uint8Array, fsync = true): void {
  try {
    const fd = openSync(tmp, "w");
    try {
      writeFileSync(fd, bytes);
      if (fsync) fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}
