import test from "ava";
import { FlushSchedule } from "../../src/tracker/flush-schedule.js";
import { ManualClock } from "../../src/util/clock.js";

function rig() {
  const clock = new ManualClock();
  const flushes: number[] = [];
  const schedule = new FlushSchedule(clock, 10, 50, () => flushes.push(clock.now()));
  return { clock, flushes, schedule };
}

test("the first flush after a quiet spell goes at once, urgent or not", (t) => {
  const { clock, flushes, schedule } = rig();
  schedule.request(false);
  clock.advance(0);
  t.deepEqual(flushes, [0]);
  clock.advance(500);
  schedule.request(true);
  clock.advance(0);
  t.deepEqual(flushes, [0, 500]);
});

test("progress waits for the progress interval; requests in between share one flush", (t) => {
  const { clock, flushes, schedule } = rig();
  schedule.request(false);
  clock.advance(0);
  for (let ms = 1; ms <= 45; ms += 5) {
    clock.advance(5);
    schedule.request(false);
  }
  clock.advance(100);
  t.deepEqual(flushes, [0, 50]);
});

test("an urgent change brings a waiting progress flush forward to the urgent interval", (t) => {
  const { clock, flushes, schedule } = rig();
  schedule.request(true);
  clock.advance(0);
  clock.advance(2);
  schedule.request(false); // due at 50
  clock.advance(3);
  schedule.request(true); // due at 10
  clock.advance(100);
  t.deepEqual(flushes, [0, 10]);
});

test("a progress request never delays an urgent flush that is already due sooner", (t) => {
  const { clock, flushes, schedule } = rig();
  schedule.request(false);
  clock.advance(0);
  clock.advance(1);
  schedule.request(true); // due at 10
  schedule.request(false); // would be 50: the flush at 10 covers it
  clock.advance(100);
  t.deepEqual(flushes, [0, 10]);
});

test("close cancels the waiting flush", (t) => {
  const { clock, flushes, schedule } = rig();
  schedule.request(false);
  clock.advance(0);
  schedule.request(false);
  schedule.close();
  clock.advance(100);
  t.deepEqual(flushes, [0]);
  t.is(clock.pendingTimers, 0);
});
