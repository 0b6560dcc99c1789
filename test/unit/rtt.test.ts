import test from "ava";
import { RttEstimator } from "../../src/transfer/rtt.js";

// Every number below is a dyadic fraction, so exact equality is safe.

test("before any sample: initial RTO, no estimates", (t) => {
  const r = new RttEstimator();
  t.is(r.smoothed, undefined);
  t.is(r.variance, 0);
  t.is(r.min, undefined);
  t.is(r.latest, 0);
  t.is(r.backoffCount, 0);
  t.is(r.baseRto(), 200);
  t.is(r.rto(), 200);
  t.is(r.lossDelay(), 225); // 9/8 of the initial RTO
  t.is(new RttEstimator({ initialRtoMs: 500 }).rto(), 500);
});

test("first sample: srtt = R, rttvar = R/2, RTO = srtt + 4 rttvar", (t) => {
  const r = new RttEstimator();
  r.sample(100);
  t.is(r.smoothed, 100);
  t.is(r.variance, 50);
  t.is(r.min, 100);
  t.is(r.latest, 100);
  t.is(r.rto(), 300);
});

test("later samples: rttvar gain 1/4 (against the old srtt), srtt gain 1/8", (t) => {
  const r = new RttEstimator();
  r.sample(100);
  r.sample(60);
  // rttvar = 3/4*50 + 1/4*|100-60| = 47.5; srtt = 7/8*100 + 1/8*60 = 95
  t.is(r.variance, 47.5);
  t.is(r.smoothed, 95);
  t.is(r.rto(), 95 + 4 * 47.5);
  t.is(r.min, 60);
  t.is(r.latest, 60);
  r.sample(100);
  // rttvar = 3/4*47.5 + 1/4*|95-100| = 36.875; srtt = 7/8*95 + 1/8*100 = 95.625
  t.is(r.variance, 36.875);
  t.is(r.smoothed, 95.625);
  t.is(r.rto(), 243.125);
  t.is(r.min, 60);
  r.sample(200);
  // rttvar = 3/4*36.875 + 1/4*|95.625-200| = 27.65625 + 26.09375 = 53.75; srtt = 83.671875 + 25
  t.is(r.variance, 53.75);
  t.is(r.smoothed, 108.671875);
  t.is(r.rto(), 108.671875 + 215);
});

test("RTO uses the clock granularity when 4*rttvar is smaller", (t) => {
  const r = new RttEstimator({ minRtoMs: 0, granularityMs: 4 });
  r.sample(1);
  // 4*rttvar = 2 < 4
  t.is(r.rto(), 1 + 4);
  const g = new RttEstimator({ minRtoMs: 0, granularityMs: 10 });
  g.sample(8);
  t.is(g.rto(), 8 + 16); // 4*rttvar = 16 > 10
  g.sample(8);
  g.sample(8);
  // rttvar = 4 -> 3 -> 2.25; 4*2.25 = 9 < 10
  t.is(g.variance, 2.25);
  t.is(g.rto(), 8 + 10);
});

test("RTO is clamped to [min, max]", (t) => {
  const low = new RttEstimator();
  low.sample(2);
  t.is(low.baseRto(), 30); // 2 + max(4, 4) = 6, raised to the 30 ms floor
  const high = new RttEstimator();
  high.sample(1000);
  t.is(high.baseRto(), 1000); // 1000 + 2000 = 3000, cut to the 1000 ms ceiling
  const custom = new RttEstimator({ minRtoMs: 50, maxRtoMs: 250 });
  custom.sample(10);
  t.is(custom.rto(), 50);
  custom.sample(1000);
  t.is(custom.rto(), 250);
});

test("backoff doubles the RTO per timeout, up to the ceiling, and a sample resets it", (t) => {
  const r = new RttEstimator();
  r.sample(100);
  t.is(r.rto(), 300);
  r.onTimeout();
  t.is(r.backoffCount, 1);
  t.is(r.rto(), 600);
  t.is(r.baseRto(), 300);
  r.onTimeout();
  t.is(r.rto(), 1000); // 1200 capped
  t.is(r.backoffCount, 2);
  r.sample(100);
  t.is(r.backoffCount, 0);
  // rttvar = 3/4*50 + 0 = 37.5, srtt = 100
  t.is(r.rto(), 250);
});

test("backoff applies before any sample too", (t) => {
  const r = new RttEstimator();
  r.onTimeout();
  t.is(r.rto(), 400);
  r.onTimeout();
  t.is(r.rto(), 800);
  t.is(r.baseRto(), 200);
});

test("before any sample the backoff goes on to 3.2 s (a peer that never answered may not have started); after one, 1 s", (t) => {
  const r = new RttEstimator();
  const waits: number[] = [];
  for (let i = 0; i < 8; i++) {
    waits.push(r.rto());
    r.onTimeout();
  }
  t.deepEqual(waits, [200, 400, 800, 1600, 3200, 3200, 3200, 3200]);
  t.true(
    waits.reduce((a, b) => a + b, 0) >= 15_000,
    "8 unanswered requests span the silence floor of a holder (MIN_SILENT_MS)",
  );
  r.sample(100);
  for (let i = 0; i < 8; i++) r.onTimeout();
  t.is(r.rto(), 1000);
});

test("backoff count stops at 4 (16x the base timeout)", (t) => {
  const r = new RttEstimator({ initialRtoMs: 1, maxRtoMs: 1e12 });
  for (let i = 0; i < 20; i++) r.onTimeout();
  t.is(r.backoffCount, 4);
  t.is(r.rto(), 2 ** 4);
});

test("negative samples count as 0", (t) => {
  const r = new RttEstimator();
  r.sample(-5);
  t.is(r.smoothed, 0);
  t.is(r.variance, 0);
  t.is(r.min, 0);
  t.is(r.latest, 0);
});

test("lossDelay = 9/8 * max(srtt, latest), at least the granularity", (t) => {
  const r = new RttEstimator();
  r.sample(100);
  t.is(r.lossDelay(), 112.5);
  r.sample(60); // srtt 95 > latest 60
  t.is(r.lossDelay(), (9 / 8) * 95);
  r.sample(200); // latest 200 > srtt
  t.is(r.lossDelay(), 225);
  const zero = new RttEstimator({ granularityMs: 4 });
  zero.sample(0);
  t.is(zero.lossDelay(), 4);
  const small = new RttEstimator({ granularityMs: 4 });
  small.sample(3);
  t.is(small.lossDelay(), 4); // 3.375 raised to 4
});
