import { createHash } from "node:crypto";
import test from "ava";
import { type FileSig, WatchCore, type WatchOptions } from "../../src/sync/watch-core.js";
import { ManualClock } from "../../src/util/clock.js";
import { CHUNKS_PER_BLOCK, CHUNKS_PER_PIECE, chunkCount } from "../../src/wire/limits.js";
import type { CheckedManifest } from "../../src/wire/tracker-frame.js";

function manifestOf(name: string, content: string): CheckedManifest {
  return {
    name,
    size: content.length,
    chunks: chunkCount(content.length),
    chunksPerPiece: CHUNKS_PER_PIECE,
    chunksPerBlock: CHUNKS_PER_BLOCK,
    sha256: createHash("sha256").update(content).digest(),
    pieceSha256: [],
  };
}

type FakeFile = { sig: FileSig; content: string };

/**
 * A fake folder on a manual clock: writes change the fake files (as the kernel would:
 * size, mtime, ctime; a rename-over changes the inode); the core's stat requests read
 * them at once; hash requests wait until the test completes them.
 */
class Folder {
  readonly clock = new ManualClock(1_000_000);
  readonly files = new Map<string, FakeFile>();
  readonly events: string[] = [];
  readonly hashRequests: Array<{ name: string; sig: FileSig }> = [];
  readonly core: WatchCore;
  statRequests = 0;
  #ino = 100;

  constructor(options: WatchOptions = {}) {
    this.core = new WatchCore(
      this.clock,
      {
        stat: (name) => {
          this.statRequests++;
          this.core.observed(name, this.files.get(name)?.sig);
        },
        hash: (name, sig) => this.hashRequests.push({ name, sig }),
      },
      {
        changed: (name, m, mtimeMs) => this.events.push(`changed ${name} ${contentOf(m)} @${mtimeMs}`),
        unreadable: (name, err) => this.events.push(`unreadable ${name}: ${err.message}`),
        gone: (name) => this.events.push(`gone ${name}`),
        ready: () => this.events.push("ready"),
      },
      { settleMs: 300, ...options },
    );
  }

  /** Writes in place (same inode); `mtimeMs` defaults to now. Silent: no observation. */
  write(name: string, content: string, mtimeMs = this.clock.now()): FileSig {
    const ino = this.files.get(name)?.sig.ino ?? this.#ino++;
    const sig = { size: content.length, mtimeMs, ctimeMs: this.clock.now(), ino };
    this.files.set(name, { sig, content });
    CONTENTS.set(createHash("sha256").update(content).digest("hex"), content);
    return sig;
  }

  /** A rename over `name` (new inode), keeping the given mtime. */
  renameOver(name: string, content: string, mtimeMs: number): void {
    this.files.delete(name);
    this.write(name, content, mtimeMs);
  }

  /** What fs.watch would report. */
  event(name: string): void {
    this.core.observed(name, this.files.get(name)?.sig);
  }

  rescan(): void {
    this.core.listing(new Map([...this.files].map(([name, f]) => [name, f.sig])));
  }

  /** Completes the oldest hash request, hashing the content there now and stat-ing after. */
  completeHash(error?: Error): string {
    const req = this.hashRequests.shift();
    if (req === undefined) throw new Error("no hash requested");
    const f = this.files.get(req.name);
    const result =
      error !== undefined || f === undefined
        ? { error: error ?? new Error("ENOENT") }
        : { manifest: manifestOf(req.name, f.content) };
    this.core.hashed(req.name, req.sig, result, this.files.get(req.name)?.sig);
    return req.name;
  }

  take(): string[] {
    return this.events.splice(0);
  }
}

const CONTENTS = new Map<string, string>();
function contentOf(m: CheckedManifest): string {
  return CONTENTS.get(m.sha256.toString("hex")) ?? "?";
}

test("a new file is hashed once stable for the settle time, after a fresh stat, then reported", (t) => {
  const f = new Folder();
  const sig = f.write("a.txt", "one");
  f.rescan();
  f.clock.advance(299);
  t.is(f.hashRequests.length, 0);
  f.clock.advance(1);
  t.is(f.statRequests, 1, "the settle time is up: look again before hashing");
  t.deepEqual(f.hashRequests, [{ name: "a.txt", sig }]);
  f.completeHash();
  t.deepEqual(f.take(), [`changed a.txt one @${sig.mtimeMs}`, "ready"]);
  t.is(f.core.known("a.txt")?.manifest.size, 3);
  t.true(f.core.idle);
});

test("a file still being written is not hashed until it stops moving", (t) => {
  const f = new Folder();
  f.write("log", "a");
  f.rescan();
  for (let i = 0; i < 10; i++) {
    f.clock.advance(200);
    f.write("log", "a".repeat(i + 2));
    f.event("log");
  }
  t.is(f.hashRequests.length, 0);
  f.clock.advance(299);
  t.is(f.hashRequests.length, 0);
  f.clock.advance(1);
  f.completeHash();
  t.deepEqual(f.take(), ["ready", `changed log ${"a".repeat(11)} @${f.files.get("log")?.sig.mtimeMs}`]);
});

