/**
 * The end-to-end checker itself (helpers/expect-output.ts), on hand-written transcripts:
 * it must accept a correct run and catch each kind of contract break. No processes.
 */
import test from "ava";
import {
  checkSwarm,
  compareNameBytes,
  type PeerFacts,
  parsePeerStdout,
  type SharedEntry,
  sortByNameBytes,
} from "../helpers/expect-output.js";

// Byte order: "e" (65) < "Ａ" (EF BC A1) < "😀" (F0 9F 98 80); JavaScript's default
// (UTF-16) order would put "😀" (D83D) before "Ａ" (FF21).
const FULLWIDTH = "Ａ";
const EMOJI = "😀";

const ok: SharedEntry = { kind: "file", content: "identical" };

/** What a case may change about a peer (the rest comes from facts()). */
type Mutable<T> = { -readonly [K in keyof T]: T[K] };
type PeerCase = Partial<Mutable<PeerFacts>> & { stdoutLines?: string[] | undefined; sharedNames?: string[] };

interface Case {
  tracker: string[];
  a: PeerCase;
  b: PeerCase;
}

function base(): Case {
  return {
    tracker: [
      "PEER 1 CONNECT: OFFERS 1",
      `1    ${FULLWIDTH} 2`,
      "PEER 2 CONNECT: OFFERS 2",
      "2    e 0",
      `2    ${EMOJI} 2`,
      `PEER 2 ACQUIRED: CHUNK 2/2 ${FULLWIDTH}`,
      `PEER 1 ACQUIRED: CHUNK 1/2 ${EMOJI}`,
      `PEER 2 ACQUIRED: CHUNK 1/2 ${FULLWIDTH}`,
      `PEER 1 ACQUIRED: CHUNK 2/2 ${EMOJI}`,
      "PEER 1 DISCONNECT: RECEIVED 2",
      "1    e",
      `1    ${EMOJI}`,
      "PEER 2 DISCONNECT: RECEIVED 1",
      `2    ${FULLWIDTH}`,
    ],
    a: {
      stdoutLines: ["PEER 1 SHUTDOWN: HAS 3", "1    e", `1    ${FULLWIDTH}`, `1    ${EMOJI}`],
      sharedNames: ["e", FULLWIDTH, EMOJI],
    },
    b: {
      stdoutLines: ["PEER 2 SHUTDOWN: HAS 3", "2    e", `2    ${FULLWIDTH}`, `2    ${EMOJI}`],
      sharedNames: ["e", FULLWIDTH, EMOJI],
    },
  };
}

function facts(label: string, offered: PeerFacts["offered"], c: PeerCase): PeerFacts {
  const lines = c.stdoutLines ?? [];
  return {
    label,
    offered,
    killed: c.killed ?? false,
    exitCode: c.exitCode === undefined ? 0 : c.exitCode,
    signal: c.signal ?? null,
    elapsedMs: c.elapsedMs ?? 1000,
    minAliveSeconds: c.minAliveSeconds ?? 0,
    stdout: c.stdout ?? Buffer.from(lines.length === 0 ? "" : `${lines.join("\n")}\n`),
    shared: c.shared ?? new Map((c.sharedNames ?? []).map((n) => [n, ok] as const)),
    idsConnectedAtSpawn: c.idsConnectedAtSpawn ?? [],
    liveId: c.liveId,
  };
}

function run(c: Case, trackerText?: string): string[] {
  const a = facts("a", [{ name: FULLWIDTH, size: 1000 }], c.a);
  const b = facts(
    "b",
    [
      { name: "e", size: 0 },
      { name: EMOJI, size: 600 },
    ],
    c.b,
  );
  return checkSwarm([a, b], Buffer.from(trackerText ?? `${c.tracker.join("\n")}\n`)).problems;
}

test("byte order is not UTF-16 order", (t) => {
  t.deepEqual(sortByNameBytes([EMOJI, FULLWIDTH, "e"]), ["e", FULLWIDTH, EMOJI]);
  t.deepEqual([EMOJI, FULLWIDTH, "e"].sort(), ["e", EMOJI, FULLWIDTH]);
  t.true(compareNameBytes("B", "a") < 0);
});

test("a correct run has no problems", (t) => {
  t.deepEqual(run(base()), []);
});

