import test from "ava";
import {
  type DownloadView,
  formatDuration,
  formatProgressLine,
  formatRate,
  ProgressDisplay,
  ProgressModel,
} from "../../src/peer/progress.js";

function view(over: Partial<DownloadView> & { name: string }): DownloadView {
  return { id: 1, size: 1024 * 512, chunks: 1024, state: "downloading", doneChunks: 0, holders: 1, ...over };
}

test("progress: percent, rate over the window, ETA and holders of a download", (t) => {
  const model = new ProgressModel(3000);
  t.deepEqual(model.look([view({ name: "movie.mkv" })], 0), [
    { name: "movie.mkv", state: "downloading", percent: 0, bytesPerSecond: 0, seconds: undefined, holders: 1 },
  ]);
  const [p] = model.look([view({ name: "movie.mkv", doneChunks: 256 })], 1000); // 256 chunks in one second
  t.is(p?.percent, 25);
  t.is(p?.bytesPerSecond, 256 * 512);
  t.is(p?.seconds, 3);
  t.is(formatRate(256 * 512), "128.0 KiB/s");
  if (p === undefined) return;
  t.is(formatProgressLine(p, 12), "movie.mkv     [###.........]  25%     128.0 KiB/s  eta 3.0s    1 holder");
  t.is(
    formatProgressLine({ ...p, holders: 0, seconds: undefined }, 12),
    "movie.mkv     [###.........]  25%     128.0 KiB/s  eta --      0 holders",
  );
});

test("progress: never 100 % before the file is complete", (t) => {
  const [p] = new ProgressModel().look([view({ name: "x", doneChunks: 1023 })], 0);
  t.is(p?.percent, 99);
});

test("progress: after 100 % the rate is the frozen average and the time it took; no '0 holders'", (t) => {
  const model = new ProgressModel(3000);
  model.look([view({ name: "big.bin", startedAt: 0 })], 0);
  model.look([view({ name: "big.bin", doneChunks: 512, startedAt: 0 })], 1000);
  // 1024 chunks (512 KiB) from 0 to 2 s: 256 KiB/s on average; the seeder has left (0 holders).
  const done = view({
    name: "big.bin",
    state: "complete",
    doneChunks: 1024,
    holders: 0,
    startedAt: 0,
    completedAt: 2000,
  });
  const looks = [2000, 2250, 5000, 60_000].map((now) => model.look([done], now)[0]);
  for (const p of looks) {
    t.deepEqual(p, {
      name: "big.bin",
      state: "complete",
      percent: 100,
      bytesPerSecond: 256 * 1024,
      seconds: 2,
      holders: 0,
    });
  }
  const first = looks[0];
  if (first === undefined) return;
  const line = formatProgressLine(first, 8);
  t.is(line, "big.bin   [############] 100%  avg 256.0 KiB/s  took 2.0s   complete");
  t.notRegex(line, /holder|eta/);
});

test("progress: files offered by this peer show no rate; an instant download shows no average", (t) => {
  const model = new ProgressModel();
  const [own, instant] = model.look(
    [
      view({ name: "mine", state: "offered", doneChunks: 1024, holders: 0 }),
      view({ id: 2, name: "empty", size: 0, chunks: 0, state: "complete", startedAt: 5, completedAt: 5 }),
    ],
    10,
  );
  if (own === undefined || instant === undefined) return t.fail();
  t.is(own.bytesPerSecond, undefined);
  t.is(formatProgressLine(own, 6).trimEnd(), "mine    [############] 100%                              offered");
  t.is(instant.bytesPerSecond, undefined);
  t.is(formatProgressLine(instant, 6), "empty   [############] 100%                  took 0.0s   complete");
});

test("progress: durations", (t) => {
  t.is(formatDuration(0.42), "0.5s");
  t.is(formatDuration(9.96), "10.0s");
  t.is(formatDuration(12.1), "13s");
  t.is(formatDuration(245), "4m05s");
  t.is(formatDuration(3720), "1h02m");
});

test("progress display: redrawn in place on a terminal, fitted to its width and height", (t) => {
  const out: string[] = [];
  const display = new ProgressDisplay(
    (s) => out.push(s),
    true,
    () => ({ columns: 60, rows: 4 }),
  );
  const files = [1, 2, 3, 4, 5].map((id) => view({ id, name: `file number ${id} with a long name.bin` }));
  display.draw(files, 0);
  display.draw(files, 250);
  t.false(out[0]?.includes("\x1b["), "the first frame moves nothing");
  t.true(out[1]?.startsWith("\x1b[3A\r\x1b[J"), "the next goes back over the 3 lines drawn and clears them");
  const lines = (out[1] ?? "").replace("\x1b[3A\r\x1b[J", "").split("\n").slice(0, -1);
  t.is(lines.length, 3, "rows - 1 lines at most, so the block never scrolls the screen");
  t.is(lines[2], "… and 3 more files (3 downloading)");
  for (const line of lines) t.true([...line].length < 60, `fits in 59 columns: ${line}`);
});

test("progress display: a stderr line while the block is up goes below it, and the block is redrawn", (t) => {
  const out: string[] = [];
  const display = new ProgressDisplay(
    (s) => out.push(s),
    true,
    () => ({ columns: 100, rows: 40 }),
  );
  display.draw([view({ name: "a" }), view({ id: 2, name: "b" })], 0);
  out.length = 0;
  display.interject(() => out.push("udpswarm peer: something happened\n"));
  t.is(out[0], "\x1b[2A\r\x1b[J");
  t.is(out[1], "udpswarm peer: something happened\n");
  t.regex(out[2] ?? "", /^a .*\nb .*\n$/);
  out.length = 0;
  display.draw([view({ name: "a" })], 250);
  t.true(out[0]?.startsWith("\x1b[2A\r\x1b[J"), "the redrawn block is what is erased next");
  display.finish();
  out.length = 0;
  display.interject(() => out.push("after\n"));
  t.deepEqual(out, ["after\n"], "once finished, lines go straight out");
});

test("progress display: plain prefixed lines when not on a terminal", (t) => {
  const plain: string[] = [];
  new ProgressDisplay((s) => plain.push(s), false).draw([view({ name: "x", chunks: 10, size: 5000 })], 0);
  t.regex(plain[0] ?? "", /^udpswarm peer: progress x +\[\.{12}\] +0% +0 B\/s {2}eta -- +1 holder\n$/);
  t.false((plain[0] ?? "").includes("\x1b"));
});
