import { createHash } from "node:crypto";
import test from "ava";
import fc from "fast-check";
import {
  type Announced,
  announcement,
  checkAncestry,
  compareVersions,
  type Decision,
  decide,
  editedCopy,
  isNewer,
  type LocalCopy,
  MAX_ANCESTRY,
  mtimeOf,
  receivedCopy,
  type Version,
  versionKey,
} from "../../src/sync/version.js";
import { checkProperty } from "../helpers/property.js";

/** Content named by a letter: its hash is SHA-256 of the letter. */
function h(content: string): Buffer {
  return createHash("sha256").update(content).digest();
}

function v(content: string, mtimeMs: number): Version {
  return { name: "doc.txt", size: content.length, sha256: h(content), mtimeMs };
}

function copy(content: string, mtimeMs: number, base: string | undefined, ancestry: string[] = []): LocalCopy {
  return { current: v(content, mtimeMs), ancestry: ancestry.map(h), base: base === undefined ? undefined : h(base) };
}

function ann(content: string, mtimeMs: number, ancestry: string[] = []): Announced {
  return { version: v(content, mtimeMs), ancestry: ancestry.map(h) };
}

// Two contents with the same mtime, ordered by their hashes.
const [LOW, HIGH] = ["x", "y"].sort((a, b) => Buffer.compare(h(a), h(b))) as [string, string];

test("compareVersions: the later mtime wins whatever the hashes", (t) => {
  t.true(compareVersions(v(LOW, 2000), v(HIGH, 1000)) > 0);
  t.true(compareVersions(v(HIGH, 1000), v(LOW, 2000)) < 0);
  t.true(isNewer(v(LOW, 1001), v(HIGH, 1000)));
});

test("compareVersions: on equal mtime the larger content hash wins; the same version is 0", (t) => {
  t.true(compareVersions(v(HIGH, 1000), v(LOW, 1000)) > 0);
  t.true(compareVersions(v(LOW, 1000), v(HIGH, 1000)) < 0);
  t.is(compareVersions(v(LOW, 1000), v(LOW, 1000)), 0);
  t.false(isNewer(v(LOW, 1000), v(LOW, 1000)));
});

test("compareVersions is a total order: antisymmetric and transitive (property)", (t) => {
  const version = fc.record({
    content: fc.constantFrom("a", "b", "c", "d"),
    mtime: fc.integer({ min: 0, max: 3 }),
  });
  checkProperty(
    t,
    fc.property(version, version, version, (a, b, c) => {
      const [va, vb, vc] = [v(a.content, a.mtime), v(b.content, b.mtime), v(c.content, c.mtime)];
      if (Math.sign(compareVersions(va, vb)) !== -Math.sign(compareVersions(vb, va))) return false;
      if (compareVersions(va, vb) === 0 && !(a.content === b.content && a.mtime === b.mtime)) return false;
      if (compareVersions(va, vb) > 0 && compareVersions(vb, vc) > 0) return compareVersions(va, vc) > 0;
      return true;
    }),
  );
});

test("every peer picks the same winner whatever order it hears the versions in (property)", (t) => {
  const versions = fc.uniqueArray(
    fc.record({ content: fc.constantFrom("a", "b", "c", "d", "e"), mtime: fc.integer({ min: 0, max: 4 }) }),
    { minLength: 1, maxLength: 8, selector: (x) => `${x.content}@${x.mtime}` },
  );
  checkProperty(
    t,
    fc.property(versions, fc.func(fc.integer()), (list, key) => {
      const all = list.map((x) => v(x.content, x.mtime));
      const shuffled = [...all].sort((a, b) => key(versionKey(a)) - key(versionKey(b)));
      const best = (xs: Version[]) => xs.reduce((w, x) => (isNewer(x, w) ? x : w));
      return versionKey(best(all)) === versionKey(best(shuffled));
    }),
  );
});

