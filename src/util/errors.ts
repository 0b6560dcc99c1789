/**
 * Local failures carry a code; this module is the one place that turns a failure into
 * the stderr line and the exit status a user sees (both programs, --help and the docs
 * use the tables below, and a unit test keeps docs/contract.md in step with them).
 */
export type SwarmErrorCode =
  | "ERR_USAGE"
  | "ERR_TRACKER_UNREACHABLE"
  | "ERR_TRACKER_LOST"
  | "ERR_TRACKER_REFUSED"
  | "ERR_PROTOCOL_VERSION"
  | "ERR_IO"
  | "ERR_FRAME_TOO_LARGE"
  | "ERR_BAD_MESSAGE"
  | "ERR_FOLDER_IN_USE";

export class SwarmError extends Error {
  readonly code: SwarmErrorCode;

  constructor(code: SwarmErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = "SwarmError";
  }
}

/** Process exit statuses. */
export const ExitStatus = {
  ok: 0,
  /** Not a SwarmError nor an operating-system error: a bug. */
  internal: 1,
  usage: 2,
  trackerUnreachable: 3,
  trackerLost: 4,
  io: 5,
  refused: 6,
  /** Another peer runs in the same folder (its lock is in the staging folder). */
  folderInUse: 7,
  /** 128 + the signal's number, as shells report it. */
  sigint: 130,
  sigterm: 143,
} as const;

/** Every code's status; a `Record` over the union, so a new code cannot be left unmapped. */
const STATUS_OF: Readonly<Record<SwarmErrorCode, number>> = {
  ERR_USAGE: ExitStatus.usage,
  ERR_TRACKER_UNREACHABLE: ExitStatus.trackerUnreachable,
  ERR_TRACKER_LOST: ExitStatus.trackerLost,
  // A tracker link that sends frames we cannot trust is as good as lost.
  ERR_FRAME_TOO_LARGE: ExitStatus.trackerLost,
  ERR_BAD_MESSAGE: ExitStatus.trackerLost,
  ERR_TRACKER_REFUSED: ExitStatus.refused,
  ERR_PROTOCOL_VERSION: ExitStatus.refused,
  ERR_IO: ExitStatus.io,
  ERR_FOLDER_IN_USE: ExitStatus.folderInUse,
};

/** An error raised by the operating system (fs, net, dgram): it has an errno-style code. */
function isSystemError(err: unknown): err is NodeJS.ErrnoException {
  if (!(err instanceof Error)) return false;
  const code = (err as NodeJS.ErrnoException).code;
  return typeof code === "string" && /^E[A-Z0-9]+$/.test(code);
}

/** The exit status for a failure (see the tables below). */
export function exitStatusFor(err: unknown): number {
  if (err instanceof SwarmError) return STATUS_OF[err.code];
  if (isSystemError(err)) return ExitStatus.io;
  return ExitStatus.internal;
}

/** The exit status for a terminating signal. */
export function exitStatusForSignal(signal: "SIGINT" | "SIGTERM"): number {
  return signal === "SIGINT" ? ExitStatus.sigint : ExitStatus.sigterm;
}

/** The one stderr line (without the program prefix) that reports a failure. */
export function errorMessage(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  if (exitStatusFor(err) === ExitStatus.internal) return `internal error (please report it): ${message}`;
  return message;
}

export type StatusTable = ReadonlyArray<readonly [status: number, meaning: string]>;

/** The peer's exit statuses, as --help and docs/contract.md list them. */
export const PEER_EXIT_STATUSES: StatusTable = [
  [ExitStatus.ok, "left the swarm normally"],
  [ExitStatus.internal, "internal error (a bug: please report it)"],
  [ExitStatus.usage, "usage error (bad argument or option)"],
  [ExitStatus.trackerUnreachable, "tracker unreachable"],
  [ExitStatus.trackerLost, "tracker lost (connection closed or silent)"],
  [ExitStatus.io, "I/O error (./Shared or staging unusable, disk full)"],
  [ExitStatus.refused, "refused by the tracker (other protocol version)"],
  [ExitStatus.folderInUse, "another peer is running in this folder"],
  [ExitStatus.sigint, "interrupted by SIGINT (Ctrl-C)"],
  [ExitStatus.sigterm, "stopped by SIGTERM"],
];

/** The tracker's exit statuses, as --help and docs/contract.md list them. */
export const TRACKER_EXIT_STATUSES: StatusTable = [
  [ExitStatus.ok, "stopped by SIGINT or SIGTERM"],
  [ExitStatus.internal, "internal error (a bug: please report it)"],
  [ExitStatus.usage, "usage error (bad argument or option)"],
  [ExitStatus.io, "I/O error (cannot listen, start the web view, or write port.txt)"],
];

/** The table as help text lines ("  0  left the swarm normally"). */
export function formatStatuses(table: StatusTable): string {
  return table.map(([status, meaning]) => `  ${String(status).padStart(3)}  ${meaning}`).join("\n");
}
