import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import test from "ava";
import { ClientSwarm } from "../../src/accounts/client-swarm.js";
import { checkAccountName } from "../../src/accounts/names.js";
import { hashPassword, verifyPassword } from "../../src/accounts/passwords.js";
import { SqliteStore } from "../../src/accounts/sqlite-store.js";
import { FIRST_DELAY_MS, FREE_FAILURES, LoginThrottle } from "../../src/accounts/throttle.js";
import { completeCommand } from "../../src/client/commands.js";
import { splitWords } from "../../src/client/words.js";
import { testManifest } from "../helpers/manifest.js";

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

test("store: migrations, users, sessions, groups, requests, hand-over, files", async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), "udpswarm-store-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, "s.db");
  let store = SqliteStore.open(file, 1);
  t.is(store.schemaVersion, 1);
  const alice = await store.createUser("alice", "h1", 1);
  const bob = await store.createUser("bob", "h2", 2);
  const carol = await store.createUser("carol", "h3", 3);
  if (alice === "exists" || bob === "exists" || carol === "exists") throw new Error("fresh store");
  t.is(await store.createUser("alice", "h", 4), "exists");
  const token = Buffer.alloc(32, 7);
  await store.createSession(token, alice.id, 10);
  const g = await store.createGroup("team", alice.id, 10);
  if (g === "exists") throw new Error("fresh store");
  t.is(await store.addRequest(g.id, bob.id, 11), "added");
  t.is(await store.addRequest(g.id, bob.id, 12), "exists");
  t.true(await store.acceptRequest(g.id, bob.id, 13));
  t.is(await store.addRequest(g.id, carol.id, 14), "added");
  const manifest = testManifest("f.bin", 70_000);
  const shared = await store.shareFile(g.id, alice.id, manifest, 15);
  t.is(shared.kind, "shared");
  const other = testManifest("f.bin", 70_001);
  t.is((await store.shareFile(g.id, bob.id, other, 16)).kind, "conflict");
  store.close();

  // Everything is still there after reopening (migrations do not run twice).
  store = SqliteStore.open(file, 100);
  t.deepEqual(await store.findSession(token), { userId: alice.id, userName: "alice", createdAt: 10, lastUsedAt: 10 });
  t.deepEqual(await store.listRequests(g.id), [{ user: "carol", requestedAt: 14 }]);
  const files = await store.listFiles(g.id);
  t.is(files.length, 1);
  const record = await store.findFile(g.id, "f.bin");
  t.true(record?.manifest.sha256.equals(manifest.sha256));
  t.deepEqual(record?.manifest.pieceSha256, manifest.pieceSha256);
  const left = await store.leaveGroup(g.id, alice.id);
  t.like(left, { kind: "left", newOwner: "bob", groupDeleted: false });
  t.deepEqual(left.kind === "left" ? left.deletedFiles : [], [record?.id], "nobody shares it any more");
  t.is((await store.findGroup("team"))?.ownerId, bob.id);
  t.like(await store.leaveGroup(g.id, bob.id), { kind: "left", groupDeleted: true });
  t.is(await store.findGroup("team"), undefined);
  t.is(await store.deleteExpiredSessions(11, 0), 1);
  store.close();
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
