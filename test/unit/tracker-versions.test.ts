import test from "ava";
import {
  CLASSIC_TAG,
  classicTag,
  tagFromWire,
  tagToWire,
  VersionBook,
  versionFrom,
} from "../../src/tracker/versions.js";

const sha = (b: number) => Buffer.alloc(32, b);
const v = (mtimeMs: number, h: number, name = "a.txt") => ({ name, size: 10, sha256: sha(h), mtimeMs });

test("version book: the first version of a name is new; later mtime is newer, earlier older, equal same", (t) => {
  const book = new VersionBook();
  t.is(book.standing(v(100, 1)), "new");
  t.is(book.record(1, v(100, 1)), undefined);
  t.is(book.newestId("a.txt"), 1);
  t.is(book.standing(v(200, 0)), "newer");
  t.is(book.standing(v(50, 9)), "older");
  t.is(book.standing(v(100, 1)), "same");
  t.is(book.standing(v(100, 1, "b.txt")), "new");
});

test("version book: equal mtimes are ordered by the larger content hash", (t) => {
  const book = new VersionBook();
  book.record(1, v(100, 5));
  t.is(book.standing(v(100, 6)), "newer");
  t.is(book.standing(v(100, 4)), "older");
});

test("version book: recording a newer version returns the id it supersedes", (t) => {
  const book = new VersionBook();
  book.record(1, v(100, 1));
  t.is(book.record(2, v(200, 1)), 1);
  t.is(book.newestId("a.txt"), 2);
  t.is(book.standing(v(100, 1)), "older");
});

test("version book: forgetting a record frees the name only if it was the newest", (t) => {
  const book = new VersionBook();
  book.record(1, v(100, 1));
  book.record(2, v(200, 1));
  book.forget("a.txt", 1);
  t.is(book.newestId("a.txt"), 2);
  book.forget("a.txt", 2);
  t.is(book.newestId("a.txt"), undefined);
  t.is(book.standing(v(1, 1)), "new");
});

test("version tags: classic records carry no version fields; sync ones round-trip", (t) => {
  t.deepEqual(tagToWire(CLASSIC_TAG), {});
  t.deepEqual(tagToWire(undefined), {});
  const wire = tagToWire({ mtimeMs: 1_700_000_000_123, ancestry: [sha(7)] });
  t.deepEqual(tagFromWire(wire), { mtimeMs: 1_700_000_000_123, ancestry: [sha(7)] });
  t.deepEqual(versionFrom({ name: "x", size: 3, sha256: sha(1) } as never, { mtimeMs: 5, ancestry: [] }), {
    name: "x",
    size: 3,
    sha256: sha(1),
    mtimeMs: 5,
  });
});

test("version tags: bad fields from the network are refused with a reason", (t) => {
  t.is(typeof tagFromWire({ mtimeMs: -1 }), "string");
  t.is(typeof tagFromWire({ ancestry: [Buffer.alloc(31)] }), "string");
  t.is(typeof tagFromWire({ ancestry: Array.from({ length: 17 }, () => sha(1)) }), "string");
  t.deepEqual(tagFromWire({}), { mtimeMs: 0, ancestry: [] });
});

// ---------------------------------------------------------------- the registry's sync hooks

import { Registry } from "../../src/tracker/registry.js";
import { type CheckedManifest, type FrameBody, RefusalReason, type udpswarm } from "../../src/wire/tracker-frame.js";

function m(name: string, h: number): CheckedManifest {
  return { name, size: 0, chunks: 0, chunksPerPiece: 128, chunksPerBlock: 4, sha256: sha(h), pieceSha256: [] };
}

/** A registry whose Updates frames are recorded merged, as each receiver gets them. */
function registry() {
  const printed: string[] = [];
  const sent: Array<[number, FrameBody]> = [];
  const r = new Registry({
    print: (lines) => printed.push(...lines),
    acquired: () => {},
    send: (id, body) => sent.push([id, body]),
    sendUpdates: (receivers, shared, own) => {
      for (const id of receivers) {
        const mine = own.get(id) ?? {};
        const updates: udpswarm.IUpdates = {
          added: [...(shared.added ?? []), ...(mine.added ?? [])],
          removed: [...(shared.removed ?? []), ...(mine.removed ?? [])],
        };
        if (shared.holders !== undefined) updates.holders = shared.holders;
        sent.push([id, { updates }]);
      }
    },
    pending: () => {},
    log: () => {},
  });
  return { r, printed, sent };
}

