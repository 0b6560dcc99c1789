/**
 * The tracker's book of live-folder versions (SPEC §9), free of I/O: the newest version of
 * each name and the file id it was given. Each version is a file record of its own, so a
 * file id names one version everywhere (requests, chunk headers, Have reports).
 */
import { applyPieceDelta } from "../sync/piece-diff.js";
import { checkAncestry, compareVersions, MAX_ANCESTRY, type Version } from "../sync/version.js";
import type { udpswarm } from "../wire/gen/swarm.js";
import { type CheckedManifest, checkManifest, isManifestProblem, RefusalReason } from "../wire/tracker-frame.js";

/** What a version record carries besides its manifest. */
export type VersionTag = {
  readonly mtimeMs: number;
  readonly ancestry: readonly Buffer[];
};

/** A file with no version fields: older than every version a sync peer announces. */
export const CLASSIC_TAG: VersionTag = { mtimeMs: 0, ancestry: [] };

/**
 * A classic peer's file as sync peers see it: at the mtime its Hello carries (the file's,
 * as the classic peer found it), so a newer edit on a sync peer wins and an older one
 * loses, as between sync peers; `nowMs` (the time the tracker recorded it) when the peer
 * sent none. No ancestry: a sync peer's own edit of that name is then a conflict, kept.
 */
export function classicTag(m: udpswarm.IManifest, nowMs: number): VersionTag {
  const mtimeMs = Number(m.mtimeMs ?? 0);
  return {
    mtimeMs: Number.isSafeInteger(mtimeMs) && mtimeMs > 0 ? mtimeMs : Math.max(1, Math.round(nowMs)),
    ancestry: [],
  };
}

export type Standing = "new" | "newer" | "same" | "older";

type Entry = { readonly fileId: number; readonly version: Version };

export class VersionBook {
  readonly #newest = new Map<string, Entry>();

  /** How `version` stands against the newest known of its name. */
  standing(version: Version): Standing {
    const current = this.#newest.get(version.name);
    if (current === undefined) return "new";
    const order = compareVersions(version, current.version);
    return order > 0 ? "newer" : order === 0 ? "same" : "older";
  }

  /** The file id of the newest version of `name`. */
  newestId(name: string): number | undefined {
    return this.#newest.get(name)?.fileId;
  }

  /** `fileId` is now the newest version of its name; returns the id it supersedes. */
  record(fileId: number, version: Version): number | undefined {
    const previous = this.#newest.get(version.name)?.fileId;
    this.#newest.set(version.name, { fileId, version });
    return previous;
  }

  /** The record `fileId` is gone: if it was the newest of `name`, the name is free again. */
  forget(name: string, fileId: number): void {
    if (this.#newest.get(name)?.fileId === fileId) this.#newest.delete(name);
  }
}

export function versionFrom(manifest: CheckedManifest, tag: VersionTag): Version {
  return { name: manifest.name, size: manifest.size, sha256: manifest.sha256, mtimeMs: tag.mtimeMs };
}

/** Reads the version fields of a manifest from the network; a reason when they are bad. */
export function tagFromWire(m: udpswarm.IManifest): VersionTag | string {
  const mtimeMs = Number(m.mtimeMs ?? 0);
  if (!Number.isSafeInteger(mtimeMs) || mtimeMs < 0) return "bad modification time";
  const ancestry = checkAncestry(m.ancestry ?? []);
  if (typeof ancestry === "string") return ancestry;
  return { mtimeMs, ancestry: ancestry.slice(0, MAX_ANCESTRY) };
}

/** The version fields as the wire carries them (left out for classic records). */
export function tagToWire(tag: VersionTag | undefined): Pick<udpswarm.IManifest, "mtimeMs" | "ancestry"> {
  if (tag === undefined || tag.mtimeMs === 0) return {};
  return { mtimeMs: tag.mtimeMs, ancestry: [...tag.ancestry] };
}

/** The part of the registry an Update reaches. */
export interface UpdateSink {
  update(peerId: number, manifest: CheckedManifest, tag: VersionTag): string | undefined;
  /** The manifest of the newest version of `name` (the base a piece delta must name). */
  newestManifest(name: string): CheckedManifest | undefined;
  refuse(peerId: number, refusal: udpswarm.IRefusal): void;
}

/** Checks an Update frame's manifest and hands it on; returns why it is ignored, if it is. */
export function syncUpdate(
  registry: UpdateSink,
  peerId: number,
  wire: udpswarm.IManifest | null | undefined,
  maxFileSize: number,
): string | undefined {
  if (wire === undefined || wire === null) return "no manifest";
  const whole = withDelta(registry, peerId, wire);
  if (whole === undefined) return undefined; // refused: the peer sends the whole list
  if (typeof whole === "string") return `${JSON.stringify(wire.name ?? "")}: ${whole}`;
  const manifest = checkManifest(whole, maxFileSize);
  if (isManifestProblem(manifest)) return `${JSON.stringify(wire.name ?? "")}: ${manifest.detail}`;
  const tag = tagFromWire(wire);
  if (typeof tag === "string") return `${JSON.stringify(manifest.name)}: ${tag}`;
  return registry.update(peerId, manifest, tag);
}

/**
 * The Update's manifest with its whole piece-hash list: as sent, or rebuilt from the
 * newest version's list and the delta. Undefined when the delta names another base (the
 * peer is refused with REASON_UNKNOWN_BASE and sends the whole list); a reason when the
 * delta is malformed.
 */
function withDelta(
  registry: UpdateSink,
  peerId: number,
  wire: udpswarm.IManifest,
): udpswarm.IManifest | string | undefined {
  const baseHash = wire.deltaBase;
  if (baseHash === undefined || baseHash === null || baseHash.length === 0) return wire;
  const name = wire.name ?? "";
  const base = registry.newestManifest(name);
  if (base === undefined || !base.sha256.equals(baseHash) || base.chunksPerPiece !== wire.chunksPerPiece) {
    registry.refuse(peerId, {
      reason: RefusalReason.REASON_UNKNOWN_BASE,
      fileName: name,
      detail: "the piece delta is not against the newest version; send the whole list",
    });
    return undefined;
  }
  const pieces = applyPieceDelta(base.pieceSha256, {
    pieces: wire.deltaPieces ?? 0,
    indices: wire.deltaIndices ?? [],
    hashes: (wire.pieceSha256 ?? []).map((h) => Buffer.from(h)),
  });
  if (typeof pieces === "string") return `bad piece delta: ${pieces}`;
  return { ...wire, pieceSha256: pieces, deltaBase: null, deltaPieces: null, deltaIndices: [] };
}
