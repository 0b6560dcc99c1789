import { createHash } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from "node:fs";
import os from "node:os";
import path from "node:path";
import test, { type ExecutionContext } from "ava";
import { decodeStagingRecord } from "../../src/peer/staging-record.js";
import { FileStore } from "../../src/peer/store.js";
import { pieceHash } from "../../src/transfer/piece-hash.js";
import { SwarmError } from "../../src/util/errors.js";
import { CHUNK_SIZE, CHUNKS_PER_BLOCK, CHUNKS_PER_PIECE, chunkCount } from "../../src/wire/limits.js";
import type { CheckedManifest } from "../../src/wire/tracker-frame.js";

const PIECE = CHUNK_SIZE * CHUNKS_PER_PIECE;

function content(seed: string, size: number): Buffer {
  const out = Buffer.alloc(size);
  for (let off = 0, i = 0; off < size; off += 32, i++) {
    createHash("sha256").update(`${seed}:${i}`).digest().copy(out, off);
  }
  return out;
}

function manifestOf(name: string, data: Buffer): CheckedManifest {
  const pieceSha256: Buffer[] = [];
  for (let off = 0; off < data.length; off += PIECE) pieceSha256.push(pieceHash(data.subarray(off, off + PIECE)));
  return {
    name,
    size: data.length,
    chunks: chunkCount(data.length),
    chunksPerPiece: CHUNKS_PER_PIECE,
    chunksPerBlock: CHUNKS_PER_BLOCK,
    sha256: createHash("sha256").update(data).digest(),
    pieceSha256,
  };
}

type Dirs = { readonly shared: string; readonly staging: string };

function dirs(t: ExecutionContext): Dirs {
  const root = mkdtempSync(path.join(os.tmpdir(), "udpswarm-store-"));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  return { shared: path.join(root, "Shared"), staging: path.join(root, ".udpswarm-staging") };
}

function open(d: Dirs, log: string[] = []): FileStore {
  return new FileStore(d.shared, d.staging, (line) => log.push(line));
}

function writePieces(store: FileStore, id: number, data: Buffer, pieces: readonly number[]): void {
  for (const p of pieces) {
    store.writePiece(id, p, p * CHUNKS_PER_PIECE, data.subarray(p * PIECE, (p + 1) * PIECE));
  }
}

/** The staging folder's files (its lock too while a store is open). */
function stagingFiles(d: Dirs): string[] {
  return existsSync(d.staging) ? readdirSync(d.staging).sort() : [];
}

function onlyFile(d: Dirs, suffix: string): string {
  const name = stagingFiles(d).find((n) => n.endsWith(suffix));
  if (name === undefined) throw new Error(`no ${suffix} in ${stagingFiles(d)}`);
  return path.join(d.staging, name);
}

const DATA = content("ten pieces", 10 * PIECE - 1000);
const MANIFEST = manifestOf("report.bin", DATA);

/** A partial of MANIFEST with pieces 0..4 written and recorded, left as a signal would leave it. */
async function leavePartial(d: Dirs): Promise<void> {
  const store = open(d);
  store.startDownload(1, MANIFEST);
  writePieces(store, 1, DATA, [0, 1, 2, 3, 4]);
  await store.checkpoint();
  writePieces(store, 1, DATA, [7]); // written after the last checkpoint: recorded by close("keep")
  const { kept } = store.close("keep");
  if (kept !== 1) throw new Error(`expected 1 partial kept, got ${kept}`);
}

test("a partial is kept with its record and resumed: recorded pieces checked and kept, the rest fetched", async (t) => {
  const d = dirs(t);
  await leavePartial(d);
  t.deepEqual(
    stagingFiles(d).map((n) => path.extname(n)),
    [".part", ".rec"],
    "the lock is released, the partial and its record stay",
  );
  const record = decodeStagingRecord(readFileSync(onlyFile(d, ".rec")));
  if (!record.ok) throw new Error(record.reason);
  t.deepEqual(record.record.verified.runs(), [
    [0, 5],
    [7, 1],
  ]);
  const store = open(d);
  t.true(store.hasPartial(MANIFEST));
  const result = await store.resumeDownload(5, MANIFEST);
  t.deepEqual(result, { kept: [0, 1, 2, 3, 4, 7], checked: 6, failed: 0, record: "ok" });
  t.true(store.read(5, 7 * CHUNKS_PER_PIECE, 3).equals(DATA.subarray(7 * PIECE, 7 * PIECE + 3 * CHUNK_SIZE)));
  writePieces(store, 5, DATA, [5, 6, 8, 9]);
  await store.finalize(5, MANIFEST);
  t.true(readFileSync(path.join(d.shared, "report.bin")).equals(DATA));
  store.close("leave");
  t.false(existsSync(d.staging), "a normal departure leaves no staging folder");
});

