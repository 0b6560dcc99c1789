import test from "ava";
import { ManualClock, RealClock } from "../../src/util/clock.js";

test("ManualClock: starts where told and moves only on advance", (t) => {
  t.is(new ManualClock().now(), 0);
  const c = new ManualClock(1000);
  t.is(c.now(), 1000);
  c.advance(250);
  t.is(c.now(), 1250);
  c.advanceTo(2000);
  t.is(c.now(), 2000);
  c.advanceTo(1500); // never backwards
  t.is(c.now(), 2000);
  t.is(c.nextDeadline(), undefined);
  t.is(c.pendingTimers, 0);
});

test("ManualClock: timers fire in deadline order, then creation order, at their deadline", (t) => {
  const c = new ManualClock(100);
  const fired: Array<[string, number]> = [];
  c.setTimer(30, () => fired.push(["a", c.now()]));
  c.setTimer(10, () => fired.push(["b", c.now()]));
  c.setTimer(20, () => fired.push(["c", c.now()]));
  c.setTimer(10, () => fired.push(["d", c.now()]));
  t.is(c.pendingTimers, 4);
  t.is(c.nextDeadline(), 110);
  c.advance(50);
  t.deepEqual(fired, [
    ["b", 110],
    ["d", 110],
    ["c", 120],
    ["a", 130],
  ]);
  t.is(c.now(), 150);
  t.is(c.pendingTimers, 0);
});

test("ManualClock: a timer fires when time reaches its deadline exactly, not before", (t) => {
  const c = new ManualClock();
  let fired = 0;
  c.setTimer(10, () => fired++);
  c.advance(9);
  t.is(fired, 0);
  t.is(c.pendingTimers, 1);
  c.advance(1);
  t.is(fired, 1);
  c.advance(100);
  t.is(fired, 1); // once only
});

test("ManualClock: advance in steps across several timers", (t) => {
  const c = new ManualClock();
  const fired: number[] = [];
  for (const d of [5, 15, 25, 35]) c.setTimer(d, () => fired.push(c.now()));
  c.advance(10);
  t.deepEqual(fired, [5]);
  t.is(c.now(), 10);
  t.is(c.nextDeadline(), 15);
  c.advance(20);
  t.deepEqual(fired, [5, 15, 25]);
  t.is(c.now(), 30);
  c.advance(5);
  t.deepEqual(fired, [5, 15, 25, 35]);
});

test("ManualClock: clearTimer cancels; clearing twice or after firing is harmless", (t) => {
  const c = new ManualClock();
  const fired: string[] = [];
  const a = c.setTimer(10, () => fired.push("a"));
  const b = c.setTimer(20, () => fired.push("b"));
  c.clearTimer(a);
  c.clearTimer(a);
  t.is(c.pendingTimers, 1);
  t.is(c.nextDeadline(), 20);
  c.advance(30);
  t.deepEqual(fired, ["b"]);
  c.clearTimer(b);
  t.is(c.pendingTimers, 0);
});

test("ManualClock: a firing timer can clear another one due at the same time", (t) => {
  const c = new ManualClock();
  const fired: string[] = [];
  const handles: { later?: ReturnType<ManualClock["setTimer"]> } = {};
  c.setTimer(10, () => {
    fired.push("first");
    if (handles.later !== undefined) c.clearTimer(handles.later);
  });
  handles.later = c.setTimer(10, () => fired.push("second"));
  c.advance(10);
  t.deepEqual(fired, ["first"]);
});

test("ManualClock: a timer set from inside a firing timer fires in the same advance when due", (t) => {
  const c = new ManualClock();
  const fired: Array<[string, number]> = [];
  c.setTimer(10, () => {
    fired.push(["outer", c.now()]);
    c.setTimer(5, () => fired.push(["inner+5", c.now()]));
    c.setTimer(0, () => fired.push(["inner+0", c.now()]));
    c.setTimer(30, () => fired.push(["inner+30", c.now()]));
  });
  c.setTimer(12, () => fired.push(["other", c.now()]));
  c.advance(20);
  t.deepEqual(fired, [
    ["outer", 10],
    ["inner+0", 10],
    ["other", 12],
    ["inner+5", 15],
  ]);
  t.is(c.now(), 20);
  t.is(c.nextDeadline(), 40);
  c.advance(20);
  t.deepEqual(fired.at(-1), ["inner+30", 40]);
});

test("ManualClock: a timer that re-arms itself fires once per period", (t) => {
  const c = new ManualClock();
  const fired: number[] = [];
  const tick = (): void => {
    fired.push(c.now());
    c.setTimer(10, tick);
  };
  c.setTimer(10, tick);
  c.advance(45);
  t.deepEqual(fired, [10, 20, 30, 40]);
  t.is(c.pendingTimers, 1);
});

test("ManualClock: a negative delay is treated as 0", (t) => {
  const c = new ManualClock(50);
  let at = -1;
  c.setTimer(-10, () => {
    at = c.now();
  });
  t.is(c.nextDeadline(), 50);
  c.advance(0);
  t.is(at, 50);
});

test("RealClock: a timer fires, a cleared one does not", async (t) => {
  const c = new RealClock();
  const start = c.now();
  let cleared = false;
  const h = c.setTimer(1, () => {
    cleared = true;
  });
  c.clearTimer(h);
  await new Promise<void>((resolve) => {
    c.setTimer(5, resolve);
    // keep the process alive: RealClock timers are unref'd
    setTimeout(() => {}, 50);
  });
  t.false(cleared);
  t.true(c.now() - start >= 4);
});
