/**
 * Exact checkers for the output contract (SPEC §5) and for what a finished swarm must
 * look like on disk. Everything here is pure: the harness (swarm.ts) gathers the facts,
 * these functions turn them into a list of human-readable problems (empty = all good).
 */
import { Buffer } from "node:buffer";

export const CHUNK_SIZE = 512;

export function chunkCount(size: number): number {
  return Math.ceil(size / CHUNK_SIZE);
}

/** Byte order of the UTF-8 encodings (SPEC: "files in a block are listed in byte order of their names"). */
export function compareNameBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

export function sortByNameBytes(names: Iterable<string>): string[] {
  return [...names].sort(compareNameBytes);
}

export interface FileOffer {
  readonly name: string;
  readonly size: number;
}

// ------------------------------------------------------------------ expected blocks

export function connectBlock(id: number, offers: readonly FileOffer[]): string[] {
  const sorted = [...offers].sort((a, b) => compareNameBytes(a.name, b.name));
  return [
    `PEER ${id} CONNECT: OFFERS ${sorted.length}`,
    ...sorted.map((f) => `${id}    ${f.name} ${chunkCount(f.size)}`),
  ];
}

export function disconnectBlock(id: number, received: Iterable<string>): string[] {
  const sorted = sortByNameBytes(received);
  return [`PEER ${id} DISCONNECT: RECEIVED ${sorted.length}`, ...sorted.map((n) => `${id}    ${n}`)];
}

export function shutdownBlock(id: number, has: Iterable<string>): string[] {
  const sorted = sortByNameBytes(has);
  return [`PEER ${id} SHUTDOWN: HAS ${sorted.length}`, ...sorted.map((n) => `${id}    ${n}`)];
}

export function acquiredLine(id: number, chunk: number, total: number, name: string): string {
  return `PEER ${id} ACQUIRED: CHUNK ${chunk}/${total} ${name}`;
}

// ------------------------------------------------------------------ line splitting

/**
 * Splits a whole stdout capture into lines, checking that it is valid UTF-8 and that
 * every line (the last one included) ends with "\n".
 */
export function splitOutputLines(buf: Buffer, what: string, problems: string[]): string[] {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(buf);
  } catch {
    problems.push(`${what} is not valid UTF-8`);
    text = buf.toString("utf8");
  }
  if (text === "") return [];
  const lines = text.split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  else problems.push(`${what}: the last line does not end with "\\n": ${JSON.stringify(lines[lines.length - 1])}`);
  lines.forEach((line, i) => {
    if (line.includes("\r")) problems.push(`${what} line ${i + 1} contains "\\r": ${JSON.stringify(line)}`);
  });
  return lines;
}

// ------------------------------------------------------------------ tracker stdout

export type TrackerEvent =
  | {
      readonly kind: "connect";
      readonly index: number;
      readonly line: number;
      readonly id: number;
      readonly offers: readonly { readonly name: string; readonly chunks: number }[];
      readonly lines: readonly string[];
    }
  | {
      readonly kind: "acquired";
      readonly index: number;
      readonly line: number;
      readonly id: number;
      readonly chunk: number;
      readonly total: number;
      readonly name: string;
    }
  | {
      readonly kind: "disconnect";
      readonly index: number;
      readonly line: number;
      readonly id: number;
      readonly received: readonly string[];
      readonly lines: readonly string[];
    };

const NUM = "(0|[1-9][0-9]*)";
const CONNECT_RE = new RegExp(`^PEER ${NUM} CONNECT: OFFERS ${NUM}$`);
const ACQUIRED_RE = new RegExp(`^PEER ${NUM} ACQUIRED: CHUNK ${NUM}/${NUM} (.+)$`);
const DISCONNECT_RE = new RegExp(`^PEER ${NUM} DISCONNECT: RECEIVED ${NUM}$`);
const CONNECT_FILE_RE = new RegExp(`^(.+) ${NUM}$`);
const SHUTDOWN_RE = new RegExp(`^PEER ${NUM} SHUTDOWN: HAS ${NUM}$`);

interface OpenBlock {
  readonly kind: "connect" | "disconnect";
  readonly id: number;
  readonly expected: number;
  readonly startLine: number;
  readonly lines: string[];
  readonly offers: { name: string; chunks: number }[];
  readonly received: string[];
}

