/**
 * The request tracker alone, one table row per loss rule: requests go out, answers and
 * timer checks come in at given times, and the row says which chunks are declared lost and
 * why, what each answer was, and what is left in flight. RTT options are fixed so the
 * numbers can be worked out by hand (the comments do it).
 */
import test from "ava";
import { type AnswerKind, RequestTracker, type TrackedRequest } from "../../src/transfer/request-tracker.js";

type Req = TrackedRequest;

type Step =
  /** Request `seq` naming `chunks` chunks goes out at `at`. */
  | { send: number; chunks: number; at: number }
  /** Chunk `index` of request `answer` arrives at `at` (then the loss scan runs). */
  | { answer: number; index: number; at: number }
  /** The timer runs at `at`. */
  | { timer: number }
  /** The request's file or peer is gone. */
  | { abandon: number };

type Row = {
  readonly name: string;
  readonly steps: readonly Step[];
  /** Events in order: "lost S.I why", "timeout S [unanswered] [probe]", "retired S". */
  readonly events: readonly string[];
  /** What each answer was, in order. */
  readonly kinds?: readonly AnswerKind[];
  readonly inflight: number;
  readonly reorderThreshold?: number;
  readonly timeThreshold?: number;
  readonly rto?: number;
  /** RTT samples reported, in order (-1: the answer gave none). */
  readonly samples?: readonly number[];
};

function newRequest(seq: number, chunks: number): Req {
  return {
    seq,
    chunks: Array.from({ length: chunks }, (_, i) => i),
    states: new Uint8Array(chunks),
    basePos: 0,
    sentAt: 0,
    pending: 0,
    scanFrom: 0,
    answered: false,
    retired: false,
  };
}

function run(row: Row) {
  const events: string[] = [];
  const tracker = new RequestTracker<Req>(
    {
      lost: (o, i, why) => events.push(`lost ${o.seq}.${i} ${why}`),
      timedOut: (o, unanswered, probe) =>
        events.push(`timeout ${o.seq}${unanswered ? " unanswered" : ""}${probe ? " probe" : ""}`),
      retired: (o) => events.push(`retired ${o.seq}`),
    },
    // RTO = srtt + max(4 rttvar, 4), in [30, 1000]; 100 before any sample.
    { rtt: { initialRtoMs: 100, minRtoMs: 30, maxRtoMs: 1000, granularityMs: 4 } },
  );
  const requests = new Map<number, Req>();
  const kinds: AnswerKind[] = [];
  const samples: number[] = [];
  for (const step of row.steps) {
    if ("send" in step) {
      const r = newRequest(step.send, step.chunks);
      requests.set(step.send, r);
      tracker.sent(r, step.at);
    } else if ("answer" in step) {
      const r = tracker.find(step.answer);
      if (r === undefined) throw new Error(`request ${step.answer} not found`);
      kinds.push(tracker.onAnswer(r, step.index, step.at));
      samples.push(tracker.rttSample);
      tracker.detectLosses(step.at, r);
    } else if ("timer" in step) {
      tracker.onTimeout(step.timer);
    } else {
      const r = requests.get(step.abandon);
      if (r !== undefined) tracker.abandon(r);
    }
  }
  return { tracker, events, kinds, samples };
}

