/**
 * The request scheduler alone: room() is the one place the window is enforced (slots,
 * the peer's chunk window, the global cap, a suspect peer's single probe), and a request's
 * p-queue task holds its slot until the request retires.
 */
import test from "ava";
import type PQueue from "p-queue";
import { RequestScheduler, type ScheduledRequest, type SchedulerLane } from "../../src/transfer/request-scheduler.js";

type Lane = SchedulerLane & { queue: PQueue; windowChunks: number; inflightChunks: number; probing: boolean };

function setup(maxInflight = 1000) {
  const deferred: Array<() => void> = [];
  const scheduler = new RequestScheduler<Lane>({ perRequest: 64, maxInflight, defer: (fn) => deferred.push(fn) });
  const lane: Lane = {
    queue: scheduler.newQueue(() => {}),
    windowChunks: 256,
    inflightChunks: 0,
    probing: false,
  };
  return { scheduler, lane, deferred };
}

const ROOM: ReadonlyArray<{
  name: string;
  window: number;
  inflight: number;
  total: number;
  suspect?: boolean;
  room: number;
}> = [
  { name: "a full request when the window has room", window: 256, inflight: 0, total: 0, room: 64 },
  { name: "what is left of the peer's window", window: 256, inflight: 230, total: 230, room: 26 },
  { name: "nothing when the window is full", window: 256, inflight: 256, total: 256, room: 0 },
  { name: "what is left of the global cap", window: 256, inflight: 0, total: 990, room: 10 },
  { name: "a suspect peer: one probe request", window: 256, inflight: 0, total: 0, suspect: true, room: 64 },
  { name: "a suspect peer with a request out: nothing", window: 256, inflight: 3, total: 3, suspect: true, room: 0 },
];

for (const row of ROOM) {
  test(`scheduler room: ${row.name}`, (t) => {
    const { scheduler, lane } = setup();
    lane.windowChunks = row.window;
    lane.inflightChunks = row.inflight;
    lane.probing = row.suspect === true;
    t.is(scheduler.room(lane, row.total), row.room);
    t.is(lane.queue.concurrency, row.suspect === true ? 1 : Math.ceil(row.window / 64));
  });
}

test("scheduler: requests in flight are bounded in number too (window / chunks per request)", async (t) => {
  const { scheduler, lane } = setup();
  lane.windowChunks = 128; // two slots
  const requests: ScheduledRequest[] = [];
  const sent: number[] = [];
  scheduler.pump(
    [lane],
    () => true,
    () => 0,
    () => {
      // Small requests: the chunk window is far from full, the slots are not.
      const r: ScheduledRequest = { retired: false, finish: undefined };
      requests.push(r);
      return r;
    },
    () => sent.push(requests.length),
  );
  await Promise.resolve();
  t.is(requests.length, 2, "two slots, two requests");
  t.is(sent.length, 2);
  t.is(scheduler.room(lane, 0), 0);
  const first = requests[0];
  if (first !== undefined) {
    first.retired = true;
    scheduler.finish(first);
  }
  await new Promise((resolve) => setImmediate(resolve));
  t.is(scheduler.room(lane, 0), 64, "a retired request frees its slot");
});

test("scheduler: a pump is coalesced and deferred", (t) => {
  const { scheduler, deferred } = setup();
  let pumps = 0;
  scheduler.schedule(() => pumps++);
  scheduler.schedule(() => pumps++);
  t.is(deferred.length, 1);
  for (const fn of deferred) fn();
  t.is(pumps, 1);
});
