/**
 * `node dist/bench/cpu-breakdown.js [--peers N] [--mib M]` (root, with `perf`): where the
 * CPU of a delivered chunk goes. Runs one swarm with the real tracker.sh and peer.sh under
 * `perf record -a -g` (every CPU, call stacks, 999 Hz), the peers with --perf-basic-prof
 * so that their JIT frames have names, then sorts every sample of the tracker's and the
 * peers' processes (all their threads) into what the stack shows it was doing, and prints
 * microseconds of CPU per chunk delivered for each. N = 1: one seeder of an M MiB file and
 * one downloader (scenario 1); N > 1: N peers each starting with its own M MiB file, all
 * getting everything (scenarios 2 and 3). perf's own sampling adds a few percent, and
 * --perf-basic-prof keeps the peers off their code cache, so totals run a little above
 * `npm run bench`'s; the split is what this is for (docs/performance.md).
 */
import { spawn } from "node:child_process";
import path from "node:path";
import { createInterface } from "node:readline";
import { makeRandomFile, makeTempRoot, mkdirp, removeTempRoots } from "./files.js";
import { Proc } from "./proc.js";
import { chunksOf, runSwarm, type SwarmPeer } from "./swarm.js";
import { errorText, MiB, sleep, which } from "./util.js";

/** A sample's category: the first rule whose pattern the stack (leaf to root, one frame a line) matches. */
type Rule = { readonly name: string; readonly test: (stack: string) => boolean };

const matches =
  (pattern: RegExp) =>
  (stack: string): boolean =>
    pattern.test(stack);

/** Before the event loop runs, or loading modules. */
const START_UP = "start-up (Node, loading and compiling our code, until the loop runs)";

export const RULES: readonly Rule[] = [
  {
    name: "V8 optimizing compiler (TurboFan, its own thread)",
    test: matches(/OptimizingCompileDispatcher|OptimizedCompilationJob|compiler::Pipeline/),
  },
  {
    name: "garbage collection",
    test: matches(
      /Heap::CollectGarbage|ScavengerCollector|Scavenger::|ConcurrentMarking|ArrayBufferSweeper|Sweeper::|MinorGCJob|IncrementalMarking|MarkCompactCollector/,
    ),
  },
  {
    name: START_UP,
    test: (s) =>
      (!s.includes("uv_run") && /node::Start|_dl_start|\b_start\b/.test(s)) || /compileForInternalLoader/.test(s),
  },
  { name: "SHA-256 (pieces, blocks, whole files)", test: matches(/sha256_block|SHA256_/) },
  {
    name: "disk reads and writes (page cache)",
    test: matches(/ext4_|filemap_|generic_perform_write|node::fs::WriteBuffer|node::fs::Read\b|writeSync|readSync/),
  },
  { name: "kernel: UDP send (the sendmsg syscall, loopback delivery)", test: matches(/__libc_sendmsg|udp_sendmsg/) },
  { name: "kernel: UDP receive (the recvmsg syscall)", test: matches(/__libc_recvmsg|udp_recvmsg/) },
  {
    name: "Node: dgram send (Socket.send, UDPWrap)",
    test: matches(/UDPWrap::DoSend|UDPWrap::Send|Socket\.send|doSend/),
  },
  {
    name: "our JS per datagram (engine, decoding, serving) and what it calls",
    test: (s) => /UDPWrap::OnRecv|uv__udp_io/.test(s) && /dist\/(peer\.cjs|src\/)/.test(s),
  },
  {
    name: "Node: per-datagram receive (buffer, rinfo, callback)",
    test: matches(/UDPWrap::OnRecv|UDPWrap::OnAlloc|uv__udp_io/),
  },
  {
    name: "tracker link (TCP, frames, the tracker's work on them)",
    test: matches(/uv__stream_io|LibuvStreamWrap|uv__write|uv__read|tcp_sendmsg|tcp_recvmsg/),
  },
  { name: "timers and immediates (request pump, reports, timeouts)", test: matches(/RunTimers|CheckImmediate/) },
  { name: "event loop (epoll, wake-ups)", test: matches(/uv__io_poll|epoll_wait|epoll_pwait/) },
];
const OTHER = "other (malloc and free, context switches, unresolved stacks)";

export function categoryOf(stack: string): string {
  for (const rule of RULES) if (rule.test(stack)) return rule.name;
  return OTHER;
}

type Counts = Map<string, number>;

/** Reads `perf script` output: counts each sample of `roles`' pids under its category, per role. */
async function classify(perfData: string, roles: ReadonlyMap<number, string>): Promise<Map<string, Counts>> {
  const perRole = new Map<string, Counts>();
  const script = spawn("perf", ["script", "-i", perfData, "-F", "comm,pid,tid,ip,sym"], {
    stdio: ["ignore", "pipe", "ignore"],
  });
  let role: string | undefined;
  let frames: string[] = [];
  const flush = () => {
    if (role !== undefined && frames.length > 0) {
      const counts = perRole.get(role) ?? new Map<string, number>();
      perRole.set(role, counts);
      const category = categoryOf(frames.join("\n"));
      counts.set(category, (counts.get(category) ?? 0) + 1);
    }
    frames = [];
  };
  for await (const line of createInterface({ input: script.stdout })) {
    if (line === "") continue;
    if (line.startsWith("\t") || line.startsWith(" ")) {
      frames.push(line.trim().replace(/^[0-9a-f]+ /, ""));
      continue;
    }
    flush();
    const pid = /^\S+\s+(\d+)\//.exec(line)?.[1];
    role = pid === undefined ? undefined : roles.get(Number(pid));
  }
  flush();
  return perRole;
}

