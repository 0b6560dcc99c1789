/** Turns the samples into the Markdown report and the loss chart. */
import type { Case, Sample, Settings } from "./scenarios.js";
import { type ChartPoint, type ChartSeries, lineChart } from "./svg.js";
import { fmt, median, minMax, sizeText } from "./util.js";

export type CaseOutcome = { readonly c: Case; readonly samples: Sample[]; readonly failures: string[] };

export type ReportInput = {
  readonly settings: Settings;
  readonly outcomes: ReadonlyMap<string, CaseOutcome>;
  readonly command: string;
  readonly date: string;
  readonly machine: string;
  readonly commit: string;
  readonly loadBefore: readonly number[];
  readonly loadAfter: readonly number[];
  readonly cores: number;
  /** Cores used on average by other processes while the cases ran. */
  readonly otherCores: number | undefined;
  /** One line per tool found, and per reference or mode skipped (with how to install). */
  readonly toolLines: readonly string[];
  readonly chartFile: string | undefined;
  /** The scenarios selected (--only). */
  readonly scenarios: ReadonlySet<number>;
};

/** Above this many cores used by other processes on average, the report calls the run noisy. */
const NOISE_CORES = 0.2;

const TARGET_LOSS: ReadonlyMap<number, number> = new Map([
  [10, 0.81],
  [30, 0.63],
]);

export class Figures {
  constructor(readonly outcomes: ReadonlyMap<string, CaseOutcome>) {}

  values(id: string, metric: string): number[] {
    return (this.outcomes.get(id)?.samples ?? []).map((s) => s[metric] ?? Number.NaN);
  }

  med(id: string, metric: string): number | undefined {
    return median(this.values(id, metric));
  }

  range(id: string, metric: string): [number, number] | undefined {
    return minMax(this.values(id, metric));
  }

  has(id: string): boolean {
    return this.outcomes.has(id);
  }

  runs(id: string): string {
    const o = this.outcomes.get(id);
    if (o === undefined) return "—";
    return `${o.samples.length}/${o.samples.length + o.failures.length}`;
  }
}

function ratio(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined || b === undefined || b === 0 ? undefined : a / b;
}

function met(value: number | undefined, ok: (v: number) => boolean): string {
  return value === undefined ? "—" : ok(value) ? "yes" : "**no**";
}

/** A value with its unit, or "—". */
const u = (v: number | undefined, d: number, unit: string) => (v === undefined ? "—" : `${fmt(v, d)} ${unit}`);
const x = (v: number | undefined, d = 2) => (v === undefined ? "—" : `${fmt(v, d)}×`);
const percent = (v: number | undefined) => (v === undefined ? "—" : `${fmt(v * 100, 0)}%`);

function table(head: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]) => `| ${cells.join(" | ")} |`;
  return [line(head), line(head.map(() => "---")), ...rows.map(line)].join("\n");
}

/** Loss rates (percent) measured, with the mode ids present. */
function lossPoints(s: Settings): number[] {
  return [0, ...s.losses.map((p) => Math.round(p * 100))];
}

function lossCaseId(mode: "app" | "kernel", p: number): string {
  return `s4-${mode}-${p}`;
}

/** The targets of issue 10 (and the earlier ones still shown). */
export const TARGETS = {
  /** Scenario 1: transfer goodput ≥ this share of the raw dgram ceiling. */
  rawShare: 0.8,
  /** CPU per chunk delivered, all processes, µs (scenarios 1 and 2). */
  cpuUsPerChunk: 14,
  /** Scenario 2 and 3 time ≤ this multiple of the multi-file-torrent aria2c reference. */
  aria2c: new Map([
    [2, 0.75],
    [3, 0.9],
  ]),
  /** Scenario 4: goodput vs TFTP with 512-byte blocks. */
  tftp: 2.5,
  /** Scenario 4: 99% → 100% of the chunks within this many RTOs. */
  tailRto: 2,
  /** Scenario 5: peak RSS per peer, MB. */
  rssMB: 100,
  /** Scenario 6: spawn to CONNECT of a 1 GiB seeder, and spawn to first ACQUIRED of a small swarm, s. */
  listedSeconds: 0.5,
  firstAcquiredSeconds: 0.25,
} as const;