test("mtimeOf rounds: a time set through fs.utimes in float seconds reads back as the same ms", (t) => {
  const ms = 1_700_000_000_123;
  t.is(mtimeOf(ms), ms);
  t.is(mtimeOf(ms - 0.001), ms);
  t.is(mtimeOf(ms + 0.001), ms);
  t.is(mtimeOf(ms + 0.6), ms + 1);
});

type Row = {
  readonly title: string;
  readonly local: LocalCopy | undefined;
  readonly announced: Announced;
  readonly expect: Decision;
};

const TABLE: readonly Row[] = [
  {
    title: "no local copy: fetch",
    local: undefined,
    announced: ann("B", 2000),
    expect: { kind: "fetch", reason: "absent" },
  },
  {
    title: "the very version we hold: ignore",
    local: copy("A", 1000, "A"),
    announced: ann("A", 1000),
    expect: { kind: "ignore", reason: "same" },
  },
  {
    title: "an older version: ignore (ours will reach them)",
    local: copy("B", 2000, "A", ["A"]),
    announced: ann("A", 1000),
    expect: { kind: "ignore", reason: "older" },
  },
  {
    title: "same mtime, smaller hash: ignore",
    local: copy(HIGH, 1000, HIGH),
    announced: ann(LOW, 1000),
    expect: { kind: "ignore", reason: "older" },
  },
  {
    title: "same mtime, larger hash, unedited copy: fetch",
    local: copy(LOW, 1000, LOW),
    announced: ann(HIGH, 1000),
    expect: { kind: "fetch", reason: "update" },
  },
  {
    title: "plain update: our copy is the base, unedited",
    local: copy("A", 1000, "A"),
    announced: ann("B", 2000, ["A"]),
    expect: { kind: "fetch", reason: "update" },
  },
  {
    title: "plain update even when the newer version does not name ours (we never edited it)",
    local: copy("A", 1000, "A"),
    announced: ann("C", 3000, ["Z"]),
    expect: { kind: "fetch", reason: "update" },
  },
  {
    title: "our edit, then a version derived from our edit: plain update",
    local: copy("B", 2000, "A", ["A"]),
    announced: ann("C", 3000, ["B", "A"]),
    expect: { kind: "fetch", reason: "update" },
  },
  {
    title: "our edit, derived from further back in the ancestry: plain update",
    local: copy("B", 2000, "A", ["A"]),
    announced: ann("D", 4000, ["C", "B", "A"]),
    expect: { kind: "fetch", reason: "update" },
  },
  {
    title: "concurrent edits of the same base: keep ours as a conflict copy",
    local: copy("B", 2000, "A", ["A"]),
    announced: ann("C", 2001, ["A"]),
    expect: { kind: "fetch-keep-conflict" },
  },
  {
    title: "concurrent edits with equal mtimes: the larger hash wins, the other is a conflict",
    local: copy(LOW, 2000, "A", ["A"]),
    announced: ann(HIGH, 2000, ["A"]),
    expect: { kind: "fetch-keep-conflict" },
  },
  {
    title: "a local edit with an old mtime (cp -p) is not lost to a newer version",
    local: copy("B", 500, "A", ["A"]),
    announced: ann("C", 2000, ["A"]),
    expect: { kind: "fetch-keep-conflict" },
  },
  {
    title: "the same name created on two peers (no base): conflict",
    local: copy("B", 2000, undefined),
    announced: ann("C", 3000),
    expect: { kind: "fetch-keep-conflict" },
  },
  {
    title: "a file found at start with no saved base, named in the newer version's ancestry: plain update",
    local: copy("A", 1000, undefined),
    announced: ann("B", 2000, ["A"]),
    expect: { kind: "fetch", reason: "update" },
  },
  {
    title: "same content, later mtime: retime only",
    local: copy("A", 1000, "A"),
    announced: ann("A", 2000, ["A"]),
    expect: { kind: "retime" },
  },
  {
    title: "the same edit made on both sides: retime, not a conflict",
    local: copy("B", 2000, "A", ["A"]),
    announced: ann("B", 2500, ["A"]),
    expect: { kind: "retime" },
  },
];

