import {
  appendFileSync,
  closeSync,
  futimesSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  renameSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import { hashFile } from "../../src/peer/scan.js";
import { FolderWatcher } from "../../src/sync/folder-watcher.js";
import { hashFileAsync } from "../../src/sync/hash-file.js";
import { mtimeOf } from "../../src/sync/version.js";
import type { CheckedManifest } from "../../src/wire/tracker-frame.js";

type Event =
  | { kind: "changed"; name: string; manifest: CheckedManifest; mtimeMs: number }
  | { kind: "unreadable"; name: string; message: string }
  | { kind: "gone"; name: string }
  | { kind: "ready" };

/** Events in order, and a way to wait for the next one matching (never a sleep). */
class EventLog {
  readonly all: Event[] = [];
  #waiters: Array<{ match: (e: Event) => boolean; resolve: (e: Event) => void; from: number }> = [];

  push(e: Event): void {
    this.all.push(e);
    for (const w of [...this.#waiters]) {
      if (w.match(e)) {
        this.#waiters.splice(this.#waiters.indexOf(w), 1);
        w.resolve(e);
      }
    }
  }

  /** The first event from index `from` on that matches, now or when it comes. */
  next(match: (e: Event) => boolean, from = this.all.length): Promise<Event> {
    const seen = this.all.slice(from).find(match);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve) => this.#waiters.push({ match, resolve, from }));
  }
}

test("real folder: new, modified, own and removed files; hidden files and folders ignored", async (t) => {
  t.timeout(30_000);
  const root = mkdtempSync(join(tmpdir(), "udpswarm-watch-"));
  const shared = join(root, "Shared");
  const staging = join(root, "staging");
  mkdirSync(shared);
  mkdirSync(staging);
  const log = new EventLog();
  const watcher = new FolderWatcher(
    shared,
    {
      changed: (name, manifest, mtimeMs) => log.push({ kind: "changed", name, manifest, mtimeMs }),
      unreadable: (name, err) => log.push({ kind: "unreadable", name, message: err.message }),
      gone: (name) => log.push({ kind: "gone", name }),
      ready: () => log.push({ kind: "ready" }),
    },
    { settleMs: 100, rescanMs: 250 },
  );
  t.teardown(() => {
    watcher.close();
    rmSync(root, { recursive: true, force: true });
  });
  writeFileSync(join(shared, "early.txt"), "there before the start");
  watcher.start();
  const early = await log.next((e) => e.kind === "changed" && e.name === "early.txt");
  await log.next((e) => e.kind === "ready", 0);
  t.true(log.all.indexOf(early) < log.all.findIndex((e) => e.kind === "ready"), "ready after the files found at start");

  // A new file: reported with the manifest scan.ts builds and the file's mtime in ms.
  const a = join(shared, "a.bin");
  writeFileSync(a, Buffer.alloc(200_000, 7));
  writeFileSync(join(shared, ".hidden"), "not shared");
  mkdirSync(join(shared, "folder"));
  const created = await log.next((e) => e.kind === "changed" && e.name === "a.bin");
  t.deepEqual(created.kind === "changed" && created.manifest, hashFile(shared, "a.bin").manifest);
  t.is(created.kind === "changed" && created.mtimeMs, mtimeOf(statSync(a).mtimeMs));

  // Modified in place.
  let from = log.all.length;
  appendFileSync(a, "appended");
  const modified = await log.next((e) => e.kind === "changed" && e.name === "a.bin", from);
  t.is(modified.kind === "changed" && modified.manifest.size, 200_008);

  // The peer's own write: staged outside Shared, mtime set, hinted, renamed over.
  from = log.all.length;
  const versionMtime = 1_600_000_000_123;
  const part = join(staging, "1.part");
  const fd = openSync(part, "w");
  writeSync(fd, Buffer.from("the version fetched from another peer"));
  futimesSync(fd, versionMtime / 1000, versionMtime / 1000);
  closeSync(fd);
  const fetched = await hashFileAsync(part, "a.bin");
  watcher.expectOwnWrite("a.bin", fetched, versionMtime);
  renameSync(part, a);
  t.is(mtimeOf(statSync(a).mtimeMs), versionMtime, "the mtime set in seconds reads back as the same ms");
  // Something else changes after it; once that is reported and a rescan finds all settled,
  // the own write has been seen (it came first) and must not have been reported.
  writeFileSync(join(shared, "b.txt"), "marker");
  await log.next((e) => e.kind === "changed" && e.name === "b.txt", from);
  await watcher.settled();
  t.deepEqual(
    log.all.slice(from).map((e) => ("name" in e ? `${e.kind} ${e.name}` : e.kind)),
    ["changed b.txt"],
  );
  t.is(watcher.known("a.bin")?.manifest, fetched);

  // Removed.
  from = log.all.length;
  unlinkSync(join(shared, "b.txt"));
  await log.next((e) => e.kind === "gone" && e.name === "b.txt", from);
  t.false(log.all.some((e) => "name" in e && (e.name === ".hidden" || e.name === "folder")));
});

test("hashFileAsync builds the same manifest as hashFile (empty, one piece, many pieces, short last piece)", async (t) => {
  const root = mkdtempSync(join(tmpdir(), "udpswarm-hash-"));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  for (const size of [0, 1, 65_536, 65_537, 16 * 65_536, 16 * 65_536 + 1, 3_000_000]) {
    const name = `f${size}`;
    const data = Buffer.alloc(size);
    for (let i = 0; i < size; i++) data[i] = (i * 31 + (i >> 9)) & 0xff;
    writeFileSync(join(root, name), data);
    t.deepEqual(await hashFileAsync(join(root, name), name), hashFile(root, name).manifest, `size ${size}`);
  }
});
