/**
 * What the benchmark measures: each case runs once per round and returns one sample
 * (named numbers; NaN where a figure is unavailable). Rounds interleave the cases, so a
 * change of machine load during the run affects udpswarm and its references alike.
 */
import path from "node:path";
import { measureAria2Swarm } from "./bittorrent.js";
import { type InputFile, makeRandomFile, mkdirp } from "./files.js";
import type { LossNamespace } from "./netns.js";
import { measureRawTcp } from "./raw-tcp.js";
import { measureRawUdp } from "./raw-udp.js";
import { chunksOf, type PeerOutcome, runSwarm, type SwarmPeer } from "./swarm.js";
import { measureTftp } from "./tftp.js";
import { MB, MiB, sizeText } from "./util.js";

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
  readonly s1Bytes: number;
  readonly s2Peers: number;
  readonly s2Bytes: number;
  readonly s3Peers: number;
  readonly s3Bytes: number;
  readonly s5Bytes: number;
  /** Loss rates of scenario 4 besides 0. */
  readonly losses: readonly number[];
};

export function settingsFor(quick: boolean, runs: number | undefined): Settings {
  const n = runs ?? (quick ? 1 : 5);
  return quick
    ? {
        quick,
        runs: n,
        bigRuns: n,
        rawSeconds: 1,
        s1Bytes: 8 * MiB,
        s2Peers: 4,
        s2Bytes: MiB,
        s3Peers: 8,
        s3Bytes: MiB / 2,
        s5Bytes: 64 * MiB,
        losses: [0.1, 0.3],
      }
    : {
        quick,
        runs: n,
        bigRuns: Math.min(n, 3),
        rawSeconds: 3,
        s1Bytes: 64 * MiB,
        s2Peers: 4,
        s2Bytes: 10 * MiB,
        s3Peers: 8,
        s3Bytes: 4 * MiB,
        s5Bytes: 1024 * MiB,
        losses: [0.05, 0.1, 0.2, 0.3],
      };
}

/** Seconds a seeder stays at least (from its connect): covers the downloaders' start-up. */
const SEEDER_MIN_ALIVE = 3;
/** MIN_ALIVE of the all-to-all peers: every peer must have joined before the first may leave. */
const SWARM_MIN_ALIVE = 5;

/** Bound of one transfer: generous, so a slow run is measured, yet a stuck one ends. */
function transferTimeoutMs(bytesMoved: number): number {
  return Math.min(600_000, 60_000 + (bytesMoved / (2 * MB)) * 1000);
}

const pct = (p: number) => Math.round(p * 100);

export type Inputs = {
  readonly s1?: InputFile;
  readonly s2?: readonly InputFile[];
  readonly s3?: readonly InputFile[];
  readonly s5?: InputFile;
};