test("a corrupted kept piece fails its check and is the only one fetched again", async (t) => {
  const d = dirs(t);
  await leavePartial(d);
  const part = onlyFile(d, ".part");
  const bytes = readFileSync(part);
  bytes[2 * PIECE + 777] = (bytes[2 * PIECE + 777] ?? 0) ^ 0x40;
  writeFileSync(part, bytes);
  const store = open(d);
  const result = await store.resumeDownload(1, MANIFEST);
  t.deepEqual(result, { kept: [0, 1, 3, 4, 7], checked: 6, failed: 1, record: "ok" });
  await store.checkpoint();
  const record = decodeStagingRecord(readFileSync(onlyFile(d, ".rec")));
  t.true(record.ok && !record.record.verified.has(2), "the record no longer lists the bad piece");
  store.close("keep");
});

test("a truncated staging file keeps what is left before the cut and grows back", async (t) => {
  const d = dirs(t);
  await leavePartial(d);
  const part = onlyFile(d, ".part");
  truncateSync(part, 2 * PIECE + 100);
  const store = open(d);
  const result = await store.resumeDownload(1, MANIFEST);
  t.deepEqual(result, { kept: [0, 1], checked: 2, failed: 4, record: "ok" });
  t.is(statSync(part).size, DATA.length);
  store.close("keep");
});

for (const [what, damage] of [
  ["truncated", (p: string) => truncateSync(p, 20)],
  ["corrupted", (p: string) => writeFileSync(p, Buffer.from("USWR\0\0\0\x01xjunkjunkjunkjunkjunk"))],
  ["deleted", (p: string) => rmSync(p)],
] as const) {
  test(`a ${what} record: every piece of the staging file is checked, the good ones kept`, async (t) => {
    const d = dirs(t);
    await leavePartial(d);
    damage(onlyFile(d, ".rec"));
    const log: string[] = [];
    const store = open(d, log);
    t.true(store.hasPartial(MANIFEST), "found by its key alone");
    const result = await store.resumeDownload(1, MANIFEST);
    t.deepEqual(result, { kept: [0, 1, 2, 3, 4, 7], checked: 10, failed: 0, record: "missing" });
    if (what === "deleted") t.deepEqual(log, []);
    else
      t.regex(log.join("\n"), /staging record .* is damaged \(.+\); its partial file will be checked piece by piece/);
    store.close("keep");
  });
}

test("another version of the name: the stale partial is removed when the new one starts", async (t) => {
  const d = dirs(t);
  await leavePartial(d);
  const newer = content("another version", DATA.length);
  const m2 = manifestOf("report.bin", newer);
  const store = open(d);
  t.false(store.hasPartial(m2));
  const before = stagingFiles(d);
  store.startDownload(3, m2);
  const after = stagingFiles(d).filter((n) => n !== "lock");
  t.is(after.length, 1, `${after}`);
  t.false(before.includes(after[0] ?? ""), "only the new version's staging file is left");
  store.close("leave");
});

test("a partial whose name is now in Shared is removed at start", async (t) => {
  const d = dirs(t);
  await leavePartial(d);
  writeFileSync(path.join(d.shared, "report.bin"), "a local file of that name");
  const store = open(d);
  t.false(store.hasPartial(MANIFEST));
  t.deepEqual(stagingFiles(d), ["lock"]);
  store.close("keep");
  t.false(existsSync(d.staging), "nothing kept: the folder goes");
});

test("leftovers of interrupted writes and of the old per-process layout are removed at start", (t) => {
  const d = dirs(t);
  mkdirSync(d.staging, { recursive: true });
  writeFileSync(path.join(d.staging, "0123.rec.5.tmp"), "torn");
  writeFileSync(path.join(d.staging, "feed.rec"), "a record without its staging file");
  mkdirSync(path.join(d.staging, "4194303"));
  writeFileSync(path.join(d.staging, "4194303", "1.part"), "old");
  const store = open(d);
  t.deepEqual(stagingFiles(d), ["lock"]);
  store.close("keep");
});

// Serial: it counts this process's descriptors, which concurrent tests would change.
test.serial("25,000 files, downloaded and served, never hold more than a few descriptors (issue 15)", async (t) => {
  const d = dirs(t);
  const store = open(d);
  const fds = () => readdirSync("/proc/self/fd").length;
  const before = fds();
  let most = 0;
  const small = content("small", 3000);
  const smallManifest = (i: number) => ({ ...manifestOf(`s${i}`, small), name: `s${i}` });
  const finals: Promise<void>[] = [];
  for (let i = 0; i < 25_000; i++) {
    if (i % 100 === 0) {
      const m = smallManifest(i);
      store.startDownload(i, m);
      store.writePiece(i, 0, 0, small);
      store.read(i, 0, 2);
      finals.push(store.finalize(i, m));
    } else {
      const m = manifestOf(`e${i}`, Buffer.alloc(0));
      store.startDownload(i, m);
      finals.push(store.finalize(i, m));
    }
    if (i % 500 === 0) most = Math.max(most, fds() - before);
  }
  await store.checkpoint();
  await Promise.all(finals);
  let same = 0;
  for (let i = 0; i < 25_000; i += 100) if (store.read(i, 0, 6).equals(small)) same++;
  t.is(same, 250, "every small file reads back from Shared");
  most = Math.max(most, fds() - before);
  t.true(most <= 32 + 2, `at most the pool and the background jobs: ${most} descriptors`);
  t.is(readdirSync(d.shared).length, 25_000);
  store.close("leave");
  t.is(fds(), before);
});

