/**
 * `npm run bench` still works: its quick run of scenarios 1 (two peers, the raw
 * ceilings, the engine microbenchmark) and 6 (start-up) with the real tracker and peers,
 * small files. It checks that every case ran, every copy passed its SHA-256 check (a
 * failed check fails the case) and every target row got a figure; the figures themselves
 * are not judged (speed is for the benchmark, never for a timed assert).
 */
import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import path from "node:path";
import test from "ava";
import { acquireSwarmSlot, ROOT, tempDir } from "../helpers/swarm.js";

test.serial("the quick benchmark of scenarios 1 and 6 runs every case and fills every target row", async (t) => {
  const release = await acquireSwarmSlot();
  t.teardown(release);
  t.timeout(180_000, "the quick benchmark");
  const out = await tempDir(t, "udpswarm-bench-smoke-");
  const child = spawn(process.execPath, ["dist/bench/run.js", "--quick", "--only", "1,6", "--out", out], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  t.teardown(() => child.kill("SIGKILL"));
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString("utf8");
  });
  child.stdout.resume();
  const code = await new Promise<number | null>((resolve) => child.once("close", resolve));
  t.is(code, 0, stderr);

  const lines = (await readFile(path.join(out, "results.jsonl"), "utf8")).trim().split("\n");
  const cases = lines.slice(1).map((l) => JSON.parse(l) as { id: string; samples: unknown[]; failures: string[] });
  t.deepEqual(
    cases.map((c) => c.id),
    ["raw-udp", "s1", "raw-tcp", "engine", "s6-listed", "s6-first"],
  );
  for (const c of cases) {
    t.is(c.samples.length, 1, `${c.id}: ${c.failures.join("; ")}`);
    t.deepEqual(c.failures, [], c.id);
  }

  const md = await readFile(path.join(out, "results.md"), "utf8");
  const table = md.split("## Targets")[1]?.split("\n## ")[0] ?? "";
  const targeted = table
    .split("\n")
    .filter((l) => l.startsWith("| ") && !l.startsWith("| ---") && !l.startsWith("| Scenario"))
    .map((l) => l.slice(2, -2).split(" | "))
    .filter((cells) => cells[4] !== "—");
  t.deepEqual(
    targeted.map((cells) => cells[0]?.slice(0, 3)),
    ["1 ·", "1 ·", "6 ·", "6 ·"],
    table,
  );
  for (const cells of targeted) t.true(cells[5] === "yes" || cells[5] === "**no**", cells.join(" | "));
});