/** Generates the random input files the selected scenarios need. */
export function makeInputs(dir: string, s: Settings, scenarios: ReadonlySet<number>): Inputs {
  mkdirp(dir);
  const many = (prefix: string, count: number, size: number) =>
    Array.from({ length: count }, (_, i) => makeRandomFile(dir, `${prefix}-${i + 1}.bin`, size));
  return {
    ...(scenarios.has(1) || scenarios.has(4) ? { s1: makeRandomFile(dir, "two-peers.bin", s.s1Bytes) } : {}),
    ...(scenarios.has(2) ? { s2: many("four", s.s2Peers, s.s2Bytes) } : {}),
    ...(scenarios.has(3) ? { s3: many("eight", s.s3Peers, s.s3Bytes) } : {}),
    ...(scenarios.has(5) ? { s5: makeRandomFile(dir, "big.bin", s.s5Bytes) } : {}),
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

/** The metrics of a two-peer transfer (scenarios 1, 4 and 5). */
function twoPeerSample(file: InputFile, seconds: number, peers: readonly PeerOutcome[]): Sample {
  const seeder = peers.find((p) => !p.timed);
  const downloader = peers.find((p) => p.timed);
  const chunks = chunksOf(file);
  const share = (p: PeerOutcome | undefined) => (p?.cpuSeconds ?? Number.NaN) / seconds;
  const sent = (seeder?.stats?.datagramsSent ?? Number.NaN) + (downloader?.stats?.datagramsSent ?? Number.NaN);
  return {
    seconds,
    MBps: file.size / seconds / MB,
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
  return twoPeerSample(file, r.seconds, r.peers);
}

async function allToAll(dir: string, files: readonly InputFile[]): Promise<Sample> {
  const peers = files.map((f, i): SwarmPeer => ({ label: `peer${i + 1}`, files: [f], minAlive: SWARM_MIN_ALIVE }));
  const moved = files.reduce((s, f) => s + f.size, 0) * (files.length - 1);
  const r = await runSwarm({ dir, seeders: [], timed: peers, timeoutMs: transferTimeoutMs(moved) });
  const cpu = r.peers.reduce((s, p) => s + (p.cpuSeconds ?? Number.NaN), 0);
  return { seconds: r.seconds, cpuSeconds: cpu };
}

export function buildCases(o: Options): Case[] {
  const s = o.settings;
  const cases: Case[] = [];
  const { s1, s2, s3, s5 } = o.inputs;
  const runs = s.runs;
  const has = (n: number) => o.scenarios.has(n);
  if (s1 !== undefined && has(1)) {
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
        };
      },
    });
  }
  if (s1 !== undefined) {
    cases.push({
      id: "s1",
      title: `udpswarm, 2 peers, one ${sizeText(s1.size)} file`,
      runs,
      run: (dir) => twoPeers(dir, s1, [], undefined),
    });
  }
  if (s1 !== undefined && has(1) && o.tftp) {
    const tftpTimeout = transferTimeoutMs(s1.size * 2);
    cases.push({
      id: "tftp",
      title: `TFTP: atftp fetching ${sizeText(s1.size)} from atftpd, 512-byte blocks`,
      runs,
      run: async (dir) => {
        const r = await measureTftp(s1, dir, undefined, tftpTimeout);
        return { seconds: r.seconds, MBps: r.MBps };
      },
    });
    cases.push({
      id: "tftp-w16",
      title: `TFTP: the same with windowsize 16 (RFC 7440)`,
      runs,
      run: async (dir) => {
        const r = await measureTftp(s1, dir, 16, tftpTimeout);
        return { seconds: r.seconds, MBps: r.MBps };
      },
    });
  }
  if (s1 !== undefined && has(1)) {
    cases.push({
      id: "raw-tcp",
      title: `raw TCP stream between two Node processes for ${s.rawSeconds} s`,
      runs,
      run: async (dir) => ({ MBps: (await measureRawTcp(s.rawSeconds, dir)).MBps }),
    });
  }
  for (const [n, files] of [
    [2, s2],
    [3, s3],
  ] as const) {
    if (files === undefined) continue;
    const what = `${files.length} peers × ${sizeText(files[0]?.size ?? 0)}, each starting with its own file`;
    cases.push({ id: `s${n}`, title: `udpswarm, ${what}`, runs, run: (dir) => allToAll(dir, files) });
    if (o.bittorrent) {
      cases.push({
        id: `s${n}-aria2c`,
        title: `BitTorrent: aria2c + opentracker, ${what}`,
        runs,
        run: async (dir) => ({ seconds: (await measureAria2Swarm(files, dir, 120_000)).seconds }),
      });
    }
  }
  if (s1 !== undefined && has(4)) {
    for (const p of s.losses) {
      cases.push({
        id: `s4-app-${pct(p)}`,
        title: `udpswarm, scenario 1 with --loss ${p} on the downloader (in-process, both directions)`,
        runs,
        run: (dir, round) => twoPeers(dir, s1, ["--loss", String(p), "--seed", String(round + 1)], undefined),
      });
    }
    const ns = o.netns;
    if (ns !== undefined) {
      for (const p of [0, ...s.losses]) {
        cases.push({
          id: `s4-kernel-${pct(p)}`,
          title: `udpswarm, scenario 1 in a network namespace dropping ${pct(p)}% of UDP on lo (iptables)`,
          runs,
          run: (dir) => {
            ns.setLoss(p);
            return twoPeers(dir, s1, [], ns);
          },
        });
      }
    }
  }
  if (s5 !== undefined) {
    cases.push({
      id: "s5",
      title: `udpswarm, 2 peers, one ${sizeText(s5.size)} file: peak RSS`,
      runs: s.bigRuns,
      run: (dir) => twoPeers(dir, s5, [], undefined),
    });
  }
  return cases;
}

export function runDir(root: string, id: string, round: number, attempt: number): string {
  return mkdirp(path.join(root, `${id}-r${round + 1}-a${attempt + 1}`));
}
