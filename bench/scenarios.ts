/**
 * What the benchmark measures: each case runs once per round and returns one sample
 * (named numbers; NaN where a figure is unavailable). Rounds interleave the cases, so a
 * change of machine load during the run affects udpswarm and its references alike.
 */

import path from "node:path";
import { fileURLToPath } from "node:url";
import { measureAria2Swarm, type TorrentLayout } from "./bittorrent.js";
import { type InputFile, makeRandomFile, mkdirp } from "./files.js";
import type { LossNamespace } from "./netns.js";
import { Proc } from "./proc.js";
import { measureRawTcp } from "./raw-tcp.js";
import { measureRawUdp } from "./raw-udp.js";
import { chunksOf, type PeerOutcome, runSwarm, type SwarmPeer, type SwarmResult } from "./swarm.js";
import { measureTftp } from "./tftp.js";
import { MB, MiB, numberAt, sizeText, withTimeout } from "./util.js";

export type Sample = Readonly<Record<string, number>>;

export type Case = {
  readonly id: string;
  readonly title: string;
  readonly runs: number;
  readonly run: (dir: string, round: number) => Promise<Sample>;
};

export type Settings = {
  readonly quick: boolean;
  readonly runs: number;
  /** Runs of scenario 5 (the 1 GiB transfer). */
  readonly bigRuns: number;
  readonly rawSeconds: number;
  /** Scenario 1: one file between two peers. */
  readonly s1Bytes: number;
  readonly s2Peers: number;
  readonly s2Bytes: number;
  readonly s3Peers: number;
  readonly s3Bytes: number;
  /** Scenario 4: the file of the loss runs (and of the TFTP comparison). */
  readonly s4Bytes: number;
  /** Scenario 5 (peak RSS) and the seeder of scenario 6a. */
  readonly s5Bytes: number;
  /** Scenario 6b: a small-file swarm. */
  readonly s6Peers: number;
  readonly s6Bytes: number;
  /** Loss rates of scenario 4 besides 0. */
  readonly losses: readonly number[];
  /** The engine microbenchmark (bench/engine-cpu.ts): MiB per transfer, transfers. */
  readonly engineMiB: number;
  readonly engineRuns: number;
};

export function settingsFor(quick: boolean, runs: number | undefined): Settings {
  const n = runs ?? (quick ? 1 : 5);
  const common = { quick, runs: n, s2Peers: 4, s3Peers: 8, s6Peers: 4, s6Bytes: 64 * 1024, losses: [0.1, 0.3] };
  return quick
    ? {
        ...common,
        bigRuns: n,
        rawSeconds: 1,
        s1Bytes: 8 * MiB,
        s2Bytes: MiB,
        s3Bytes: MiB / 2,
        s4Bytes: 8 * MiB,
        s5Bytes: 64 * MiB,
        engineMiB: 4,
        engineRuns: 1,
      }
    : {
        ...common,
        bigRuns: Math.min(n, 3),
        rawSeconds: 3,
        s1Bytes: 256 * MiB,
        s2Bytes: 10 * MiB,
        s3Bytes: 4 * MiB,
        s4Bytes: 64 * MiB,
        s5Bytes: 1024 * MiB,
        engineMiB: 32,
        engineRuns: 3,
      };
}

/** Seconds a seeder stays at least (from its connect): covers the downloaders' start-up. */
const SEEDER_MIN_ALIVE = 3;
/** MIN_ALIVE of the all-to-all peers: every peer must have joined before the first may leave. */
const SWARM_MIN_ALIVE = 5;
/** The same for the small-file swarm of scenario 6, whose transfer takes a fraction of a second. */
const SMALL_SWARM_MIN_ALIVE = 3;

/** Bound of one transfer: generous, so a slow run is measured, yet a stuck one ends. */
function transferTimeoutMs(bytesMoved: number): number {
  return Math.min(600_000, 60_000 + (bytesMoved / (2 * MB)) * 1000);
}

const pct = (p: number) => Math.round(p * 100);