/**
 * Incremental parser of the tracker's stdout, fed one line at a time (without "\n").
 * Used live by the harness (to wait on events) and once more on the whole capture.
 */
export class TrackerStdoutParser {
  readonly events: TrackerEvent[] = [];
  readonly problems: string[] = [];
  #lineNo = 0;
  #open: OpenBlock | undefined;

  /** Returns the event this line completes, if any. */
  push(line: string): TrackerEvent | undefined {
    this.#lineNo++;
    const n = this.#lineNo;
    const open = this.#open;
    if (open !== undefined) {
      const prefix = `${open.id}    `;
      if (line.startsWith(prefix)) {
        const rest = line.slice(prefix.length);
        open.lines.push(line);
        if (open.kind === "connect") {
          const m = CONNECT_FILE_RE.exec(rest);
          if (m === null) this.problems.push(`tracker line ${n}: malformed CONNECT file line ${JSON.stringify(line)}`);
          else open.offers.push({ name: m[1] ?? "", chunks: Number(m[2]) });
        } else {
          if (rest === "") this.problems.push(`tracker line ${n}: empty file name in DISCONNECT block`);
          open.received.push(rest);
        }
        return open.lines.length - 1 === open.expected ? this.#close(open) : undefined;
      }
      this.problems.push(
        `tracker line ${n}: the block ${JSON.stringify(open.lines[0])} (line ${open.startLine}) announced ` +
          `${open.expected} lines but only ${open.lines.length - 1} followed before ${JSON.stringify(line)}`,
      );
      this.#open = undefined;
    }
    let m = CONNECT_RE.exec(line);
    if (m !== null) {
      return this.#begin({ kind: "connect", id: Number(m[1]), expected: Number(m[2]), line, n });
    }
    m = DISCONNECT_RE.exec(line);
    if (m !== null) {
      return this.#begin({ kind: "disconnect", id: Number(m[1]), expected: Number(m[2]), line, n });
    }
    m = ACQUIRED_RE.exec(line);
    if (m !== null) {
      const event: TrackerEvent = {
        kind: "acquired",
        index: this.events.length,
        line: n,
        id: Number(m[1]),
        chunk: Number(m[2]),
        total: Number(m[3]),
        name: m[4] ?? "",
      };
      this.events.push(event);
      return event;
    }
    this.problems.push(`tracker line ${n}: unexpected line ${JSON.stringify(line)}`);
    return undefined;
  }

  /** Call once the output is complete. */
  end(): void {
    const open = this.#open;
    if (open !== undefined) {
      this.problems.push(
        `tracker output ends inside the block ${JSON.stringify(open.lines[0])} (line ${open.startLine}): ` +
          `${open.lines.length - 1} of ${open.expected} lines`,
      );
      this.#open = undefined;
    }
  }

  #begin(h: {
    kind: "connect" | "disconnect";
    id: number;
    expected: number;
    line: string;
    n: number;
  }): TrackerEvent | undefined {
    const block: OpenBlock = {
      kind: h.kind,
      id: h.id,
      expected: h.expected,
      startLine: h.n,
      lines: [h.line],
      offers: [],
      received: [],
    };
    if (h.expected === 0) return this.#close(block);
    this.#open = block;
    return undefined;
  }

  #close(block: OpenBlock): TrackerEvent {
    this.#open = undefined;
    const base = { index: this.events.length, line: block.startLine, id: block.id, lines: block.lines };
    const event: TrackerEvent =
      block.kind === "connect"
        ? { kind: "connect", ...base, offers: block.offers }
        : { kind: "disconnect", ...base, received: block.received };
    this.events.push(event);
    return event;
  }
}

export function parseTrackerStdout(buf: Buffer): { events: TrackerEvent[]; problems: string[] } {
  const problems: string[] = [];
  const lines = splitOutputLines(buf, "tracker stdout", problems);
  const parser = new TrackerStdoutParser();
  for (const line of lines) parser.push(line);
  parser.end();
  return { events: parser.events, problems: [...problems, ...parser.problems] };
}

// ------------------------------------------------------------------ peer stdout

export interface PeerStdout {
  readonly id: number | undefined;
  readonly has: string[];
  readonly problems: string[];
}