test("registry sync: an update prints UPDATE, tells sync peers, hides it from classic peers, supersedes the old version", (t) => {
  const { r, printed, sent } = registry();
  const a = r.join("127.0.0.1", 1000, [m("f", 1)], undefined, [], [], {
    tags: [{ mtimeMs: 100, ancestry: [] }],
  }).peerId;
  const b = r.join("127.0.0.1", 1001, [], undefined, [], [], { tags: [] }).peerId;
  const classic = r.join("127.0.0.1", 1002, []).peerId;
  r.flush();
  sent.length = 0;
  t.is(r.update(a, m("f", 2), { mtimeMs: 200, ancestry: [sha(1)] }), undefined);
  t.is(printed.at(-1), `PEER ${a} UPDATE: f 0`);
  r.flush();
  const added = (id: number) =>
    sent.filter(([to]) => to === id).flatMap(([, body]) => (body.updates?.added ?? []).map((f) => f.fileId));
  t.deepEqual(added(a), [2]);
  t.deepEqual(added(b), [2]);
  t.deepEqual(added(classic), [], "classic peers see the first version only");
  const removed = (id: number) => sent.filter(([to]) => to === id).flatMap(([, body]) => body.updates?.removed ?? []);
  t.deepEqual(removed(b), [1], "sync peers drop the superseded version");
  t.deepEqual(removed(classic), [1], "the first version's only holder dropped it: gone for classic peers too");
  // An older one is refused; the same one changes nothing.
  sent.length = 0;
  r.update(b, m("f", 3), { mtimeMs: 150, ancestry: [] });
  t.is(sent.find(([to]) => to === b)?.[1].refusal?.reason, RefusalReason.REASON_OLDER_VERSION);
  t.is(printed.filter((l) => l.includes("UPDATE")).length, 1);
  t.is(typeof r.update(classic, m("g", 1), CLASSIC_TAG), "string", "classic peers cannot send updates");
});

test("registry sync: a sync peer joining with an older version is not a holder; a newer one becomes the newest", (t) => {
  const { r, printed } = registry();
  r.join("127.0.0.1", 1000, [m("f", 1)], undefined, [], [], { tags: [{ mtimeMs: 100, ancestry: [] }] });
  r.join("127.0.0.1", 1001, [m("f", 2)], undefined, [], [], { tags: [{ mtimeMs: 50, ancestry: [] }] });
  r.join("127.0.0.1", 1002, [m("f", 3)], undefined, [], [], { tags: [{ mtimeMs: 300, ancestry: [] }] });
  t.deepEqual(printed, [
    "PEER 1 CONNECT: OFFERS 1",
    "1    f 0",
    "PEER 2 CONNECT: OFFERS 0",
    "PEER 3 CONNECT: OFFERS 1",
    "3    f 0",
  ]);
  t.deepEqual(
    r.snapshot().files.map((f) => f.id),
    [2],
    "the superseded version went with its last holder",
  );
});

test("registry sync: a ready classic peer waits for a sync peer lacking what it sees, not for a version it does not see", (t) => {
  const { r, sent } = registry();
  const granted = () => sent.filter(([, body]) => body.leaveGranted).map(([id]) => id);
  // A: the classic peer sees file 1, and so does the sync peer S (it is the newest of "f").
  const c = r.join("127.0.0.1", 1000, [m("f", 1)]).peerId;
  const s = r.join("127.0.0.1", 1001, [], undefined, [], [], { tags: [] }).peerId;
  r.readyToLeave(c);
  r.flush();
  t.deepEqual(granted(), [], "S lacks the classic peer's file");
  r.have(s, 1, []);
  r.flush();
  t.deepEqual(granted(), [c]);

  // B: a sync peer's newer version of "g" that classic peers never see holds nobody back.
  const s2 = r.join("127.0.0.1", 1002, [m("g", 1)], undefined, [], [], {
    tags: [{ mtimeMs: 100, ancestry: [] }],
  }).peerId;
  const c2 = r.join("127.0.0.1", 1003, []).peerId;
  const g1 = r.snapshot().files.find((f) => f.name === "g")?.id ?? 0;
  r.have(c2, g1, []);
  r.have(c2, 1, []);
  r.have(s2, 1, []);
  r.have(s, g1, []);
  t.is(r.update(s2, m("g", 2), { mtimeMs: 200, ancestry: [sha(1)] }), undefined);
  r.readyToLeave(c2);
  r.flush();
  t.deepEqual(granted(), [c, c2], "S lacks g's newest version, which c2 does not see");
});

