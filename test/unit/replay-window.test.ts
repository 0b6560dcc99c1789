/** The anti-replay window of request proofs: each sequence number once, in serial arithmetic. */
import test from "ava";
import fc from "fast-check";
import { ReplayWindow } from "../../src/transfer/replay-window.js";

test("replay window: each seq once; late ones inside the window accepted once; older ones refused", (t) => {
  const w = new ReplayWindow(8);
  t.true(w.accept(100));
  t.false(w.accept(100));
  t.true(w.accept(105));
  t.true(w.accept(101), "late, inside the window");
  t.false(w.accept(101));
  t.true(w.accept(98), "7 below the highest");
  t.false(w.accept(97), "8 below the highest: too old");
  t.true(w.accept(200), "a jump clears the window");
  t.true(w.accept(195));
  t.false(w.accept(105));
});

test("replay window: wraps around 2^32", (t) => {
  const w = new ReplayWindow(16);
  t.true(w.accept(0xfffffffe));
  t.true(w.accept(1));
  t.true(w.accept(0xffffffff), "before the wrap, inside the window");
  t.false(w.accept(0xfffffffe));
  t.false(w.accept(1));
});

test("property: a set of seqs within the window in any order is accepted once each", (t) => {
  t.notThrows(() =>
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.shuffledSubarray([...Array(64).keys()]),
        (base, order) => {
          const w = new ReplayWindow(64);
          for (const k of order) if (!w.accept((base + k) >>> 0)) return false;
          return order.every((k) => !w.accept((base + k) >>> 0));
        },
      ),
    ),
  );
});
