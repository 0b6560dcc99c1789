/** Small helpers shared by the benchmark modules: time, waiting, statistics, formatting. */
import { accessSync, constants } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** Repository root: this file runs as <root>/dist/bench/util.js. */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

/** Monotonic milliseconds. */
export function now(): number {
  return performance.now();
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Settles like `promise`, or rejects after `ms` saying it timed out waiting for `what`. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${(ms / 1000).toFixed(1)} s waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Polls `probe` every `everyMs` until it returns a value, or rejects after `ms`. */
export async function pollUntil<T>(
  probe: () => T | undefined | Promise<T | undefined>,
  ms: number,
  what: string,
  everyMs = 20,
): Promise<T> {
  const deadline = now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (now() > deadline) throw new Error(`${what}: not after ${(ms / 1000).toFixed(0)} s`);
    await sleep(everyMs);
  }
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Median of the finite values (mean of the two middle ones for an even count). */
export function median(values: readonly number[]): number | undefined {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return undefined;
  const mid = Math.floor(v.length / 2);
  const hi = v[mid];
  const lo = v[v.length % 2 === 0 ? mid - 1 : mid];
  return hi === undefined || lo === undefined ? undefined : (hi + lo) / 2;
}

export function minMax(values: readonly number[]): [number, number] | undefined {
  const v = values.filter((x) => Number.isFinite(x));
  if (v.length === 0) return undefined;
  return [Math.min(...v), Math.max(...v)];
}

/** A number with `digits` significant decimals, or "—" when missing. */
export function fmt(value: number | undefined, decimals = 2): string {
  if (value === undefined || !Number.isFinite(value)) return "—";
  return value.toFixed(decimals);
}

export const MiB = 1024 * 1024;
/** Megabytes per second are decimal (10^6 bytes), sizes are binary (MiB, GiB). */
export const MB = 1_000_000;

export function sizeText(bytes: number): string {
  if (bytes >= 1024 * MiB && bytes % (1024 * MiB) === 0) return `${bytes / (1024 * MiB)} GiB`;
  if (bytes >= MiB && bytes % MiB === 0) return `${bytes / MiB} MiB`;
  if (bytes % 1024 === 0) return `${bytes / 1024} KiB`;
  return `${bytes} B`;
}

/** The directories searched for tools: PATH plus the sbin directories root tools live in. */
function searchPath(): string[] {
  const dirs = (process.env.PATH ?? "").split(path.delimiter).filter((d) => d !== "");
  for (const extra of ["/usr/local/sbin", "/usr/sbin", "/sbin"]) if (!dirs.includes(extra)) dirs.push(extra);
  return dirs;
}

/** Absolute path of an executable, or undefined. */
export function which(name: string): string | undefined {
  for (const dir of searchPath()) {
    const candidate = path.join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Reads a finite number at `key` of a parsed JSON object, else undefined. */
export function numberAt(obj: unknown, key: string): number | undefined {
  if (typeof obj !== "object" || obj === null) return undefined;
  const value = (obj as Record<string, unknown>)[key];
  return typeof value === "number" && Number.isFinite(value) ? value : undefined;
}
