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

class Figures {
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
  return mode === "app" && p === 0 ? "s1" : `s4-${mode}-${p}`;
}

function summaryRows(f: Figures, s: Settings, scenarios: ReadonlySet<number>): string[][] {
  const rows: string[][] = [];
  const s1 = f.med("s1", "MBps");
  const size = sizeText(s.s1Bytes);
  if (f.has("raw-udp")) {
    const raw = f.med("raw-udp", "chunkMBps");
    const r = ratio(s1, raw);
    const dps = f.med("raw-udp", "datagramsPerSecond");
    rows.push([
      `1 · 2 peers, ${size}: goodput vs raw Node UDP ceiling`,
      u(s1, 1, "MB/s"),
      `${fmt(raw, 1)} MB/s (${fmt(dps === undefined ? undefined : dps / 1000, 0)} k datagrams/s)`,
      x(r),
      "≥ 0.5×",
      met(r, (v) => v >= 0.5),
    ]);
  }
  if (f.has("tftp")) {
    const t = f.med("tftp", "MBps");
    const r = ratio(s1, t);
    rows.push([
      `1 · goodput vs TFTP, 512-byte blocks`,
      u(s1, 1, "MB/s"),
      u(t, 1, "MB/s"),
      x(r),
      "≥ 2.5×",
      met(r, (v) => v >= 2.5),
    ]);
  }
  if (f.has("tftp-w16")) {
    const t = f.med("tftp-w16", "MBps");
    rows.push([`1 · goodput vs TFTP, windowsize 16`, u(s1, 1, "MB/s"), u(t, 1, "MB/s"), x(ratio(s1, t)), "—", "—"]);
  }
  if (f.has("raw-tcp")) {
    const t = f.med("raw-tcp", "MBps");
    rows.push([`1 · goodput vs Node TCP stream`, u(s1, 1, "MB/s"), u(t, 1, "MB/s"), x(ratio(s1, t)), "—", "—"]);
  }
  if (scenarios.has(1) && f.has("s1")) {
    rows.push([
      `1 · CPU during the transfer, seeder / downloader`,
      `${percent(f.med("s1", "cpuSeeder"))} / ${percent(f.med("s1", "cpuDownloader"))} of a core`,
      "—",
      "—",
      "—",
      "—",
    ]);
  }
  for (const n of [2, 3]) {
    const id = `s${n}`;
    if (!f.has(id)) continue;
    const peers = n === 2 ? s.s2Peers : s.s3Peers;
    const bytes = n === 2 ? s.s2Bytes : s.s3Bytes;
    const ours = f.med(id, "seconds");
    const ref = f.med(`${id}-aria2c`, "seconds");
    const r = ratio(ours, ref);
    rows.push([
      `${n} · ${peers} peers × ${sizeText(bytes)}, everyone gets everything: time`,
      u(ours, 2, "s"),
      f.has(`${id}-aria2c`) ? `aria2c ${u(ref, 2, "s")}` : "— (aria2c not run)",
      x(r),
      n === 2 ? "≤ 1.0×" : "—",
      n === 2 ? met(r, (v) => v <= 1.0) : "—",
    ]);
  }
  for (const mode of ["app", "kernel"] as const) {
    const base = f.med(lossCaseId(mode, 0), "MBps");
    for (const [p, target] of TARGET_LOSS) {
      const id = lossCaseId(mode, p);
      if (!f.has(id)) continue;
      const g = f.med(id, "MBps");
      const r = ratio(g, base);
      const how = mode === "app" ? "--loss" : "kernel loss";
      rows.push([
        `4 · goodput at ${p}% loss (${how}) vs 0%`,
        u(g, 1, "MB/s"),
        u(base, 1, "MB/s"),
        x(r),
        `≥ ${target}×`,
        met(r, (v) => v >= target),
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
  }
  if (f.has("s5")) {
    const seed = f.med("s5", "rssSeederMB");
    const dl = f.med("s5", "rssDownloaderMB");
    rows.push([
      `5 · 2 peers, ${sizeText(s.s5Bytes)}: peak RSS, seeder / downloader`,
      `${fmt(seed, 1)} / ${fmt(dl, 1)} MB`,
      "—",
      "—",
      "< 100 MB each",
      met(seed === undefined || dl === undefined ? undefined : Math.max(seed, dl), (v) => v < 100),
    ]);
    rows.push([`5 · goodput of that transfer`, u(f.med("s5", "MBps"), 1, "MB/s"), "—", "—", "—", "—"]);
  }
  return rows;
}

function lossRows(f: Figures, s: Settings): string[][] {
  const rows: string[][] = [];
  for (const mode of ["app", "kernel"] as const) {
    const base = f.med(lossCaseId(mode, 0), "MBps");
    for (const p of lossPoints(s)) {
      const id = lossCaseId(mode, p);
      if (!f.has(id)) continue;
      const g = f.med(id, "MBps");
      const range = f.range(id, "MBps");
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
  if (id === "raw-udp") {
    const [m, r] = one("chunkMBps", 1, "MB/s");
    const dps = f.med(id, "datagramsPerSecond");
    return [
      m,
      r,
      `${fmt(dps === undefined ? undefined : dps / 1000, 0)} k datagrams/s received; ${fmt((f.med(id, "socketLoss") ?? Number.NaN) * 100, 1)}% of those sent dropped at the receiving socket`,
    ];
  }
  if (id === "raw-tcp" || id.startsWith("tftp")) {
    const [m, r] = one("MBps", 1, "MB/s");
    return [m, r, id === "raw-tcp" ? "" : u(f.med(id, "seconds"), 2, "s")];
  }
  if (id.endsWith("-aria2c")) {
    const [m, r] = one("seconds", 2, "s");
    return [m, r, ""];
  }
  if (id === "s2" || id === "s3") {
    const [m, r] = one("seconds", 2, "s");
    return [m, r, `CPU of all peers together ${fmt(f.med(id, "cpuSeconds"), 2)} s`];
  }
  const [m, r] = one("MBps", 1, "MB/s");
  const rest = [
    u(f.med(id, "seconds"), 2, "s"),
    `CPU seeder ${percent(f.med(id, "cpuSeeder"))}, downloader ${percent(f.med(id, "cpuDownloader"))}`,
    `${fmt(f.med(id, "datagramsPerChunk"), 3)} datagrams/chunk`,
    `${fmt(f.med(id, "retransmissions"), 0)} retransmissions`,
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
    "## Against the targets",
    "",
    table(
      ["Scenario · measurement", "udpswarm", "Reference", "Ratio", "Target", "Met"],
      summaryRows(f, s, input.scenarios),
    ),
  );
  const loss = lossRows(f, s);
  if ([...input.outcomes.keys()].some((id) => id.startsWith("s4-"))) {
    out.push("", "## Scenario 4: goodput against loss", "");
    if (input.chartFile !== undefined) out.push(`![goodput against loss rate](${input.chartFile})`, "");
    out.push(
      table(
        [
          "Loss",
          "Mode",
          "Runs ok",
          "Goodput MB/s",
          "Min–max",
          "vs 0%",
          "Target",
          "Datagrams / unique chunk",
          "Bound 1.05/(1−p)",
          "Chunk datagrams / chunk",
          "Retransmissions",
          "Duplicates",
          "sRTT ms",
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
      const y = f.med(id, "MBps");
      const r = f.range(id, "MBps");
      if (y !== undefined) points.push({ x: p, y, ...(r === undefined ? {} : { low: r[0], high: r[1] }) });
    }
    if (points.length > 0) series.push({ label, color, points });
  }
  if (!series.some((x) => x.points.length > 1)) return undefined;
  const base = f.med("s1", "MBps");
  const targets =
    base === undefined
      ? []
      : [...TARGET_LOSS].filter(([p]) => f.has(lossCaseId("app", p))).map(([p, t]) => ({ x: p, y: base * t }));
  return lineChart({
    title: `udpswarm: goodput against loss (2 peers, ${sizeText(s.s1Bytes)})`,
    xLabel: "loss rate (%)",
    yLabel: "goodput (MB/s)",
    series,
    targets: { label: "target (--loss)", points: targets },
  });
}