/** A row without a target: what, udpswarm's figure, and the reference and ratio if any. */
const info = (what: string, ours: string, ref = "—", r = "—"): string[] => [what, ours, ref, r, "—", "—"];

/** A row with an upper bound and no reference: seconds of start-up. */
function atMostRow(what: string, seconds: number | undefined, limit: number): string[] {
  return [what, u(seconds, 2, "s"), "—", "—", `≤ ${limit} s`, met(seconds, (v) => v <= limit)];
}

function scenario1Rows(f: Figures, s: Settings): string[][] {
  const rows: string[][] = [];
  if (!f.has("s1")) return rows;
  const size = sizeText(s.s1Bytes);
  const raw = f.med("raw-udp", "chunkMBps");
  const dps = f.med("raw-udp", "datagramsPerSecond");
  const rawText =
    raw === undefined
      ? "— (raw ceiling not run)"
      : `${u(raw, 1, "MB/s")} (${fmt(dps === undefined ? undefined : dps / 1000, 0)} k datagrams/s)`;
  const transfer = f.med("s1", "transferMBps");
  const r = ratio(transfer, raw);
  rows.push([
    `1 · 2 peers, ${size}: transfer goodput (first ACQUIRED → whole) vs raw Node dgram ceiling`,
    u(transfer, 1, "MB/s"),
    rawText,
    x(r),
    `≥ ${TARGETS.rawShare}×`,
    met(r, (v) => v >= TARGETS.rawShare),
  ]);
  const spawn = f.med("s1", "MBps");
  rows.push(info(`1 · the same, spawn → whole goodput`, u(spawn, 1, "MB/s"), rawText, x(ratio(spawn, raw))));
  rows.push(cpuRow(f, "s1", `1 · CPU per chunk delivered (peers + tracker, whole life)`, true));
  if (f.has("engine")) {
    const e = f.med("engine", "cpuUsPerChunk");
    rows.push(info(`1 · the transfer engine alone, CPU per chunk (no kernel; bench:engine)`, u(e, 2, "µs")));
  }
  if (f.has("raw-tcp")) {
    const t = f.med("raw-tcp", "MBps");
    rows.push(
      info(`1 · transfer goodput vs Node TCP stream`, u(transfer, 1, "MB/s"), u(t, 1, "MB/s"), x(ratio(transfer, t))),
    );
  }
  return rows;
}

/** µs of CPU per chunk delivered, against the raw blast's µs per datagram (send + receive). */
function cpuRow(f: Figures, id: string, what: string, targeted: boolean): string[] {
  const us = f.med(id, "cpuUsPerChunk");
  const raw = f.med("raw-udp", "cpuUsPerDatagram");
  return [
    what,
    `${u(us, 1, "µs")} (peers alone ${u(f.med(id, "peersCpuUsPerChunk"), 1, "µs")})`,
    raw === undefined ? "— (raw blast not run)" : `raw blast ${u(raw, 1, "µs")} per datagram (send + receive)`,
    x(ratio(us, raw)),
    targeted ? `≤ ${TARGETS.cpuUsPerChunk} µs` : "—",
    targeted ? met(us, (v) => v <= TARGETS.cpuUsPerChunk) : "—",
  ];
}