test("registry withdraw: the others stop asking the peer; the file goes with its last holder; nothing printed", (t) => {
  const { r, printed, sent } = registry();
  const tag = { tags: [{ mtimeMs: 100, ancestry: [] }] };
  const a = r.join("127.0.0.1", 1000, [m("f", 1)], undefined, [], [], tag).peerId;
  const b = r.join("127.0.0.1", 1001, [m("f", 1)], undefined, [], [], tag).peerId;
  const c = r.join("127.0.0.1", 1002, [], undefined, [], [], { tags: [] }).peerId;
  r.flush();
  const lines = printed.length;
  sent.length = 0;
  t.is(r.withdraw(a, 1), undefined);
  r.flush();
  t.deepEqual(
    sent.map(([to, body]) => [to, body.updates?.holders]),
    [
      [a, [{ peerId: a, fileId: 1, runs: [], withdrawn: true }]],
      [b, [{ peerId: a, fileId: 1, runs: [], withdrawn: true }]],
      [c, [{ peerId: a, fileId: 1, runs: [], withdrawn: true }]],
    ],
    "one Updates for every peer (the sender ignores its own)",
  );
  t.deepEqual(
    r.snapshot().peers.map((p) => [p.id, p.files.map((f) => f.fileId)]),
    [
      [a, []],
      [b, [1]],
      [c, []],
    ],
  );
  // Again, or for a file it does not hold: stale, not bad, and nothing sent.
  sent.length = 0;
  t.is(r.withdraw(a, 1), undefined);
  t.is(r.withdraw(c, 1), undefined);
  r.flush();
  t.deepEqual(sent, []);
  // The last holder withdraws: the file is gone for everyone, the name is free again.
  t.is(r.withdraw(b, 1), undefined);
  r.flush();
  t.deepEqual(r.snapshot().files, []);
  t.true(sent.some(([to, body]) => to === c && body.updates?.removed?.includes(1)));
  t.is(printed.length, lines, "a withdrawal prints nothing");
  t.is(r.join("127.0.0.1", 1003, [m("f", 2)], undefined, [], [], { tags: [{ mtimeMs: 50, ancestry: [] }] }).peerId, 4);
  t.deepEqual(
    printed.slice(-2),
    ["PEER 4 CONNECT: OFFERS 1", "4    f 0"],
    "an older version is welcome once the name is free",
  );
  t.is(r.withdraw(99, 1), "unknown peer");
});

test("classic tag: a classic peer's file is, for sync peers, at its own mtime (or when the tracker saw it)", (t) => {
  t.deepEqual(classicTag({ mtimeMs: 1_600_000_000_123 }, 5), { mtimeMs: 1_600_000_000_123, ancestry: [] });
  t.deepEqual(classicTag({}, 1_700_000_000_000.4), { mtimeMs: 1_700_000_000_000, ancestry: [] });
  t.deepEqual(classicTag({ mtimeMs: -3 }, 42), { mtimeMs: 42, ancestry: [] });
  const { r, sent } = registry();
  r.join("127.0.0.1", 1000, [m("f", 1)], undefined, [], [], undefined, [classicTag({ mtimeMs: 1234 }, 0)]);
  const s = r.join("127.0.0.1", 1001, [], undefined, [], [], { tags: [] }).peerId;
  r.flush();
  const seen = sent.find(([to, body]) => to === s && body.welcome)?.[1].welcome?.files?.[0]?.manifest;
  t.is(seen?.mtimeMs, 1234);
  // A sync peer's newer edit supersedes it for sync peers; an older one is not taken.
  t.is(r.update(s, m("f", 2), { mtimeMs: 1000, ancestry: [] }), undefined);
  t.is(sent.at(-1)?.[1].refusal?.reason, 6, "older than the classic peer's file");
});