test("the folder's lock: a second store in a folder in use is refused", (t) => {
  const d = dirs(t);
  const store = open(d);
  const lock = path.join(d.staging, "lock");
  // Same process: pretend the lock is our parent's (alive, another PID).
  const stat = readFileSync(`/proc/${process.ppid}/stat`, "utf8");
  const start = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  writeFileSync(lock, `${process.ppid}\n${start}\n`);
  const err = t.throws(() => open(d), { instanceOf: SwarmError });
  t.is(err?.code, "ERR_FOLDER_IN_USE");
  store.close("keep");
});

test("a file finished while its record is being written leaves no record behind", async (t) => {
  const d = dirs(t);
  const store = open(d);
  store.startDownload(1, MANIFEST);
  writePieces(store, 1, DATA, [0, 1, 2, 3, 4, 5, 6, 7, 8]);
  const inFlight = store.checkpoint(); // not awaited: its rename may land after the finalize
  writePieces(store, 1, DATA, [9]);
  await store.finalize(1, MANIFEST);
  await inFlight;
  t.deepEqual(stagingFiles(d), ["lock"], "the file is in Shared and its record is gone");
  t.true(readFileSync(path.join(d.shared, "report.bin")).equals(DATA));
  store.close("keep");
});

test("the whole-file hash follows pieces written in any order, and what is read back from disk is checked", async (t) => {
  const d = dirs(t);
  const store = open(d);
  store.startDownload(1, MANIFEST);
  writePieces(store, 1, DATA, [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]); // every piece but 0 out of order
  await store.finalize(1, MANIFEST);
  t.true(readFileSync(path.join(d.shared, "report.bin")).equals(DATA));

  // Pieces 5.. arrive before 3 and 4, so they are read back from disk into the hash, and a
  // byte changed on disk meanwhile fails the whole-file check.
  const other = content("ten more pieces", 10 * PIECE - 7);
  const manifest = manifestOf("other.bin", other);
  store.startDownload(2, manifest);
  writePieces(store, 2, other, [0, 1, 2, 5, 6, 7, 8, 9]);
  const part = stagingFiles(d).find((n) => n.endsWith(".part"));
  if (part === undefined) throw new Error("no .part");
  const bytes = readFileSync(path.join(d.staging, part));
  bytes[6 * PIECE + 100] = (bytes[6 * PIECE + 100] ?? 0) ^ 1;
  writeFileSync(path.join(d.staging, part), bytes);
  writePieces(store, 2, other, [3, 4]);
  const err = await t.throwsAsync(store.finalize(2, manifest));
  t.regex(err?.message ?? "", /whole-file hash mismatch/u);
  t.false(existsSync(path.join(d.shared, "other.bin")), "nothing unverified in Shared");
  store.close("leave");
});

test("a tag keeps partials of the same version apart (a client's group and destination)", async (t) => {
  const d = dirs(t);
  const store = open(d);
  store.startDownload(1, MANIFEST, "one");
  writePieces(store, 1, DATA, [0, 1]);
  store.startDownload(2, MANIFEST, "two");
  writePieces(store, 2, DATA, [5]);
  store.close("keep");
  const again = open(d);
  t.true(again.hasPartial(MANIFEST, "one") && again.hasPartial(MANIFEST, "two"));
  t.false(again.hasPartial(MANIFEST), "not the untagged download's");
  t.deepEqual(
    again
      .partials()
      .map((p) => p.tag)
      .sort(),
    ["one", "two"],
  );
  t.deepEqual((await again.resumeDownload(3, MANIFEST, "two")).kept, [5]);
  // Another version under tag "one" removes only the partial of tag "one".
  t.is(again.startDownload(4, manifestOf("report.bin", content("v2", DATA.length)), "one"), 1);
  t.deepEqual(
    again.partials().map((p) => p.tag),
    [],
  );
  again.abandon(3, false);
  again.abandon(4, false);
  t.deepEqual(stagingFiles(d), ["lock"], "abandoned without keeping: removed");
  again.close("keep");
});

test("a client's staging lock says client", (t) => {
  const d = dirs(t);
  const first = new FileStore(d.shared, d.staging, () => {}, true, "client");
  const stat = readFileSync(`/proc/${process.ppid}/stat`, "utf8");
  const start = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  writeFileSync(path.join(d.staging, "lock"), `${process.ppid}\n${start}\n`);
  const err = t.throws(() => new FileStore(d.shared, d.staging, () => {}, true, "client"), { instanceOf: SwarmError });
  t.regex(
    err?.message ?? "",
    new RegExp(
      `^another client \\(pid ${process.ppid}\\) is already using this folder \\(lock .*\\); stop it first, or run this client from another folder$`,
    ),
  );
  first.close("keep");
});