function swarmRows(f: Figures, s: Settings): string[][] {
  const rows: string[][] = [];
  for (const n of [2, 3]) {
    const id = `s${n}`;
    if (!f.has(id)) continue;
    const label = `${n} · ${n === 2 ? s.s2Peers : s.s3Peers} peers × ${sizeText(n === 2 ? s.s2Bytes : s.s3Bytes)}`;
    const ours = f.med(id, "seconds");
    const target = TARGETS.aria2c.get(n) ?? Number.NaN;
    const multi = f.med(`${id}-aria2c`, "seconds");
    const r = ratio(ours, multi);
    rows.push([
      `${label}, everyone gets everything: time vs aria2c, one multi-file torrent`,
      u(ours, 2, "s"),
      f.has(`${id}-aria2c`) ? `aria2c ${u(multi, 2, "s")}` : "— (aria2c not run)",
      x(r),
      `≤ ${target}×`,
      met(r, (v) => v <= target),
    ]);
    if (f.has(`${id}-aria2c-per-file`)) {
      const perFile = f.med(`${id}-aria2c-per-file`, "seconds");
      const what = `${n} · the same vs aria2c, one torrent per file (earlier reference)`;
      rows.push(info(what, u(ours, 2, "s"), `aria2c ${u(perFile, 2, "s")}`, x(ratio(ours, perFile))));
    }
    rows.push(cpuRow(f, id, `${n} · CPU per chunk delivered (peers + tracker, whole life)`, n === 2));
  }
  return rows;
}

function lossSummaryRows(f: Figures, s: Settings): string[][] {
  const rows: string[][] = [];
  const size = sizeText(s.s4Bytes);
  for (const mode of ["kernel", "app"] as const) {
    const how = mode === "app" ? "--loss" : "kernel loss";
    const base = f.med(lossCaseId(mode, 0), "transferMBps");
    for (const p of lossPoints(s)) {
      const id = lossCaseId(mode, p);
      if (!f.has(id)) continue;
      const target = TARGET_LOSS.get(p);
      if (p > 0) {
        const g = f.med(id, "transferMBps");
        const r = ratio(g, base);
        rows.push([
          `4 · ${size}: transfer goodput at ${p}% (${how}) vs 0%`,
          u(g, 1, "MB/s"),
          u(base, 1, "MB/s"),
          x(r),
          target === undefined ? "—" : `≥ ${target}×`,
          target === undefined ? "—" : met(r, (v) => v >= target),
        ]);
        const dpc = f.med(id, "datagramsPerChunk");
        const bound = 1.05 / (1 - p / 100);
        rows.push([
          `4 · datagrams sent per unique chunk at ${p}% (${how})`,
          fmt(dpc, 3),
          `bound 1.05/(1−p) = ${fmt(bound, 3)}`,
          x(ratio(dpc, bound)),
          "≤ 1.0× bound",
          met(dpc, (v) => v <= bound),
        ]);
      }
      const tail = f.med(id, "tailRto");
      rows.push([
        `4 · tail: 99% → 100% of the chunks at ${p}% (${how})`,
        `${u(f.med(id, "tailMs"), 0, "ms")} = ${u(tail, 1, "RTO")}`,
        `RTO ${u(f.med(id, "rtoMs"), 1, "ms")} (downloader's, at exit)`,
        tail === undefined ? "—" : `${fmt(tail, 1)} RTO`,
        `≤ ${TARGETS.tailRto} RTO`,
        met(tail, (v) => v <= TARGETS.tailRto),
      ]);
    }
  }
  const plain = f.med(lossCaseId("app", 0), "MBps");
  for (const [id, what, target] of [
    ["tftp", "512-byte blocks", TARGETS.tftp],
    ["tftp-w16", "windowsize 16", undefined],
  ] as const) {
    if (!f.has(id)) continue;
    const t = f.med(id, "MBps");
    const r = ratio(plain, t);
    rows.push([
      `4 · ${size} without loss, spawn → whole goodput vs TFTP, ${what}`,
      u(plain, 1, "MB/s"),
      u(t, 1, "MB/s"),
      x(r),
      target === undefined ? "—" : `≥ ${target}×`,
      target === undefined ? "—" : met(r, (v) => v >= target),
    ]);
  }
  return rows;
}

