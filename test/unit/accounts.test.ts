import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import test, { type ExecutionContext } from "ava";
import { ClientSwarm } from "../../src/accounts/client-swarm.js";
import { LATEST_SCHEMA_VERSION } from "../../src/accounts/migrations.js";
import { checkAccountName } from "../../src/accounts/names.js";
import { openStore } from "../../src/accounts/open-store.js";
import { hashPassword, verifyPassword } from "../../src/accounts/passwords.js";
import type { SqlStore } from "../../src/accounts/sql-store.js";
import { FIRST_DELAY_MS, FREE_FAILURES, LoginThrottle } from "../../src/accounts/throttle.js";
import { completeCommand } from "../../src/client/commands.js";
import { splitWords } from "../../src/client/words.js";
import { testManifest } from "../helpers/manifest.js";
import { PgServer, postgresUnavailable, reportPostgresSkipped } from "../helpers/postgres.js";

const CHEAP = { logN: 10, r: 8, p: 1 };

test("passwords: scrypt with its parameters stored, verified in constant time", async (t) => {
  const stored = await hashPassword("s3cret", CHEAP);
  t.regex(stored, /^scrypt\$10\$8\$1\$[A-Za-z0-9+/=]{24}\$[A-Za-z0-9+/=]{44}$/u);
  t.true(await verifyPassword("s3cret", stored));
  t.false(await verifyPassword("s3cret!", stored));
  t.false(await verifyPassword("s3cret", "scrypt$99$8$1$AAAA$BBBB"), "absurd parameters are refused, not run");
  t.false(await verifyPassword("s3cret", "garbage"));
  t.not(await hashPassword("s3cret", CHEAP), stored, "a fresh salt each time");
});

test("login throttle: free failures, then doubling delays, per key; success clears the user only", (t) => {
  const th = new LoginThrottle();
  const keys = ["u:alice", "a:10.0.0.1"];
  for (let i = 0; i < FREE_FAILURES - 1; i++) th.failed(keys, 0);
  t.is(th.retryAfter(keys, 0), 0);
  th.failed(keys, 0);
  t.is(th.retryAfter(keys, 0), FIRST_DELAY_MS);
  th.failed(keys, FIRST_DELAY_MS);
  t.is(th.retryAfter(keys, FIRST_DELAY_MS), 2 * FIRST_DELAY_MS);
  t.is(th.retryAfter(["u:bob", "a:10.0.0.1"], FIRST_DELAY_MS), 2 * FIRST_DELAY_MS, "the address is slowed too");
  th.succeeded("u:alice");
  t.is(th.retryAfter(["u:alice"], FIRST_DELAY_MS), 0);
  t.true(th.retryAfter(["a:10.0.0.1"], FIRST_DELAY_MS) > 0, "a success does not clear the address");
});

test("names: the file-name rules plus length limits", (t) => {
  t.is(checkAccountName("user", "alice"), undefined);
  t.is(checkAccountName("user", "o'brien; DROP TABLE users;--"), undefined);
  t.regex(checkAccountName("user", "a/b") ?? "", /path separator/u);
  t.regex(checkAccountName("user", "x".repeat(33)) ?? "", /at most 32 bytes/u);
  t.regex(checkAccountName("group", "g\u0000") ?? "", /control character/u);
  t.regex(checkAccountName("group", ".hidden") ?? "", /hidden/u);
});

test("words: quotes and backslashes as a shell, no expansion", (t) => {
  t.deepEqual(splitWords(`download_file g "my file.pdf" ~/in`), ["download_file", "g", "my file.pdf", "~/in"]);
  t.deepEqual(splitWords(`a 'b "c' d\\ e "f\\"g"`), ["a", 'b "c', "d e", 'f"g']);
  t.deepEqual(splitWords(`x ""`), ["x", ""]);
  t.deepEqual(splitWords("   "), []);
  t.deepEqual(splitWords(`a "b`), { error: "unterminated double quote" });
});

test("completion of command names", (t) => {
  t.deepEqual(completeCommand("list_"), [["list_groups ", "list_requests ", "list_files "], "list_"]);
  t.deepEqual(completeCommand("login al"), [[], "login al"]);
});

/** Opens the store of one kind, the same database each time it is called with the same key. */
type StoreOpener = (now: number) => Promise<SqlStore>;

