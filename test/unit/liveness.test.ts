/**
 * The keepalive judgement (issue 17): a closed connection is death, silence only
 * suspicion. Unit tests of the rule, then of the link that applies it, on a manual clock:
 * a late timer (our own stall), a slow peer (long round trips), a truly dead peer; only
 * the last is dropped.
 */
import test from "ava";
import { ManualClock } from "../../src/util/clock.js";
import { Liveness } from "../../src/wire/liveness.js";
import { encodeTrackerFrame } from "../../src/wire/tracker-frame.js";
import { FramedLink, type LinkFailure } from "../../src/wire/tracker-link.js";

const OPTIONS = { pingIntervalMs: 2000, minTimeoutMs: 10_000, maxTimeoutMs: 60_000 };

test("rule: without a round trip the timeout is the floor; silence counts from the last byte", (t) => {
  const l = new Liveness(OPTIONS, 0);
  t.is(l.timeoutMs, 10_000);
  l.heard(5000, 0);
  t.is(l.silentMs(12_000, 0), 7000);
  t.false(l.dead(15_000, 0));
  t.true(l.dead(15_001, 0));
});

test("rule: our own stall is left out of a silence and out of a round trip", (t) => {
  const l = new Liveness(OPTIONS, 0);
  l.heard(0, 0);
  // 25 s later, of which we were stalled 20 s: 5 s of silence count.
  t.is(l.silentMs(25_000, 20_000), 5000);
  t.false(l.dead(25_000, 20_000));
  l.pingSent(1, 30_000, 20_000);
  t.is(l.pong(1, 39_000, 28_000), 1000, "9 s for the answer, 8 s of it our stall");
});

test("rule: the timeout follows the round trips observed, like an RTO, between floor and ceiling", (t) => {
  const l = new Liveness(OPTIONS, 0);
  let now = 0;
  for (const rtt of [3000, 5000, 8000, 9000, 9000]) {
    l.pingSent(now, now, 0);
    now += rtt;
    l.pong(now - rtt, now, 0);
  }
  const srtt = l.srttMs ?? 0;
  t.true(srtt > 4000 && srtt < 9000, `srtt ${srtt}`);
  t.true(l.timeoutMs > 30_000, `timeout ${l.timeoutMs}`);
  t.true(l.timeoutMs <= 60_000);
  const fast = new Liveness(OPTIONS, 0);
  fast.pingSent(1, 0, 0);
  fast.pong(1, 2, 0);
  t.is(fast.timeoutMs, 10_000, "fast round trips keep the floor");
});

test("rule: an unknown or repeated pong is no sample; older pings are dropped once a later one is answered", (t) => {
  const l = new Liveness(OPTIONS, 0);
  l.pingSent(1, 0, 0);
  l.pingSent(2, 1000, 0);
  t.is(l.pong(7, 2000, 0), undefined);
  t.is(l.pong(2, 2000, 0), 1000);
  t.is(l.pong(1, 2100, 0), undefined, "ping 1 was forgotten when 2 was answered");
  t.is(l.pong(2, 2200, 0), undefined);
});

// ------------------------------------------------------------------ the link on a manual clock

/** A link whose deferred judgements run only when the test says input has been read. */
function linkOn(clock: ManualClock) {
  const failures: LinkFailure[] = [];
  const deferred: Array<() => void> = [];
  const link = new FramedLink(
    clock,
    {
      write: () => {},
      frame: () => {},
      badFrame: () => {},
      failed: (f) => failures.push(f),
    },
    { maxFrameBytes: 1 << 20, pingIntervalMs: 2000, idleTimeoutMs: 10_000, defer: (fn) => deferred.push(fn) },
  );
  /** The loop's check phase: input read, then the deferred judgements. */
  const settle = (): void => {
    for (const fn of deferred.splice(0)) fn();
  };
  return { link, failures, settle };
}

const pong = (nonce: number) => encodeTrackerFrame({ pong: { nonce } });

test("link: a late timer is our stall, not their silence: nobody is dropped", (t) => {
  const clock = new ManualClock();
  const { link, failures, settle } = linkOn(clock);
  clock.advance(2000);
  link.receive(pong(1));
  // Our event loop is blocked for 30 s (a burst of work): no timer fires meanwhile.
  clock.stall(30_000);
  clock.advance(0); // the keepalive timer fires 30 s late
  settle();
  t.deepEqual(failures, [], "a timer 30 s late is evidence of our lag");
  clock.advance(2000);
  link.receive(pong(2));
  settle();
  clock.advance(8000);
  settle();
  t.deepEqual(failures, []);
});

test("link: a late timer with their frames waiting: input is read before silence is judged", (t) => {
  const clock = new ManualClock();
  const { link, failures, settle } = linkOn(clock);
  clock.advance(2000);
  link.receive(pong(1));
  clock.advance(10_000); // 12 s: silent 10 s, not more
  clock.stall(40); // a little late, below what counts as a stall
  clock.advance(2000); // 14 s: silent 12 s: suspect
  t.deepEqual(failures, []);
  // Their frames were already waiting in the socket: the poll phase reads them first.
  link.receive(encodeTrackerFrame({ readyToLeave: {} }));
  settle();
  t.deepEqual(failures, [], "frames that had arrived clear the suspicion");
});

test("link: a slow peer (long round trips) is given the time its round trips ask for", (t) => {
  const clock = new ManualClock();
  const { link, failures, settle } = linkOn(clock);
  // It answers every ping, later and later: 3, 5, 7, 9 s.
  let nonce = 1;
  for (const rtt of [3000, 5000, 7000, 9000]) {
    clock.advance(2000); // our ping `nonce` goes out
    clock.advance(rtt - 2000);
    link.receive(pong(nonce));
    settle();
    nonce = Math.floor(clock.now() / 2000) + 1;
  }
  t.true(link.timeoutMs > 20_000, `timeout ${link.timeoutMs}`);
  // Then 16 s without a word (beyond the 10 s floor), then an answer.
  const quietFrom = clock.now();
  while (clock.now() - quietFrom < 16_000) {
    clock.advance(1000);
    settle();
  }
  t.deepEqual(failures, [], `a slow peer is not dead (timeout ${Math.round(link.timeoutMs)} ms)`);
  link.receive(pong(nonce));
  clock.advance(4000);
  settle();
  t.deepEqual(failures, []);
});

test("link: a truly dead peer is dropped, once, soon after the floor", (t) => {
  const clock = new ManualClock();
  const { link, failures, settle } = linkOn(clock);
  for (let n = 1; n <= 5; n++) {
    clock.advance(2000);
    link.receive(pong(n)); // prompt answers: round trips of 0 ms
    settle();
  }
  const lastHeard = clock.now();
  while (failures.length === 0 && clock.now() - lastHeard < 30_000) {
    clock.advance(500);
    settle();
  }
  t.is(failures.length, 1);
  const f = failures[0];
  t.is(f?.kind, "silence");
  const silent = f?.kind === "silence" ? f.silentMs : 0;
  t.true(silent > 10_000 && silent <= 12_000, `dropped after ${silent} ms of silence`);
  t.true(link.closed);
  clock.advance(30_000);
  settle();
  t.is(failures.length, 1);
});

test("link: paused reading is not silence", (t) => {
  const clock = new ManualClock();
  const { link, failures, settle } = linkOn(clock);
  link.paused = true;
  clock.advance(30_000);
  settle();
  t.deepEqual(failures, []);
  link.paused = false;
  clock.advance(9000);
  settle();
  t.deepEqual(failures, [], "silence counts again from the resume");
  clock.advance(4000);
  settle();
  t.is(failures[0]?.kind, "silence");
});