function option(args: string[], name: string, fallback: number): number {
  const at = args.indexOf(name);
  if (at < 0) return fallback;
  const value = Number(args[at + 1]);
  if (!(Number.isInteger(value) && value > 0)) throw new Error(`${name} needs a positive integer`);
  return value;
}

async function main(args: string[]): Promise<void> {
  if (args.includes("--help") || args.includes("-h")) {
    process.stdout.write(
      "usage: node dist/bench/cpu-breakdown.js [--peers N] [--mib M]\n" +
        "  N = 1 (default): a seeder of one M MiB file (default 256) and a downloader;\n" +
        "  N > 1: N peers, each with its own M MiB file, everyone gets everything.\n" +
        "Needs root (perf record -a) and perf. Prints µs of CPU per chunk delivered by category.\n",
    );
    return;
  }
  const peers = option(args, "--peers", 1);
  const mib = option(args, "--mib", peers === 1 ? 256 : 4);
  if (which("perf") === undefined) throw new Error("perf is not installed (Debian: linux-perf)");
  if (process.getuid?.() !== 0) throw new Error("perf record -a needs root");

  const root = makeTempRoot("udpswarm-cpu-");
  try {
    const inputs = mkdirp(path.join(root, "inputs"));
    const files = Array.from({ length: Math.max(1, peers) }, (_, i) =>
      makeRandomFile(inputs, `file${i + 1}.bin`, mib * MiB),
    );
    const plan: { seeders: SwarmPeer[]; timed: SwarmPeer[] } =
      peers === 1
        ? {
            seeders: [{ label: "seeder", files, minAlive: 1 }],
            timed: [{ label: "downloader", files: [], minAlive: 0 }],
          }
        : { seeders: [], timed: files.map((f, i) => ({ label: `peer${i + 1}`, files: [f], minAlive: 1 })) };
    const roles = new Map<number, string>();
    const perfData = path.join(root, "perf.data");
    const perf = new Proc("perf", "perf", ["record", "-a", "-g", "-F", "999", "-o", perfData], { cwd: root });
    await sleep(1000); // perf record takes a moment before it samples
    process.env.NODE_OPTIONS = `${process.env.NODE_OPTIONS ?? ""} --perf-basic-prof`.trim();
    const result = await runSwarm({
      dir: mkdirp(path.join(root, "run")),
      ...plan,
      timeoutMs: 300_000,
      onStart: (label, pid) => roles.set(pid, label === "tracker" ? "tracker" : "peers"),
    });
    perf.signal("SIGINT");
    await perf.exited;
    const perRole = await classify(perfData, roles);
    const chunks = result.chunksDelivered;
    const expected = files.reduce((n, f) => n + chunksOf(f), 0) * (peers === 1 ? 1 : peers - 1);
    if (chunks !== expected) throw new Error(`${chunks} chunks delivered, expected ${expected}`);
    report(perRole, chunks, peers === 1 ? `1 seeder -> 1 downloader, ${mib} MiB` : `${peers} peers x ${mib} MiB`);
  } finally {
    if (process.env.KEEP_TMP === undefined) removeTempRoots();
  }
}

function report(perRole: Map<string, Counts>, chunks: number, what: string): void {
  const perfHz = 999;
  const us = (samples: number) => (samples * 1e6) / perfHz / chunks;
  const tracker = perRole.get("tracker") ?? new Map<string, number>();
  const peerCounts = perRole.get("peers") ?? new Map<string, number>();
  const names = [...RULES.map((r) => r.name), OTHER];
  const total = (c: Counts) => [...c.values()].reduce((a, b) => a + b, 0);
  const all = total(tracker) + total(peerCounts);
  const lines = [
    `CPU per chunk delivered, µs (${what}; ${chunks} chunks; perf samples at ${perfHz} Hz)`,
    "",
    "| Where | peers | tracker | all | share |",
    "| --- | --- | --- | --- | --- |",
  ];
  for (const name of names) {
    const p = peerCounts.get(name) ?? 0;
    const t = tracker.get(name) ?? 0;
    lines.push(
      `| ${name} | ${us(p).toFixed(2)} | ${us(t).toFixed(2)} | ${us(p + t).toFixed(2)} | ${((100 * (p + t)) / all).toFixed(1)}% |`,
    );
  }
  lines.push(
    `| **total** | ${us(total(peerCounts)).toFixed(2)} | ${us(total(tracker)).toFixed(2)} | ${us(all).toFixed(2)} | 100% |`,
  );
  process.stdout.write(`${lines.join("\n")}\n`);
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`cpu-breakdown: ${errorText(err)}\n`);
  process.exit(1);
});
