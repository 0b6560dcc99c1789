/**
 * Resume for the accounts client (SPEC §10, §12): a client killed (kill -9) or stopped
 * (SIGINT, SIGTERM) mid-download and started again in the same folder keeps the pieces it
 * had verified, checks them again, and fetches only the rest into the same destination;
 * a corrupted kept piece is fetched again alone; a partial of a version the group no
 * longer has is removed; nothing partial is ever in the destination; a second client in
 * the same folder is refused. Real tracker (--store) and client processes.
 */
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import test, { type ExecutionContext } from "ava";
import { decodeStagingRecord } from "../../src/peer/staging-record.js";
import { CHUNK_SIZE, CHUNKS_PER_PIECE } from "../../src/wire/limits.js";
import { CLIENT_SH, ClientProc, LineProc, startTracker, stopTracker } from "../helpers/accounts.js";
import { chunkCount } from "../helpers/expect-output.js";
import type { PeerStats } from "../helpers/restart-rig.js";
import { acquireSwarmSlot, makeContent, tempDir } from "../helpers/swarm.js";

const MiB = 1024 * 1024;
/** Chunks in flight at most (the engine's default window): what a kill may cost beyond the missing part. */
const WINDOW = 3072;
/** Big enough that show_downloads, asked back to back, sees it pass half way; small enough to be quick. */
const SIZE = 16 * MiB;
const STAGING = path.join(".udpswarm", "staging");
const NAME = "big file.bin";
const QUOTED = `"${NAME}"`;
const NAME_RE = "big file\\.bin";

type ClientStats = PeerStats & { readonly stagingRecordWrites: number };

type Rig = {
  readonly root: string;
  readonly trackers: string;
  readonly sharer: ClientProc;
  readonly sharerDir: string;
  /** The downloader's folder; it downloads into `<dir>/in`. */
  readonly dir: string;
  readonly dest: string;
  readonly content: Buffer;
  readonly total: number;
  readonly stop: () => Promise<void>;
};

/**
 * A tracker, a sharer "s" of NAME in group g, and a downloader "d" (a member of g) that has
 * started download_file into ./in. Every process is killed at teardown.
 */
async function setUp(
  t: ExecutionContext,
  seed: string,
  beforeDownload: (sharer: ClientProc, trackers: string, root: string) => Promise<void> = async () => {},
): Promise<Rig & { readonly first: ClientProc }> {
  const release = await acquireSwarmSlot();
  t.teardown(release);
  const root = await tempDir(t, "udpswarm-client-resume-");
  const tracker = await startTracker(path.join(root, "tracker"), "./udpswarm.db", ["--scrypt-cost", "14"]);
  t.teardown(() => tracker.proc.kill());
  const sharerDir = path.join(root, "s");
  await mkdir(sharerDir);
  const content = makeContent(seed, SIZE);
  await writeFile(path.join(sharerDir, NAME), content);
  const sharer = spawnClient(t, "s", sharerDir, tracker.trackers);
  await sharer.ok("create_user s pw-s", /created/u);
  await sharer.ok("login s pw-s", /^logged in/u);
  await sharer.ok("create_group g", /created/u);
  await sharer.ok(`upload_file ${QUOTED} g`, new RegExp(`^uploaded ${NAME_RE} to g`, "u"));
  const dir = path.join(root, "d");
  await mkdir(dir);
  const first = spawnClient(t, "d", dir, tracker.trackers);
  await first.ok("create_user d pw-d", /created/u);
  await first.ok("login d pw-d", /^logged in/u);
  await first.ok("join_group g", /asked/u);
  await sharer.ok("accept_request g d", /member/u);
  await beforeDownload(sharer, tracker.trackers, root);
  await first.ok(`download_file g ${QUOTED} ./in`, new RegExp(`^downloading ${NAME_RE} from 1 sharer into `, "u"));
  const stop = async () => {
    t.is(await sharer.quit(), 0, sharer.describe());
    await stopTracker(tracker.proc);
  };
  return {
    root,
    trackers: tracker.trackers,
    sharer,
    sharerDir,
    dir,
    dest: path.join(dir, "in"),
    content,
    total: chunkCount(SIZE),
    stop,
    first,
  };
}

