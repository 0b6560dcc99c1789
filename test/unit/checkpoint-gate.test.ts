import test from "ava";
import { CheckpointGate } from "../../src/peer/checkpoint-gate.js";
import { ManualClock } from "../../src/util/clock.js";

/** A gate on a manual clock whose checkpoints finish only when the test says so. */
function rig(everyMs = 100) {
  const clock = new ManualClock();
  const sent: string[][] = [];
  const started: number[] = [];
  const failures: unknown[] = [];
  const finishers: Array<{ resolve: () => void; reject: (e: unknown) => void }> = [];
  const gate = new CheckpointGate<string>({
    clock,
    checkpoint: () =>
      new Promise<void>((resolve, reject) => {
        started.push(clock.now());
        finishers.push({ resolve, reject });
      }),
    send: (reports) => sent.push([...reports]),
    fail: (err) => failures.push(err),
    everyMs,
  });
  const finish = async (): Promise<void> => {
    finishers.shift()?.resolve();
    await new Promise((r) => setImmediate(r));
  };
  return { clock, gate, sent, started, failures, finishers, finish };
}

test("reports wait for the checkpoint that covers them, and keep their order", async (t) => {
  const r = rig();
  r.gate.push(["a", "b"]);
  t.deepEqual(r.started, [0], "the first checkpoint starts at once");
  r.gate.push(["c"]);
  t.deepEqual(r.sent, [], "nothing is sent before its checkpoint is done");
  await r.finish();
  t.deepEqual(r.sent, [["a", "b"]], "c was queued after the checkpoint began: not covered by it");
  r.clock.advance(100);
  t.deepEqual(r.started, [0, 100]);
  await r.finish();
  t.deepEqual(r.sent, [["a", "b"], ["c"]]);
});

test("at most one checkpoint per interval; reports in between are batched", async (t) => {
  const r = rig(100);
  r.gate.push(["1"]);
  await r.finish();
  r.clock.advance(20);
  r.gate.push(["2"]);
  r.clock.advance(20);
  r.gate.push(["3"]);
  t.deepEqual(r.started, [0]);
  r.clock.advance(59);
  t.deepEqual(r.started, [0]);
  r.clock.advance(1);
  t.deepEqual(r.started, [0, 100]);
  await r.finish();
  t.deepEqual(r.sent, [["1"], ["2", "3"]]);
  t.is(r.clock.pendingTimers, 0);
});

test("an urgent report starts a checkpoint at once, or right after the running one", async (t) => {
  const r = rig(100);
  r.gate.push(["1"]);
  r.clock.advance(10);
  r.gate.push(["done"], true);
  t.deepEqual(r.started, [0], "one at a time");
  await r.finish();
  t.deepEqual(r.started, [0, 10], "the urgent one does not wait for the interval");
  await r.finish();
  t.deepEqual(r.sent, [["1"], ["done"]]);
});

test("idle() resolves once everything pushed is sent, without waiting for the interval", async (t) => {
  const r = rig(100);
  r.gate.push(["1"]);
  await r.finish();
  r.gate.push(["2"]);
  let idle = false;
  const done = r.gate.idle().then(() => {
    idle = true;
  });
  t.deepEqual(r.started, [0, 0]);
  t.false(idle);
  await r.finish();
  await done;
  t.true(idle);
  t.deepEqual(r.sent, [["1"], ["2"]]);
  await r.gate.idle();
});

test("a failed checkpoint is reported once, sends nothing, and closes the gate", async (t) => {
  const r = rig();
  r.gate.push(["1"]);
  r.gate.push(["2"]);
  r.finishers.shift()?.reject(new Error("ENOSPC"));
  await new Promise((resolve) => setImmediate(resolve));
  t.is(r.failures.length, 1);
  t.deepEqual(r.sent, []);
  r.gate.push(["3"], true);
  t.deepEqual(r.started, [0], "a closed gate starts nothing");
  await r.gate.idle();
});

test("close() drops what is queued and stops the timer", async (t) => {
  const r = rig();
  r.gate.push(["1"]);
  await r.finish();
  r.gate.push(["2"]);
  t.is(r.clock.pendingTimers, 1);
  r.gate.close();
  r.gate.close();
  t.is(r.clock.pendingTimers, 0);
  r.clock.advance(1000);
  t.deepEqual(r.sent, [["1"]]);
});
