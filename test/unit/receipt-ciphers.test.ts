import test from "ava";
import { ReceiptCiphers } from "../../src/tracker/receipt-ciphers.js";
import { receiptKey, receiptOf } from "../../src/wire/auth.js";

const secret = (n: number): Buffer => Buffer.alloc(16, n);

test("a cached cipher gives the receipt receiptOf gives, for any chunks", (t) => {
  const ciphers = new ReceiptCiphers();
  for (const chunks of [[0], [5, 6, 7], [128, 130, 255], []]) {
    const cipher = ciphers.get(secret(1), 2, 3);
    t.deepEqual(cipher.receipt(chunks), receiptOf(receiptKey(secret(1), 2, 3), chunks));
  }
  t.is(ciphers.size, 1, "one key, one cipher, reused");
});

test("each holder's secret, receiver and file has its own cipher", (t) => {
  const ciphers = new ReceiptCiphers();
  const chunks = [1, 2, 3];
  const cases: Array<[number, number, number]> = [
    [1, 2, 3],
    [9, 2, 3],
    [1, 4, 3],
    [1, 2, 5],
  ];
  for (const [s, to, file] of cases) {
    t.deepEqual(ciphers.get(secret(s), to, file).receipt(chunks), receiptOf(receiptKey(secret(s), to, file), chunks));
  }
  t.is(ciphers.size, cases.length);
});

test("only the most recently used ciphers are kept", (t) => {
  const ciphers = new ReceiptCiphers(2);
  const a = ciphers.get(secret(1), 1, 1);
  ciphers.get(secret(2), 1, 1);
  t.is(ciphers.get(secret(1), 1, 1), a, "a used again: it becomes the newest");
  ciphers.get(secret(3), 1, 1); // evicts secret 2, the oldest
  t.is(ciphers.size, 2);
  t.is(ciphers.get(secret(1), 1, 1), a, "a was kept");
  t.deepEqual(ciphers.get(secret(2), 1, 1).receipt([7]), receiptOf(receiptKey(secret(2), 1, 1), [7]), "made again");
});