function spawnClient(t: ExecutionContext, label: string, dir: string, trackers: string): ClientProc {
  const c = new ClientProc(label, dir, trackers, { UDPSWARM_STATS: path.join(dir, "stats.json") });
  t.teardown(() => c.kill());
  return c;
}

/**
 * Asks show_downloads back to back until the download is at least `percent` done; returns
 * the percent it said last: pieces its staging records listed, which a restart keeps. Fails if it finished.
 */
async function waitPercent(c: ClientProc, percent: number): Promise<number> {
  for (;;) {
    const line = await c.ok("show_downloads", new RegExp(`^\\[[DC]\\] g ${NAME_RE}`, "u"));
    const m = /^\[D\] .* (\d+)%$/u.exec(line);
    if (m === null) throw new Error(`precondition: the download ended before it could be stopped: ${line}`);
    if (Number(m[1]) >= percent) return Number(m[1]);
  }
}

async function staged(dir: string): Promise<string[]> {
  const staging = path.join(dir, STAGING);
  if (!existsSync(staging)) return [];
  // (kill -9 may leave a torn record write, *.tmp: the next start removes it.)
  return (await readdir(staging))
    .filter((n) => !n.endsWith(".tmp"))
    .map((n) => n.replace(/^[0-9a-f]{32}\./u, "KEY."))
    .sort();
}

/** Chunks of the pieces a percent of the file stands for, rounded down. */
function chunksAt(rig: Rig, percent: number): number {
  const pieces = Math.ceil(rig.total / CHUNKS_PER_PIECE);
  return Math.min(rig.total, Math.floor((pieces * percent) / 100) * CHUNKS_PER_PIECE);
}

/** The restarted client finishes the download: byte-identical, nothing left in staging; its stats. */
async function finish(t: ExecutionContext, rig: Rig, again: ClientProc): Promise<ClientStats> {
  await again.waitFor(new RegExp(`^downloaded ${NAME_RE} from g into `, "u"), "err");
  t.true((await readFile(path.join(rig.dest, NAME))).equals(rig.content), "byte-identical");
  t.deepEqual(await readdir(rig.dest), [NAME], "only the whole file in the destination");
  t.is(await again.quit(), 0, again.describe());
  t.deepEqual(await staged(rig.dir), [], "nothing left in staging");
  return JSON.parse(await readFile(path.join(rig.dir, "stats.json"), "utf8")) as ClientStats;
}

test.serial(
  "client kill -9 at about half, restart in the same folder: it goes on by itself and fetches only the rest; a second client there is refused",
  async (t) => {
    const rig = await setUp(t, "client kill");
    const percent = await waitPercent(rig.first, 50);
    rig.first.kill();
    await rig.first.exited;
    t.deepEqual(await readdir(rig.dest), [], "nothing partial in the destination");
    t.deepEqual(
      await staged(rig.dir),
      ["KEY.part", "KEY.rec", "lock"],
      "a partial, its record, the dead client's lock",
    );

    const again = spawnClient(t, "d again", rig.dir, rig.trackers);
    await again.waitFor(/^logged in as d \(saved session\)$/u, "err");
    await again.waitFor(new RegExp(`^resuming "${NAME_RE}": \\d+ of 256 pieces kept from an earlier run$`, "u"), "err");
    await again.waitFor(new RegExp(`^continuing the download of ${NAME_RE} from g into ${rig.dest}$`, "u"), "err");

    // A second client in the same folder while this one runs: refused, and this one goes on.
    const lock = await readFile(path.join(rig.dir, STAGING, "lock"), "utf8");
    const second = new LineProc("second", "sh", [CLIENT_SH, rig.trackers], rig.dir);
    t.teardown(() => second.kill());
    second.end();
    t.is(await second.exited, 7, second.describe());
    t.deepEqual(second.out, []);
    t.is(second.err.length, 1, second.describe());
    t.regex(
      second.err[0] ?? "",
      new RegExp(
        `^udpswarm client: another client \\(pid ${again.child.pid}\\) is already using this folder \\(lock .*\\); stop it first, or run this client from another folder$`,
        "u",
      ),
    );
    t.is(await readFile(path.join(rig.dir, STAGING, "lock"), "utf8"), lock, "the running client's lock is untouched");

    const stats = await finish(t, rig, again);
    const atKill = chunksAt(rig, percent);
    t.log(
      `show_downloads said ${percent}% (${atKill} chunks) before the kill; kept ${stats.resumed.chunks}; received after the restart ${stats.chunksReceived}; records written ${stats.stagingRecordWrites}`,
    );
    t.true(
      stats.chunksReceived <= rig.total - atKill + WINDOW,
      `received ${stats.chunksReceived} after the restart; missing at the kill: ${rig.total - atKill}`,
    );
    t.is(stats.chunksReceived, rig.total - stats.resumed.chunks, "kept chunks are never fetched again");
    t.true(stats.resumed.chunks >= atKill, "every piece show_downloads counted before the kill was kept");
    t.is(stats.resumed.failed, 0);
    t.true(stats.resumed.pieces > 0);
    await rig.stop();
  },
);