// ---------------------------------------------------------------- Updates as piece deltas

import { pieceDelta } from "../../src/sync/piece-diff.js";
import { syncUpdate } from "../../src/tracker/versions.js";
import { encodeTrackerFrame, manifestToWire } from "../../src/wire/tracker-frame.js";

/** A 64 MiB manifest (1024 pieces) whose piece hashes are sha(seed + i), with piece `edited` changed. */
function big(content: number, edited = -1): CheckedManifest {
  const pieceSha256 = Array.from({ length: 1024 }, (_, i) => sha(i === edited ? 5_000_000 + i : 1_000_000 + i));
  return {
    name: "big",
    size: 64 * 1024 * 1024,
    chunks: 131072,
    chunksPerPiece: 128,
    chunksPerBlock: 4,
    sha256: sha(content),
    pieceSha256,
  };
}

function deltaWire(from: CheckedManifest, to: CheckedManifest, mtimeMs: number) {
  const d = pieceDelta(from.pieceSha256, to.pieceSha256);
  return {
    ...manifestToWire(to),
    mtimeMs,
    pieceSha256: [...d.hashes],
    deltaBase: from.sha256,
    deltaPieces: d.pieces,
    deltaIndices: [...d.indices],
  };
}

test("update delta: a 4 KiB edit of 64 MiB costs a few dozen bytes on the tracker link, and is rebuilt whole", (t) => {
  const { r, sent, printed } = registry();
  const v1 = big(1);
  const a = r.join("127.0.0.1", 1000, [v1], undefined, [], [], { tags: [{ mtimeMs: 100, ancestry: [] }] }).peerId;
  const b = r.join("127.0.0.1", 1001, [], undefined, [], [], { tags: [] }).peerId;
  const v2 = big(2, 160);
  const whole = encodeTrackerFrame({ update: { manifest: { ...manifestToWire(v2), mtimeMs: 200 } } }).length;
  const wire = deltaWire(v1, v2, 200);
  const delta = encodeTrackerFrame({ update: { manifest: wire } }).length;
  t.log(`Update frame: ${whole} bytes with the whole piece list, ${delta} bytes as a delta`);
  t.true(delta < 200 && whole > 30_000, `${delta} vs ${whole}`);
  r.flush();
  sent.length = 0;
  t.is(syncUpdate(r, a, wire, 2 ** 40), undefined);
  t.is(printed.at(-1), `PEER ${a} UPDATE: big 131072`);
  r.flush();
  const added = sent
    .filter(([to]) => to === b)
    .flatMap(([, body]) => body.updates?.added ?? [])
    .at(-1)?.manifest;
  t.deepEqual(
    added?.pieceSha256?.map((h) => Buffer.from(h).toString("hex")),
    v2.pieceSha256.map((h) => h.toString("hex")),
    "the others get the whole list",
  );
  t.is(r.newestManifest("big")?.sha256.toString("hex"), v2.sha256.toString("hex"));
});

test("update delta: against a version that is not the newest, the peer is refused (it then sends the whole list)", (t) => {
  const { r, sent, printed } = registry();
  const v1 = big(1);
  const a = r.join("127.0.0.1", 1000, [v1], undefined, [], [], { tags: [{ mtimeMs: 100, ancestry: [] }] }).peerId;
  const stale = big(9);
  r.flush();
  sent.length = 0;
  const lines = printed.length;
  t.is(syncUpdate(r, a, deltaWire(stale, big(2, 3), 200), 2 ** 40), undefined);
  t.deepEqual(sent, [
    [
      a,
      {
        refusal: {
          reason: RefusalReason.REASON_UNKNOWN_BASE,
          fileName: "big",
          detail: "the piece delta is not against the newest version; send the whole list",
        },
      },
    ],
  ]);
  t.is(printed.length, lines, "nothing printed");
  // A malformed delta (an index past the end) is a bad frame, not a version.
  const bad = { ...deltaWire(v1, big(2, 3), 200), deltaIndices: [5000] };
  t.regex(syncUpdate(r, a, bad, 2 ** 40) ?? "", /bad piece delta/);
});