export type Inputs = {
  readonly s1?: InputFile;
  readonly s2?: readonly InputFile[];
  readonly s3?: readonly InputFile[];
  readonly s4?: InputFile;
  /** Scenario 5's file, also the 1 GiB seeder of scenario 6. */
  readonly big?: InputFile;
  readonly s6?: readonly InputFile[];
};

/** Generates the random input files the selected scenarios need. */
export function makeInputs(dir: string, s: Settings, scenarios: ReadonlySet<number>): Inputs {
  mkdirp(dir);
  const many = (prefix: string, count: number, size: number) =>
    Array.from({ length: count }, (_, i) => makeRandomFile(dir, `${prefix}-${i + 1}.bin`, size));
  return {
    ...(scenarios.has(1) ? { s1: makeRandomFile(dir, "two-peers.bin", s.s1Bytes) } : {}),
    ...(scenarios.has(2) ? { s2: many("four", s.s2Peers, s.s2Bytes) } : {}),
    ...(scenarios.has(3) ? { s3: many("eight", s.s3Peers, s.s3Bytes) } : {}),
    ...(scenarios.has(4) ? { s4: makeRandomFile(dir, "loss.bin", s.s4Bytes) } : {}),
    ...(scenarios.has(5) || scenarios.has(6) ? { big: makeRandomFile(dir, "big.bin", s.s5Bytes) } : {}),
    ...(scenarios.has(6) ? { s6: many("small", s.s6Peers, s.s6Bytes) } : {}),
  };
}

export type Options = {
  readonly settings: Settings;
  readonly inputs: Inputs;
  readonly tftp: boolean;
  readonly bittorrent: boolean;
  readonly netns: LossNamespace | undefined;
  readonly scenarios: ReadonlySet<number>;
};

/** CPU of every udpswarm process of the run (peers and tracker, whole life) per chunk delivered, µs. */
function cpuPerChunk(r: SwarmResult): Sample {
  const cpu = r.peersCpuSeconds + r.trackerCpuSeconds;
  return {
    cpuSeconds: cpu,
    trackerCpuSeconds: r.trackerCpuSeconds,
    chunksDelivered: r.chunksDelivered,
    cpuUsPerChunk: r.chunksDelivered > 0 ? (cpu * 1e6) / r.chunksDelivered : Number.NaN,
    peersCpuUsPerChunk: r.chunksDelivered > 0 ? (r.peersCpuSeconds * 1e6) / r.chunksDelivered : Number.NaN,
  };
}

/** The metrics of a two-peer transfer (scenarios 1, 4 and 5). */
function twoPeerSample(file: InputFile, r: SwarmResult): Sample {
  const peers = r.peers;
  const seeder = peers.find((p) => !p.timed);
  const downloader = peers.find((p) => p.timed);
  const chunks = chunksOf(file);
  const share = (p: PeerOutcome | undefined) => (p?.cpuSeconds ?? Number.NaN) / r.seconds;
  const sent = (seeder?.stats?.datagramsSent ?? Number.NaN) + (downloader?.stats?.datagramsSent ?? Number.NaN);
  const rto = downloader?.stats?.rtoMs ?? Number.NaN;
  return {
    seconds: r.seconds,
    MBps: file.size / r.seconds / MB,
    transferSeconds: r.transferSeconds,
    transferMBps: file.size / r.transferSeconds / MB,
    firstAcquiredSeconds: r.firstAcquiredSeconds,
    tailMs: r.tailMs,
    wholeAfterLastLineMs: r.wholeAfterLastLineMs,
    rtoMs: rto,
    tailRto: r.tailMs / rto,
    ...cpuPerChunk(r),
    cpuSeeder: share(seeder),
    cpuDownloader: share(downloader),
    datagramsPerChunk: sent / chunks,
    chunkDatagramsPerChunk: (seeder?.stats?.chunksSent ?? Number.NaN) / chunks,
    retransmissions: downloader?.stats?.retransmissions ?? Number.NaN,
    duplicates: downloader?.stats?.duplicates ?? Number.NaN,
    srttMs: downloader?.stats?.srttMs ?? Number.NaN,
    rssSeederMB: (seeder?.peakRssBytes ?? Number.NaN) / MB,
    rssDownloaderMB: (downloader?.peakRssBytes ?? Number.NaN) / MB,
  };
}

