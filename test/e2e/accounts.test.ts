/**
 * Accounts, groups and the client (SPEC §10), end to end: a tracker with a fresh store and
 * clients scripted through stdin, each in its own folder.
 */
import { existsSync, statSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import test from "ava";
import { ClientProc, startTracker, stopTracker } from "../helpers/accounts.js";
import { storeVariants } from "../helpers/store-variants.js";
import { acquireSwarmSlot, makeContent, tempDir } from "../helpers/swarm.js";

const STORES = storeVariants("test/e2e/accounts.test.ts");

async function clientDir(root: string, name: string): Promise<string> {
  const dir = path.join(root, name);
  await mkdir(dir, { recursive: true });
  return dir;
}

for (const store of STORES)
  store.test(`three scripted clients: every command's happy path and its errors (${store.name})`, async (t) => {
    // Half the machine: a 200 kB download; the rest is commands and scrypt.
    const release = await acquireSwarmSlot("half");
    t.teardown(release);
    const root = await tempDir(t, "udpswarm-accounts-");
    const location = await store.location();
    const tracker = await startTracker(path.join(root, "tracker"), location);
    t.teardown(() => tracker.proc.kill());
    const aliceDir = await clientDir(root, "alice");
    const content = makeContent("accounts-a", 200_000);
    await writeFile(path.join(aliceDir, "a.bin"), content);
    const alice = new ClientProc("alice", aliceDir, tracker.trackers);
    const bob = new ClientProc("bob", await clientDir(root, "bob"), tracker.trackers);
    const carol = new ClientProc("carol", await clientDir(root, "carol"), tracker.trackers);
    t.teardown(() => {
      for (const c of [alice, bob, carol]) c.kill();
    });

    // Users and logins.
    await alice.fails("list_groups", /^error: not logged in; log in first/u);
    await alice.ok("create_user alice pw-alice", /^user alice created/u);
    await alice.fails("create_user alice other-pw", /^error: user alice already exists/u);
    await alice.fails("create_user ../x pw-x-x-x", /^error: bad user name/u);
    await alice.fails("login alice wrong-pw", /^error: wrong user name or password/u);
    await alice.fails("login nobody wrong-pw", /^error: wrong user name or password/u);
    await alice.ok("login alice pw-alice", /^logged in as alice$/u);
    await alice.fails("login alice pw-alice", /^error: already logged in as alice; logout first/u);
    await bob.ok("create_user bob pw-bob1", /^user bob created/u);
    await bob.ok("login bob pw-bob1", /^logged in as bob$/u);
    await carol.ok("create_user carol pw-carol", /^user carol created/u);
    await carol.ok("login carol pw-carol", /^logged in as carol$/u);

    // Groups, requests, ownership.
    await alice.ok("create_group team", /^group team created; you are its owner$/u);
    await bob.fails("create_group team", /^error: group team already exists; ask to join it/u);
    await alice.ok("list_requests team", /^no pending requests for team$/u);
    await bob.fails("join_group nosuch", /^error: no group nosuch; see list_groups$/u);
    await bob.ok("join_group team", /^asked to join team; its owner must accept the request$/u);
    await bob.fails("join_group team", /^error: your request to join team is already waiting/u);
    await bob.fails("list_requests team", /^error: only the owner of team can do this/u);
    await bob.fails("accept_request team bob", /^error: only the owner of team can do this/u);
    await bob.fails("list_files team", /^error: you are not a member of team; ask to join: join_group team$/u);
    await alice.ok("list_requests team", /^bob\s+\d{4}-/u);
    await alice.fails("accept_request team carol", /^error: carol has not asked to join team/u);
    await alice.fails("accept_request team nobody", /^error: no user nobody$/u);
    await alice.ok("accept_request team bob", /^bob is now a member of team$/u);
    await carol.ok("join_group team", /^asked to join team/u);
    await alice.ok("reject_request team carol", /^rejected carol's request to join team$/u);
    await carol.ok("list_groups", /^team\s+alice\s+2\s+-\s+-$/u);
    await bob.ok("list_groups", /^team\s+alice\s+2\s+0\s+member$/u);

    // Files: upload, list, download, show_downloads, stop_share.
    await alice.fails("upload_file missing.bin team", /^error: no file at missing\.bin; check the path$/u);
    await alice.fails("upload_file a.bin nosuch", /^error: no group nosuch/u);
    await alice.ok("upload_file a.bin team", /^uploaded a\.bin to team \(200000 bytes\)$/u);
    await alice.fails("upload_file a.bin team", /^error: you already share a\.bin with team$/u);
    await bob.ok("list_files team", /^a\.bin\s+195\.3 KiB\s+1\s+1\s+alice$/u);
    await carol.fails("list_files team", /^error: you are not a member of team/u);
    await carol.fails("download_file team a.bin ./in", /^error: you are not a member of team/u);
    await bob.fails("download_file team nofile ./in", /^error: no file nofile in team; see list_files team$/u);
    await bob.ok("download_file team a.bin ./in", /^downloading a\.bin from 1 sharer into /u);
    await bob.waitFor(/^downloaded a\.bin from team into /u, "err");
    const got = await readFile(path.join(root, "bob", "in", "a.bin"));
    t.true(got.equals(content), "bob's copy is byte-identical");
    await bob.ok("show_downloads", /^\[C\] team a\.bin$/u);
    await bob.fails(
      "download_file team a.bin ./in",
      /^error: .*a\.bin already exists; remove it or choose another folder$/u,
    );
    await alice.ok("list_files team", /^a\.bin\s+195\.3 KiB\s+2\s+2\s+alice$/u);
    await bob.ok("stop_share team a.bin", /^stopped sharing a\.bin in team$/u);
    await bob.fails("stop_share team a.bin", /^error: you do not share a\.bin in team$/u);

    // Nobody online shares it: alice logs out (her share stays on record).
    await alice.ok("logout", /^logged out alice$/u);
    await alice.fails("logout", /^error: not logged in/u);
    await bob.fails(
      "download_file team a.bin ./in2",
      /^error: nobody who shares a\.bin is online now; try again later$/u,
    );
    t.false(existsSync(path.join(root, "bob", "in2", "a.bin")));

    // The owner leaves: the longest-standing member owns the group now.
    await alice.ok("login alice pw-alice", /^logged in as alice$/u);
    await alice.waitFor(/^sharing 1 file again$/u);
    await alice.ok("leave_group team", /^left group team; bob owns it now$/u);
    await bob.ok("list_groups", /^team\s+bob\s+1\s+0\s+owner$/u);
    await carol.fails("leave_group team", /^error: you are not a member of team/u);
    await bob.ok("leave_group team", /^left group team; it had no other member and is deleted$/u);

    // Line-level errors.
    await carol.fails("frobnicate", /^error: unknown command frobnicate; type help for the list$/u);
    await carol.fails("login carol", /^error: login takes 2 arguments: login USER PASSWORD$/u);
    await carol.fails('create_group "unterminated', /^error: unterminated double quote; close the quote$/u);
    await carol.ok("help", /^download_file GROUP FILE DEST_DIR\s+/u);

    // The session file holds no password, and only its owner can read it.
    const session = await readFile(path.join(aliceDir, ".udpswarm", "session.json"), "utf8");
    t.false(session.includes("pw-alice"), "no password on the client");
    t.is(statSync(path.join(aliceDir, ".udpswarm", "session.json")).mode & 0o777, 0o600);
    t.is(await alice.quit(), 8, "alice had failed commands: exit status 8");
    t.is(await bob.quit(), 8);
    t.is(await carol.quit(), 8);
    await stopTracker(tracker.proc);
    t.false(
      tracker.proc.err.some((l) => /SQLITE_BUSY|internal error/u.test(l)),
      tracker.proc.err.join("\n"),
    );
    t.deepEqual(tracker.proc.out, [], "a tracker with --store prints nothing of clients on stdout");
  });

test.serial("a download from three sharers at once is byte-identical and spread across them", async (t) => {
  const release = await acquireSwarmSlot();
  t.teardown(release);
  const root = await tempDir(t, "udpswarm-accounts-");
  // The scrypt cost is tested by the scripted clients; 8 logins at full cost only slow this.
  const tracker = await startTracker(path.join(root, "tracker"), "./udpswarm.db", ["--scrypt-cost", "14"]);
  t.teardown(() => tracker.proc.kill());
  const content = makeContent("three-sharers", 3 * 1024 * 1024 + 123);
  const names = ["s1", "s2", "s3"];
  const sharers: ClientProc[] = [];
  for (const name of names) {
    const dir = await clientDir(root, name);
    await writeFile(path.join(dir, "big.bin"), content);
    const c = new ClientProc(name, dir, tracker.trackers, { UDPSWARM_STATS: path.join(dir, "stats.json") });
    t.teardown(() => c.kill());
    sharers.push(c);
  }
  const [owner, ...others] = sharers as [ClientProc, ClientProc, ClientProc];
  for (const [i, c] of sharers.entries()) {
    await c.ok(`create_user ${names[i]} pw-${names[i]}`, /created/u);
    await c.ok(`login ${names[i]} pw-${names[i]}`, /^logged in/u);
  }
  await owner.ok("create_group g", /created/u);
  for (const [i, c] of others.entries()) {
    await c.ok("join_group g", /asked to join/u);
    await owner.ok(`accept_request g ${names[i + 1]}`, /is now a member/u);
  }
  // The same content uploaded by each: three sharers of one file record.
  for (const c of sharers) await c.ok("upload_file big.bin g", /to g \(3145851 bytes\)$/u);
  const dDir = await clientDir(root, "d");
  const d = new ClientProc("d", dDir, tracker.trackers, { UDPSWARM_STATS: path.join(dDir, "stats.json") });
  t.teardown(() => d.kill());
  await d.ok("create_user d pw-dddd", /created/u);
  await d.ok("login d pw-dddd", /^logged in/u);
  await d.ok("join_group g", /asked/u);
  await owner.ok("accept_request g d", /member/u);
  await d.ok("download_file g big.bin ./in", /^downloading big\.bin from 3 sharers into /u);
  await d.waitFor(/^downloaded big\.bin from g into /u, "err");
  t.true((await readFile(path.join(dDir, "in", "big.bin"))).equals(content), "byte-identical");
  t.is(await d.quit(), 0, d.describe());
  for (const c of sharers) t.is(await c.quit(), 0, c.describe());
  const stats = JSON.parse(await readFile(path.join(dDir, "stats.json"), "utf8")) as {
    remotes: Array<{ peer: number; chunksFrom: number }>;
  };
  const from = stats.remotes.map((r) => r.chunksFrom);
  // Every sharer is asked at once; on a loaded machine one may not be validated before
  // the other two have sent all 3 MiB, so "spread" means: all asked, at least two served.
  const asked = await Promise.all(
    names.map(async (name) => {
      const file = path.join(root, name, "stats.json");
      return (JSON.parse(await readFile(file, "utf8")) as { requestsReceived: number }).requestsReceived;
    }),
  );
  t.log(`chunks from each sharer: ${from.join(", ")}; requests each received: ${asked.join(", ")}`);
  t.is(from.length, 3, "three remotes");
  t.true(
    asked.every((n) => n > 0),
    `every sharer was asked: ${asked.join(", ")}`,
  );
  t.true(from.filter((n) => n > 0).length >= 2, `at least two sharers sent chunks: ${from.join(", ")}`);
  await stopTracker(tracker.proc);
});

for (const store of STORES)
  store.test(
    `the tracker restarted with the same store keeps users, groups, requests, files and sessions (${store.name})`,
    async (t) => {
      // No swarm slot: two clients and a 30-byte file; its time goes to tracker restarts.
      const root = await tempDir(t, "udpswarm-accounts-");
      const trackerDir = path.join(root, "tracker");
      const location = await store.location();
      let tracker = await startTracker(trackerDir, location);
      t.teardown(() => tracker.proc.kill());
      const aDir = await clientDir(root, "a");
      await writeFile(path.join(aDir, "doc.txt"), "hello from before the restart\n");
      const a = new ClientProc("a", aDir, tracker.trackers);
      const b = new ClientProc("b", await clientDir(root, "b"), tracker.trackers);
      t.teardown(() => {
        a.kill();
        b.kill();
      });
      await a.ok("create_user ann pw-ann1", /created/u);
      await a.ok("login ann pw-ann1", /^logged in/u);
      await a.ok("create_group club", /created/u);
      await a.ok("upload_file doc.txt club", /^uploaded doc\.txt/u);
      await b.ok("create_user ben pw-ben1", /created/u);
      await b.ok("login ben pw-ben1", /^logged in/u);
      await b.ok("join_group club", /asked/u);
      t.is(await a.quit(), 0, a.describe());
      t.is(await b.quit(), 0, b.describe());
      await stopTracker(tracker.proc);

      tracker = await startTracker(trackerDir, location);
      const a2 = new ClientProc("a2", aDir, tracker.trackers);
      t.teardown(() => a2.kill());
      await a2.waitFor(/^logged in as ann \(saved session\)$/u, "err");
      await a2.waitFor(/^sharing 1 file again$/u, "err");
      await a2.ok("list_requests club", /^ben\s+\d{4}-/u);
      await a2.ok("list_files club", /^doc\.txt\s+30 B\s+1\s+1\s+ann$/u);
      await a2.ok("list_groups", /^club\s+ann\s+1\s+1\s+owner$/u);
      t.is(await a2.quit(), 0, a2.describe());
      await stopTracker(tracker.proc);

      // A session expires: unused for longer than --session-idle, it is not taken any more.
      tracker = await startTracker(trackerDir, location, ["--session-idle", "1"]);
      const idleUntil = Date.now() + 1100;
      await new Promise((r) => setTimeout(r, Math.max(0, idleUntil - Date.now()))); // the expiry is a time condition
      const a3 = new ClientProc("a3", aDir, tracker.trackers);
      t.teardown(() => a3.kill());
      await a3.waitFor(/^the saved session of ann has expired; log in again$/u, "err");
      await a3.fails("list_groups", /^error: not logged in/u);
      await a3.ok("login ann pw-ann1", /^logged in as ann$/u);
      t.is(await a3.quit(), 8);
      await stopTracker(tracker.proc);
    },
  );

for (const store of STORES)
  store.test(
    `hostile input at the prompt: huge lines, control characters, SQL metacharacters (${store.name})`,
    async (t) => {
      const root = await tempDir(t, "udpswarm-accounts-");
      const tracker = await startTracker(path.join(root, "tracker"), await store.location());
      t.teardown(() => tracker.proc.kill());
      const c = new ClientProc("c", await clientDir(root, "c"), tracker.trackers);
      t.teardown(() => c.kill());
      await c.fails(`create_user ${"x".repeat(1024 * 1024)} pw`, /^error: line longer than 16384 bytes ignored$/u);
      await c.fails("create_user bad\u0007name pw-pw-pw", /^error: bad user name: name contains a control character/u);
      await c.fails(`create_user ${"u".repeat(40)} pw-pw-pw`, /^error: a user name is at most 32 bytes/u);
      await c.ok(`create_user "o'brien; DROP TABLE users;--" pw-sql1`, /^user o'brien; DROP TABLE users;-- created/u);
      await c.ok(`login "o'brien; DROP TABLE users;--" pw-sql1`, /^logged in as o'brien; DROP TABLE users;--$/u);
      await c.ok(`create_group "g' OR '1'='1"`, /^group g' OR '1'='1 created/u);
      await c.fails('list_files "g\' OR 1=1 --"', /^error: no group g' OR 1=1 --/u);
      await c.fails("accept_request x", /^error: accept_request takes 2 arguments/u);
      await c.ok("list_groups", /^g' OR '1'='1\s+o'brien; DROP TABLE users;--\s+1\s+0\s+owner$/u);
      t.is(await c.quit(), 8);
      t.is(tracker.proc.child.exitCode, null, "the tracker is still running");
      await stopTracker(tracker.proc);
    },
  );
