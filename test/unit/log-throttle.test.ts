import test from "ava";
import { LOG_INTERVAL_MS, ThrottledLog } from "../../src/tracker/log-throttle.js";
import { ManualClock } from "../../src/util/clock.js";

test("throttle: at most N lines per reason per interval; the rest counted in one line when it ends", (t) => {
  const clock = new ManualClock();
  const out: string[] = [];
  const log = new ThrottledLog(clock, (l) => out.push(l), 3);
  for (let i = 0; i < 10; i++) log.line("bad", `bad ${i}`);
  log.line("other", "other 0");
  t.deepEqual(out, ["bad 0", "bad 1", "bad 2", "other 0"]);
  t.is(log.suppressed, 7);
  clock.advance(LOG_INTERVAL_MS);
  t.deepEqual(out.slice(4), ['7 more "bad" lines in the last 10 s not shown']);
  // A new interval: a fresh budget.
  log.line("bad", "bad again");
  t.is(out.at(-1), "bad again");
});

test("throttle: a summary is written once, at flush if the interval has not ended", (t) => {
  const clock = new ManualClock();
  const out: string[] = [];
  const log = new ThrottledLog(clock, (l) => out.push(l), 1);
  log.line("x", "x 0");
  log.line("x", "x 1");
  log.line("x", "x 2");
  log.flush();
  t.deepEqual(out, ["x 0", '2 more "x" lines in the last 10 s not shown']);
  clock.advance(60_000);
  log.flush();
  t.is(out.length, 2);
  t.is(clock.pendingTimers, 0);
});
