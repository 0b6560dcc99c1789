/**
 * `npm run bench` (and `make bench`): runs udpswarm's scenarios and their references
 * several times, interleaved, and writes the medians and ratios as Markdown (printed,
 * and written to bench/results.md) with an SVG chart of goodput against loss rate
 * (bench/loss.svg) and every sample as JSON Lines (bench/results.jsonl). `--quick` is a smoke
 * run: small files, one run of each case, written to bench/out/.
 *
 * It installs nothing: a missing reference tool is reported with the command that
 * installs it, and that reference is skipped.
 */
import { existsSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { makeTempRoot, mkdirp, removeTempRoots } from "./files.js";
import { deleteAllNamespaces, LossNamespace, probeNetns } from "./netns.js";
import { cpuSnapshot, killAllSync, otherCores, runSync } from "./proc.js";
import { type CaseOutcome, lossChart, markdown } from "./report.js";
import { buildCases, makeInputs, runDir, type Sample, settingsFor } from "./scenarios.js";
import { findTools, missingFor, REFERENCES } from "./tools.js";
import { errorText, now, ROOT } from "./util.js";

const USAGE = `usage: npm run bench -- [options]

Runs the udpswarm benchmark (build first: make) and writes a Markdown report.

options:
  --quick            smoke run: small files, one run of each case (report in bench/out/)
  --runs N           runs of each case (default 5; scenario 5 at most 3; --quick: 1)
  --only LIST        scenarios to run, e.g. 1,4 (default 1,2,3,4,5,6; each with its references)
  --no-kernel-loss   skip the network-namespace loss runs of scenario 4 even as root
  --out DIR          where results.md, results.jsonl and loss.svg go (default bench/;
                     --quick: bench/out/)
  --help             show this help

scenarios: 1 two peers, one 256 MiB file (transfer goodput vs the raw UDP ceiling, CPU
per chunk; raw TCP, the engine alone); 2 four peers × 10 MiB, everyone gets everything
(time vs aria2c, CPU per chunk); 3 eight peers × 4 MiB (the same); 4 two peers, 64 MiB at
0/10/30% loss, --loss and kernel-level (goodput, datagrams per chunk, tail; TFTP);
5 one 1 GiB file (peak RSS); 6 start-up (a 1 GiB seeder listed; a small swarm's first
ACQUIRED line). --quick: small files everywhere.`;

function log(line: string): void {
  process.stderr.write(`bench: ${line}\n`);
}

/** The figure of a sample worth a progress line. */
function headline(sample: Sample): string {
  const rate = sample.transferMBps ?? sample.MBps ?? sample.chunkMBps;
  if (rate !== undefined) return `${rate.toFixed(1)} MB/s`;
  if (sample.firstAcquiredSeconds !== undefined)
    return `first ACQUIRED ${sample.firstAcquiredSeconds.toFixed(2)} s, all ${(sample.seconds ?? Number.NaN).toFixed(2)} s`;
  if (sample.seconds !== undefined) return `${sample.seconds.toFixed(2)} s`;
  return `${(sample.cpuUsPerChunk ?? Number.NaN).toFixed(2)} µs/chunk`;
}

function cleanupSync(): void {
  killAllSync();
  deleteAllNamespaces();
  removeTempRoots();
}

function parseOptions(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: "boolean", default: false },
      runs: { type: "string" },
      only: { type: "string" },
      "no-kernel-loss": { type: "boolean", default: false },
      out: { type: "string" },
      help: { type: "boolean", default: false },
    },
    strict: true,
  });
  const runs = values.runs === undefined ? undefined : Number(values.runs);
  if (runs !== undefined && !(Number.isInteger(runs) && runs >= 1))
    throw new Error("--runs must be a positive integer");
  const only = (values.only ?? "1,2,3,4,5,6").split(",").map((v) => Number(v.trim()));
  if (only.some((n) => !(Number.isInteger(n) && n >= 1 && n <= 6))) throw new Error("--only takes numbers 1 to 6");
  return {
    quick: values.quick === true,
    runs,
    scenarios: new Set(only),
    kernelLoss: values["no-kernel-loss"] !== true,
    out: values.out,
    help: values.help === true,
  };
}

function gitCommit(): string {
  const rev = runSync("git", ["rev-parse", "--short", "HEAD"], ROOT);
  if (!rev.ok) return "unknown";
  const dirty = runSync("git", ["status", "--porcelain", "--untracked-files=no"], ROOT);
  return `${rev.output}${dirty.ok && dirty.output !== "" ? " (with uncommitted changes)" : ""}`;
}

