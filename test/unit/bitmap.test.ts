import assert from "node:assert/strict";
import test from "ava";
import fc from "fast-check";
import { Bitmap, flattenRuns, parseRuns, runsOf } from "../../src/wire/bitmap.js";
import { checkProperty } from "../helpers/property.js";

test("Bitmap: a new bitmap is empty", (t) => {
  const b = new Bitmap(10);
  t.is(b.size, 10);
  t.is(b.count, 0);
  t.false(b.complete);
  for (let i = 0; i < 10; i++) t.false(b.has(i));
  t.is(b.nextClear(), 0);
  t.deepEqual(b.runs(), []);
});

test("Bitmap: set returns whether the bit was new; has and count follow", (t) => {
  const b = new Bitmap(10);
  t.true(b.set(3));
  t.false(b.set(3));
  t.true(b.set(9));
  t.true(b.set(0));
  t.is(b.count, 3);
  t.deepEqual(
    [...Array(10).keys()].filter((i) => b.has(i)),
    [0, 3, 9],
  );
});

test("Bitmap: has is false and set throws outside [0, size)", (t) => {
  const b = Bitmap.full(10);
  t.false(b.has(-1));
  t.false(b.has(10));
  t.false(b.has(16)); // inside the last byte's storage, outside the bitmap
  t.throws(() => b.set(10), { instanceOf: RangeError });
  t.throws(() => b.set(-1), { instanceOf: RangeError });
  t.is(b.count, 10);
});

test("Bitmap: complete when every bit is set", (t) => {
  const b = new Bitmap(9);
  for (let i = 0; i < 8; i++) b.set(i);
  t.false(b.complete);
  t.is(b.nextClear(), 8);
  b.set(8);
  t.true(b.complete);
  t.is(b.nextClear(), -1);
});

test("Bitmap: an empty bitmap is complete", (t) => {
  const b = new Bitmap(0);
  t.true(b.complete);
  t.is(b.count, 0);
  t.is(b.nextClear(), -1);
  t.deepEqual(b.runs(), []);
  t.throws(() => b.set(0), { instanceOf: RangeError });
});

test("Bitmap.full", (t) => {
  const b = Bitmap.full(13);
  t.is(b.count, 13);
  t.true(b.complete);
  t.deepEqual(b.runs(), [[0, 13]]);
  t.is(b.nextClear(), -1);
});

test("Bitmap: setRange returns the bits newly set", (t) => {
  const b = new Bitmap(20);
  t.is(b.setRange(2, 5), 5);
  t.is(b.setRange(4, 6), 3);
  t.is(b.setRange(0, 0), 0);
  t.is(b.count, 8);
  t.deepEqual(b.runs(), [[2, 8]]);
  t.throws(() => b.setRange(18, 3), { instanceOf: RangeError });
});

test("Bitmap: nextClear skips full bytes and starts at `from`", (t) => {
  const b = new Bitmap(30);
  b.setRange(0, 4);
  b.setRange(8, 8); // bytes 1 (8..15) full
  b.setRange(16, 3);
  t.is(b.nextClear(), 4);
  t.is(b.nextClear(3), 4);
  t.is(b.nextClear(5), 5);
  t.is(b.nextClear(8), 19);
  t.is(b.nextClear(11), 19); // from the middle of a full byte
  t.is(b.nextClear(-7), 4);
  t.is(b.nextClear(29), 29);
  t.is(b.nextClear(30), -1);
  t.is(b.nextClear(100), -1);
  b.setRange(19, 11);
  t.is(b.nextClear(8), -1);
  t.is(b.nextClear(), 4);
});

test("Bitmap: runs are maximal, including one that ends at the last bit", (t) => {
  const b = new Bitmap(10);
  for (const i of [0, 1, 2, 5, 7, 8, 9]) b.set(i);
  t.deepEqual(b.runs(), [
    [0, 3],
    [5, 1],
    [7, 3],
  ]);
  const single = new Bitmap(1);
  single.set(0);
  t.deepEqual(single.runs(), [[0, 1]]);
});

test("Bitmap: clear empties the bitmap, which can then be refilled", (t) => {
  const b = Bitmap.full(12);
  b.clear();
  t.is(b.count, 0);
  t.false(b.complete);
  t.false(b.has(0));
  t.false(b.has(11));
  t.is(b.nextClear(), 0);
  t.deepEqual(b.runs(), []);
  t.true(b.set(11));
  t.is(b.count, 1);
  t.deepEqual(b.runs(), [[11, 1]]);
});

test("flattenRuns", (t) => {
  t.deepEqual(flattenRuns([]), []);
  t.deepEqual(
    flattenRuns([
      [0, 3],
      [5, 1],
    ]),
    [0, 3, 5, 1],
  );
});

test("parseRuns: accepts well-formed runs inside the limit", (t) => {
  t.deepEqual(parseRuns([], 10), []);
  t.deepEqual(parseRuns([0, 3, 5, 1], 10), [
    [0, 3],
    [5, 1],
  ]);
  t.deepEqual(parseRuns([7, 3], 10), [[7, 3]]); // ends exactly at the limit
  t.deepEqual(parseRuns([0, 10], 10), [[0, 10]]);
});