async function twoPeers(
  dir: string,
  file: InputFile,
  downloaderArgs: readonly string[],
  netns: LossNamespace | undefined,
): Promise<Sample> {
  const seeder: SwarmPeer = { label: "seeder", files: [file], minAlive: SEEDER_MIN_ALIVE };
  const downloader: SwarmPeer = { label: "downloader", files: [], minAlive: 0, args: downloaderArgs };
  const r = await runSwarm({
    dir,
    seeders: [seeder],
    timed: [downloader],
    netns: netns?.name,
    timeoutMs: transferTimeoutMs(file.size),
  });
  return twoPeerSample(file, r);
}

/** Every peer starts with its own file and ends with all of them; all are spawned at t0. */
async function allToAll(dir: string, files: readonly InputFile[], minAlive = SWARM_MIN_ALIVE): Promise<Sample> {
  const peers = files.map((f, i): SwarmPeer => ({ label: `peer${i + 1}`, files: [f], minAlive }));
  const moved = files.reduce((s, f) => s + f.size, 0) * (files.length - 1);
  const r = await runSwarm({ dir, seeders: [], timed: peers, timeoutMs: transferTimeoutMs(moved) });
  return {
    seconds: r.seconds,
    firstAcquiredSeconds: r.firstAcquiredSeconds,
    wholeAfterLastLineMs: r.wholeAfterLastLineMs,
    ...cpuPerChunk(r),
  };
}

/** Scenario 6a: a peer whose Shared/ holds `file`, alone: spawn to its CONNECT block. */
async function listed(dir: string, file: InputFile): Promise<Sample> {
  const peer: SwarmPeer = { label: "seeder", files: [file], minAlive: 0 };
  const r = await runSwarm({ dir, seeders: [], timed: [peer], timeoutMs: transferTimeoutMs(file.size) });
  return { seconds: r.connectedSeconds };
}

/** bench/engine-cpu.ts in a child process: the transfer engine's own CPU per chunk. */
async function engineCpu(dir: string, mib: number, runs: number): Promise<Sample> {
  const script = fileURLToPath(new URL("./engine-cpu.js", import.meta.url));
  const p = new Proc("engine-cpu", process.execPath, [script, String(mib), String(runs)], { cwd: dir });
  const e = await withTimeout(p.exited, 300_000, "engine-cpu");
  const line = p.stdoutTail.trim().split("\n").pop() ?? "";
  let json: unknown;
  try {
    json = JSON.parse(line);
  } catch {
    json = undefined;
  }
  const us = numberAt(json, "medianUsPerChunk");
  if (e.code !== 0 || us === undefined) throw new Error(`engine-cpu: ${p.describe()}`);
  return { cpuUsPerChunk: us };
}

