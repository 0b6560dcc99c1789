/**
 * SEVERAL TRACKERS (SPEC §11): the live log between two trackers on one SQLite file, with
 * the tail driven by hand (catchUp) so that the order of events is the test's.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import test, { type ExecutionContext } from "ava";
import { ClientSwarm } from "../../src/accounts/client-swarm.js";
import { LiveLog } from "../../src/accounts/live-log.js";
import { openStore } from "../../src/accounts/open-store.js";
import type { SqlStore } from "../../src/accounts/sql-store.js";

/** Never polls by itself within a test: catchUp is the tail. */
const NO_POLL_MS = 3600_000;

type Sent = Array<[number, string, { peerId?: number | null }]>;

async function tracker(t: ExecutionContext, file: string, label: string, withStoreTruth: boolean) {
  const store = await openStore(file, () => {});
  const sent: Sent = [];
  const swarm = new ClientSwarm({
    send: (peerId, body) => {
      for (const [kind, list] of Object.entries(body.updates ?? {}))
        for (const v of (list as Array<{ peerId?: number | null }> | undefined) ?? []) sent.push([peerId, kind, v]);
    },
  });
  const live = await LiveLog.start(store.db, swarm, () => {}, {
    label,
    pollMs: NO_POLL_MS,
    heartbeatMs: NO_POLL_MS,
    expiryMs: NO_POLL_MS,
    ...(withStoreTruth ? { groupsOf: (userId: number) => store.groupsOf(userId) } : {}),
  });
  t.teardown(async () => {
    await live.close();
    await store.close();
  });
  return { store, swarm, live, sent };
}

/** Tails `live` until `done` holds (the other tracker's append is written in the background). */
async function catchUpUntil(live: LiveLog, done: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !done(); i++) {
    await live.catchUp();
    if (!done()) await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * The race of the cut-off e2e test: ann logs in on tracker two (its "online" event says:
 * no groups) and joins g; dee, on tracker one, accepts her before tracker one has replayed
 * that event. Tracker one applies the new membership to the clients it knows (not ann's
 * yet); then replays ann's "online". Its groups must be the store's, not the event's.
 */
async function acceptBeforeReplay(t: ExecutionContext, withStoreTruth: boolean): Promise<Sent> {
  const dir = mkdtempSync(path.join(tmpdir(), "udpswarm-live-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, "s.db");
  const one = await tracker(t, file, "one", withStoreTruth);
  const two = await tracker(t, file, "two", withStoreTruth);
  const store: SqlStore = one.store;
  const dee = await store.createUser("dee", "x", 1);
  const ann = await store.createUser("ann", "x", 1);
  if (dee === "exists" || ann === "exists") throw new Error("fresh store expected");
  const g = await store.createGroup("g", dee.id, 1);
  if (g === "exists") throw new Error("fresh store expected");

  const d = one.swarm.open("127.0.0.1", 1001, []);
  one.swarm.login(d.peerId, { id: dee.id, name: "dee" }, ["g"]);
  const a = two.swarm.open("127.0.0.1", 1002, []);
  two.swarm.login(a.peerId, { id: ann.id, name: "ann" }, []);
  await store.addRequest(g.id, ann.id, 2);
  t.true(await store.acceptRequest(g.id, ann.id, 3));
  one.swarm.groupsChanged(ann.id, await store.groupsOf(ann.id));
  t.false(one.swarm.knows(a.peerId), "tracker one has not replayed ann's online yet");
  await catchUpUntil(one.live, () => one.swarm.knows(a.peerId));
  t.true(one.swarm.knows(a.peerId));
  return one.sent.filter(([to, kind, v]) => to === d.peerId && kind === "joined" && v.peerId === a.peerId);
}

test("live log: an online change replayed after a newer membership takes the store's groups (dee meets ann)", async (t) => {
  t.is((await acceptBeforeReplay(t, true)).length, 1, "dee is introduced to ann");
});

test("live log: the groups an online change carries are stale there (why the store is read)", async (t) => {
  t.is((await acceptBeforeReplay(t, false)).length, 0, "without the store's truth dee never meets ann");
});