function startRows(f: Figures, s: Settings): string[][] {
  const rows: string[][] = [];
  if (f.has("s5")) {
    const seed = f.med("s5", "rssSeederMB");
    const dl = f.med("s5", "rssDownloaderMB");
    rows.push([
      `5 · 2 peers, ${sizeText(s.s5Bytes)}: peak RSS, seeder / downloader`,
      `${fmt(seed, 1)} / ${fmt(dl, 1)} MB`,
      "—",
      "—",
      `< ${TARGETS.rssMB} MB each`,
      met(seed === undefined || dl === undefined ? undefined : Math.max(seed, dl), (v) => v < TARGETS.rssMB),
    ]);
    rows.push(
      info(
        `5 · goodput of that transfer, spawn → whole / transfer phase`,
        `${u(f.med("s5", "MBps"), 1, "MB/s")} / ${u(f.med("s5", "transferMBps"), 1, "MB/s")}`,
      ),
    );
  }
  if (f.has("s6-listed")) {
    const t = f.med("s6-listed", "seconds");
    const what = `6 · a peer offering one ${sizeText(s.s5Bytes)} file: spawn → its CONNECT block on the tracker`;
    rows.push(atMostRow(what, t, TARGETS.listedSeconds));
  }
  if (f.has("s6-first")) {
    const t = f.med("s6-first", "firstAcquiredSeconds");
    const what = `6 · small-file swarm, ${s.s6Peers} peers × ${sizeText(s.s6Bytes)}: spawn → first ACQUIRED line`;
    rows.push(atMostRow(what, t, TARGETS.firstAcquiredSeconds));
  }
  return rows;
}

export function summaryRows(f: Figures, s: Settings): string[][] {
  return [...scenario1Rows(f, s), ...swarmRows(f, s), ...lossSummaryRows(f, s), ...startRows(f, s)];
}

function lossRows(f: Figures, s: Settings): string[][] {
  const rows: string[][] = [];
  for (const mode of ["app", "kernel"] as const) {
    const base = f.med(lossCaseId(mode, 0), "transferMBps");
    for (const p of lossPoints(s)) {
      const id = lossCaseId(mode, p);
      if (!f.has(id)) continue;
      const g = f.med(id, "transferMBps");
      const range = f.range(id, "transferMBps");
      const target = TARGET_LOSS.get(p);
      rows.push([
        `${p}%`,
        mode === "app" ? "--loss (in-process)" : "kernel (netns + iptables)",
        f.runs(id),
        fmt(g, 1),
        range === undefined ? "—" : `${fmt(range[0], 1)}–${fmt(range[1], 1)}`,
        x(ratio(g, base)),
        target === undefined ? "—" : `≥ ${target}×`,
        fmt(f.med(id, "datagramsPerChunk"), 3),
        fmt(1.05 / (1 - p / 100), 3),
        fmt(f.med(id, "chunkDatagramsPerChunk"), 3),
        fmt(f.med(id, "retransmissions"), 0),
        fmt(f.med(id, "duplicates"), 0),
        fmt(f.med(id, "srttMs"), 1),
        fmt(f.med(id, "rtoMs"), 1),
        fmt(f.med(id, "tailMs"), 0),
        fmt(f.med(id, "tailRto"), 1),
      ]);
    }
  }
  return rows;
}

