import test from "ava";
import fc from "fast-check";
import {
  CONFLICT_MARKER,
  conflictName,
  MAX_COLLISION_SUFFIX,
  splitExtension,
  utcStamp,
} from "../../src/sync/conflict-name.js";
import { MAX_NAME_BYTES } from "../../src/wire/limits.js";
import { checkFileName } from "../../src/wire/names.js";
import { checkProperty } from "../helpers/property.js";

/** 2024-01-02 03:04:05.678 UTC */
const AT = Date.UTC(2024, 0, 2, 3, 4, 5, 678);
const STAMP = "20240102-030405";

const TABLE: ReadonlyArray<readonly [string, string]> = [
  ["report.pdf", `report.sync-conflict-${STAMP}-7.pdf`],
  ["Makefile", `Makefile.sync-conflict-${STAMP}-7`],
  ["archive.tar.gz", `archive.tar.sync-conflict-${STAMP}-7.gz`],
  ["notes.", `notes..sync-conflict-${STAMP}-7`],
  ["a..b", `a..sync-conflict-${STAMP}-7.b`],
  ["v1.2 draft of the plan", `v1.2 draft of the plan.sync-conflict-${STAMP}-7`],
  ["photo.JPEG", `photo.sync-conflict-${STAMP}-7.JPEG`],
  ["日本語.txt", `日本語.sync-conflict-${STAMP}-7.txt`],
  ["a b c.tar.zst", `a b c.tar.sync-conflict-${STAMP}-7.zst`],
  // Conflict of a conflict copy: the marker nests, still a plain name.
  [`x.sync-conflict-${STAMP}-3.md`, `x.sync-conflict-${STAMP}-3.sync-conflict-${STAMP}-7.md`],
];

for (const [name, expected] of TABLE) {
  test(`conflictName(${JSON.stringify(name)})`, (t) => {
    const out = conflictName(name, AT, 7);
    t.is(out, expected);
    t.is(checkFileName(out ?? ""), undefined);
  });
}

test("an extension longer than 16 bytes is not one: the marker goes at the end", (t) => {
  t.deepEqual(splitExtension("data.averyveryverylongext"), { stem: "data.averyveryverylongext", ext: "" });
  const ext16 = `.${"e".repeat(15)}`;
  const ext17 = `.${"e".repeat(16)}`;
  t.deepEqual(splitExtension(`data${ext16}`), { stem: "data", ext: ext16 });
  t.deepEqual(splitExtension(`data${ext17}`), { stem: `data${ext17}`, ext: "" });
  t.deepEqual(splitExtension("data.é"), { stem: "data", ext: ".é" });
});

test("hidden or otherwise refused names are refused", (t) => {
  t.throws(() => conflictName(".bashrc", AT, 1), { instanceOf: RangeError });
  t.throws(() => conflictName("a/b", AT, 1), { instanceOf: RangeError });
  t.throws(() => conflictName("", AT, 1), { instanceOf: RangeError });
});

test("a name at the length limit is shortened, the extension and marker kept, exactly MAX_NAME_BYTES", (t) => {
  const name = `${"n".repeat(MAX_NAME_BYTES - 4)}.txt`;
  const out = conflictName(name, AT, 12) ?? "";
  t.is(Buffer.byteLength(out), MAX_NAME_BYTES);
  t.true(out.endsWith(`.sync-conflict-${STAMP}-12.txt`));
  t.true(out.startsWith("nnnn"));
  t.is(checkFileName(out), undefined);
});

test("multi-byte names are cut between characters, never inside one", (t) => {
  const name = `${"日".repeat(80)}.txt`; // 244 bytes
  const out = conflictName(name, AT, 3) ?? "";
  t.true(Buffer.byteLength(out) <= MAX_NAME_BYTES);
  t.is(Buffer.from(out, "utf8").toString("utf8"), out);
  t.true(/^日+\.sync-conflict-/.test(out));
  t.is(checkFileName(out), undefined);
  const emoji = `${"😀".repeat(63)}.md`; // 4-byte characters, surrogate pairs in JS
  const cut = conflictName(emoji, AT, 3) ?? "";
  t.false(/[\ud800-\udbff](?![\udc00-\udfff])/.test(cut), "no lone high surrogate");
  t.is(checkFileName(cut), undefined);
});

test("a taken name gets -2, -3, … after PEER", (t) => {
  const taken = new Set([`report.sync-conflict-${STAMP}-7.pdf`, `report.sync-conflict-${STAMP}-7-2.pdf`]);
  t.is(
    conflictName("report.pdf", AT, 7, (n) => taken.has(n)),
    `report.sync-conflict-${STAMP}-7-3.pdf`,
  );
  t.is(
    conflictName("report.pdf", AT, 7, () => true),
    undefined,
  );
  let asked = 0;
  conflictName("report.pdf", AT, 7, () => {
    asked++;
    return true;
  });
  t.is(asked, MAX_COLLISION_SUFFIX);
});

test("a long name with a collision suffix still fits", (t) => {
  const name = `${"n".repeat(MAX_NAME_BYTES - 4)}.txt`;
  const out = conflictName(name, AT, 7, (n) => !n.includes("-7-999.")) ?? "";
  t.is(Buffer.byteLength(out), MAX_NAME_BYTES);
  t.true(out.endsWith("-7-999.txt"));
});

test("PEER labels: numbers as they are; other characters become _; bounded", (t) => {
  t.is(conflictName("f", AT, 42), `f.sync-conflict-${STAMP}-42`);
  t.is(conflictName("f", AT, "laptop/é 1"), `f.sync-conflict-${STAMP}-laptop___1`);
  t.is(conflictName("f", AT, ""), `f.sync-conflict-${STAMP}-_`);
  t.is(conflictName("f", AT, "x".repeat(100)), `f.sync-conflict-${STAMP}-${"x".repeat(32)}`);
});

test("utcStamp: UTC, zero-padded, clamped to years 1970..9999", (t) => {
  t.is(utcStamp(AT), STAMP);
  t.is(utcStamp(0), "19700101-000000");
  t.is(utcStamp(-5), "19700101-000000");
  t.is(utcStamp(Number.NaN), "19700101-000000");
  t.is(utcStamp(1e17), "99991231-235959");
  t.is(utcStamp(Date.UTC(2023, 11, 31, 23, 59, 59, 999)), "20231231-235959");
});

test("every plain name gives a plain, distinct name within the limit, keeping a short extension (property)", (t) => {
  const piece = fc.string({ unit: "grapheme", minLength: 1, maxLength: 90 });
  const name = fc
    .tuple(piece, fc.option(fc.string({ unit: "grapheme-ascii", minLength: 1, maxLength: 20 })))
    .map(([stem, ext]) => (ext === null ? stem : `${stem}.${ext}`))
    .filter((n) => checkFileName(n) === undefined);
  checkProperty(
    t,
    fc.property(name, fc.integer({ min: -1e15, max: 1e15 }), fc.nat(1_000_000), (n, at, peer) => {
      const out = conflictName(n, at, peer);
      if (out === undefined || out === n) return false;
      if (checkFileName(out) !== undefined) return false;
      if (!out.includes(CONFLICT_MARKER)) return false;
      const { ext } = splitExtension(n);
      return out.endsWith(`-${peer}${ext}`);
    }),
    { numRuns: 500 },
  );
});