const ROWS: readonly Row[] = [
  {
    name: "reordering threshold: an answer 3 positions later declares the chunk lost",
    steps: [
      { send: 1, chunks: 4, at: 0 },
      { answer: 1, index: 3, at: 10 },
    ],
    // Position 0 <= 3 - 3; positions 1 and 2 are within the threshold. Time threshold:
    // 9/8 of srtt 10 = 11.25 ms, and only 10 ms passed.
    events: ["lost 1.0 reorder"],
    kinds: ["new"],
    inflight: 2,
  },
  {
    name: "reordering threshold: positions count across requests to the same peer",
    steps: [
      { send: 1, chunks: 2, at: 0 },
      { send: 2, chunks: 2, at: 0 },
      { answer: 2, index: 1, at: 10 },
    ],
    // Positions 0 1 | 2 3: the answer at 3 declares 0 lost, not 1 or 2.
    events: ["lost 1.0 reorder"],
    inflight: 2,
  },
  {
    name: "within the reordering threshold nothing is lost",
    steps: [
      { send: 1, chunks: 4, at: 0 },
      { answer: 1, index: 2, at: 10 },
    ],
    events: [],
    inflight: 3,
  },
  {
    name: "time threshold: a chunk overtaken by an answer and older than 9/8 RTT is lost",
    steps: [{ send: 1, chunks: 2, at: 0 }, { answer: 1, index: 1, at: 10 }, { timer: 12 }],
    // srtt 10, loss delay 11.25: at 12 chunk 0 (overtaken by chunk 1) is lost by time.
    events: ["lost 1.0 time", "retired 1"],
    inflight: 0,
  },
  {
    name: "time threshold: not before 9/8 RTT",
    steps: [{ send: 1, chunks: 2, at: 0 }, { answer: 1, index: 1, at: 10 }, { timer: 11 }],
    events: [],
    inflight: 1,
  },
  {
    name: "time threshold: a chunk no answer overtook waits for the timeout",
    steps: [
      { send: 1, chunks: 2, at: 0 },
      { answer: 1, index: 0, at: 10 },
      // srtt 10, rttvar 5: RTO 30, counted from the last answer at 10: due at 40 (the
      // probe timeout, 10 + 4 x 5, is the RTO here).
      { timer: 39 },
      { timer: 40 },
    ],
    events: ["timeout 1 probe", "lost 1.1 timeout", "retired 1"],
    inflight: 0,
    rto: 30,
  },
  {
    name: "timeout of a silent peer: all its chunks lost, and the RTO backs off",
    steps: [{ send: 1, chunks: 3, at: 0 }, { timer: 99 }, { timer: 100 }],
    events: ["timeout 1 unanswered", "lost 1.0 timeout", "lost 1.1 timeout", "lost 1.2 timeout", "retired 1"],
    inflight: 0,
    rto: 200,
  },
  {
    name: "answers restart the timeout: a request is not timed out while its peer answers others",
    steps: [
      { send: 1, chunks: 1, at: 0 },
      { send: 2, chunks: 1, at: 0 },
      { answer: 2, index: 0, at: 90 },
      // srtt 90, rttvar 45: RTO 270 from the answer at 90.
      { timer: 100 },
    ],
    events: ["retired 2"],
    inflight: 1,
  },
  {
    name: "timeouts in a row: each unanswered one doubles the RTO",
    steps: [
      { send: 1, chunks: 1, at: 0 },
      { timer: 100 },
      { send: 2, chunks: 1, at: 100 },
      { timer: 299 },
      { timer: 300 },
    ],
    events: [
      "timeout 1 unanswered",
      "lost 1.0 timeout",
      "retired 1",
      "timeout 2 unanswered",
      "lost 2.0 timeout",
      "retired 2",
    ],
    inflight: 0,
    rto: 400,
  },
  {
    name: "spurious loss: the reordering threshold doubles and the time threshold rises by 1/8",
    steps: [
      { send: 1, chunks: 4, at: 0 },
      { answer: 1, index: 3, at: 10 },
      { answer: 1, index: 0, at: 11 },
    ],
    events: ["lost 1.0 reorder"],
    kinds: ["new", "spurious"],
    inflight: 2,
    reorderThreshold: 6,
    timeThreshold: 9 / 8 + 1 / 8,
  },
  {
    name: "an abandoned chunk's late answer is not a spurious loss: thresholds unchanged",
    steps: [
      { send: 1, chunks: 2, at: 0 },
      { abandon: 1 },
      { answer: 1, index: 0, at: 10 },
      { answer: 1, index: 1, at: 11 },
    ],
    events: ["lost 1.0 abandoned", "lost 1.1 abandoned", "retired 1"],
    kinds: ["abandoned", "abandoned"],
    inflight: 0,
    reorderThreshold: 3,
    timeThreshold: 9 / 8,
  },
  {
    name: "a duplicate answer is a duplicate, counted in flight once",
    steps: [
      { send: 1, chunks: 2, at: 0 },
      { answer: 1, index: 0, at: 10 },
      { answer: 1, index: 0, at: 11 },
    ],
    events: [],
    kinds: ["new", "duplicate"],
    inflight: 1,
  },
  {
    name: "a request retires when its last chunk is answered; a late copy is still recognised",
    steps: [
      { send: 1, chunks: 2, at: 0 },
      { answer: 1, index: 0, at: 10 },
      { answer: 1, index: 1, at: 10 },
      { answer: 1, index: 1, at: 12 },
    ],
    events: ["retired 1"],
    kinds: ["new", "new", "duplicate"],
    inflight: 0,
  },
  {
    name: "one RTT sample per request: its first answer, measured from when it was sent",
    steps: [
      { send: 1, chunks: 2, at: 5 },
      { answer: 1, index: 0, at: 25 },
      { answer: 1, index: 1, at: 26 },
    ],
    events: ["retired 1"],
    samples: [20, -1],
    inflight: 0,
  },
  {
    name: "tail: the last chunk of a peer that answers is probed after srtt + 4 rttvar, not the 30 ms floor",
    steps: [
      { send: 1, chunks: 2, at: 0 },
      // srtt 2, rttvar 1: RTO 30 (its floor), probe timeout max(10, 2 + 4) = 10, from 2.
      { answer: 1, index: 0, at: 2 },
      { timer: 11 },
      { timer: 12 },
    ],
    events: ["timeout 1 probe", "lost 1.1 timeout", "retired 1"],
    inflight: 0,
    rto: 30,
  },
  {
    name: "tail: a lost last request is probed too: reported unanswered (the holder accounting), but the RTO does not back off",
    steps: [
      { send: 1, chunks: 1, at: 0 },
      { answer: 1, index: 0, at: 2 },
      { send: 2, chunks: 1, at: 2 },
      { timer: 12 },
    ],
    events: ["retired 1", "timeout 2 unanswered probe", "lost 2.0 timeout", "retired 2"],
    inflight: 0,
    rto: 30,
  },
  {
    name: "tail: probes in a row double the probe timeout; an answer resets it",
    steps: [
      { send: 1, chunks: 1, at: 0 },
      { answer: 1, index: 0, at: 2 },
      { send: 2, chunks: 1, at: 2 },
      { timer: 12 }, // probe timeout 10 from 2
      { send: 3, chunks: 1, at: 12 },
      { timer: 31 },
      { timer: 32 }, // 20 from 12
      { send: 4, chunks: 1, at: 32 },
      { answer: 4, index: 0, at: 33 },
      { send: 5, chunks: 1, at: 33 },
      { timer: 43 }, // 10 again
    ],
    events: [
      "retired 1",
      "timeout 2 unanswered probe",
      "lost 2.0 timeout",
      "retired 2",
      "timeout 3 unanswered probe",
      "lost 3.0 timeout",
      "retired 3",
      "retired 4",
      "timeout 5 unanswered probe",
      "lost 5.0 timeout",
      "retired 5",
    ],
    inflight: 0,
    rto: 30,
  },
  {
    name: "tail: a peer silent for 8 base RTOs before the request gets the RTO again, backing off",
    steps: [
      { send: 1, chunks: 1, at: 0 },
      { answer: 1, index: 0, at: 2 },
      // Sent at 250, more than 8 x 30 after the last answer: due at 250 + 30.
      { send: 2, chunks: 1, at: 250 },
      { timer: 279 },
      { timer: 280 },
    ],
    events: ["retired 1", "timeout 2 unanswered", "lost 2.0 timeout", "retired 2"],
    inflight: 0,
    rto: 60,
  },
  {
    name: "tail: with more than one request's chunks in flight, the RTO as before",
    steps: [
      { send: 1, chunks: 70, at: 0 },
      { answer: 1, index: 0, at: 2 },
      // 69 chunks in flight: due at 2 + 30, not 2 + 10.
      { timer: 31 },
      { timer: 32 },
    ],
    events: ["timeout 1", ...Array.from({ length: 69 }, (_, i) => `lost 1.${i + 1} timeout`), "retired 1"],
    inflight: 0,
    rto: 30,
  },
];