/** The primary figure of each case, then its other figures. */
function detail(f: Figures, id: string): [string, string, string] {
  const one = (metric: string, d: number, unit: string): [string, string] => {
    const r = f.range(id, metric);
    return [u(f.med(id, metric), d, unit), r === undefined ? "—" : `${fmt(r[0], d)}–${fmt(r[1], d)}`];
  };
  const cpu = () =>
    `CPU of peers + tracker ${u(f.med(id, "cpuSeconds"), 2, "s")} (tracker ${u(f.med(id, "trackerCpuSeconds"), 2, "s")}), ${u(f.med(id, "cpuUsPerChunk"), 1, "µs")} per chunk delivered`;
  if (id === "raw-udp") {
    const [m, r] = one("chunkMBps", 1, "MB/s");
    const dps = f.med(id, "datagramsPerSecond");
    return [
      m,
      r,
      `${fmt(dps === undefined ? undefined : dps / 1000, 0)} k datagrams/s received; ${fmt((f.med(id, "socketLoss") ?? Number.NaN) * 100, 1)}% of those sent dropped at the receiving socket; CPU ${u(f.med(id, "cpuUsPerDatagram"), 1, "µs")} per datagram received (sender + receiver)`,
    ];
  }
  if (id === "raw-tcp" || id.startsWith("tftp")) {
    const [m, r] = one("MBps", 1, "MB/s");
    return [m, r, id === "raw-tcp" ? "" : u(f.med(id, "seconds"), 2, "s")];
  }
  if (id === "engine") {
    const [m, r] = one("cpuUsPerChunk", 2, "µs/chunk");
    return [m, r, "user-space CPU of sender and receiver engines, no sockets"];
  }
  if (id.includes("-aria2c")) {
    const [m, r] = one("seconds", 2, "s");
    return [m, r, ""];
  }
  if (id === "s6-listed") {
    const [m, r] = one("seconds", 2, "s");
    return [m, r, ""];
  }
  if (id === "s2" || id === "s3" || id === "s6-first") {
    const [m, r] = id === "s6-first" ? one("firstAcquiredSeconds", 2, "s") : one("seconds", 2, "s");
    const other =
      id === "s6-first"
        ? `every copy whole after ${u(f.med(id, "seconds"), 2, "s")}`
        : `first ACQUIRED after ${u(f.med(id, "firstAcquiredSeconds"), 2, "s")}`;
    const whole = `last copy whole ${u(f.med(id, "wholeAfterLastLineMs"), 0, "ms")} after the last ACQUIRED line`;
    return [m, r, `${other}; ${whole}; ${cpu()}`];
  }
  const [m, r] = one("transferMBps", 1, "MB/s");
  const rest = [
    `transfer phase ${u(f.med(id, "transferSeconds"), 2, "s")}`,
    `spawn → whole ${u(f.med(id, "seconds"), 2, "s")} = ${u(f.med(id, "MBps"), 1, "MB/s")}`,
    `first ACQUIRED after ${u(f.med(id, "firstAcquiredSeconds"), 2, "s")}`,
    cpu(),
    `CPU during the transfer: seeder ${percent(f.med(id, "cpuSeeder"))}, downloader ${percent(f.med(id, "cpuDownloader"))} of a core`,
    `${fmt(f.med(id, "datagramsPerChunk"), 3)} datagrams/chunk`,
    `${fmt(f.med(id, "retransmissions"), 0)} retransmissions`,
    `tail 99→100% ${u(f.med(id, "tailMs"), 0, "ms")} (RTO ${u(f.med(id, "rtoMs"), 1, "ms")})`,
    `last copy whole ${u(f.med(id, "wholeAfterLastLineMs"), 0, "ms")} after the last ACQUIRED line`,
    `peak RSS ${fmt(f.med(id, "rssSeederMB"), 1)} / ${fmt(f.med(id, "rssDownloaderMB"), 1)} MB`,
  ];
  return [m, r, rest.join("; ")];
}