async function main(argv: string[]): Promise<number> {
  const opts = parseOptions(argv);
  if (opts.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  for (const entry of ["dist/src/peer/main.js", "dist/src/tracker/main.js"]) {
    if (!existsSync(path.join(ROOT, entry))) throw new Error(`${entry} is missing: run 'make' first`);
  }
  const settings = settingsFor(opts.quick, opts.runs);
  const outDir = path.resolve(opts.out ?? path.join(ROOT, "bench", opts.quick ? "out" : ""));
  const loadBefore = os.loadavg();

  const tools = findTools();
  const toolLines: string[] = [];
  for (const t of tools.values()) {
    if (t.path !== undefined) toolLines.push(`found ${t.name}${t.version === "" ? "" : ` (${t.version})`}`);
  }
  const tftpMissing = missingFor(REFERENCES.tftp, tools);
  const btMissing = missingFor(REFERENCES.bittorrent, tools);
  for (const line of [tftpMissing, btMissing]) {
    if (line === undefined) continue;
    toolLines.push(line);
    log(line);
  }
  let netns: LossNamespace | undefined;
  if (opts.scenarios.has(4)) {
    const probe = opts.kernelLoss ? probeNetns() : { ok: false as const, reason: "--no-kernel-loss" };
    if (probe.ok) {
      netns = LossNamespace.create();
      toolLines.push(`kernel-level loss: network namespace ${netns.name}, iptables statistic rule on lo`);
    } else {
      const line = `kernel-level loss skipped: ${probe.reason}; scenario 4 uses the peers' --loss only`;
      toolLines.push(line);
      log(line);
    }
  }

  const root = makeTempRoot("udpswarm-bench-");
  log(`generating input files in ${root}`);
  const inputs = makeInputs(path.join(root, "inputs"), settings, opts.scenarios);
  const cases = buildCases({
    settings,
    inputs,
    tftp: tftpMissing === undefined,
    bittorrent: btMissing === undefined,
    netns,
    scenarios: opts.scenarios,
  });
  const outcomes = new Map<string, CaseOutcome>(cases.map((c) => [c.id, { c, samples: [], failures: [] }]));
  const rounds = Math.max(...cases.map((c) => c.runs));
  const started = now();
  const cpuBefore = cpuSnapshot();
  for (let round = 0; round < rounds; round++) {
    for (const c of cases) {
      if (round >= c.runs) continue;
      const outcome = outcomes.get(c.id);
      if (outcome === undefined) continue;
      // One retry: a run can fail for reasons outside udpswarm on a shared machine; both are reported.
      for (let attempt = 0; attempt < 2; attempt++) {
        const dir = runDir(root, c.id, round, attempt);
        const t = now();
        try {
          const sample = await c.run(dir, round);
          outcome.samples.push(sample);
          log(`round ${round + 1}/${rounds} ${c.id}: ${headline(sample)} (${((now() - t) / 1000).toFixed(1)} s)`);
          break;
        } catch (err) {
          const message = errorText(err);
          outcome.failures.push(`round ${round + 1}: ${message}`);
          log(`round ${round + 1}/${rounds} ${c.id}: FAILED: ${message}`);
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      }
    }
  }
  const others = otherCores(cpuBefore, cpuSnapshot());
  log(`all runs done in ${((now() - started) / 1000).toFixed(0)} s`);
  netns?.delete();

  mkdirp(outDir);
  const input = {
    settings,
    outcomes,
    command: `npm run bench${argv.length > 0 ? ` -- ${argv.join(" ")}` : ""}`,
    date: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
    machine: `${os.cpus()[0]?.model ?? "unknown CPU"}, ${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB; Linux ${os.release()}; Node ${process.version}`,
    commit: gitCommit(),
    loadBefore,
    loadAfter: os.loadavg(),
    cores: os.cpus().length,
    otherCores: others,
    toolLines,
    chartFile: undefined as string | undefined,
    scenarios: opts.scenarios,
  };
  const svg = lossChart(input);
  if (svg !== undefined) {
    writeFileSync(path.join(outDir, "loss.svg"), svg);
    input.chartFile = "loss.svg";
  }
  // JSON Lines: the run, then one line per case with every sample (for re-analysis).
  const lines = [
    { command: input.command, date: input.date, commit: input.commit, settings },
    ...[...outcomes.values()].map((o) => ({ id: o.c.id, title: o.c.title, samples: o.samples, failures: o.failures })),
  ];
  writeFileSync(path.join(outDir, "results.jsonl"), lines.map((l) => `${JSON.stringify(l)}\n`).join(""));
  const md = markdown(input);
  writeFileSync(path.join(outDir, "results.md"), md);
  process.stdout.write(md);
  log(`wrote results.md, results.jsonl${svg === undefined ? "" : " and loss.svg"} in ${outDir}`);
  const empty = [...outcomes.values()].filter((o) => o.samples.length === 0).map((o) => o.c.id);
  if (empty.length > 0) {
    log(`no successful run of: ${empty.join(", ")}`);
    return 1;
  }
  return 0;
}

process.on("exit", cleanupSync);
for (const [sig, code] of [
  ["SIGINT", 130],
  ["SIGTERM", 143],
  ["SIGHUP", 129],
] as const) {
  process.on(sig, () => {
    log(`${sig}: stopping every child process and removing the temporary files`);
    cleanupSync();
    process.exit(code);
  });
}

main(process.argv.slice(2)).then(
  (code) => {
    cleanupSync();
    process.exit(code);
  },
  (err: unknown) => {
    log(errorText(err));
    cleanupSync();
    process.exit(2);
  },
);