async function storeBehaviour(t: ExecutionContext, open: StoreOpener): Promise<void> {
  let store = await open(1);
  t.is(store.schemaVersion, LATEST_SCHEMA_VERSION);
  const alice = await store.createUser("alice", "h1", 1);
  const bob = await store.createUser("bob", "h2", 2);
  const carol = await store.createUser("carol", "h3", 3);
  if (alice === "exists" || bob === "exists" || carol === "exists") throw new Error("fresh store");
  t.is(await store.createUser("alice", "h", 4), "exists");
  t.deepEqual(await store.findUser("o'brien; DROP TABLE users;--"), undefined);
  const token = Buffer.alloc(32, 7);
  await store.createSession(token, alice.id, 10);
  const g = await store.createGroup("team", alice.id, 10);
  if (g === "exists") throw new Error("fresh store");
  t.is(await store.createGroup("team", bob.id, 10), "exists");
  t.is(await store.addRequest(g.id, bob.id, 11), "added");
  t.is(await store.addRequest(g.id, bob.id, 12), "exists");
  t.true(await store.acceptRequest(g.id, bob.id, 13));
  t.false(await store.acceptRequest(g.id, bob.id, 13), "no request is pending any more");
  t.true(await store.isMember(g.id, bob.id));
  t.is(await store.addRequest(g.id, carol.id, 14), "added");
  t.deepEqual(await store.listGroups(carol.id), [
    { name: "team", owner: "alice", members: 2, files: undefined, role: "requested" },
  ]);
  const manifest = testManifest("f.bin", 70_000);
  const shared = await store.shareFile(g.id, alice.id, manifest, 15);
  t.is(shared.kind, "shared");
  const again = await store.shareFile(g.id, bob.id, manifest, 15);
  t.like(again, { kind: "shared", alreadyShared: false });
  t.like(await store.shareFile(g.id, bob.id, manifest, 15), { kind: "shared", alreadyShared: true });
  const other = testManifest("f.bin", 70_001);
  t.is((await store.shareFile(g.id, bob.id, other, 16)).kind, "conflict");
  t.deepEqual((await store.sharersOf(shared.file.id)).sort(), [alice.id, bob.id].sort());
  t.like(await store.unshareFile(shared.file.id, bob.id), { removed: true, fileDeleted: false });
  await store.close();

  // Everything is still there after reopening (migrations do not run twice).
  store = await open(100);
  t.is(store.schemaVersion, LATEST_SCHEMA_VERSION);
  t.deepEqual(await store.findSession(token), { userId: alice.id, userName: "alice", createdAt: 10, lastUsedAt: 10 });
  t.deepEqual(await store.listRequests(g.id), [{ user: "carol", requestedAt: 14 }]);
  t.deepEqual(await store.listGroups(alice.id), [
    { name: "team", owner: "alice", members: 2, files: 1, role: "owner" },
  ]);
  t.deepEqual(await store.groupsOf(bob.id), ["team"]);
  const files = await store.listFiles(g.id);
  t.deepEqual(files, [{ id: shared.file.id, name: "f.bin", size: 70_000, uploader: "alice", sharers: 1 }]);
  const record = await store.findFile(g.id, "f.bin");
  t.true(record?.manifest.sha256.equals(manifest.sha256));
  t.deepEqual(record?.manifest.pieceSha256, manifest.pieceSha256);
  t.deepEqual((await store.fileById(shared.file.id))?.manifest.name, "f.bin");
  const left = await store.leaveGroup(g.id, alice.id);
  t.like(left, { kind: "left", newOwner: "bob", groupDeleted: false });
  t.deepEqual(left.kind === "left" ? left.deletedFiles : [], [record?.id], "nobody shares it any more");
  t.is((await store.findGroup("team"))?.ownerId, bob.id);
  t.like(await store.leaveGroup(g.id, alice.id), { kind: "not-member" });
  t.like(await store.leaveGroup(g.id, bob.id), { kind: "left", groupDeleted: true });
  t.is(await store.findGroup("team"), undefined);
  t.is(await store.deleteExpiredSessions(11, 0), 1);
  t.is(await store.findSession(token), undefined);
  await store.close();
}

