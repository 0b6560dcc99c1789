import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import test, { type ExecutionContext } from "ava";
import { FolderLock } from "../../src/peer/folder-lock.js";
import { SwarmError } from "../../src/util/errors.js";

function tempLock(t: ExecutionContext): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), "udpswarm-lock-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return path.join(dir, "lock");
}

/** Start time of a process as /proc gives it (field 22). */
function startTime(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] ?? "";
}

/** A live process other than this one, as a lock owner. */
async function otherProcess(t: ExecutionContext): Promise<number> {
  const child = spawn("sleep", ["30"], { stdio: "ignore" });
  t.teardown(() => child.kill("SIGKILL"));
  await new Promise((resolve) => child.once("spawn", resolve));
  if (child.pid === undefined) throw new Error("no child");
  return child.pid;
}

test("the lock holds this PID and its start time, and release removes it", (t) => {
  const file = tempLock(t);
  const lock = FolderLock.acquire(file);
  t.is(readFileSync(file, "utf8"), `${process.pid}\n${startTime(process.pid)}\n`);
  lock.release();
  t.false(existsSync(file));
  lock.release();
  t.false(existsSync(path.join(path.dirname(file), `lock.${process.pid}.new`)), "no leftover");
});

test("a live owner refuses the lock with ERR_FOLDER_IN_USE naming it", async (t) => {
  const file = tempLock(t);
  const pid = await otherProcess(t);
  writeFileSync(file, `${pid}\n${startTime(pid)}\n`);
  const err = t.throws(() => FolderLock.acquire(file), { instanceOf: SwarmError });
  t.is(err?.code, "ERR_FOLDER_IN_USE");
  t.regex(err?.message ?? "", new RegExp(`another peer \\(pid ${pid}\\) is already using this folder`));
  t.is(readFileSync(file, "utf8"), `${pid}\n${startTime(pid)}\n`, "the owner's lock is untouched");
});

test("a lock without a start time is trusted on the PID alone", async (t) => {
  const file = tempLock(t);
  const pid = await otherProcess(t);
  writeFileSync(file, `${pid}\n\n`);
  t.throws(() => FolderLock.acquire(file), { instanceOf: SwarmError });
});

test("stale locks are taken over: a dead PID, a reused PID, our own PID, garbage", async (t) => {
  const pid = await otherProcess(t);
  const cases: Array<[string, string]> = [
    ["dead process", "4194303\n\n"],
    ["PID reused by another process", `${pid}\n1\n`],
    ["this PID in an earlier life", `${process.pid}\n1\n`],
    ["garbage", "not a pid"],
    ["empty", ""],
  ];
  for (const [what, content] of cases) {
    const file = tempLock(t);
    writeFileSync(file, content);
    const lock = FolderLock.acquire(file);
    t.is(readFileSync(file, "utf8"), `${process.pid}\n${startTime(process.pid)}\n`, what);
    lock.release();
  }
});

test("release leaves a lock that is no longer ours", (t) => {
  const file = tempLock(t);
  const lock = FolderLock.acquire(file);
  writeFileSync(file, "4194303\n\n");
  lock.release();
  t.is(readFileSync(file, "utf8"), "4194303\n\n");
});
