import { writeSync } from "node:fs";

/**
 * Writes one block of lines to a file descriptor synchronously and whole, so blocks never
 * interleave and nothing is lost when the process exits right after (stdout may be a
 * pipe or a file). A full non-blocking pipe (EAGAIN) is retried until it drains.
 */
export function writeBlock(lines: readonly string[], fd = 1): void {
  if (lines.length === 0) return;
  writeAllSync(fd, Buffer.from(lines.join("\n") + "\n", "utf8"));
}

/** Writes all of `bytes` to `fd` before returning; a closed pipe (EPIPE) swallows them. */
export function writeAllSync(fd: number, bytes: Buffer): void {
  let offset = 0;
  while (offset < bytes.length) {
    try {
      offset += writeSync(fd, bytes, offset, bytes.length - offset);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "EAGAIN") {
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
        continue;
      }
      if ((err as NodeJS.ErrnoException).code === "EPIPE") return;
      throw err;
    }
  }
}

/** One diagnostic line on stderr (never stdout). */
export function logLine(line: string): void {
  writeBlock([line], 2);
}
