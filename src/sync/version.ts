/**
 * Versions of a file in a live folder (SPEC §9), free of I/O.
 *
 * A version is name + size + SHA-256 of the content + modification time (ms). Versions of
 * one name are totally ordered: the later mtime wins; on equal mtime the larger content
 * hash wins, so every peer picks the same winner without talking to the others.
 *
 * "Derived from" is tracked by content: each version carries its ancestry, the content
 * hashes of the versions it was edited from (nearest first, bounded). Each local copy
 * remembers its base, the content it was last in step with the swarm at (the version it
 * received). A local copy whose content differs from its base holds a local edit; that
 * edit is lost if a newer version replaces it without having been derived from it, so it
 * is kept as a conflict copy. A copy that only received versions is never a conflict.
 */
import { SHA256_BYTES } from "../wire/limits.js";
import type { CheckedManifest } from "../wire/tracker-frame.js";

/** Content hashes an announcement carries in its ancestry (nearest first). */
export const MAX_ANCESTRY = 16;

export type Version = {
  readonly name: string;
  readonly size: number;
  /** SHA-256 of the whole content (32 bytes). */
  readonly sha256: Buffer;
  /** Modification time, integer milliseconds since the epoch (see mtimeOf). */
  readonly mtimeMs: number;
};

/** A version as the swarm announces it: the version and what it was derived from. */
export type Announced = {
  readonly version: Version;
  /** Content hashes of the versions it was edited from, nearest first (at most MAX_ANCESTRY). */
  readonly ancestry: readonly Buffer[];
};

/** What this peer knows of its own copy of a name. */
export type LocalCopy = {
  /** The content in ./Shared now (as last hashed). */
  readonly current: Version;
  /** Ancestry of `current` (what it was derived from), nearest first. */
  readonly ancestry: readonly Buffer[];
  /**
   * Content hash this copy was last in step with (the version received, or the one found
   * unchanged at start from the saved state); undefined when unknown (a file created here,
   * or found at start with no saved state): then every local content counts as an edit.
   */
  readonly base: Buffer | undefined;
};

export type Decision =
  /** `same`: this very version; `older`: ours is newer (the swarm will fetch ours). */
  | { readonly kind: "ignore"; readonly reason: "same" | "older" }
  /** Same content, later mtime: set the local copy's mtime, fetch nothing. */
  | { readonly kind: "retime" }
  /** `absent`: no local copy; `update`: ours is an ancestor or was never edited here. */
  | { readonly kind: "fetch"; readonly reason: "absent" | "update" }
  /** Ours holds a local edit the newer version was not derived from: keep it aside, then fetch. */
  | { readonly kind: "fetch-keep-conflict" };

/**
 * The mtime of a version from `fs.Stats.mtimeMs`. Rounded, not truncated: a time set with
 * fs.utimes(seconds) reads back a hair below the millisecond it was set to (float seconds
 * to nanoseconds), and must still name the same version.
 */
export function mtimeOf(statMtimeMs: number): number {
  return Math.round(statMtimeMs);
}

export function versionOf(manifest: CheckedManifest, mtimeMs: number): Version {
  return { name: manifest.name, size: manifest.size, sha256: manifest.sha256, mtimeMs };
}

/** The version order: positive when `a` is newer than `b`, 0 for the same version. */
export function compareVersions(a: Version, b: Version): number {
  if (a.mtimeMs !== b.mtimeMs) return a.mtimeMs > b.mtimeMs ? 1 : -1;
  return Buffer.compare(a.sha256, b.sha256);
}

export function isNewer(a: Version, b: Version): boolean {
  return compareVersions(a, b) > 0;
}

export function sameContent(a: Version, b: Version): boolean {
  return a.size === b.size && a.sha256.equals(b.sha256);
}

/** A key naming one version exactly (for maps and logs). */
export function versionKey(v: Version): string {
  return `${v.mtimeMs}:${v.sha256.toString("hex")}`;
}

/**
 * What to do when the swarm announces `announced` for a name this peer holds as `local`
 * (undefined: no local copy). Pure and total; the same inputs give the same answer on
 * every peer.
 */
export function decide(local: LocalCopy | undefined, announced: Announced): Decision {
  if (local === undefined) return { kind: "fetch", reason: "absent" };
  const order = compareVersions(announced.version, local.current);
  if (order === 0) return { kind: "ignore", reason: "same" };
  if (order < 0) return { kind: "ignore", reason: "older" };
  if (sameContent(announced.version, local.current)) return { kind: "retime" };
  const editedHere = local.base === undefined || !local.base.equals(local.current.sha256);
  if (!editedHere) return { kind: "fetch", reason: "update" };
  const derived = announced.ancestry.some((h) => h.equals(local.current.sha256));
  return derived ? { kind: "fetch", reason: "update" } : { kind: "fetch-keep-conflict" };
}

/** The copy once `announced` has replaced it (fetched or retimed): in step with it. */
export function receivedCopy(announced: Announced): LocalCopy {
  return { current: announced.version, ancestry: announced.ancestry, base: announced.version.sha256 };
}

/**
 * The copy once the watcher found new content `next` in ./Shared (`previous`: the copy
 * before, undefined for a new file). The edit derives from the previous content; the
 * base stays, so the edit is known as local until a version replaces it.
 */
export function editedCopy(previous: LocalCopy | undefined, next: Version): LocalCopy {
  if (previous === undefined) return { current: next, ancestry: [], base: undefined };
  if (previous.current.sha256.equals(next.sha256)) return { ...previous, current: next };
  return {
    current: next,
    ancestry: [previous.current.sha256, ...previous.ancestry].slice(0, MAX_ANCESTRY),
    base: previous.base,
  };
}

/** What this peer announces for its copy. */
export function announcement(copy: LocalCopy): Announced {
  return { version: copy.current, ancestry: copy.ancestry };
}

/** Checks an ancestry from the network: at most MAX_ANCESTRY hashes of 32 bytes. */
export function checkAncestry(ancestry: readonly Uint8Array[]): Buffer[] | string {
  if (ancestry.length > MAX_ANCESTRY) return `ancestry of ${ancestry.length} versions (at most ${MAX_ANCESTRY})`;
  const out: Buffer[] = [];
  for (const h of ancestry) {
    if (h.length !== SHA256_BYTES) return "bad ancestry hash";
    out.push(Buffer.from(h));
  }
  return out;
}
