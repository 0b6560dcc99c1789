/** The timer table on a manual clock (one clock timer at the earliest deadline), and the address table. */
import test from "ava";
import { AddressTable } from "../../src/transfer/address-table.js";
import { ManualClock } from "../../src/util/clock.js";
import { TimerTable } from "../../src/util/timer-table.js";

function setup() {
  const clock = new ManualClock();
  const fired: string[] = [];
  const table: TimerTable<string> = new TimerTable(clock, (now) => {
    for (const key of table.expired(now)) fired.push(`${key}@${now}`);
  });
  return { clock, fired, table };
}

test("timer table: one clock timer, at the earliest deadline; due keys in deadline order", (t) => {
  const { clock, fired, table } = setup();
  table.set("b", 30);
  table.set("a", 10);
  table.set("c", 30);
  t.is(clock.pendingTimers, 1);
  t.is(clock.nextDeadline(), 10);
  t.is(table.nextTimeout(), 10);
  clock.advanceTo(10);
  t.deepEqual(fired, ["a@10"]);
  t.is(clock.nextDeadline(), 30, "re-armed for what is left");
  clock.advanceTo(40);
  t.deepEqual(fired, ["a@10", "b@30", "c@30"]);
  t.is(clock.pendingTimers, 0);
});

test("timer table: a later deadline does not move the clock timer; clearing the last one stops it", (t) => {
  const { clock, fired, table } = setup();
  table.set("a", 10);
  table.set("a", 20);
  t.is(table.get("a"), 20);
  clock.advanceTo(10); // fires early, finds nothing due, re-arms
  t.deepEqual(fired, []);
  t.is(clock.nextDeadline(), 20);
  table.clear("a");
  t.is(clock.pendingTimers, 0);
  t.is(table.nextTimeout(), Number.POSITIVE_INFINITY);
});

test("timer table: close stops everything, and later sets are ignored", (t) => {
  const { clock, fired, table } = setup();
  table.set("a", 10);
  table.close();
  table.close();
  table.set("b", 5);
  clock.advanceTo(100);
  t.deepEqual(fired, []);
  t.is(clock.pendingTimers, 0);
});

test("address table: by port then host; an entry is never overwritten, only its owner deletes it", (t) => {
  const table = new AddressTable<string>();
  t.true(table.add("10.0.0.1", 7000, "a"));
  t.true(table.add("127.0.0.1", 7000, "a"));
  t.false(table.add("127.0.0.1", 7000, "b"), "taken");
  t.false(table.add("10.0.0.1", 7000, "b"), "taken");
  t.is(table.get("127.0.0.1", 7000), "a");
  t.is(table.get("10.0.0.1", 7000), "a");
  t.is(table.get("10.0.0.1", 7001), undefined);
  table.delete("10.0.0.1", 7000, "b");
  t.is(table.get("10.0.0.1", 7000), "a", "only the entry mapping to that value goes");
  table.delete("10.0.0.1", 7000, "a");
  t.is(table.get("10.0.0.1", 7000), undefined);
});
