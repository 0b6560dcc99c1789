import test from "ava";
import { type CaseOutcome, markdown, TARGETS } from "../../bench/report.js";
import { type Sample, settingsFor } from "../../bench/scenarios.js";

/** One outcome per case id, each with the samples given (the case itself is never run). */
function outcomes(samples: Record<string, Sample[]>): Map<string, CaseOutcome> {
  return new Map(
    Object.entries(samples).map(([id, list]) => [
      id,
      {
        c: { id, title: id, runs: list.length, run: () => Promise.reject(new Error("not run")) },
        samples: list,
        failures: [],
      },
    ]),
  );
}

function report(samples: Record<string, Sample[]>): string {
  return markdown({
    settings: settingsFor(false, 3),
    outcomes: outcomes(samples),
    command: "npm run bench",
    date: "2026-12-04T00:00:00Z",
    machine: "test",
    commit: "abc",
    loadBefore: [0, 0, 0],
    loadAfter: [0, 0, 0],
    cores: 2,
    otherCores: 0,
    toolLines: [],
    chartFile: undefined,
    scenarios: new Set([1, 2, 3, 4, 5, 6]),
  });
}

/** The Targets table: first cell → [udpswarm, reference, ratio, target, met]. */
function targets(md: string): Map<string, string[]> {
  const section = md.split("## Targets")[1]?.split("\n## ")[0] ?? "";
  const rows = section
    .split("\n")
    .filter((l) => l.startsWith("| ") && !l.startsWith("| ---") && !l.startsWith("| Scenario"))
    .map((l) => l.slice(2, -2).split(" | "));
  return new Map(rows.map(([what = "", ...rest]) => [what, rest]));
}

function row(rows: Map<string, string[]>, start: string): string[] {
  const found = [...rows].filter(([what]) => what.startsWith(start));
  if (found.length !== 1) throw new Error(`${found.length} rows start with ${start}: ${[...rows.keys()].join("\n")}`);
  return found[0]?.[1] ?? [];
}

const twoPeer = (transferMBps: number, cpuUsPerChunk: number, extra: Sample = {}): Sample => ({
  seconds: 2,
  MBps: transferMBps / 2,
  transferMBps,
  cpuUsPerChunk,
  peersCpuUsPerChunk: cpuUsPerChunk - 1,
  ...extra,
});

test("every target of issue 10 is a row with its target and whether it is met (medians)", (t) => {
  const rows = targets(
    report({
      "raw-udp": [{ chunkMBps: 100, datagramsPerSecond: 195_000, cpuUsPerDatagram: 10 }],
      s1: [twoPeer(79, 15), twoPeer(81, 13), twoPeer(85, 12)],
      s2: [{ seconds: 3, cpuUsPerChunk: 20 }],
      "s2-aria2c": [{ seconds: 4 }],
      "s2-aria2c-per-file": [{ seconds: 5 }],
      s3: [{ seconds: 4, cpuUsPerChunk: 20 }],
      "s3-aria2c": [{ seconds: 4 }],
      "s4-kernel-0": [twoPeer(50, 20, { tailMs: 10, rtoMs: 20, tailRto: 0.5 })],
      "s4-kernel-10": [twoPeer(41, 20, { datagramsPerChunk: 1.1, tailMs: 50, rtoMs: 20, tailRto: 2.5 })],
      "s4-kernel-30": [twoPeer(31, 20, { datagramsPerChunk: 1.6, tailMs: 30, rtoMs: 20, tailRto: 1.5 })],
      s5: [{ rssSeederMB: 80, rssDownloaderMB: 99 }],
      "s6-listed": [{ seconds: 0.4 }, { seconds: 0.6 }, { seconds: 0.45 }],
      "s6-first": [{ firstAcquiredSeconds: 0.3, seconds: 1 }],
    }),
  );
  t.deepEqual(row(rows, "1 · 2 peers, 256 MiB: transfer goodput"), [
    "81.0 MB/s",
    "100.0 MB/s (195 k datagrams/s)",
    "0.81×",
    `≥ ${TARGETS.rawShare}×`,
    "yes",
  ]);
  t.deepEqual(row(rows, "1 · CPU per chunk").slice(0, 1).concat(row(rows, "1 · CPU per chunk").slice(3)), [
    "13.0 µs (peers alone 12.0 µs)",
    "≤ 14 µs",
    "yes",
  ]);
  t.deepEqual(row(rows, "2 · 4 peers × 10 MiB").slice(2), ["0.75×", "≤ 0.75×", "yes"]);
  t.deepEqual(row(rows, "2 · the same vs aria2c, one torrent per file").slice(2), ["0.60×", "—", "—"]);
  t.deepEqual(row(rows, "2 · CPU per chunk").slice(3), ["≤ 14 µs", "**no**"]);
  t.deepEqual(row(rows, "3 · 8 peers × 4 MiB").slice(2), ["1.00×", "≤ 0.9×", "**no**"]);
  t.deepEqual(row(rows, "4 · 64 MiB: transfer goodput at 10% (kernel loss)").slice(2), ["0.82×", "≥ 0.81×", "yes"]);
  t.deepEqual(row(rows, "4 · 64 MiB: transfer goodput at 30% (kernel loss)").slice(2), ["0.62×", "≥ 0.63×", "**no**"]);
  t.deepEqual(row(rows, "4 · datagrams sent per unique chunk at 30% (kernel loss)").slice(3), [
    "≤ 1.0× bound",
    "**no**",
  ]);
  t.deepEqual(row(rows, "4 · tail: 99% → 100% of the chunks at 10% (kernel loss)"), [
    "50 ms = 2.5 RTO",
    "RTO 20.0 ms (downloader's, at exit)",
    "2.5 RTO",
    "≤ 2 RTO",
    "**no**",
  ]);
  t.deepEqual(row(rows, "5 · 2 peers, 1 GiB: peak RSS").slice(3), ["< 100 MB each", "yes"]);
  t.deepEqual(row(rows, "6 · a peer offering one 1 GiB file"), ["0.45 s", "—", "—", "≤ 0.5 s", "yes"]);
  t.deepEqual(row(rows, "6 · small-file swarm"), ["0.30 s", "—", "—", "≤ 0.25 s", "**no**"]);
});

test("a target whose figure is missing says so instead of yes or no", (t) => {
  const rows = targets(report({ s1: [twoPeer(50, Number.NaN)], "s6-first": [{ seconds: 1 }] }));
  t.deepEqual(row(rows, "1 · 2 peers, 256 MiB: transfer goodput").slice(1), [
    "— (raw ceiling not run)",
    "—",
    "≥ 0.8×",
    "—",
  ]);
  t.deepEqual(row(rows, "1 · CPU per chunk").slice(4), ["—"]);
  t.deepEqual(row(rows, "6 · small-file swarm").slice(4), ["—"]);
});
