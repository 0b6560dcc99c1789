/** Input files and temporary directories of the benchmark. */
import { createHash, randomFillSync } from "node:crypto";
import { closeSync, createReadStream, mkdirSync, mkdtempSync, openSync, rmSync, statSync, writeSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { MiB } from "./util.js";

/** A generated file: random content, known size and SHA-256. */
export type InputFile = {
  readonly name: string;
  readonly path: string;
  readonly size: number;
  readonly sha256: string;
};

const tempRoots = new Set<string>();

/** A fresh directory under os.tmpdir(), removed by removeTempRoots(). */
export function makeTempRoot(prefix: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  tempRoots.add(dir);
  return dir;
}

/** Removes every temporary root (synchronous: also used by exit handlers). */
export function removeTempRoots(): void {
  for (const dir of tempRoots) {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // best effort
    }
    tempRoots.delete(dir);
  }
}

export function mkdirp(dir: string): string {
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** Writes `size` random bytes to dir/name (1 MiB at a time), hashing them on the way. */
export function makeRandomFile(dir: string, name: string, size: number): InputFile {
  const file = path.join(dir, name);
  const hash = createHash("sha256");
  const block = Buffer.allocUnsafe(Math.min(MiB, Math.max(size, 1)));
  const fd = openSync(file, "w");
  try {
    let left = size;
    while (left > 0) {
      const n = Math.min(left, block.length);
      const part = block.subarray(0, n);
      randomFillSync(part);
      hash.update(part);
      let off = 0;
      while (off < n) off += writeSync(fd, part, off, n - off);
      left -= n;
    }
  } finally {
    closeSync(fd);
  }
  return { name, path: file, size, sha256: hash.digest("hex") };
}

export function sha256File(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash("sha256");
    createReadStream(file, { highWaterMark: MiB })
      .on("data", (chunk) => hash.update(chunk))
      .on("error", reject)
      .on("end", () => resolve(hash.digest("hex")));
  });
}

/** Undefined when `file` is a byte-identical copy of `input`, else what is wrong. */
export async function checkCopy(file: string, input: InputFile): Promise<string | undefined> {
  let size: number;
  try {
    size = statSync(file).size;
  } catch {
    return `${file} is missing`;
  }
  if (size !== input.size) return `${file} has ${size} bytes, expected ${input.size}`;
  const digest = await sha256File(file);
  return digest === input.sha256 ? undefined : `${file} differs from ${input.name} (SHA-256)`;
}
