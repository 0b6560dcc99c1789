import test from "ava";
import { WindowController } from "../../src/transfer/window.js";

test("slow start: the window grows by one chunk per chunk acknowledged", (t) => {
  const w = new WindowController({ initial: 256, max: 4096 });
  t.is(w.chunks, 256);
  t.true(w.inSlowStart);
  w.onRttSample(2, 2, 2, 0);
  w.onAck(256);
  t.is(w.chunks, 512);
});

test("the window never exceeds its ceiling nor goes below its floor", (t) => {
  const w = new WindowController({ initial: 1000, min: 128, max: 1024 });
  w.onAck(500);
  t.is(w.chunks, 1024);
  let now = 0;
  for (let i = 0; i < 50; i++) {
    now += 100;
    w.onTimeout(10, now);
  }
  t.is(w.chunks, 128);
});

test("queueing delay above the target shrinks the window x0.75, at most once per smoothed RTT", (t) => {
  const w = new WindowController({ initial: 1000, targetDelayMs: 40, max: 4096 });
  // Four samples 50 ms above the 1 ms minimum: the least of them is still over target.
  for (const at of [0, 1, 2, 3]) w.onRttSample(51, 1, 20, at);
  t.is(w.chunks, 750);
  t.is(w.decreases, 1);
  t.false(w.inSlowStart);
  w.onRttSample(51, 1, 20, 10); // within one srtt of the last decrease: held
  t.is(w.chunks, 750);
  w.onRttSample(51, 1, 20, 25);
  t.is(w.chunks, 562);
  t.is(w.decreases, 2);
});

test("one slow sample among fast ones is noise, not a queue", (t) => {
  const w = new WindowController({ initial: 1000, targetDelayMs: 40 });
  w.onRttSample(2, 1, 2, 0);
  w.onRttSample(200, 1, 2, 1);
  t.is(w.chunks, 1000);
  t.is(w.decreases, 0);
});

test("while the path queues, acknowledgements do not grow the window; after, growth is additive", (t) => {
  const w = new WindowController({ initial: 1024, targetDelayMs: 40, step: 32, max: 4096 });
  for (const at of [0, 1, 2, 3]) w.onRttSample(100, 1, 10, at);
  const shrunk = w.chunks;
  w.onAck(1000);
  t.is(w.chunks, shrunk);
  for (const at of [20, 21, 22, 23]) w.onRttSample(2, 1, 10, at);
  // Congestion avoidance: one request (32 chunks) per window's worth of acknowledgements.
  w.onAck(shrunk);
  t.is(w.chunks, shrunk + 32);
});