test("peer stdout parsing", (t) => {
  const good = parsePeerStdout(Buffer.from("PEER 3 SHUTDOWN: HAS 1\n3    a b\n"), "x");
  t.deepEqual(good, { id: 3, has: ["a b"], problems: [] });
  t.true(parsePeerStdout(Buffer.from("PEER 3 SHUTDOWN: HAS 1\n3    a b"), "x").problems.length > 0);
  t.true(parsePeerStdout(Buffer.from("PEER 3 SHUTDOWN: HAS 1\n3   a\n"), "x").problems.length > 0);
  t.true(parsePeerStdout(Buffer.from("PEER 3 SHUTDOWN: HAS 0\nhello\n"), "x").problems.length > 0);
  t.true(parsePeerStdout(Buffer.from(""), "x").problems.length > 0);
});

const breaks: [string, (c: Case) => string | undefined, RegExp][] = [
  ["no newline at the end of the tracker output", (c) => c.tracker.join("\n"), /does not end with/],
  ["CRLF line ends", (c) => `${c.tracker.join("\r\n")}\r\n`, /contains "\\r"/],
  [
    "a duplicated ACQUIRED line",
    (c) => {
      c.tracker.splice(6, 0, `PEER 1 ACQUIRED: CHUNK 1/2 ${EMOJI}`);
      return undefined;
    },
    /a second time/,
  ],
  [
    "a missing ACQUIRED line",
    (c) => {
      c.tracker.splice(6, 1);
      return undefined;
    },
    /only 1 of its 2 chunks/,
  ],
  [
    "a wrong chunk total",
    (c) => {
      c.tracker[6] = `PEER 1 ACQUIRED: CHUNK 1/3 ${EMOJI}`;
      return undefined;
    },
    /the file has 2 chunks/,
  ],
  [
    "a chunk number out of range",
    (c) => {
      c.tracker[6] = `PEER 1 ACQUIRED: CHUNK 0/2 ${EMOJI}`;
      return undefined;
    },
    /out of range/,
  ],
  [
    "three spaces instead of four",
    (c) => {
      c.tracker[1] = `1   ${FULLWIDTH} 2`;
      return undefined;
    },
    /announced 1 lines but only 0/,
  ],
  [
    "a wrong NUMCHUNKS in CONNECT",
    (c) => {
      c.tracker[1] = `1    ${FULLWIDTH} 1`;
      return undefined;
    },
    /has 1 chunks, expected 2/,
  ],
  [
    "CONNECT files not in byte order",
    (c) => {
      c.tracker[3] = `2    ${EMOJI} 2`;
      c.tracker[4] = "2    e 0";
      return undefined;
    },
    /CONNECT block of PEER 2/,
  ],
  [
    "a line inside a block",
    (c) => {
      c.tracker.splice(3, 0, `PEER 1 ACQUIRED: CHUNK 1/2 ${EMOJI}`);
      c.tracker.splice(7, 1);
      return undefined;
    },
    /announced 2 lines but only 0/,
  ],
  [
    "an unknown line",
    (c) => {
      c.tracker.splice(5, 0, "tracker ready");
      return undefined;
    },
    /unexpected line/,
  ],
  [
    "ACQUIRED of a file the peer offered",
    (c) => {
      c.tracker.splice(5, 0, `PEER 1 ACQUIRED: CHUNK 1/2 ${FULLWIDTH}`);
      return undefined;
    },
    /offered this file itself/,
  ],
  [
    "ACQUIRED after DISCONNECT",
    (c) => {
      c.tracker.push(`PEER 1 ACQUIRED: CHUNK 1/2 ${EMOJI}`);
      return undefined;
    },
    /not connected/,
  ],
  [
    "a DISCONNECT that omits a received file",
    (c) => {
      c.tracker.splice(9, 3, "PEER 1 DISCONNECT: RECEIVED 1", "1    e");
      return undefined;
    },
    /DISCONNECT omits it/,
  ],
  [
    "a missing DISCONNECT",
    (c) => {
      c.tracker.splice(12, 2);
      return undefined;
    },
    /never printed a DISCONNECT block for PEER 2/,
  ],
  [
    "IDs not starting at 1",
    (c) => {
      c.tracker = c.tracker.map((l) => l.replace(/^PEER 1 /, "PEER 3 ").replace(/^1 {4}/, "3    "));
      c.a.stdoutLines = c.a.stdoutLines?.map((l) => l.replace(/^PEER 1 /, "PEER 3 ").replace(/^1 {4}/, "3    "));
      return undefined;
    },
    /are not 1\.\.2/,
  ],
  [
    "an extra line on a peer's stdout",
    (c) => {
      c.a.stdoutLines?.push("bye");
      return undefined;
    },
    /unexpected "bye"/,
  ],
  [
    "SHUTDOWN files in UTF-16 order",
    (c) => {
      c.a.stdoutLines = ["PEER 1 SHUTDOWN: HAS 3", "1    e", `1    ${EMOJI}`, `1    ${FULLWIDTH}`];
      return undefined;
    },
    /not in byte order/,
  ],
  [
    "SHUTDOWN with the wrong count",
    (c) => {
      c.a.stdoutLines = ["PEER 1 SHUTDOWN: HAS 2", "1    e", `1    ${FULLWIDTH}`, `1    ${EMOJI}`];
      return undefined;
    },
    /unexpected/,
  ],
  [
    "a received file missing from ./Shared",
    (c) => {
      c.a.sharedNames = ["e", FULLWIDTH];
      return undefined;
    },
    /Shared holds/,
  ],
  [
    "a stray file in ./Shared",
    (c) => {
      c.b.shared = new Map<string, SharedEntry>([
        ["e", ok],
        [FULLWIDTH, ok],
        [EMOJI, ok],
        [`${FULLWIDTH}.part`, { kind: "file", content: "unknown-name" }],
      ]);
      return undefined;
    },
    /stray file/,
  ],
  [
    "a corrupt file",
    (c) => {
      c.b.shared = new Map<string, SharedEntry>([
        ["e", ok],
        [FULLWIDTH, { kind: "file", content: "different" }],
        [EMOJI, ok],
      ]);
      return undefined;
    },
    /differs from the original/,
  ],
  [
    "a non-zero exit",
    (c) => {
      c.a.exitCode = 1;
      return undefined;
    },
    /exited with code 1/,
  ],
  [
    "leaving before MIN_ALIVE",
    (c) => {
      c.a.minAliveSeconds = 2;
      c.a.elapsedMs = 1500;
      return undefined;
    },
    /before its MIN_ALIVE/,
  ],
  [
    "a later peer with a lower ID",
    (c) => {
      c.a.idsConnectedAtSpawn = [2];
      return undefined;
    },
    /lower or equal ID/,
  ],
  [
    "leaving without a file held by a peer that was there at the same time",
    (c) => {
      c.tracker.splice(8, 1);
      c.tracker.splice(8, 3, "PEER 1 DISCONNECT: RECEIVED 1", "1    e");
      c.a.stdoutLines = ["PEER 1 SHUTDOWN: HAS 2", "1    e", `1    ${FULLWIDTH}`];
      c.a.sharedNames = ["e", FULLWIDTH];
      return undefined;
    },
    /left without/,
  ],
  [
    "a killed peer that printed a SHUTDOWN block",
    (c) => {
      c.b.killed = true;
      c.b.signal = "SIGKILL";
      c.b.exitCode = null;
      return undefined;
    },
    /was killed but printed/,
  ],
  [
    "a killed peer that had exited by itself",
    (c) => {
      c.b.killed = true;
      c.b.stdoutLines = [];
      return undefined;
    },
    /had already exited/,
  ],
];

