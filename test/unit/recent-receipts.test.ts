import assert from "node:assert/strict";
import test from "ava";
import fc from "fast-check";
import { RecentReceipts } from "../../src/peer/recent-receipts.js";
import { RECEIPT_BYTES } from "../../src/wire/auth.js";
import { decodeReceipts, encodeReceipts, type ReceiptEntry } from "../../src/wire/receipts.js";
import { checkProperty } from "../helpers/property.js";

const entry = fc.record({
  piece: fc.nat({ max: 0xffffffff }),
  holder: fc.nat({ max: 0xffffffff }),
  receipt: fc.uint8Array({ minLength: RECEIPT_BYTES, maxLength: RECEIPT_BYTES }).map((b) => Buffer.from(b)),
  mask: fc.option(
    fc.uint8Array({ minLength: 1, maxLength: 16 }).map((b) => Buffer.from(b)),
    { nil: undefined },
  ),
});

test("property: the recent receipts are the encoding of the last `limit` entries added, in order", (t) => {
  checkProperty(
    t,
    fc.property(
      fc.integer({ min: 1, max: 40 }),
      fc.array(fc.array(entry, { minLength: 1, maxLength: 5 }), { maxLength: 120 }),
      (limit, batches) => {
        const recent = new RecentReceipts(limit);
        const all: ReceiptEntry[] = [];
        for (const batch of batches) {
          recent.add(batch);
          all.push(...batch);
          const kept = all.slice(-limit);
          assert.equal(recent.count, kept.length);
          assert.deepEqual(recent.bytes(), encodeReceipts(kept));
        }
      },
    ),
  );
});

test("the recent receipts' bytes are a copy: adding more does not change bytes returned before", (t) => {
  const recent = new RecentReceipts(2);
  const one = { piece: 1, holder: 2, receipt: Buffer.alloc(RECEIPT_BYTES, 1), mask: undefined };
  recent.add([one]);
  const before = recent.bytes();
  for (let i = 0; i < 100; i++) recent.add([{ ...one, piece: 10 + i, receipt: Buffer.alloc(RECEIPT_BYTES, i) }]);
  t.deepEqual(
    decodeReceipts(before)?.map((e) => e.piece),
    [1],
  );
  t.deepEqual(
    decodeReceipts(recent.bytes())?.map((e) => e.piece),
    [108, 109],
  );
});
