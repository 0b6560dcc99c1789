import { linkSync, readFileSync, renameSync, unlinkSync, writeFileSync } from "node:fs";
import { SwarmError } from "../util/errors.js";

/**
 * One peer per folder: a lock file holding the owner's PID (and, on Linux, its start time,
 * so that a PID reused by another process after a crash is not taken for the owner).
 * Created whole and atomically (written aside, then hard-linked into place, which fails
 * if the name exists). A lock whose process is gone (kill -9, power loss) is taken over.
 */
export class FolderLock {
  readonly path: string;
  readonly #content: string;
  #held = true;

  private constructor(path: string, content: string) {
    this.path = path;
    this.#content = content;
  }

  /** Takes the lock at `path`, or throws ERR_FOLDER_IN_USE naming the live owner (a peer, or a client). */
  static acquire(path: string, owner: "peer" | "client" = "peer"): FolderLock {
    const content = describe(process.pid);
    const aside = `${path}.${process.pid}.new`;
    io(() => writeFileSync(aside, content), `create ${aside}`);
    try {
      // A few rounds: each either takes the lock, finds a live owner, or clears a dead one.
      for (let round = 0; round < 5; round++) {
        try {
          linkSync(aside, path);
          return new FolderLock(path, content);
        } catch (err) {
          if (code(err) !== "EEXIST") throw ioError(err, `create ${path}`);
        }
        const holder = readLock(path);
        if (holder === undefined) continue; // released meanwhile
        if (isLive(holder)) throw inUse(path, holder.pid, owner);
        clearStale(path, holder.raw);
      }
      throw new SwarmError("ERR_FOLDER_IN_USE", `cannot take the lock ${path}: other ${owner}s keep starting here`);
    } finally {
      try {
        unlinkSync(aside);
      } catch {
        // never created, or already gone
      }
    }
  }

  /** Removes the lock if it is still ours. Safe to call twice. */
  release(): void {
    if (!this.#held) return;
    this.#held = false;
    try {
      if (readFileSync(this.path, "utf8") === this.#content) unlinkSync(this.path);
    } catch {
      // already gone
    }
  }
}

type Holder = { readonly raw: string; readonly pid: number; readonly start: string | undefined };

function readLock(path: string): Holder | undefined {
  let raw: string;
  try {
    raw = readFileSync(path, "utf8");
  } catch (err) {
    if (code(err) === "ENOENT") return undefined;
    throw ioError(err, `read ${path}`);
  }
  const [pidText = "", start = ""] = raw.split("\n");
  const pid = /^\d{1,10}$/.test(pidText) ? Number(pidText) : 0;
  return { raw, pid, start: start === "" ? undefined : start };
}

function isLive(h: Holder): boolean {
  // Our own PID in the lock is a previous life of this PID (we do not hold it yet).
  if (h.pid <= 0 || h.pid === process.pid) return false;
  try {
    process.kill(h.pid, 0);
  } catch (err) {
    if (code(err) !== "EPERM") return false;
  }
  const now = procStat(h.pid);
  if (now === undefined) return true; // no /proc: the PID is all we can go by
  // A zombie (killed, not yet reaped) holds nothing; another start time is another process.
  return now.state !== "Z" && now.state !== "X" && (h.start === undefined || now.start === h.start);
}

/**
 * Moves a dead owner's lock aside. Another starting peer may have done the same and put
 * its own lock in place meanwhile: what was moved is checked, and put back if it is not
 * the dead lock (the next round then finds that live owner).
 */
function clearStale(path: string, raw: string): void {
  const aside = `${path}.${process.pid}.stale`;
  try {
    renameSync(path, aside);
  } catch (err) {
    if (code(err) === "ENOENT") return;
    throw ioError(err, `replace the stale lock ${path}`);
  }
  try {
    if (readFileSync(aside, "utf8") !== raw) linkSync(aside, path);
  } catch {
    // Vanished, or a third peer took the name meanwhile: the next round sees who holds it.
  }
  try {
    unlinkSync(aside);
  } catch {
    // already gone
  }
}

/** What identifies a process: PID and, where /proc has it, its start time in clock ticks. */
function describe(pid: number): string {
  return `${pid}\n${procStat(pid)?.start ?? ""}\n`;
}

function procStat(pid: number): { readonly state: string; readonly start: string } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // After the command name (which may contain spaces): field 3 is the state, 22 the start time.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return { state: fields[0] ?? "", start: fields[19] ?? "" };
  } catch {
    return undefined;
  }
}

function inUse(path: string, pid: number, owner: "peer" | "client"): SwarmError {
  return new SwarmError(
    "ERR_FOLDER_IN_USE",
    `another ${owner} (pid ${pid}) is already using this folder (lock ${path}); ` +
      `stop it first, or run this ${owner} from another folder`,
  );
}

function code(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException).code;
}

function ioError(err: unknown, what: string): SwarmError {
  return new SwarmError("ERR_IO", `cannot ${what}: ${(err as Error).message}`, { cause: err });
}

function io<T>(op: () => T, what: string): T {
  try {
    return op();
  } catch (err) {
    throw ioError(err, what);
  }
}
