import test from "ava";
import { acquiredLine } from "../../src/tracker/output.js";
import { type OutputTarget, StdoutWriter } from "../../src/tracker/stdout-writer.js";

/** A target whose writes complete only when the test says so. */
function target() {
  const writes: string[] = [];
  const sync: string[] = [];
  const waiting: Array<() => void> = [];
  const t: OutputTarget = {
    write: (bytes, done) => {
      writes.push(bytes.toString("utf8"));
      waiting.push(() => done(null));
    },
    writeSync: (bytes) => sync.push(bytes.toString("utf8")),
  };
  const scheduled: Array<() => void> = [];
  /** Runs scheduled work and completes writes until nothing moves. */
  const drain = (): void => {
    for (;;) {
      const next = scheduled.shift() ?? waiting.shift();
      if (next === undefined) return;
      next();
    }
  };
  const runScheduled = (): void => {
    for (const fn of scheduled.splice(0)) fn();
  };
  const completeOne = (): void => waiting.shift()?.();
  return { t, writes, sync, drain, runScheduled, completeOne, schedule: (fn: () => void) => scheduled.push(fn) };
}

const lines = (peer: number, chunks: number, name: string, runs: Array<[number, number]>): string[] =>
  runs.flatMap(([first, count]) =>
    Array.from({ length: count }, (_, i) => acquiredLine(peer, first + i, chunks, name)),
  );

test("writer: blocks and ACQUIRED reports come out whole, in order, exactly as acquiredLine prints them", (t) => {
  const o = target();
  const w = new StdoutWriter(o.t, { batchBytes: 200, schedule: o.schedule });
  w.block(["PEER 1 CONNECT: OFFERS 1", "1    f 9"]);
  w.acquired(2, "f", 9, [
    [0, 3],
    [5, 4],
  ]);
  w.block(["PEER 2 DISCONNECT: RECEIVED 1", "2    f"]);
  t.is(w.pendingLines, 11);
  t.is(w.pendingLinesOf(2), 7);
  o.drain();
  const expected = [
    "PEER 1 CONNECT: OFFERS 1",
    "1    f 9",
    ...lines(2, 9, "f", [
      [0, 3],
      [5, 4],
    ]),
    "PEER 2 DISCONNECT: RECEIVED 1",
    "2    f",
  ];
  t.is(o.writes.join(""), `${expected.join("\n")}\n`);
  t.is(w.pendingLines, 0);
  t.is(w.pendingLinesOf(2), 0);
  // Batches of about 200 bytes: never a write per line, and never a block cut in two.
  t.true(o.writes.length >= 2 && o.writes.length < expected.length, `${o.writes.length} writes`);
  for (const chunk of o.writes) t.true(chunk.endsWith("\n"));
  t.true(o.writes.some((chunk) => chunk.includes("PEER 2 DISCONNECT: RECEIVED 1\n2    f\n")));
});

test("writer: a million-chunk report is one queued item; each write builds only a batch of its lines", (t) => {
  const o = target();
  const w = new StdoutWriter(o.t, { batchBytes: 64 * 1024, schedule: o.schedule });
  const chunks = 1 << 20;
  w.acquired(7, "big.bin", chunks, [[0, chunks]]);
  t.is(w.pendingLines, chunks);
  // The first step writes one batch of about 64 KiB and leaves the rest as chunk runs.
  o.runScheduled();
  t.is(o.writes.length, 1);
  t.true(w.pendingLines > chunks - 2000 && w.pendingLines < chunks, `${w.pendingLines} pending`);
  o.drain();
  t.is(w.pendingLines, 0);
  const text = o.writes.join("");
  t.true(text.startsWith(`${acquiredLine(7, 0, chunks, "big.bin")}\n`));
  t.true(text.endsWith(`${acquiredLine(7, chunks - 1, chunks, "big.bin")}\n`));
  t.is(text.split("\n").length - 1, chunks);
  for (const chunk of o.writes) t.true(chunk.length <= 64 * 1024 + 100, `a write of ${chunk.length} bytes`);
  t.true(o.writes.length > 500, `${o.writes.length} writes`);
});

test("writer: one write at a time; what arrives meanwhile waits for the next", (t) => {
  const o = target();
  const w = new StdoutWriter(o.t, { batchBytes: 1 << 20, schedule: o.schedule });
  w.block(["a"]);
  o.runScheduled(); // "a" is being written
  w.block(["b"]);
  w.block(["c"]);
  o.runScheduled();
  t.deepEqual(o.writes, ["a\n"], "no second write while one is in flight");
  o.completeOne();
  o.drain();
  t.deepEqual(o.writes, ["a\n", "b\nc\n"], "what queued while a write was in flight goes out together");
});

test("writer: flushSync writes everything still queued, at once, in order", (t) => {
  const o = target();
  const w = new StdoutWriter(o.t, { batchBytes: 100, schedule: () => {} });
  w.block(["PEER 1 CONNECT: OFFERS 0"]);
  w.acquired(1, "x", 3, [[0, 3]]);
  w.flushSync();
  t.deepEqual(o.writes, []);
  t.is(o.sync.join(""), `${["PEER 1 CONNECT: OFFERS 0", ...lines(1, 3, "x", [[0, 3]])].join("\n")}\n`);
  t.is(w.pendingLines, 0);
  w.flushSync();
  t.is(o.sync.length, 1, "nothing left to write");
});

test("writer: progress is reported after each write (to resume readers)", (t) => {
  const o = target();
  const w = new StdoutWriter(o.t, { batchBytes: 50, schedule: o.schedule });
  const seen: number[] = [];
  w.onProgress = () => seen.push(w.pendingLines);
  w.acquired(3, "f", 10, [[0, 10]]);
  o.drain();
  t.true(seen.length >= 3);
  t.is(seen[seen.length - 1], 0);
  for (let i = 1; i < seen.length; i++) t.true((seen[i] ?? 0) < (seen[i - 1] ?? 0));
});
