import test from "ava";
import fc from "fast-check";
import { acquiredLine, connectBlock, disconnectBlock } from "../../src/tracker/output.js";
import { byNameBytes, shutdownBlock } from "../../src/util/output-lines.js";
import { checkProperty } from "../helpers/property.js";

/**
 * Names whose UTF-8 byte order differs from both JavaScript's default sort (UTF-16 code
 * units) and from locale order: upper case sorts before lower case, "_" sits between
 * them, "é" (C3 A9) after ASCII, "Ａ" (U+FF21, EF BC A1) before "😀" (F0 9F 98 80) although
 * in UTF-16 the emoji's surrogate (D83D) comes first.
 */
const SHUFFLED = ["😀.txt", "zeta.txt", "Ａwide", "alpha", "émile.txt", "Zeta.txt", "_x", "Alpha"];
const BYTE_ORDER = ["Alpha", "Zeta.txt", "_x", "alpha", "zeta.txt", "émile.txt", "Ａwide", "😀.txt"];

test("byNameBytes orders by the UTF-8 bytes, not by UTF-16 units or locale", (t) => {
  t.deepEqual([...SHUFFLED].sort(byNameBytes), BYTE_ORDER);
  // The cases where the other orders disagree, so the test above means something.
  t.notDeepEqual([...SHUFFLED].sort(), BYTE_ORDER);
  t.notDeepEqual(
    [...SHUFFLED].sort((a, b) => a.localeCompare(b)),
    BYTE_ORDER,
  );
  t.true(byNameBytes("Ａwide", "😀.txt") < 0);
  t.true("😀.txt" < "Ａwide"); // UTF-16 says the opposite
  t.true(byNameBytes("B", "a") < 0);
  t.true(byNameBytes("a", "B") > 0);
  t.is(byNameBytes("same", "same"), 0);
  t.true(byNameBytes("abc", "abcd") < 0); // a prefix comes first
});

test("connectBlock: header then one line per offer, four spaces, sorted by name bytes", (t) => {
  const offers = SHUFFLED.map((name, i) => ({ name, chunks: i * 3 }));
  const chunksOf = new Map(offers.map((o) => [o.name, o.chunks]));
  t.deepEqual(connectBlock(7, offers), [
    "PEER 7 CONNECT: OFFERS 8",
    ...BYTE_ORDER.map((name) => `7    ${name} ${chunksOf.get(name)}`),
  ]);
  t.deepEqual(connectBlock(7, offers).slice(0, 3), ["PEER 7 CONNECT: OFFERS 8", "7    Alpha 21", "7    Zeta.txt 15"]);
  // The caller's array is left in its order.
  t.deepEqual(
    offers.map((o) => o.name),
    SHUFFLED,
  );
});

test("connectBlock: the SPEC example, an empty file, a name with spaces, no offers", (t) => {
  t.deepEqual(connectBlock(2, [{ name: "report.pdf", chunks: 3 }]), ["PEER 2 CONNECT: OFFERS 1", "2    report.pdf 3"]);
  t.deepEqual(
    connectBlock(12, [
      { name: "my file.txt", chunks: 1 },
      { name: "empty", chunks: 0 },
    ]),
    ["PEER 12 CONNECT: OFFERS 2", "12    empty 0", "12    my file.txt 1"],
  );
  t.deepEqual(connectBlock(1, []), ["PEER 1 CONNECT: OFFERS 0"]);
});

test("acquiredLine prints the 0-based chunk 1-based", (t) => {
  t.is(acquiredLine(1, 0, 3, "report.pdf"), "PEER 1 ACQUIRED: CHUNK 1/3 report.pdf");
  t.is(acquiredLine(1, 2, 3, "report.pdf"), "PEER 1 ACQUIRED: CHUNK 3/3 report.pdf");
  t.is(acquiredLine(64, 129, 130, "é z.bin"), "PEER 64 ACQUIRED: CHUNK 130/130 é z.bin");
});

test("disconnectBlock: header then the received names sorted by bytes, from any iterable", (t) => {
  t.deepEqual(disconnectBlock(3, new Set(SHUFFLED)), [
    "PEER 3 DISCONNECT: RECEIVED 8",
    ...BYTE_ORDER.map((name) => `3    ${name}`),
  ]);
  t.deepEqual(disconnectBlock(3, ["b", "B", "a"]), ["PEER 3 DISCONNECT: RECEIVED 3", "3    B", "3    a", "3    b"]);
  t.deepEqual(disconnectBlock(4, []), ["PEER 4 DISCONNECT: RECEIVED 0"]);
});

test("shutdownBlock: header then the held names sorted by bytes", (t) => {
  t.deepEqual(shutdownBlock(5, SHUFFLED), ["PEER 5 SHUTDOWN: HAS 8", ...BYTE_ORDER.map((name) => `5    ${name}`)]);
  t.deepEqual(shutdownBlock(5, new Set<string>()), ["PEER 5 SHUTDOWN: HAS 0"]);
  const input = ["z", "a"];
  shutdownBlock(1, input);
  t.deepEqual(input, ["z", "a"]); // not sorted in place
});

test("the blocks list every name once, in non-decreasing byte order (property)", (t) => {
  checkProperty(
    t,
    fc.property(
      fc.integer({ min: 1, max: 1_000_000 }),
      fc.uniqueArray(fc.string({ unit: "binary", minLength: 1, maxLength: 8 }), { maxLength: 12 }),
      (id, names) => {
        for (const [block, header] of [
          [disconnectBlock(id, names), `PEER ${id} DISCONNECT: RECEIVED ${names.length}`],
          [shutdownBlock(id, names), `PEER ${id} SHUTDOWN: HAS ${names.length}`],
          [
            connectBlock(
              id,
              names.map((name) => ({ name, chunks: 1 })),
            ),
            `PEER ${id} CONNECT: OFFERS ${names.length}`,
          ],
        ] as const) {
          if (block[0] !== header || block.length !== names.length + 1) return false;
          const prefix = `${id}    `;
          const listed = block.slice(1).map((line) => {
            if (!line.startsWith(prefix)) throw new Error(`bad line ${JSON.stringify(line)}`);
            const rest = line.slice(prefix.length);
            return header.includes(" CONNECT:") ? rest.slice(0, -" 1".length) : rest;
          });
          for (let i = 1; i < listed.length; i++) {
            if (byNameBytes(listed[i - 1] ?? "", listed[i] ?? "") > 0) return false;
          }
          if (JSON.stringify([...listed].sort()) !== JSON.stringify([...names].sort())) return false;
        }
        return true;
      },
    ),
  );
});