for (const row of ROWS) {
  test(`request tracker: ${row.name}`, (t) => {
    const { tracker, events, kinds, samples } = run(row);
    t.deepEqual(events, row.events, "events");
    if (row.kinds !== undefined) t.deepEqual(kinds, row.kinds, "answer kinds");
    if (row.samples !== undefined) t.deepEqual(samples, row.samples, "RTT samples");
    t.is(tracker.inflightChunks, row.inflight, "chunks in flight");
    if (row.reorderThreshold !== undefined)
      t.is(tracker.reorderThreshold, row.reorderThreshold, "reordering threshold");
    if (row.timeThreshold !== undefined) t.is(tracker.timeThreshold, row.timeThreshold, "time threshold");
    if (row.rto !== undefined) t.is(tracker.rtt.rto(), row.rto, "RTO");
  });
}

test("request tracker: the reordering threshold stops doubling at 256", (t) => {
  const rows: Step[] = [];
  // 8 spurious losses: 3 → 6 → … → 384, cut to 256.
  for (let k = 0; k < 8; k++) {
    const seq = k + 1;
    const n = 2 * 256 + 2;
    rows.push({ send: seq, chunks: n, at: 0 }, { answer: seq, index: n - 1, at: 1 }, { answer: seq, index: 0, at: 1 });
  }
  const { tracker } = run({ name: "", steps: rows, events: [], inflight: 0 });
  t.is(tracker.reorderThreshold, 256);
  t.is(tracker.timeThreshold, 9 / 8 + 8 / 8);
});

