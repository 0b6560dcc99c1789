import test from "ava";
import { ClientSwarm, type LiveChange } from "../../src/accounts/client-swarm.js";
import { firstThatAnswers, parseTrackerTiers, TrackerList, trackerListFrom } from "../../src/client/tracker-list.js";
import { SwarmError } from "../../src/util/errors.js";

test("trackers file: one tier per line, HOST PORT pairs, comments and blank lines skipped", (t) => {
  t.deepEqual(parseTrackerTiers("# service\na 1\n\nb 2 c 3 # second tier\n"), [
    [{ host: "a", port: 1 }],
    [
      { host: "b", port: 2 },
      { host: "c", port: 3 },
    ],
  ]);
  t.throws(() => parseTrackerTiers("a 1 b\n"), { instanceOf: SwarmError, message: /line 1 .*expected HOST PORT/u });
  t.throws(() => parseTrackerTiers("a 70000\n"), { message: /bad port "70000"/u });
  t.throws(() => parseTrackerTiers("# nothing\n"), { message: /lists no tracker/u });
});

test("tracker list (BEP 12): tiers in order, each shuffled once, the answering tracker first in its tier", (t) => {
  const a = { host: "a", port: 1 };
  const b = { host: "b", port: 2 };
  const c = { host: "c", port: 3 };
  const d = { host: "d", port: 4 };
  // random() = 0 moves every element to the front in turn: [b, c] becomes [c, b].
  const list = new TrackerList([[a], [b, c, d]], () => 0);
  t.deepEqual(list.order(), [a, c, d, b]);
  t.is(list.size, 4);
  list.answered(d);
  t.deepEqual(list.order(), [a, d, c, b], "d answered: front of its tier, tier 1 still first");
  t.deepEqual(list.order(a), [d, c, b, a], "the tracker just lost is tried last");
  // The shuffle happens once: later orders never reshuffle.
  t.deepEqual(list.order(), list.order());
  const seen = new Set<string>();
  for (let seed = 0; seed < 20; seed++) {
    const l = new TrackerList([[a, b, c]], () => (seed * 0.37) % 1);
    seen.add(
      l
        .order()
        .map((x) => x.host)
        .join(""),
    );
  }
  t.true(seen.size > 1, "different randomness, different tier orders");
});

test("failover: the first tracker that answers, in the list's order; one clear error when none does", async (t) => {
  const a = { host: "a", port: 1 };
  const b = { host: "b", port: 2 };
  const c = { host: "c", port: 3 };
  const list = new TrackerList([[a], [b, c]], () => 0);
  const tried: string[] = [];
  const up = new Set(["c"]);
  const connect = async (x: { host: string }) => {
    tried.push(x.host);
    if (!up.has(x.host)) throw new SwarmError("ERR_TRACKER_UNREACHABLE", `cannot reach ${x.host}`);
    return `link to ${x.host}`;
  };
  // a was just lost: tried last; the others in order.
  const got = await firstThatAnswers(list.order(a), connect);
  t.deepEqual(tried, ["c"], "tier 2 (shuffled to c, b) before a");
  t.is(got.link, "link to c");
  t.deepEqual(got.tracker, c);
  list.answered(c);
  t.deepEqual(list.order(), [a, c, b], "the one that answered leads its tier from now on");
  up.clear();
  tried.length = 0;
  const none = await t.throwsAsync(firstThatAnswers(list.order(c), connect));
  t.deepEqual(tried, ["a", "b", "c"]);
  t.is(none?.message, "none of the 3 trackers answers (last: cannot reach c)");
  t.is((none as SwarmError).code, "ERR_TRACKER_UNREACHABLE");
  // A single tracker: its own error, as it was.
  const single = await t.throwsAsync(firstThatAnswers([a], connect));
  t.is(single?.message, "cannot reach a");
  // Stopped meanwhile: nothing more is tried.
  tried.length = 0;
  await t.throwsAsync(firstThatAnswers([a, b], connect, () => true));
  t.deepEqual(tried, []);
});

test("sync peers' tracker list: every tier as listed (all sync peers pick the same tracker)", (t) => {
  const tiers = parseTrackerTiers("a 1 b 2 c 3\nd 4\n");
  t.deepEqual(trackerListFrom("f", () => "a 1 b 2 c 3\nd 4\n", "as listed").order(), tiers.flat());
  t.deepEqual(new TrackerList(tiers, "as listed").order(tiers[0]?.[0]), [...tiers.flat().slice(1), tiers[0]?.[0]]);
});