for (const row of TABLE) {
  test(`decide: ${row.title}`, (t) => {
    t.deepEqual(decide(row.local, row.announced), row.expect);
  });
}

test("receivedCopy: in step with what arrived; a later version not naming it is still a plain update", (t) => {
  const arrived = ann("B", 2000, ["A"]);
  const c = receivedCopy(arrived);
  t.true(c.base?.equals(h("B")));
  t.deepEqual(decide(c, arrived), { kind: "ignore", reason: "same" });
  t.deepEqual(decide(c, ann("C", 3000, ["A"])), { kind: "fetch", reason: "update" });
});

test("editedCopy: the edit derives from the previous content and keeps the base", (t) => {
  const received = receivedCopy(ann("A", 1000));
  const edited = editedCopy(received, v("B", 2000));
  t.deepEqual(edited.ancestry, [h("A")]);
  t.true(edited.base?.equals(h("A")));
  const again = editedCopy(edited, v("C", 3000));
  t.deepEqual(again.ancestry, [h("B"), h("A")]);
  t.deepEqual(announcement(again), { version: v("C", 3000), ancestry: [h("B"), h("A")] });
});

test("editedCopy: a new file has no ancestry and no base; a touch keeps both", (t) => {
  const created = editedCopy(undefined, v("A", 1000));
  t.deepEqual(created.ancestry, []);
  t.is(created.base, undefined);
  const received = receivedCopy(ann("B", 2000, ["A"]));
  const touched = editedCopy(received, v("B", 5000));
  t.deepEqual(touched.ancestry, [h("A")]);
  t.true(touched.base?.equals(h("B")));
  t.is(touched.current.mtimeMs, 5000);
});

test("editedCopy: the ancestry stays bounded", (t) => {
  let c = editedCopy(undefined, v("e0", 0));
  for (let i = 1; i <= MAX_ANCESTRY + 5; i++) c = editedCopy(c, v(`e${i}`, i));
  t.is(c.ancestry.length, MAX_ANCESTRY);
  t.true(c.ancestry[0]?.equals(h(`e${MAX_ANCESTRY + 4}`)));
});

test("scenario: two peers edit at nearly the same time; both end with one winner and one conflict copy", (t) => {
  const start = ann("A", 1000);
  let p1 = receivedCopy(start);
  let p2 = receivedCopy(start);
  p1 = editedCopy(p1, v("B", 2000));
  p2 = editedCopy(p2, v("C", 2001));
  // Each hears of the other's edit.
  const atP1 = decide(p1, announcement(p2));
  const atP2 = decide(p2, announcement(p1));
  t.deepEqual(atP1, { kind: "fetch-keep-conflict" });
  t.deepEqual(atP2, { kind: "ignore", reason: "older" });
  // A third peer that had already received P1's edit just updates (no second conflict copy).
  const p3 = receivedCopy(announcement(p1));
  t.deepEqual(decide(p3, announcement(p2)), { kind: "fetch", reason: "update" });
});

test("scenario: a chain of plain edits across peers never makes a conflict", (t) => {
  let p1 = receivedCopy(ann("A", 1000));
  let p2 = receivedCopy(ann("A", 1000));
  p1 = editedCopy(p1, v("B", 2000));
  t.deepEqual(decide(p2, announcement(p1)), { kind: "fetch", reason: "update" });
  p2 = receivedCopy(announcement(p1));
  p2 = editedCopy(p2, v("C", 3000));
  p2 = editedCopy(p2, v("D", 4000));
  // P1 still holds its own edit B (never received since), and D derives from it.
  t.deepEqual(decide(p1, announcement(p2)), { kind: "fetch", reason: "update" });
});

test("checkAncestry: bounded count and 32-byte hashes", (t) => {
  t.deepEqual(checkAncestry([h("A")]), [h("A")]);
  t.is(typeof checkAncestry(Array.from({ length: MAX_ANCESTRY + 1 }, () => h("A"))), "string");
  t.is(checkAncestry([Buffer.alloc(31)]), "bad ancestry hash");
});