test.serial("client: a kept piece corrupted on disk before the restart is fetched again, alone", async (t) => {
  const rig = await setUp(t, "client corrupt");
  await waitPercent(rig.first, 30);
  rig.first.kill();
  await rig.first.exited;
  const staging = path.join(rig.dir, STAGING);
  const recordName = (await readdir(staging)).find((n) => n.endsWith(".rec")) ?? "";
  const decoded = decodeStagingRecord(await readFile(path.join(staging, recordName)));
  if (!decoded.ok) throw new Error(`the record is unreadable: ${decoded.reason}`);
  const recorded = decoded.record.verified;
  const runs = recorded.runs();
  const victim = runs[Math.floor(runs.length / 2)]?.[0];
  if (victim === undefined) throw new Error(`no verified piece in the record (${recorded.count})`);
  const partPath = path.join(staging, recordName.replace(/\.rec$/u, ".part"));
  const part = await readFile(partPath);
  const at = victim * CHUNKS_PER_PIECE * CHUNK_SIZE + 4321;
  part[at] = (part[at] ?? 0) ^ 0x80;
  await writeFile(partPath, part);

  const again = spawnClient(t, "d again", rig.dir, rig.trackers);
  await again.waitFor(/kept from an earlier run; 1 kept piece failed its check and is fetched again$/u, "err");
  const stats = await finish(t, rig, again);
  t.log(`recorded ${recorded.count} pieces, corrupted piece ${victim}; resumed ${JSON.stringify(stats.resumed)}`);
  t.is(stats.resumed.failed, 1, "the corrupted piece failed its check");
  t.is(stats.resumed.pieces, recorded.count - 1, "every other recorded piece was kept");
  t.is(stats.chunksReceived, rig.total - stats.resumed.chunks, "only what was not kept was fetched");
  await rig.stop();
});