test("a change that no event reported is caught by the stat at the end of the settle time", (t) => {
  const f = new Folder();
  f.write("a", "v1");
  f.event("a");
  f.clock.advance(100);
  f.write("a", "v22"); // missed by fs.watch
  f.clock.advance(200);
  t.is(f.hashRequests.length, 0, "the fresh stat saw it move: wait again");
  f.clock.advance(299);
  t.is(f.hashRequests.length, 0);
  f.clock.advance(1);
  f.completeHash();
  t.deepEqual(f.take(), [`changed a v22 @${1_000_100}`]);
});

test("a file that moves while it is hashed is not reported from that hash; the settled version is", (t) => {
  const f = new Folder();
  f.write("big", "first");
  f.rescan();
  f.clock.advance(300);
  t.is(f.hashRequests.length, 1);
  f.clock.advance(50);
  f.write("big", "second!"); // during the hash; no event
  f.completeHash(); // hashes "second!" but the stat after differs from the one before
  t.deepEqual(f.take(), ["ready"], "nothing reported from a hash the file moved under");
  f.clock.advance(299);
  t.is(f.hashRequests.length, 0);
  f.clock.advance(1);
  f.completeHash();
  t.deepEqual(f.take(), [`changed big second! @${1_000_350}`]);
});

test("an unreadable file is reported once, not retried until it moves, then reported when readable", (t) => {
  const f = new Folder();
  f.write("locked", "x");
  f.rescan();
  f.clock.advance(300);
  f.completeHash(new Error("EACCES: permission denied"));
  t.deepEqual(f.take(), ["unreadable locked: EACCES: permission denied", "ready"]);
  for (let i = 0; i < 5; i++) {
    f.clock.advance(1000);
    f.rescan();
  }
  t.is(f.hashRequests.length, 0);
  t.deepEqual(f.take(), []);
  f.write("locked", "xy");
  f.rescan();
  f.clock.advance(300);
  f.completeHash();
  t.deepEqual(f.take(), [`changed locked xy @${f.files.get("locked")?.sig.mtimeMs}`]);
});

test("rescans of unchanged files report nothing and hash nothing", (t) => {
  const f = new Folder();
  f.write("a", "1");
  f.write("b", "22");
  f.rescan();
  f.clock.advance(300);
  f.completeHash();
  f.completeHash();
  f.take();
  for (let i = 0; i < 10; i++) {
    f.clock.advance(1000);
    f.rescan();
    f.event("a");
  }
  t.is(f.hashRequests.length, 0);
  t.deepEqual(f.take(), []);
  t.true(f.core.idle);
});

test("a reported file that disappears is gone; one never reported disappears silently", (t) => {
  const f = new Folder();
  f.write("kept", "k");
  f.rescan();
  f.clock.advance(300);
  f.completeHash();
  f.take();
  f.write("tmp~", "t");
  f.event("tmp~");
  f.files.delete("kept");
  f.files.delete("tmp~");
  f.rescan();
  t.deepEqual(f.take(), ["gone kept"]);
  f.clock.advance(1000);
  t.is(f.hashRequests.length, 0);
  t.true(f.core.idle);
});

test("a file that vanishes while hashed is gone, and the next hash starts", (t) => {
  const f = new Folder({ maxHashing: 1 });
  f.write("a", "1");
  f.write("b", "22");
  f.rescan();
  f.clock.advance(300);
  t.is(f.hashRequests.length, 1);
  f.files.delete("a");
  f.completeHash(new Error("ENOENT"));
  t.deepEqual(f.take(), []);
  t.is(f.hashRequests.length, 1);
  f.completeHash();
  t.deepEqual(f.take(), [`changed b 22 @${1_000_000}`, "ready"]);
});

test("a version the peer wrote itself (hint, then rename over) is adopted without hashing or reporting", (t) => {
  const f = new Folder();
  f.write("doc", "old", 5000);
  f.rescan();
  f.clock.advance(300);
  f.completeHash();
  f.take();
  const fetched = manifestOf("doc", "new version");
  f.core.expectOwnWrite("doc", fetched, 9000);
  f.renameOver("doc", "new version", 9000.0004); // utimes(9) reads back a hair off
  f.event("doc");
  f.clock.advance(2000);
  f.rescan();
  t.is(f.hashRequests.length, 0);
  t.deepEqual(f.take(), []);
  t.is(f.core.known("doc")?.manifest, fetched);
  t.is(f.core.known("doc")?.mtimeMs, 9000);
  // A user edit afterwards is a change as usual.
  f.write("doc", "user edit");
  f.event("doc");
  f.clock.advance(300);
  f.completeHash();
  t.deepEqual(f.take(), [`changed doc user edit @${1_002_300}`]);
});

