import type { OptionSpec } from "../util/cli-args.js";
import { SwarmError } from "../util/errors.js";
import { udpswarm } from "../wire/gen/swarm.js";
import { CHUNK_SIZE, DEFAULT_MAX_FILE_SIZE, MAX_FRAME_BYTES, SHA256_BYTES } from "../wire/limits.js";
import { type CheckedManifest, manifestToWire } from "../wire/tracker-frame.js";

/**
 * What one client may cost the tracker and the swarm (issue 15), each with its default
 * and its tracker flag (docs/tracker.md lists them). They are consistent by
 * construction: the manifest of a file of --max-file-size fits in the per-peer manifest
 * budget, which fits in the swarm's, which fits in a Welcome frame (the largest frame a
 * peer accepts) with room for the peer list.
 */
export type TrackerLimits = {
  /** Time a new connection has to say Hello, from its accept (ms). */
  readonly helloTimeoutMs: number;
  /** Connections at once, in all. */
  readonly maxConnections: number;
  /** Connections at once from one address. */
  readonly maxConnectionsPerAddress: number;
  /** Connections from one address that have not said Hello yet; a newer one evicts the oldest. */
  readonly maxUnjoinedPerAddress: number;
  /** Bytes all connections that have not said Hello may hold in frames above PRE_HELLO_FRAME_BYTES. */
  readonly helloBudgetBytes: number;
  /** Largest frame after the Hello (reports, stats: all small). */
  readonly maxFrameBytes: number;
  /** A peer with more than this unsent to it (beyond the frame being sent) is too slow to keep. */
  readonly maxQueuedBytes: number;
  /** Files one peer may offer; the rest are refused (REASON_LIMIT). */
  readonly maxFilesPerPeer: number;
  /** Manifest bytes one peer may offer. */
  readonly maxManifestBytesPerPeer: number;
  /** Manifest bytes of every file in the swarm together (all of them go in each Welcome). */
  readonly maxManifestBytes: number;
  /** Chunks a peer may report acquired per second (bytes/s of chunks); faster reports wait. */
  readonly maxClaimBytesPerSecond: number;
  /** Diagnostic lines per reason per 10 s; the rest are counted. */
  readonly logLinesPerReason: number;
  /**
   * A peer that lacks files and reports no new chunk for this long is not acquiring data
   * (SPEC §4.5): it holds nobody back until it reports again (ms).
   */
  readonly fetchGraceMs: number;
};

/** Pre-Hello frames up to this size are read freely; larger ones draw on the Hello budget. */
export const PRE_HELLO_FRAME_BYTES = 64 * 1024;
/** Room kept in a Welcome beyond the swarm's manifests (peer list, ids, secret). */
export const WELCOME_ROOM_BYTES = 8 * 1024 * 1024;

const MiB = 1024 * 1024;

export const DEFAULT_LIMITS: TrackerLimits = {
  helloTimeoutMs: 10_000,
  maxConnections: 4096,
  maxConnectionsPerAddress: 1024,
  maxUnjoinedPerAddress: 64,
  helloBudgetBytes: 64 * MiB,
  maxFrameBytes: 1 * MiB,
  maxQueuedBytes: 16 * MiB,
  maxFilesPerPeer: 1024,
  maxManifestBytesPerPeer: 40 * MiB,
  maxManifestBytes: 48 * MiB,
  maxClaimBytesPerSecond: 256 * MiB,
  logLinesPerReason: 20,
  fetchGraceMs: 30_000,
};

type LimitSpec = {
  readonly key: keyof TrackerLimits;
  readonly flag: string;
  readonly placeholder: string;
  readonly help: string;
  readonly min: number;
  /** Flag value to limit value (e.g. seconds to ms). */
  readonly scale?: number;
};

