import { createHash } from "node:crypto";
import test from "ava";
import { decodeSyncState, encodeSyncState, restoredCopy } from "../../src/sync/sync-state.js";
import { decide, type LocalCopy, type Version } from "../../src/sync/version.js";

function h(content: string): Buffer {
  return createHash("sha256").update(content).digest();
}

function v(content: string, mtimeMs: number, name = "doc.txt"): Version {
  return { name, size: content.length, sha256: h(content), mtimeMs };
}

const inStep: LocalCopy = { current: v("b", 200), ancestry: [h("a")], base: h("b") };
const edited: LocalCopy = { current: v("c", 300, "other.txt"), ancestry: [h("b"), h("a")], base: undefined };

test("sync state: copies and deleted versions survive encoding, base and ancestry included", (t) => {
  const copies = new Map([
    ["doc.txt", inStep],
    ["other.txt", edited],
  ]);
  const deleted = new Map([["gone.txt", v("g", 50, "gone.txt")]]);
  t.deepEqual(decodeSyncState(encodeSyncState(copies, deleted)), { copies, deleted });
  t.deepEqual(decodeSyncState(encodeSyncState(new Map())), { copies: new Map(), deleted: new Map() });
});

test("sync state: a damaged file is refused with a reason, never half-read", (t) => {
  const bytes = encodeSyncState(new Map([["doc.txt", inStep]]));
  t.is(decodeSyncState(bytes.subarray(0, bytes.length - 1)), "truncated");
  const flipped = Buffer.from(bytes);
  flipped[12] = (flipped[12] ?? 0) ^ 1;
  t.is(decodeSyncState(flipped), "checksum mismatch");
  t.is(decodeSyncState(Buffer.from("this is not a live-folder state file at all")), "wrong magic");
});

test("sync state: the file found unchanged keeps its base, so a newer version is a plain update", (t) => {
  const found = restoredCopy(inStep, v("b", 200));
  t.deepEqual(found, inStep);
  // A newer version that no longer names "b" in its (bounded) ancestry.
  t.deepEqual(decide(found, { version: v("z", 900), ancestry: [h("y")] }), { kind: "fetch", reason: "update" });
  // With nothing saved, the same file would count as a local edit of unknown origin.
  t.deepEqual(decide(restoredCopy(undefined, v("b", 200)), { version: v("z", 900), ancestry: [h("y")] }), {
    kind: "fetch-keep-conflict",
  });
});

test("sync state: an edit made while the peer was down derives from the saved version and keeps its base", (t) => {
  const found = restoredCopy(inStep, v("d", 250));
  t.deepEqual(found, { current: v("d", 250), ancestry: [h("b"), h("a")], base: h("b") });
  t.is(decide(found, { version: v("z", 900), ancestry: [h("b")] }).kind, "fetch-keep-conflict");
  t.is(decide(found, { version: v("z", 900), ancestry: [h("d")] }).kind, "fetch");
});

test("sync state: the same content with another mtime is not an edit", (t) => {
  t.deepEqual(restoredCopy(inStep, v("b", 260)), { ...inStep, current: v("b", 260) });
});