test("trackers file: read through the given reader; unreadable or empty is a usage error", (t) => {
  t.is(trackerListFrom("f", () => "127.0.0.1 7000\n# none\nh 1 i 2\n").size, 3);
  const unreadable = t.throws(() =>
    trackerListFrom("f", () => {
      throw new Error("ENOENT");
    }),
  );
  t.is((unreadable as SwarmError).code, "ERR_USAGE");
  t.is(unreadable?.message, "cannot read the trackers file f: ENOENT");
  t.is((t.throws(() => trackerListFrom("f", () => "# nothing\n")) as SwarmError).code, "ERR_USAGE");
});

/** Two trackers' swarms joined by replaying each other's changes, as the live log does. */
function twoTrackers() {
  const sent: Array<[string, number, string, unknown]> = [];
  const mk = (name: string) =>
    new ClientSwarm({
      send: (peerId, body) => {
        for (const [kind, list] of Object.entries(body.updates ?? {}))
          for (const v of (list as unknown[] | undefined) ?? []) sent.push([name, peerId, kind, v]);
      },
    });
  const one = mk("one");
  const two = mk("two");
  const toTwo: LiveChange[] = [];
  const toOne: LiveChange[] = [];
  one.joinService(1 << 20, (c) => toTwo.push(c));
  two.joinService(2 << 20, (c) => toOne.push(c));
  const sync = () => {
    for (const c of toTwo.splice(0)) two.replay(1, c);
    for (const c of toOne.splice(0)) one.replay(2, c);
  };
  return { one, two, sent, sync };
}

test("two trackers: clients on each are introduced across, holders announced across", (t) => {
  const { one, two, sent, sync } = twoTrackers();
  const a = one.open("127.0.0.1", 1001, []);
  const b = two.open("127.0.0.1", 1002, []);
  t.not(a.peerId, b.peerId, "ids never collide across trackers");
  one.login(a.peerId, { id: 1, name: "a" }, ["g"]);
  two.login(b.peerId, { id: 2, name: "b" }, ["g"]);
  sync();
  t.true(sent.some(([tr, to, kind]) => tr === "one" && to === a.peerId && kind === "joined"));
  t.true(sent.some(([tr, to, kind]) => tr === "two" && to === b.peerId && kind === "joined"));
  t.false(
    sent.some(([tr, to]) => (tr === "one" && to === b.peerId) || (tr === "two" && to === a.peerId)),
    "each tracker sends only to its own clients",
  );
  t.is(two.want(b.peerId, 7, "g"), 0);
  one.share(a.peerId, 7, "g");
  sync();
  t.true(sent.some(([tr, to, kind]) => tr === "two" && to === b.peerId && kind === "holders"));
  t.deepEqual([...two.onlineSharers(7)], [1]);
});

test("two trackers: a dead tracker's clients vanish; a client that moves keeps its id and nobody hears of it", (t) => {
  const { one, two, sent, sync } = twoTrackers();
  const a = one.open("127.0.0.1", 1001, []);
  const b = two.open("127.0.0.1", 1002, []);
  one.login(a.peerId, { id: 1, name: "a" }, ["g"]);
  two.login(b.peerId, { id: 2, name: "b" }, ["g"]);
  one.share(a.peerId, 7, "g");
  sync();
  sent.length = 0;

  // a moves from tracker one to tracker two: a wrong secret is refused, the right one adopted.
  t.false(two.adopt(a.peerId, Buffer.alloc(16), "127.0.0.1", 1001, [], Date.now()));
  t.true(two.adopt(a.peerId, a.secret, "127.0.0.1", 1001, [], Date.now()));
  two.login(a.peerId, { id: 1, name: "a" }, ["g"]);
  sync();
  t.deepEqual(sent, [], "no left/joined churn: the pair keys stay valid");
  // Introductions the old tracker sent may have been lost with it: the new one sends them again, to a only.
  two.reintroduce(a.peerId);
  t.deepEqual(
    sent.map(([tr, to, kind, v]) => [tr, to, kind, (v as { peerId?: number }).peerId]),
    [["two", a.peerId, "joined", b.peerId]],
  );
  sent.length = 0;
  t.deepEqual([...two.onlineSharers(7)], [1], "its share moved with it");
  // Tracker one's late "offline" for a is ignored: a is tracker two's now.
  one.close(a.peerId);
  sync();
  t.true(two.knows(a.peerId));

  // Tracker two dies: on tracker one, its clients (a and b) vanish.
  t.is(one.trackerGone(2), 2);
  t.false(one.knows(a.peerId));
  t.is(one.onlineSharers(7).size, 0);
});