test("a hint given while the file is being hashed still keeps the peer's own version quiet", (t) => {
  const f = new Folder();
  f.renameOver("doc", "fetched", 7000);
  f.event("doc");
  f.clock.advance(300);
  t.is(f.hashRequests.length, 1);
  f.core.expectOwnWrite("doc", manifestOf("doc", "fetched"), 7000);
  f.completeHash();
  t.deepEqual(f.take(), []);
  t.is(f.core.known("doc")?.mtimeMs, 7000);
});

test("a hint that does not match (the user got there first) does not hide the user's version", (t) => {
  const f = new Folder();
  f.core.expectOwnWrite("doc", manifestOf("doc", "fetched"), 7000);
  f.write("doc", "users own", 8000);
  f.event("doc");
  f.clock.advance(300);
  f.completeHash();
  t.deepEqual(f.take(), ["changed doc users own @8000"]);
});

test("a hint is forgotten after its time to live", (t) => {
  const f = new Folder({ ownWriteTtlMs: 1000 });
  f.core.expectOwnWrite("doc", manifestOf("doc", "fetched"), 7000);
  f.clock.advance(1001);
  f.renameOver("doc", "fetched", 7000);
  f.event("doc");
  f.clock.advance(300);
  f.completeHash();
  t.deepEqual(f.take(), ["changed doc fetched @7000"]);
});

test("touch (new mtime, same content) is a new version; chmod (ctime only) is not", (t) => {
  const f = new Folder();
  f.write("a", "same", 1000);
  f.event("a");
  f.clock.advance(300);
  f.completeHash();
  t.deepEqual(f.take(), ["changed a same @1000"]);
  f.write("a", "same", 2000);
  f.event("a");
  f.clock.advance(300);
  f.completeHash();
  t.deepEqual(f.take(), ["changed a same @2000"]);
  f.write("a", "same", 2000); // ctime moves only
  f.event("a");
  f.clock.advance(300);
  t.is(f.hashRequests.length, 1, "the signature moved: hash to be sure");
  f.completeHash();
  t.deepEqual(f.take(), []);
  t.true(f.core.idle);
});

test("one hash at a time by default, smallest file first", (t) => {
  const f = new Folder();
  f.write("huge", "x".repeat(1000));
  f.write("small", "y");
  f.write("mid", "z".repeat(10));
  f.rescan();
  f.clock.advance(300);
  t.deepEqual(
    f.hashRequests.map((r) => r.name),
    ["small"],
  );
  t.is(f.completeHash(), "small");
  t.is(f.completeHash(), "mid");
  t.is(f.completeHash(), "huge");
  t.deepEqual(
    f.take().map((e) => e.split(" ")[1]),
    ["small", "mid", "huge", undefined],
  );
});

test("maxHashing allows hashes in parallel", (t) => {
  const f = new Folder({ maxHashing: 2 });
  f.write("a", "1");
  f.write("b", "2");
  f.write("c", "3");
  f.rescan();
  f.clock.advance(300);
  t.is(f.hashRequests.length, 2);
});

test("a file above the size limit is reported once and never hashed", (t) => {
  const f = new Folder({ maxFileSize: 4 });
  f.write("big", "12345");
  f.rescan();
  f.clock.advance(1000);
  f.rescan();
  t.is(f.hashRequests.length, 0);
  t.deepEqual(f.take(), ["unreadable big: larger than the limit of 4 bytes", "ready"]);
});

test("ready: at once for an empty folder; after every stable file otherwise; not held by one still written", (t) => {
  const empty = new Folder();
  empty.rescan();
  t.deepEqual(empty.take(), ["ready"]);
  const f = new Folder();
  f.write("a", "1");
  f.write("log", "l");
  f.rescan();
  f.clock.advance(100);
  f.write("log", "ll");
  f.event("log");
  t.deepEqual(f.take(), [], "a is not hashed yet");
  f.clock.advance(200);
  f.completeHash();
  t.deepEqual(f.take(), ["changed a 1 @1000000", "ready"]);
  f.clock.advance(100);
  f.completeHash();
  t.deepEqual(f.take(), ["changed log ll @1000100"]);
  f.rescan();
  t.deepEqual(f.take(), [], "ready only once");
});

test("a stat that fails is reported once; a reported file whose stat fails is gone", (t) => {
  const f = new Folder();
  f.write("a", "1");
  f.rescan();
  f.clock.advance(300);
  f.completeHash();
  f.take();
  f.core.statFailed("a", new Error("EIO"));
  f.core.statFailed("a", new Error("EIO"));
  t.deepEqual(f.take(), ["gone a", "unreadable a: EIO"]);
  f.event("a");
  f.clock.advance(300);
  f.completeHash();
  t.deepEqual(f.take(), ["changed a 1 @1000000"]);
});

test("close stops the timers", (t) => {
  const f = new Folder();
  f.write("a", "1");
  f.rescan();
  f.core.close();
  t.is(f.clock.pendingTimers, 0);
  f.core.close();
});