/** Many transactions at once on one store: none lost, none half-done. */
async function storeConcurrency(t: ExecutionContext, open: StoreOpener): Promise<void> {
  const stores = [await open(1), await open(1)];
  const owner = await stores[0]?.createUser("owner", "h", 1);
  if (owner === undefined || owner === "exists") throw new Error("fresh store");
  const users = await Promise.all(
    Array.from({ length: 20 }, (_, i) => stores[i % 2]?.createUser(`u${i}`, "h", 2) ?? Promise.reject()),
  );
  const g = await stores[0]?.createGroup("g", owner.id, 3);
  if (g === undefined || g === "exists") throw new Error("fresh store");
  await Promise.all(
    users.map(async (u, i) => {
      if (u === "exists") throw new Error("fresh store");
      const s = stores[i % 2];
      if (s === undefined) throw new Error("two stores");
      await s.addRequest(g.id, u.id, 4);
      t.true(await s.acceptRequest(g.id, u.id, 5));
      t.like(await s.shareFile(g.id, u.id, testManifest("same.bin", 1000), 6), { kind: "shared" });
    }),
  );
  const [files] = [await stores[1]?.listFiles(g.id)];
  t.is(files?.length, 1, "one record however many trackers added it at once");
  t.is(files?.[0]?.sharers, 20);
  const groups = await stores[1]?.listGroups(owner.id);
  t.is(groups?.[0]?.members, 21);
  for (const s of stores) await s?.close();
}

const sqliteOpener = (t: ExecutionContext): StoreOpener => {
  const dir = mkdtempSync(path.join(tmpdir(), "udpswarm-store-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, "s.db");
  return (now) => openStore(file, () => {}, now);
};

test("store (SQLite): migrations, users, sessions, groups, requests, hand-over, files", async (t) => {
  await storeBehaviour(t, sqliteOpener(t));
});

test("store (SQLite): two connections changing one file at once", async (t) => {
  await storeConcurrency(t, sqliteOpener(t));
});

reportPostgresSkipped("test/unit/accounts.test.ts");
const pgTest = postgresUnavailable() === undefined ? test.serial : test.skip;
let server: PgServer | undefined;
test.after.always(() => server?.stopSync());
const pgOpener = async (): Promise<StoreOpener> => {
  server ??= await PgServer.start();
  const url = await server.createDatabase("unit");
  return (now) => openStore(url, () => {}, now);
};

pgTest("store (PostgreSQL): migrations, users, sessions, groups, requests, hand-over, files", async (t) => {
  await storeBehaviour(t, await pgOpener());
});

pgTest("store (PostgreSQL): two trackers' pools changing one database at once", async (t) => {
  await storeConcurrency(t, await pgOpener());
});

test("client swarm: peers are introduced only while they share a group, with those groups", (t) => {
  const sent: Array<[number, string, unknown]> = [];
  const swarm = new ClientSwarm(
    {
      // Clients hear of changes in Updates frames: recorded as [to, list, entry].
      send: (peerId, body) => {
        for (const [kind, list] of Object.entries(body.updates ?? {})) {
          for (const value of (list as unknown[] | undefined) ?? []) sent.push([peerId, kind, value]);
        }
      },
    },
    (n) => Buffer.alloc(n, 1),
  );
  const a = swarm.open("127.0.0.1", 1001, []).peerId;
  const b = swarm.open("127.0.0.1", 1002, []).peerId;
  swarm.login(a, { id: 1, name: "a" }, ["g1", "g2"]);
  swarm.login(b, { id: 2, name: "b" }, ["g3"]);
  t.deepEqual(sent, [], "no group in common: not introduced");
  swarm.groupsChanged(2, ["g2", "g3"]);
  const joined = sent.filter(([, kind]) => kind === "joined");
  t.is(joined.length, 2);
  t.deepEqual((joined[0]?.[2] as { groups: string[] } | undefined)?.groups, ["g2"]);
  swarm.share(a, 5, "g2");
  t.is(swarm.want(b, 5, "g2"), 1);
  t.true(sent.some(([to, kind]) => to === b && kind === "holders"));
  sent.length = 0;
  swarm.groupsChanged(2, ["g3"]);
  t.deepEqual(
    sent.map(([to, kind]) => [to, kind]),
    [
      [a, "left"],
      [b, "left"],
    ],
  );
});