const SPECS: readonly LimitSpec[] = [
  { key: "helloTimeoutMs", flag: "hello-timeout", placeholder: "S", help: "time to say Hello", min: 0.1, scale: 1000 },
  { key: "maxConnections", flag: "max-connections", placeholder: "N", help: "connections in all", min: 1 },
  {
    key: "maxConnectionsPerAddress",
    flag: "max-connections-per-address",
    placeholder: "N",
    help: "connections from one address",
    min: 1,
  },
  {
    key: "maxUnjoinedPerAddress",
    flag: "max-unjoined-per-address",
    placeholder: "N",
    help: "connections before Hello from one address",
    min: 1,
  },
  {
    key: "helloBudgetBytes",
    flag: "hello-budget",
    placeholder: "BYTES",
    help: "bytes of large Hellos held at once",
    min: 0,
  },
  { key: "maxFrameBytes", flag: "max-frame", placeholder: "BYTES", help: "largest frame after Hello", min: 1024 },
  {
    key: "maxQueuedBytes",
    flag: "max-queued-bytes",
    placeholder: "BYTES",
    help: "unsent bytes kept for a peer",
    min: 64 * 1024,
  },
  { key: "maxFilesPerPeer", flag: "max-files-per-peer", placeholder: "N", help: "files one peer may offer", min: 0 },
  {
    key: "maxManifestBytesPerPeer",
    flag: "max-manifest-bytes-per-peer",
    placeholder: "BYTES",
    help: "manifest bytes one peer may offer",
    min: 0,
  },
  {
    key: "maxManifestBytes",
    flag: "max-manifest-bytes",
    placeholder: "BYTES",
    help: "manifest bytes of the whole swarm",
    min: 0,
  },
  {
    key: "maxClaimBytesPerSecond",
    flag: "max-claim-rate",
    placeholder: "BYTES",
    help: "chunk bytes one peer may report per second",
    min: CHUNK_SIZE,
  },
  {
    key: "fetchGraceMs",
    flag: "fetch-grace",
    placeholder: "S",
    help: "a peer fetching nothing this long holds nobody back (runs slower on a crowded host)",
    min: 0.1,
    scale: 1000,
  },
  {
    key: "logLinesPerReason",
    flag: "log-lines",
    placeholder: "N",
    help: "stderr lines per reason per 10 s",
    min: 1,
  },
];

/** The tracker's limit flags, for its option table and --help. */
export const LIMIT_OPTIONS: readonly OptionSpec[] = SPECS.map((s) => ({
  name: s.flag,
  kind: "number",
  placeholder: s.placeholder,
  help: `${s.help} (default ${DEFAULT_LIMITS[s.key] / (s.scale ?? 1)})`,
}));

/** Limits from parsed flags; throws ERR_USAGE, echoing the value, when one is out of range or they disagree. */
export function limitsFrom(values: ReadonlyMap<string, string | number | boolean>, maxFileSize: number): TrackerLimits {
  const limits: Record<string, number> = { ...DEFAULT_LIMITS };
  for (const s of SPECS) {
    const raw = values.get(s.flag);
    if (raw === undefined) continue;
    const n = Number(raw);
    if (!(Number.isFinite(n) && n >= s.min) || (s.scale === undefined && !Number.isSafeInteger(n))) {
      throw new SwarmError(
        "ERR_USAGE",
        `--${s.flag} must be ${s.scale === undefined ? "an integer" : "a number"} >= ${s.min}, got ${raw}`,
      );
    }
    limits[s.key] = n * (s.scale ?? 1);
  }
  const result = limits as TrackerLimits;
  const room = MAX_FRAME_BYTES - WELCOME_ROOM_BYTES;
  if (result.maxManifestBytes > room) {
    throw new SwarmError(
      "ERR_USAGE",
      `--max-manifest-bytes ${result.maxManifestBytes} does not fit in a Welcome frame (at most ${room})`,
    );
  }
  const biggest = manifestBytesFor(maxFileSize);
  if (biggest > result.maxManifestBytesPerPeer || result.maxManifestBytesPerPeer > result.maxManifestBytes) {
    throw new SwarmError(
      "ERR_USAGE",
      `limits disagree: a file of --max-file-size ${maxFileSize} has a ${biggest}-byte manifest; ` +
        `it must fit in --max-manifest-bytes-per-peer (${result.maxManifestBytesPerPeer}), ` +
        `which must fit in --max-manifest-bytes (${result.maxManifestBytes})`,
    );
  }
  return result;
}

/** Wire bytes of a manifest (what it costs in a Welcome and in each peer). */
export function manifestBytes(m: CheckedManifest): number {
  const head = udpswarm.Manifest.encode({ ...manifestToWire(m), pieceSha256: [] }).finish().length;
  return head + m.pieceSha256.length * PIECE_HASH_FIELD_BYTES;
}

/** One repeated piece hash: tag, length, 32 bytes. */
const PIECE_HASH_FIELD_BYTES = 2 + SHA256_BYTES;

/** Wire bytes of the manifest of a file of `size` bytes with a 255-byte name (the worst case). */
export function manifestBytesFor(size: number): number {
  const pieces = Math.ceil(Math.ceil(size / CHUNK_SIZE) / 128);
  const head = 2 + 255 + 1 + 10 + 3 + 3 + 2 + 2 + SHA256_BYTES;
  return head + pieces * PIECE_HASH_FIELD_BYTES;
}

export { DEFAULT_MAX_FILE_SIZE };
