import test from "ava";
import { countResumed, interruptedDownloads, resumeCounters, resumedLine } from "../../src/peer/resume-report.js";
import type { CheckedManifest } from "../../src/wire/tracker-frame.js";

test("interrupted: the line says what was kept, or that nothing was", (t) => {
  t.is(interruptedDownloads([], "st"), "nothing was being downloaded");
  t.is(
    interruptedDownloads(["a b.bin"], ".udpswarm-staging"),
    '1 partial download kept in .udpswarm-staging for the next start: "a b.bin"',
  );
  t.is(
    interruptedDownloads(["a", "b"], ".udpswarm-staging"),
    '2 partial downloads kept in .udpswarm-staging for the next start: "a", "b"',
  );
  t.is(
    interruptedDownloads(["a", "b", "c", "d", "e"], ".udpswarm-staging"),
    '5 partial downloads kept in .udpswarm-staging for the next start: "a", "b", "c" and 2 more',
  );
});

test("resumed: the line and the counters say what a restart kept (the last piece may be short)", (t) => {
  // 3 pieces of 128 chunks, the last one 10 chunks long.
  const manifest = { chunks: 266, chunksPerPiece: 128 } as CheckedManifest;
  const c = resumeCounters();
  const result = { kept: [0, 2], checked: 3, failed: 1, record: "ok" } as const;
  t.deepEqual(countResumed(c, manifest, result), [
    [0, 128],
    [256, 10],
  ]);
  t.deepEqual(c, { files: 1, pieces: 2, chunks: 138, checked: 3, failed: 1 });
  t.is(
    resumedLine("a.bin", 3, result),
    'resuming "a.bin": 2 of 3 pieces kept from an earlier run; 1 kept piece failed its check and is fetched again',
  );
  t.is(
    resumedLine("a.bin", 3, { kept: [], checked: 3, failed: 0, record: "missing" }),
    'resuming "a.bin": 0 of 3 pieces kept from an earlier run (its record was missing or damaged: every piece was checked)',
  );
});