test("request tracker: next deadline is the timeout, or the time threshold once a chunk is overtaken", (t) => {
  const { tracker } = run({
    name: "",
    steps: [{ send: 1, chunks: 3, at: 0 }],
    events: [],
    inflight: 3,
  });
  t.is(tracker.nextDeadline(), 100, "before any answer: the initial RTO");
  const r = tracker.find(1);
  if (r === undefined) throw new Error("unreachable");
  tracker.onAnswer(r, 1, 10);
  tracker.detectLosses(10, r);
  // Chunk 0 was overtaken: lost by time at 0 + 11.25 (+ 0.001 so the check is past it).
  t.true(Math.abs(tracker.nextDeadline() - 11.251) < 1e-9, `${tracker.nextDeadline()}`);
  t.true(tracker.nextDeadline() < 10 + tracker.rtt.rto());
});

test("request tracker: nothing in flight, no deadline; abandonAll selects", (t) => {
  const { tracker, events } = run({
    name: "",
    steps: [
      { send: 1, chunks: 1, at: 0 },
      { send: 2, chunks: 1, at: 0 },
    ],
    events: [],
    inflight: 2,
  });
  tracker.abandonAll((r) => r.seq === 2);
  t.deepEqual(events, ["lost 2.0 abandoned", "retired 2"]);
  t.is(tracker.inflightChunks, 1);
  tracker.abandonAll();
  t.is(tracker.inflightChunks, 0);
  t.is(tracker.outstanding, 0);
  t.is(tracker.nextDeadline(), Number.POSITIVE_INFINITY);
});

test("request tracker: retired requests are remembered up to the bound, oldest forgotten first", (t) => {
  const tracker = new RequestTracker<Req>(
    { lost: () => {}, timedOut: () => {}, retired: () => {} },
    { retiredMemory: 2 },
  );
  for (let seq = 1; seq <= 3; seq++) {
    const r = newRequest(seq, 1);
    tracker.sent(r, 0);
    tracker.abandon(r);
  }
  t.is(tracker.find(1), undefined);
  t.truthy(tracker.find(2));
  t.truthy(tracker.find(3));
});