for (const [what, mutate, expected] of breaks) {
  test(`catches ${what}`, (t) => {
    const c = base();
    const text = mutate(c);
    const problems = run(c, text);
    t.true(
      problems.some((p) => expected.test(p)),
      `no problem matches ${expected}:\n${problems.join("\n")}`,
    );
  });
}

test("a killed peer: partial transfers and no SHUTDOWN are fine, a partial file in ./Shared is not", (t) => {
  const c = base();
  // PEER 1 is killed after one chunk of EMOJI; PEER 2 still ends with everything.
  c.tracker = [
    "PEER 1 CONNECT: OFFERS 1",
    `1    ${FULLWIDTH} 2`,
    "PEER 2 CONNECT: OFFERS 2",
    "2    e 0",
    `2    ${EMOJI} 2`,
    `PEER 2 ACQUIRED: CHUNK 2/2 ${FULLWIDTH}`,
    `PEER 1 ACQUIRED: CHUNK 1/2 ${EMOJI}`,
    `PEER 2 ACQUIRED: CHUNK 1/2 ${FULLWIDTH}`,
    "PEER 1 DISCONNECT: RECEIVED 0",
    "PEER 2 DISCONNECT: RECEIVED 1",
    `2    ${FULLWIDTH}`,
  ];
  c.a = { killed: true, signal: "SIGKILL", exitCode: null, stdoutLines: [], sharedNames: [FULLWIDTH] };
  t.deepEqual(run(c), []);
  c.a.shared = new Map<string, SharedEntry>([
    [FULLWIDTH, ok],
    [EMOJI, { kind: "file", content: "different" }],
  ]);
  t.true(run(c).length > 0);
});