export function markdown(input: ReportInput): string {
  const s = input.settings;
  const f = new Figures(input.outcomes);
  const load = (l: readonly number[]) => l.map((v) => v.toFixed(2)).join(", ");
  // The benchmark loads the machine itself: what counts is what the other processes used.
  const others = input.otherCores;
  const busy = others === undefined ? (input.loadBefore[0] ?? 0) > 1.5 : others > NOISE_CORES;
  const out: string[] = [];
  out.push(
    `# udpswarm benchmark${s.quick ? " (quick smoke run: small files, one run each)" : ""}`,
    "",
    `- Command: \`${input.command}\``,
    `- Date: ${input.date}; commit ${input.commit}`,
    `- Machine: ${input.machine}`,
    `- Load average (1, 5, 15 min) before: ${load(input.loadBefore)}; after: ${load(input.loadAfter)}`,
    `- Other processes used ${others === undefined ? "—" : others.toFixed(2)} of the ${input.cores} cores on average during the runs (/proc/stat minus the benchmark's own processes)`,
    `- Medians of up to ${s.runs} interleaved runs per case (scenario 5: ${s.bigRuns}); every copy checked with SHA-256. MB = 10^6 bytes; MiB = 2^20.`,
    ...input.toolLines.map((l) => `- ${l}`),
  );
  if (s.quick) {
    out.push(
      "",
      "> **Quick run:** small files and one run per case, to check that everything works; start-up dominates, so the ratios say little. The targets are for the full run.",
    );
  }
  if (busy) {
    out.push(
      "",
      `> **Noisy:** other processes ${others === undefined ? "loaded the machine (load average above 1.5 at the start)" : `used ${others.toFixed(2)} cores on average`} on this ${input.cores}-core machine during the run; absolute figures are low and spread out, ratios less so.`,
    );
  }
  out.push(
    "",
    "## Targets",
    "",
    table(["Scenario · measurement", "udpswarm", "Reference", "Ratio", "Target", "Met"], summaryRows(f, s)),
  );
  const loss = lossRows(f, s);
  if ([...input.outcomes.keys()].some((id) => id.startsWith("s4-"))) {
    out.push("", "## Scenario 4: transfer goodput against loss", "");
    if (input.chartFile !== undefined) out.push(`![goodput against loss rate](${input.chartFile})`, "");
    out.push(
      table(
        [
          "Loss",
          "Mode",
          "Runs ok",
          "Transfer goodput MB/s",
          "Min–max",
          "vs 0%",
          "Target",
          "Datagrams / unique chunk",
          "Bound 1.05/(1−p)",
          "Chunk datagrams / chunk",
          "Retransmissions",
          "Duplicates",
          "sRTT ms",
          "RTO ms",
          "Tail 99→100% ms",
          "Tail in RTOs",
        ],
        loss,
      ),
    );
  }
  out.push(
    "",
    "## Every case",
    "",
    table(
      ["Case", "What", "Runs ok", "Median", "Min–max", "Other figures (medians)"],
      [...input.outcomes.values()].map((o) => {
        const [m, r, rest] = detail(f, o.c.id);
        return [`\`${o.c.id}\``, o.c.title, f.runs(o.c.id), m, r, rest];
      }),
    ),
  );
  const failures = [...input.outcomes.values()].flatMap((o) => o.failures.map((e) => `- \`${o.c.id}\`: ${e}`));
  if (failures.length > 0) {
    out.push("", "## Failed runs", "", ...failures.map((l) => l.replace(/\n/g, "\n  ")));
  }
  return `${out.join("\n")}\n`;
}

/** The loss chart, or undefined when scenario 4 was not run. */
export function lossChart(input: ReportInput): string | undefined {
  const f = new Figures(input.outcomes);
  const s = input.settings;
  const series: ChartSeries[] = [];
  const modes = [
    { mode: "app", label: "--loss (in-process)", color: "#1f77b4" },
    { mode: "kernel", label: "kernel (netns iptables)", color: "#2ca02c" },
  ] as const;
  for (const { mode, label, color } of modes) {
    const points: ChartPoint[] = [];
    for (const p of lossPoints(s)) {
      const id = lossCaseId(mode, p);
      const y = f.med(id, "transferMBps");
      const r = f.range(id, "transferMBps");
      if (y !== undefined) points.push({ x: p, y, ...(r === undefined ? {} : { low: r[0], high: r[1] }) });
    }
    if (points.length > 0) series.push({ label, color, points });
  }
  if (!series.some((x) => x.points.length > 1)) return undefined;
  const base = f.med(lossCaseId("app", 0), "transferMBps");
  const targets =
    base === undefined
      ? []
      : [...TARGET_LOSS].filter(([p]) => f.has(lossCaseId("app", p))).map(([p, t]) => ({ x: p, y: base * t }));
  return lineChart({
    title: `udpswarm: transfer goodput against loss (2 peers, ${sizeText(s.s4Bytes)})`,
    xLabel: "loss rate (%)",
    yLabel: "goodput (MB/s)",
    series,
    targets: { label: "target (--loss)", points: targets },
  });
}
