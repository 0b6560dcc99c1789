/**
 * What a sync peer remembers of its folder across restarts (SPEC §9, "derived from"):
 * for each file, the version last seen, its ancestry and its base. Pure: the codec, and
 * how a saved copy and the file found at start make the copy to go on with.
 */
import { frameChecked, unframeChecked } from "../util/checked-frame.js";
import { udpswarm } from "../wire/gen/swarm.js";
import { SHA256_BYTES } from "../wire/limits.js";
import { checkFileName } from "../wire/names.js";
import { checkAncestry, editedCopy, type LocalCopy, sameContent, type Version } from "./version.js";

const MAGIC = Buffer.from("USSS", "latin1");
/** 100,000 files of ~600 bytes each; anything larger is not ours. */
export const MAX_STATE_BYTES = 64 * 1024 * 1024;

/** What a sync peer keeps: its copies, and the versions of files deleted here. */
export type SyncState = {
  readonly copies: Map<string, LocalCopy>;
  readonly deleted: Map<string, Version>;
};

export function encodeSyncState(
  copies: ReadonlyMap<string, LocalCopy>,
  deleted: ReadonlyMap<string, Version> = new Map(),
): Buffer {
  const wire = (c: LocalCopy): udpswarm.ISyncCopy => ({
    name: c.current.name,
    size: c.current.size,
    sha256: c.current.sha256,
    mtimeMs: c.current.mtimeMs,
    ancestry: [...c.ancestry],
    base: c.base ?? Buffer.alloc(0),
  });
  const body = udpswarm.SyncState.encode({
    format: udpswarm.StagingFormat.STAGING_FORMAT,
    copies: [...copies.values()].map(wire),
    deleted: [...deleted.values()].map((v) => wire({ current: v, ancestry: [], base: undefined })),
  }).finish();
  return frameChecked(MAGIC, body);
}

/** The saved state, or why the bytes are not a state file (never throws). Bad entries are skipped. */
export function decodeSyncState(bytes: Uint8Array): SyncState | string {
  const body = unframeChecked(MAGIC, bytes, MAX_STATE_BYTES);
  if (typeof body === "string") return body;
  let m: udpswarm.SyncState;
  try {
    m = udpswarm.SyncState.decode(body);
  } catch {
    return "malformed";
  }
  if (m.format !== udpswarm.StagingFormat.STAGING_FORMAT) return `format ${m.format}`;
  const copies = readCopies(m.copies);
  const deleted = new Map([...readCopies(m.deleted)].map(([name, c]) => [name, c.current]));
  return { copies, deleted };
}

function readCopies(list: readonly udpswarm.ISyncCopy[]): Map<string, LocalCopy> {
  const out = new Map<string, LocalCopy>();
  for (const c of list) {
    const name = c.name ?? "";
    const size = Number(c.size ?? -1);
    const mtimeMs = Number(c.mtimeMs ?? -1);
    const sha256 = c.sha256 ?? new Uint8Array(0);
    const base = c.base ?? new Uint8Array(0);
    const ancestry = checkAncestry(c.ancestry ?? []);
    if (
      checkFileName(name) !== undefined ||
      !Number.isSafeInteger(size) ||
      size < 0 ||
      !Number.isSafeInteger(mtimeMs) ||
      mtimeMs < 0 ||
      sha256.length !== SHA256_BYTES ||
      typeof ancestry === "string" ||
      (base.length !== 0 && base.length !== SHA256_BYTES)
    ) {
      continue;
    }
    const current: Version = { name, size, sha256: Buffer.from(sha256), mtimeMs };
    out.set(name, { current, ancestry, base: base.length === 0 ? undefined : Buffer.from(base) });
  }
  return out;
}

/**
 * The copy of a file found at start, given what was saved of it. The same content as
 * saved: the saved ancestry and base hold (a new mtime alone is not an edit of content).
 * Another content: an edit made while the peer was down, derived from the saved version.
 * Nothing saved: a file of unknown origin (every content counts as a local edit).
 */
export function restoredCopy(saved: LocalCopy | undefined, found: Version): LocalCopy {
  if (saved === undefined) return editedCopy(undefined, found);
  if (sameContent(saved.current, found)) return { ...saved, current: found };
  return editedCopy(saved, found);
}
