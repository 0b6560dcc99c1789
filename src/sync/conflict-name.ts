/**
 * The name a losing local edit is kept under (SPEC §9):
 * `NAME.sync-conflict-YYYYMMDD-HHMMSS-PEER.EXT`, time in UTC.
 *
 * - EXT is what follows the last dot, when that dot is neither the first nor the last
 *   character and EXT is at most MAX_EXTENSION_BYTES: `archive.tar.gz` keeps `.gz`,
 *   `Makefile` and `notes.` have none (the marker goes at the end), and a "dot" deep in a
 *   long name (`v1.2 draft of the plan`) is not mistaken for one.
 * - Hidden names are never shared, so a name starting with a dot is refused.
 * - The result passes the swarm's name rules (wire/names.ts), within MAX_NAME_BYTES: when
 *   it would be longer, NAME is shortened at a character boundary (never EXT or the marker).
 * - When the name is taken, `-2`, `-3`, … follow PEER.
 */
import { MAX_NAME_BYTES } from "../wire/limits.js";
import { checkFileName } from "../wire/names.js";

export const CONFLICT_MARKER = ".sync-conflict-";
/** Longest extension kept as one (dot included). */
export const MAX_EXTENSION_BYTES = 16;
/** Longest PEER label (characters other than letters, digits, `_` and `-` become `_`). */
export const MAX_PEER_LABEL = 32;
/** Suffixes tried before giving up on a name that is always taken. */
export const MAX_COLLISION_SUFFIX = 999;

/** Latest time the stamp can show (9999-12-31 23:59:59.999 UTC). */
const MAX_STAMP_MS = 253_402_300_799_999;

/**
 * The conflict-copy name of `name` for an edit at `atMs` (ms since the epoch; use the
 * losing version's mtime, so the same conflict found twice gets the same name) kept by
 * `peer`. `taken` says whether a candidate exists already. Undefined only when
 * MAX_COLLISION_SUFFIX candidates are all taken.
 */
export function conflictName(
  name: string,
  atMs: number,
  peer: string | number,
  taken: (candidate: string) => boolean = () => false,
): string | undefined {
  const problem = checkFileName(name);
  if (problem !== undefined) throw new RangeError(`cannot name a conflict copy of ${JSON.stringify(name)}: ${problem}`);
  const { stem, ext } = splitExtension(name);
  const marker = `${CONFLICT_MARKER}${utcStamp(atMs)}-${peerLabel(peer)}`;
  for (let n = 1; n <= MAX_COLLISION_SUFFIX; n++) {
    const tail = `${marker}${n === 1 ? "" : `-${n}`}${ext}`;
    const candidate = truncateUtf8(stem, MAX_NAME_BYTES - Buffer.byteLength(tail, "utf8")) + tail;
    if (!taken(candidate)) return candidate;
  }
  return undefined;
}

/** NAME and .EXT as conflictName splits them (ext is "" when there is none). */
export function splitExtension(name: string): { stem: string; ext: string } {
  const dot = name.lastIndexOf(".");
  if (dot <= 0 || dot === name.length - 1) return { stem: name, ext: "" };
  const ext = name.slice(dot);
  if (Buffer.byteLength(ext, "utf8") > MAX_EXTENSION_BYTES) return { stem: name, ext: "" };
  return { stem: name.slice(0, dot), ext };
}

/** YYYYMMDD-HHMMSS in UTC (clamped to years 1970..9999). */
export function utcStamp(ms: number): string {
  const clamped = Number.isFinite(ms) ? Math.min(MAX_STAMP_MS, Math.max(0, Math.floor(ms))) : 0;
  const iso = new Date(clamped).toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ
  return `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}-${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}`;
}

function peerLabel(peer: string | number): string {
  const label = String(peer)
    .replace(/[^A-Za-z0-9_-]/g, "_")
    .slice(0, MAX_PEER_LABEL);
  return label === "" ? "_" : label;
}

/** The longest prefix of `s` of at most `maxBytes` UTF-8 bytes, cut between code points. */
function truncateUtf8(s: string, maxBytes: number): string {
  if (Buffer.byteLength(s, "utf8") <= maxBytes) return s;
  let bytes = 0;
  let out = "";
  for (const ch of s) {
    const n = Buffer.byteLength(ch, "utf8");
    if (bytes + n > maxBytes) break;
    bytes += n;
    out += ch;
  }
  return out;
}