/** Parses a peer's stdout, which must be exactly one SHUTDOWN block. */
export function parsePeerStdout(buf: Buffer, what: string): PeerStdout {
  const problems: string[] = [];
  const lines = splitOutputLines(buf, what, problems);
  const header = lines[0];
  if (header === undefined) return { id: undefined, has: [], problems: [...problems, `${what} is empty`] };
  const m = SHUTDOWN_RE.exec(header);
  if (m === null) {
    problems.push(`${what}: first line is not a SHUTDOWN header: ${JSON.stringify(header)}`);
    return { id: undefined, has: [], problems };
  }
  const id = Number(m[1]);
  const count = Number(m[2]);
  const prefix = `${id}    `;
  const has: string[] = [];
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i] ?? "";
    if (i <= count && line.startsWith(prefix) && line.length > prefix.length) has.push(line.slice(prefix.length));
    else problems.push(`${what} line ${i + 1}: unexpected ${JSON.stringify(line)}`);
  }
  if (lines.length - 1 < count) problems.push(`${what}: HAS ${count} but only ${lines.length - 1} file lines follow`);
  const sorted = sortByNameBytes(has);
  if (sorted.join("\n") !== has.join("\n")) {
    problems.push(`${what}: files not in byte order: ${JSON.stringify(has)} (expected ${JSON.stringify(sorted)})`);
  }
  return { id, has, problems };
}

// ------------------------------------------------------------------ whole-swarm check

/** One entry of a peer's ./Shared after the run, as the harness found it. */
export type SharedEntry =
  | { readonly kind: "file"; readonly content: "identical" | "different" | "unknown-name" }
  | { readonly kind: "other" };

export interface PeerFacts {
  readonly label: string;
  /** The files put into its ./Shared before it started. */
  readonly offered: readonly FileOffer[];
  /** SIGKILLed by the test (not expected to exit by itself). */
  readonly killed: boolean;
  readonly exitCode: number | null;
  readonly signal: string | null;
  readonly elapsedMs: number;
  readonly minAliveSeconds: number;
  readonly stdout: Buffer;
  /** ./Shared after the run; undefined when it does not exist. */
  readonly shared: ReadonlyMap<string, SharedEntry> | undefined;
  /** IDs whose CONNECT block the tracker had printed when this peer was started. */
  readonly idsConnectedAtSpawn: readonly number[];
  /** ID learnt during the run (from a CONNECT block matching its offers), if any. */
  readonly liveId: number | undefined;
}

export interface PeerOutcome {
  readonly label: string;
  readonly id: number | undefined;
  /** Files in ./Shared at the end (byte order). */
  readonly has: string[];
  /** The tracker's DISCONNECT list for it (byte order). */
  readonly received: string[];
  /** Chunks the tracker reported it acquired, per file. */
  readonly acquired: ReadonlyMap<string, number>;
}