export function buildCases(o: Options): Case[] {
  const s = o.settings;
  const cases: Case[] = [];
  const { s1, s2, s3, s4, big, s6 } = o.inputs;
  const runs = s.runs;
  const has = (n: number) => o.scenarios.has(n);
  if (s1 !== undefined) {
    cases.push({
      id: "raw-udp",
      title: `raw UDP ceiling: two Node processes, 540-byte datagrams for ${s.rawSeconds} s`,
      runs,
      run: async (dir) => {
        const r = await measureRawUdp(s.rawSeconds, dir);
        return {
          datagramsPerSecond: r.datagramsPerSecond,
          chunkMBps: r.chunkMBps,
          socketLoss: r.sent > 0 ? 1 - r.received / r.sent : Number.NaN,
          cpuUsPerDatagram: r.cpuUsPerDatagram,
        };
      },
    });
    cases.push({
      id: "s1",
      title: `udpswarm, 2 peers, one ${sizeText(s1.size)} file`,
      runs,
      run: (dir) => twoPeers(dir, s1, [], undefined),
    });
    cases.push({
      id: "raw-tcp",
      title: `raw TCP stream between two Node processes for ${s.rawSeconds} s`,
      runs,
      run: async (dir) => ({ MBps: (await measureRawTcp(s.rawSeconds, dir)).MBps }),
    });
    cases.push({
      id: "engine",
      title: `transfer engine alone (bench/engine-cpu.ts): two engines back to back in one process, ${s.engineMiB} MiB, median of ${s.engineRuns}`,
      runs,
      run: (dir) => engineCpu(dir, s.engineMiB, s.engineRuns),
    });
  }
  for (const [n, files] of [
    [2, s2],
    [3, s3],
  ] as const) {
    if (files === undefined) continue;
    const what = `${files.length} peers × ${sizeText(files[0]?.size ?? 0)}, each starting with its own file`;
    cases.push({ id: `s${n}`, title: `udpswarm, ${what}`, runs, run: (dir) => allToAll(dir, files) });
    if (!o.bittorrent) continue;
    const layouts: ReadonlyArray<readonly [TorrentLayout, string, string]> = [
      ["multi", "aria2c", "one multi-file torrent (256 KiB pieces) joined by all"],
      ["per-file", "aria2c-per-file", "one torrent per file (mktorrent's default pieces)"],
    ];
    for (const [layout, suffix, how] of layouts) {
      cases.push({
        id: `s${n}-${suffix}`,
        title: `BitTorrent: aria2c + opentracker, ${what}; ${how}`,
        runs,
        run: async (dir) => ({ seconds: (await measureAria2Swarm(files, dir, 120_000, layout)).seconds }),
      });
    }
  }
  if (s4 !== undefined) {
    for (const p of [0, ...s.losses]) {
      cases.push({
        id: `s4-app-${pct(p)}`,
        title:
          p === 0
            ? `udpswarm, 2 peers, one ${sizeText(s4.size)} file, no loss`
            : `udpswarm, the same with --loss ${p} on the downloader (in-process, both directions)`,
        runs,
        run: (dir, round) =>
          twoPeers(dir, s4, p === 0 ? [] : ["--loss", String(p), "--seed", String(round + 1)], undefined),
      });
    }
    const ns = o.netns;
    if (ns !== undefined) {
      for (const p of [0, ...s.losses]) {
        cases.push({
          id: `s4-kernel-${pct(p)}`,
          title: `udpswarm, 2 peers, ${sizeText(s4.size)}, in a network namespace dropping ${pct(p)}% of UDP on lo (iptables)`,
          runs,
          run: (dir) => {
            ns.setLoss(p);
            return twoPeers(dir, s4, [], ns);
          },
        });
      }
    }
    if (o.tftp) {
      const tftpTimeout = transferTimeoutMs(s4.size * 2);
      for (const w of [undefined, 16]) {
        cases.push({
          id: w === undefined ? "tftp" : `tftp-w${w}`,
          title:
            w === undefined
              ? `TFTP: atftp fetching ${sizeText(s4.size)} from atftpd, 512-byte blocks`
              : `TFTP: the same with windowsize ${w} (RFC 7440)`,
          runs,
          run: async (dir) => {
            const r = await measureTftp(s4, dir, w, tftpTimeout);
            return { seconds: r.seconds, MBps: r.MBps };
          },
        });
      }
    }
  }
  if (big !== undefined && has(5)) {
    cases.push({
      id: "s5",
      title: `udpswarm, 2 peers, one ${sizeText(big.size)} file: peak RSS`,
      runs: s.bigRuns,
      run: (dir) => twoPeers(dir, big, [], undefined),
    });
  }
  if (big !== undefined && s6 !== undefined) {
    cases.push({
      id: "s6-listed",
      title: `start-up: a peer whose Shared/ holds one ${sizeText(big.size)} file, alone: spawn to its CONNECT block on the tracker`,
      runs,
      run: (dir) => listed(dir, big),
    });
    cases.push({
      id: "s6-first",
      title: `start-up: ${s6.length} peers × ${sizeText(s6[0]?.size ?? 0)}, each starting with its own file, spawned together: spawn to the first ACQUIRED line`,
      runs,
      run: (dir) => allToAll(dir, s6, SMALL_SWARM_MIN_ALIVE),
    });
  }
  return cases;
}

export function runDir(root: string, id: string, round: number, attempt: number): string {
  return mkdirp(path.join(root, `${id}-r${round + 1}-a${attempt + 1}`));
}
