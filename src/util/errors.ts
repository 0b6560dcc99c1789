/** Local failures, each with a code the CLIs map to one stderr line and an exit status. */
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

/** Process exit statuses (documented in README and --help). */
export const ExitStatus = {
  ok: 0,
  usage: 2,
  trackerUnreachable: 3,
  trackerLost: 4,
  io: 5,
  refused: 6,
  /** Another peer runs in the same folder (its lock is in the staging folder). */
  folderInUse: 7,
} as const;

export function exitStatusFor(err: unknown): number {
  if (!(err instanceof SwarmError)) return 1;
  switch (err.code) {
    case "ERR_USAGE":
      return ExitStatus.usage;
    case "ERR_TRACKER_UNREACHABLE":
      return ExitStatus.trackerUnreachable;
    case "ERR_TRACKER_LOST":
    case "ERR_FRAME_TOO_LARGE":
    case "ERR_BAD_MESSAGE":
      return ExitStatus.trackerLost;
    case "ERR_TRACKER_REFUSED":
    case "ERR_PROTOCOL_VERSION":
      return ExitStatus.refused;
    case "ERR_IO":
      return ExitStatus.io;
    case "ERR_FOLDER_IN_USE":
      return ExitStatus.folderInUse;
  }
}