export interface SwarmCheck {
  readonly problems: string[];
  readonly events: TrackerEvent[];
  readonly outcomes: Map<string, PeerOutcome>;
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function setEq(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  return a.size === b.size && [...a].every((x) => b.has(x));
}

function show(names: Iterable<string>): string {
  return JSON.stringify(sortByNameBytes(names));
}

/**
 * Checks a finished swarm: the tracker transcript, every peer's stdout, exit status and
 * ./Shared, and the sharing guarantees that hold whatever the timing (see mustHave).
 */
export function checkSwarm(peers: readonly PeerFacts[], trackerStdout: Buffer): SwarmCheck {
  const parsed = parseTrackerStdout(trackerStdout);
  const problems = [...parsed.problems];
  const events = parsed.events;

  // Every file of the swarm, by name (names are unique within a test).
  const sizeOf = new Map<string, number>();
  for (const p of peers) for (const f of p.offered) sizeOf.set(f.name, f.size);

  // ---- peer stdout and IDs
  const stdoutOf = new Map<PeerFacts, PeerStdout>();
  const idOf = new Map<PeerFacts, number>();
  for (const p of peers) {
    if (p.killed && p.stdout.length === 0) continue;
    const out = parsePeerStdout(p.stdout, `peer ${p.label} stdout`);
    stdoutOf.set(p, out);
    if (p.killed)
      problems.push(`peer ${p.label} was killed but printed to stdout: ${JSON.stringify(p.stdout.toString())}`);
    else problems.push(...out.problems);
    if (out.id !== undefined) idOf.set(p, out.id);
  }
  for (const p of peers) {
    const stdoutId = idOf.get(p);
    if (p.liveId !== undefined && stdoutId !== undefined && p.liveId !== stdoutId) {
      problems.push(`peer ${p.label}: its CONNECT block was PEER ${p.liveId} but it shut down as PEER ${stdoutId}`);
    }
    if (stdoutId === undefined && p.liveId !== undefined) idOf.set(p, p.liveId);
  }
  // Peers still unknown: a CONNECT block whose offers match exactly one of them.
  const claimed = new Set(idOf.values());
  for (const e of events) {
    if (e.kind !== "connect" || claimed.has(e.id)) continue;
    const candidates = peers.filter((p) => !idOf.has(p) && sameList(connectBlock(e.id, p.offered), e.lines));
    const only = candidates[0];
    if (candidates.length === 1 && only !== undefined) {
      idOf.set(only, e.id);
      claimed.add(e.id);
    }
  }
  const peerById = new Map<number, PeerFacts>();
  for (const [p, id] of idOf) {
    const other = peerById.get(id);
    if (other !== undefined) problems.push(`peers ${other.label} and ${p.label} both appear as PEER ${id}`);
    peerById.set(id, p);
  }
  for (const p of peers) {
    if (!idOf.has(p)) problems.push(`peer ${p.label}: could not tell which peer ID it had`);
  }

  // ---- walk the transcript in order
  const connectAt = new Map<number, number>();
  const lastActivity = new Map<number, number>();
  const disconnectOf = new Map<number, Extract<TrackerEvent, { kind: "disconnect" }>>();
  const offeredBy = new Map<string, Set<number>>();
  const chunksOf = new Map<string, number>();
  const acquired = new Map<number, Map<string, Set<number>>>();
  const completedAt = new Map<number, Map<string, number>>();
  const live = new Set<number>();
  const connectOrder: number[] = [];
  for (const e of events) {
    const where = `tracker line ${e.line}`;
    if (e.kind === "connect") {
      if (connectAt.has(e.id)) {
        problems.push(`${where}: second CONNECT for PEER ${e.id}`);
        continue;
      }
      connectAt.set(e.id, e.index);
      lastActivity.set(e.id, e.index);
      connectOrder.push(e.id);
      live.add(e.id);
      const p = peerById.get(e.id);
      if (p === undefined) problems.push(`${where}: CONNECT of PEER ${e.id}, which is none of the peers started`);
      else if (!sameList(e.lines, connectBlock(e.id, p.offered))) {
        problems.push(
          `${where}: CONNECT block of PEER ${e.id} (peer ${p.label}) is ${JSON.stringify(e.lines)}, ` +
            `expected ${JSON.stringify(connectBlock(e.id, p.offered))}`,
        );
      }
      for (const f of e.offers) {
        if (!offeredBy.has(f.name)) offeredBy.set(f.name, new Set());
        offeredBy.get(f.name)?.add(e.id);
        const size = sizeOf.get(f.name);
        if (size !== undefined && f.chunks !== chunkCount(size)) {
          problems.push(`${where}: ${JSON.stringify(f.name)} has ${f.chunks} chunks, expected ${chunkCount(size)}`);
        }
        chunksOf.set(f.name, f.chunks);
      }
    } else if (e.kind === "acquired") {
      const text = JSON.stringify(acquiredLine(e.id, e.chunk, e.total, e.name));
      if (!live.has(e.id)) {
        problems.push(`${where}: ${text} for a peer that is not connected`);
        continue;
      }
      lastActivity.set(e.id, e.index);
      const chunks = chunksOf.get(e.name);
      if (chunks === undefined) {
        problems.push(`${where}: ${text} names a file no peer has offered`);
        continue;
      }
      if (e.total !== chunks) problems.push(`${where}: ${text}: the file has ${chunks} chunks`);
      if (e.chunk < 1 || e.chunk > chunks) problems.push(`${where}: ${text}: chunk number out of range`);
      if (offeredBy.get(e.name)?.has(e.id)) problems.push(`${where}: ${text}: that peer offered this file itself`);
      let perFile = acquired.get(e.id);
      if (perFile === undefined) {
        perFile = new Map();
        acquired.set(e.id, perFile);
      }
      let set = perFile.get(e.name);
      if (set === undefined) {
        set = new Set();
        perFile.set(e.name, set);
      }
      if (set.has(e.chunk)) problems.push(`${where}: ${text} printed a second time`);
      set.add(e.chunk);
      if (set.size === chunks && chunks > 0) {
        let done = completedAt.get(e.id);
        if (done === undefined) {
          done = new Map();
          completedAt.set(e.id, done);
        }
        done.set(e.name, e.index);
      }
    } else {
      if (!live.has(e.id)) {
        problems.push(`${where}: DISCONNECT of PEER ${e.id}, which is not connected`);
        continue;
      }
      live.delete(e.id);
      disconnectOf.set(e.id, e);
      if (!sameList(e.lines, disconnectBlock(e.id, e.received))) {
        problems.push(`${where}: DISCONNECT block of PEER ${e.id} is not in byte order: ${JSON.stringify(e.lines)}`);
      }
      const received = new Set(e.received);
      if (received.size !== e.received.length) problems.push(`${where}: DISCONNECT of PEER ${e.id} repeats a file`);
      const done = completedAt.get(e.id) ?? new Map<string, number>();
      for (const name of received) {
        const chunks = chunksOf.get(name);
        if (chunks === undefined)
          problems.push(`${where}: PEER ${e.id} received ${JSON.stringify(name)}, never offered`);
        else if (offeredBy.get(name)?.has(e.id)) {
          problems.push(`${where}: PEER ${e.id} is said to have received ${JSON.stringify(name)}, which it offered`);
        } else if (chunks > 0 && !done.has(name)) {
          const got = acquired.get(e.id)?.get(name)?.size ?? 0;
          problems.push(
            `${where}: PEER ${e.id} is said to have received ${JSON.stringify(name)} but only ${got} of its ` +
              `${chunks} chunks were ACQUIRED`,
          );
        }
      }
      for (const name of done.keys()) {
        if (!received.has(name)) {
          problems.push(
            `${where}: PEER ${e.id} ACQUIRED every chunk of ${JSON.stringify(name)} but its DISCONNECT omits it`,
          );
        }
      }
    }
  }
  for (const id of live) problems.push(`the tracker never printed a DISCONNECT block for PEER ${id}`);
  const ids = [...connectOrder].sort((a, b) => a - b);
  if (!ids.every((id, i) => id === i + 1)) {
    problems.push(`peer IDs are not 1..${ids.length}: ${JSON.stringify(connectOrder)} (in CONNECT order)`);
  }

  // ---- each peer: exit, stdout, ./Shared
  const outcomes = new Map<string, PeerOutcome>();
  for (const p of peers) {
    const id = idOf.get(p);
    const name = `peer ${p.label}${id === undefined ? "" : ` (PEER ${id})`}`;
    const offered = new Set(p.offered.map((f) => f.name));
    const disconnect = id === undefined ? undefined : disconnectOf.get(id);
    const received = disconnect === undefined ? [] : [...disconnect.received];
    const acquiredCounts = new Map<string, number>();
    for (const [file, set] of (id === undefined ? undefined : acquired.get(id)) ?? []) {
      acquiredCounts.set(file, set.size);
    }
    if (id !== undefined && !connectAt.has(id)) problems.push(`${name}: the tracker never printed its CONNECT block`);
    if (id !== undefined) {
      const before = p.idsConnectedAtSpawn.filter((x) => x >= id);
      if (before.length > 0) {
        problems.push(`${name} was started after the CONNECT of PEER ${before.join(", ")} yet got a lower or equal ID`);
      }
    }
    const shared = p.shared;
    const present = new Set(shared?.keys() ?? []);
    for (const [file, entry] of shared ?? []) {
      if (entry.kind !== "file") problems.push(`${name}: ./Shared/${file} is not a regular file`);
      else if (entry.content === "unknown-name") problems.push(`${name}: stray file ./Shared/${JSON.stringify(file)}`);
      else if (entry.content === "different") {
        problems.push(`${name}: ./Shared/${JSON.stringify(file)} differs from the original`);
      }
    }
    for (const file of offered) {
      if (!present.has(file)) problems.push(`${name}: its own file ${JSON.stringify(file)} is gone from ./Shared`);
    }
    if (p.killed) {
      if (p.signal !== "SIGKILL") {
        problems.push(
          `${name} was to be killed mid-transfer but had already exited (code ${p.exitCode}, signal ${p.signal})`,
        );
      }
      // Whatever it holds must be whole and identical (checked above): a file completed
      // just before the kill may be in ./Shared although its last report never left.
    } else {
      if (p.exitCode !== 0 || p.signal !== null) {
        problems.push(`${name} exited with code ${p.exitCode}, signal ${p.signal} (expected 0)`);
      }
      if (p.elapsedMs < p.minAliveSeconds * 1000) {
        problems.push(`${name} exited ${p.elapsedMs} ms after start, before its MIN_ALIVE of ${p.minAliveSeconds} s`);
      }
      if (shared === undefined) problems.push(`${name}: ./Shared does not exist`);
      const out = stdoutOf.get(p);
      if (out !== undefined && id !== undefined) {
        const expected = shutdownBlock(id, present);
        const actualLines = splitOutputLines(p.stdout, "", []);
        if (!sameList(actualLines, expected)) {
          problems.push(
            `${name} stdout is ${JSON.stringify(p.stdout.toString())}, expected ${JSON.stringify(`${expected.join("\n")}\n`)} ` +
              `(from the files in its ./Shared)`,
          );
        }
      }
      const expectHas = new Set([...offered, ...received]);
      if (disconnect !== undefined && !setEq(expectHas, present)) {
        problems.push(
          `${name}: ./Shared holds ${show(present)}, but it offered ${show(offered)} and the tracker says it ` +
            `received ${show(received)}`,
        );
      }
    }
    outcomes.set(p.label, {
      label: p.label,
      id,
      has: sortByNameBytes(present),
      received: sortByNameBytes(received),
      acquired: acquiredCounts,
    });
  }

  // A loop, not push(...): a broken big swarm can have more problems than a call has arguments.
  for (const problem of mustHaveProblems(peers, idOf, outcomes, connectAt, lastActivity, completedAt, offeredBy)) {
    problems.push(problem);
  }
  return { problems, events, outcomes };
}

/**
 * Sharing guarantees that hold whatever the timing. A peer is provably "still there
 * and not yet allowed to leave" from its CONNECT to its last ACQUIRED line (a peer only
 * asks to leave once it has everything, and the tracker prints what it learns in
 * order). If surviving peer Q held file F (whole) at a moment when both Q and surviving
 * peer P were provably still there, then P must end with F: Q may not leave while P
 * lacks F, and P may not leave while F is available from Q.
 */
function mustHaveProblems(
  peers: readonly PeerFacts[],
  idOf: ReadonlyMap<PeerFacts, number>,
  outcomes: ReadonlyMap<string, PeerOutcome>,
  connectAt: ReadonlyMap<number, number>,
  lastActivity: ReadonlyMap<number, number>,
  completedAt: ReadonlyMap<number, ReadonlyMap<string, number>>,
  offeredBy: ReadonlyMap<string, ReadonlySet<number>>,
): string[] {
  const problems: string[] = [];
  const survivors = peers.filter((p) => !p.killed && idOf.has(p) && connectAt.has(idOf.get(p) ?? -1));
  for (const p of survivors) {
    const pid = idOf.get(p) ?? -1;
    const pFrom = connectAt.get(pid) ?? 0;
    const pTo = lastActivity.get(pid) ?? pFrom;
    const has = new Set(outcomes.get(p.label)?.has ?? []);
    for (const q of survivors) {
      if (q === p) continue;
      const qid = idOf.get(q) ?? -1;
      const qTo = lastActivity.get(qid) ?? 0;
      const holdsFrom = new Map<string, number>();
      for (const [name, ids] of offeredBy) if (ids.has(qid)) holdsFrom.set(name, connectAt.get(qid) ?? 0);
      for (const [name, at] of completedAt.get(qid) ?? []) holdsFrom.set(name, at);
      for (const [name, from] of holdsFrom) {
        if (has.has(name)) continue;
        if (Math.max(from, pFrom) <= Math.min(qTo, pTo)) {
          problems.push(
            `peer ${p.label} (PEER ${pid}) left without ${JSON.stringify(name)}, although PEER ${qid} held it ` +
              `while both were still active`,
          );
        }
      }
    }
  }
  return problems;
}
