import test from "ava";
import { formatProgressLine, formatRate, ProgressDisplay, ProgressModel } from "../../src/peer/progress.js";
import { FileState } from "../../src/transfer/file-state.js";
import type { CheckedManifest } from "../../src/wire/tracker-frame.js";

function manifest(name: string, chunks: number): CheckedManifest {
  const pieces = Math.ceil(chunks / 128);
  return {
    name,
    size: chunks * 512,
    chunks,
    chunksPerPiece: 128,
    chunksPerBlock: 4,
    sha256: Buffer.alloc(32),
    pieceSha256: Array.from({ length: pieces }, () => Buffer.alloc(32)),
  };
}

test("progress: percent, rate over the window, ETA and holders of a download", (t) => {
  const file = new FileState(1, manifest("movie.mkv", 1024), "downloading"); // 8 pieces
  file.addHolder(7, [], true);
  const model = new ProgressModel(3000);
  t.deepEqual(model.look([file], 0), [
    { name: "movie.mkv", percent: 0, bytesPerSecond: 0, etaSeconds: undefined, holders: 1, complete: false },
  ]);
  file.done.set(0);
  file.done.set(1); // 256 chunks in one second
  const [p] = model.look([file], 1000);
  t.is(p?.percent, 25);
  t.is(p?.bytesPerSecond, 256 * 512);
  t.is(p?.etaSeconds, 3);
  t.is(formatRate(256 * 512), "128.0 KiB/s");
  t.is(
    formatProgressLine(
      p ?? { name: "", percent: 0, bytesPerSecond: 0, etaSeconds: 0, holders: 0, complete: false },
      12,
    ),
    "movie.mkv    [#####...............]  25% 128.0 KiB/s eta    3s  1 holder",
  );
});

test("progress: seeding files show as done; ignored ones are not shown", (t) => {
  const seed = new FileState(1, manifest("a", 10), "seeding");
  const ignored = new FileState(2, manifest("b", 10), "ignored");
  const [p, q] = new ProgressModel().look([seed, ignored], 5);
  t.is(p?.percent, 100);
  t.true(p?.complete);
  t.is(q, undefined);
});

test("progress display: redrawn in place on a terminal, plain lines otherwise; never more than asked", (t) => {
  const file = new FileState(1, manifest("x", 10), "downloading");
  const tty: string[] = [];
  const onTty = new ProgressDisplay((s) => tty.push(s), true);
  onTty.draw([file], 0);
  onTty.draw([file], 250);
  t.false(tty[0]?.includes("\x1b[1A"));
  t.true(tty[1]?.startsWith("\x1b[1A\x1b[2K"));
  const plain: string[] = [];
  new ProgressDisplay((s) => plain.push(s), false).draw([file], 0);
  t.regex(plain[0] ?? "", /^progress x +\[\.{20}\] +0% +0 B\/s eta +-- +0 holders\n$/);
  t.false((plain[0] ?? "").includes("\x1b"));
});