test("parseRuns: refuses odd length, empty runs and anything outside [0, limit)", (t) => {
  t.is(parseRuns([0], 10), undefined);
  t.is(parseRuns([0, 3, 5], 10), undefined);
  t.is(parseRuns([0, 0], 10), undefined);
  t.is(parseRuns([2, 1, 4, 0], 10), undefined);
  t.is(parseRuns([8, 3], 10), undefined);
  t.is(parseRuns([10, 1], 10), undefined);
  t.is(parseRuns([0, 11], 10), undefined);
  t.is(parseRuns([0, 1], 0), undefined);
  t.is(parseRuns([-1, 2], 10), undefined);
  t.is(parseRuns([1, -1], 10), undefined);
  t.is(parseRuns([1.5, 2], 10), undefined);
  t.is(parseRuns([1, 2.5], 10), undefined);
  t.is(parseRuns([Number.NaN, 1], 10), undefined);
  t.is(parseRuns([0xffffffff, 0xffffffff], 10), undefined);
});

test("runsOf", (t) => {
  t.deepEqual(runsOf([]), []);
  t.deepEqual(runsOf([3]), [[3, 1]]);
  t.deepEqual(runsOf([0, 1, 2, 5, 7, 8]), [
    [0, 3],
    [5, 1],
    [7, 2],
  ]);
  t.deepEqual(runsOf([4, 6, 8]), [
    [4, 1],
    [6, 1],
    [8, 1],
  ]);
});

type Op =
  | { readonly op: "set"; readonly i: number }
  | { readonly op: "range"; readonly first: number; readonly count: number };

const arbCase = fc.integer({ min: 0, max: 200 }).chain((size) =>
  fc.record({
    size: fc.constant(size),
    ops: fc.array(
      size === 0
        ? fc.constant<Op>({ op: "range", first: 0, count: 0 })
        : fc.oneof(
            fc.nat({ max: size - 1 }).map((i): Op => ({ op: "set", i })),
            fc
              .nat({ max: size - 1 })
              .chain((first) =>
                fc.nat({ max: Math.min(size - first, 40) }).map((count): Op => ({ op: "range", first, count })),
              ),
          ),
      { maxLength: 60 },
    ),
    froms: fc.array(fc.integer({ min: -2, max: size + 2 }), { maxLength: 10 }),
  }),
);

test("property: Bitmap behaves like a Set<number> model", (t) => {
  checkProperty(
    t,
    fc.property(arbCase, ({ size, ops, froms }) => {
      const b = new Bitmap(size);
      const model = new Set<number>();
      for (const o of ops) {
        if (o.op === "set") {
          assert.equal(b.set(o.i), !model.has(o.i));
          model.add(o.i);
        } else {
          let added = 0;
          for (let i = o.first; i < o.first + o.count; i++) {
            if (!model.has(i)) added++;
            model.add(i);
          }
          assert.equal(b.setRange(o.first, o.count), added);
        }
        assert.equal(b.count, model.size);
      }
      for (let i = -1; i <= size; i++) assert.equal(b.has(i), model.has(i), `has(${i})`);
      assert.equal(b.complete, model.size === size);
      for (const from of [0, ...froms]) {
        let expected = -1;
        for (let i = Math.max(0, from); i < size; i++) {
          if (!model.has(i)) {
            expected = i;
            break;
          }
        }
        assert.equal(b.nextClear(from), expected, `nextClear(${from})`);
      }
      const sorted = [...model].sort((x, y) => x - y);
      const runs = b.runs();
      assert.deepEqual(runs, runsOf(sorted));
      assert.deepEqual(parseRuns(flattenRuns(runs), size), runs);
      // Rebuilding from the runs gives the same set.
      const rebuilt = new Bitmap(size);
      for (const [first, count] of runs) rebuilt.setRange(first, count);
      assert.deepEqual(rebuilt.runs(), runs);
      assert.equal(rebuilt.count, model.size);
    }),
    { numRuns: 500 },
  );
});

test("property: setRange reports exactly the newly set bits, as maximal runs in order", (t) => {
  checkProperty(
    t,
    fc.property(
      fc.integer({ min: 1, max: 200 }).chain((size) =>
        fc.tuple(
          fc.constant(size),
          fc.array(
            fc
              .integer({ min: 0, max: size - 1 })
              .chain((first) => fc.tuple(fc.constant(first), fc.integer({ min: 1, max: size - first }))),
            { maxLength: 12 },
          ),
        ),
      ),
      ([size, ranges]) => {
        const b = new Bitmap(size);
        const model = new Set<number>();
        for (const [first, count] of ranges) {
          const fresh: number[] = [];
          for (let i = first; i < first + count; i++) if (!model.has(i)) fresh.push(i);
          const reported: Array<[number, number]> = [];
          const added = b.setRange(first, count, (start, n) => reported.push([start, n]));
          assert.equal(added, fresh.length);
          assert.deepEqual(reported, runsOf(fresh));
          for (const i of fresh) model.add(i);
          assert.equal(b.count, model.size);
        }
      },
    ),
  );
});
