import { mkdtempSync, readdirSync, readSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import test from "ava";
import { FdPool } from "../../src/peer/fd-pool.js";

function openDescriptors(): number {
  return readdirSync("/proc/self/fd").length;
}

test("never more than its capacity open; the least recently used is closed first", (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "udpswarm-fdpool-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const files = Array.from({ length: 10 }, (_, i) => {
    const p = path.join(dir, `f${i}`);
    writeFileSync(p, `file ${i}`);
    return p;
  });
  const before = openDescriptors();
  const pool = new FdPool(3);
  const [a = "", b = "", c = "", d = ""] = files;
  const fdA = pool.get(a, "r");
  pool.get(b, "r");
  pool.get(c, "r");
  t.is(pool.get(a, "r"), fdA, "a hit reuses the descriptor");
  pool.get(d, "r"); // evicts b, the least recently used
  t.is(pool.size, 3);
  t.is(openDescriptors() - before, 3);
  t.is(pool.opened, 4);
  pool.get(b, "r");
  t.is(pool.opened, 5, "b was closed and had to be opened again");
  for (const f of files) {
    const buf = Buffer.alloc(16);
    const n = readSync(pool.get(f, "r"), buf, 0, 16, 0);
    t.is(buf.subarray(0, n).toString(), `file ${files.indexOf(f)}`);
    t.true(openDescriptors() - before <= 3);
  }
  pool.closeAll();
  t.is(pool.size, 0);
  t.is(openDescriptors(), before);
});

test("a read-only descriptor is reopened for writing; a read-write one serves reads", (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "udpswarm-fdpool-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const p = path.join(dir, "f");
  writeFileSync(p, "x");
  const pool = new FdPool(2);
  pool.get(p, "r");
  const rw = pool.get(p, "r+");
  t.is(pool.opened, 2);
  t.is(pool.get(p, "r"), rw);
  t.is(pool.size, 1);
  pool.closeAll();
});