test.serial(
  "client: the group's file replaced by another version: the partial is removed, the new one fetched whole",
  async (t) => {
    const rig = await setUp(t, "client v1");
    await waitPercent(rig.first, 30);
    rig.first.kill();
    await rig.first.exited;
    // Its only sharer stops sharing it (the file leaves the group), then uploads another content.
    await rig.sharer.ok(`stop_share g ${QUOTED}`, /so it is removed$/u);
    const v2 = makeContent("client v2", SIZE);
    await writeFile(path.join(rig.sharerDir, NAME), v2);
    await rig.sharer.ok(`upload_file ${QUOTED} g`, new RegExp(`^uploaded ${NAME_RE} to g`, "u"));

    const again = spawnClient(t, "d again", rig.dir, rig.trackers);
    await again.waitFor(
      new RegExp(
        `^the partial download of "${NAME_RE}" kept from an earlier run was of another version: removed$`,
        "u",
      ),
      "err",
    );
    await again.waitFor(new RegExp(`^downloaded ${NAME_RE} from g into `, "u"), "err");
    t.true((await readFile(path.join(rig.dest, NAME))).equals(v2), "version 2, byte-identical");
    t.is(await again.quit(), 0, again.describe());
    t.deepEqual(await staged(rig.dir), []);
    const stats = JSON.parse(await readFile(path.join(rig.dir, "stats.json"), "utf8")) as ClientStats;
    t.deepEqual(stats.resumed, { files: 0, pieces: 0, chunks: 0, checked: 0, failed: 0 }, "nothing of version 1 kept");
    t.is(stats.chunksReceived, rig.total, "version 2 fetched whole");
    t.false(
      again.err.some((l) => l.startsWith("resuming")),
      again.describe(),
    );
    await rig.stop();
  },
);

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  test.serial(
    `client ${signal} keeps the partial (one stderr line); download_file into the same folder takes it up`,
    async (t) => {
      const rig = await setUp(t, `client ${signal}`);
      const percent = await waitPercent(rig.first, 25);
      rig.first.child.kill(signal);
      t.is(await rig.first.exited, 0, rig.first.describe());
      t.is(
        rig.first.err[rig.first.err.length - 1],
        `interrupted by ${signal}; 1 partial download kept in ${STAGING} for the next start: ${JSON.stringify(NAME)}`,
      );
      t.deepEqual(await staged(rig.dir), ["KEY.part", "KEY.rec"], "the partial and its record; the lock released");
      t.deepEqual(await readdir(rig.dest), []);

      // Asked again (it was also taken up at start): the same reply as a fresh download, no error.
      const again = spawnClient(t, "d again", rig.dir, rig.trackers);
      await again.ok(
        `download_file g ${QUOTED} ./in`,
        new RegExp(`^downloading ${NAME_RE} from 1 sharer into ${rig.dest}$`, "u"),
      );
      const stats = await finish(t, rig, again);
      const atSignal = chunksAt(rig, percent);
      t.log(`show_downloads said ${percent}% before ${signal}; resumed ${JSON.stringify(stats.resumed)}`);
      t.true(stats.resumed.chunks >= atSignal, `kept ${stats.resumed.chunks}; ${atSignal} held before ${signal}`);
      t.is(stats.chunksReceived, rig.total - stats.resumed.chunks);
      await rig.stop();
    },
  );
}

test.serial(
  "two clients from different folders into one destination: the second is refused until the first is gone",
  async (t) => {
    let other: ClientProc | undefined;
    const rig = await setUp(t, "client dest lock", async (sharer, trackers, root) => {
      const dir = path.join(root, "e");
      await mkdir(dir);
      other = spawnClient(t, "e", dir, trackers);
      await other.ok("create_user e pw-e", /created/u);
      await other.ok("login e pw-e", /^logged in/u);
      await other.ok("join_group g", /asked/u);
      await sharer.ok("accept_request g e", /member/u);
    });
    const e = other;
    if (e === undefined) throw new Error("unreachable");
    const into = `download_file g ${QUOTED} ${JSON.stringify(rig.dest)}`;
    const refusal = await e.fails(into, /^error: another client/u);
    t.is(
      refusal,
      `error: another client (pid ${rig.first.child.pid}) is downloading ${NAME} into ${rig.dest}; wait for it to finish, or choose another folder`,
    );
    await waitPercent(rig.first, 0); // precondition: the first is still downloading
    rig.first.kill();
    await rig.first.exited;
    t.deepEqual(await readdir(rig.dest), [], "nothing partial in the destination");
    // The kernel freed the dead client's lock: the other one may download there now.
    await e.ok(into, new RegExp(`^downloading ${NAME_RE} from 1 sharer into ${rig.dest}$`, "u"));
    await e.waitFor(new RegExp(`^downloaded ${NAME_RE} from g into `, "u"), "err");
    t.true((await readFile(path.join(rig.dest, NAME))).equals(rig.content), "byte-identical");
    t.is(await e.quit(), 8, "one command failed (the refused one)");
    await rig.stop();
  },
);
