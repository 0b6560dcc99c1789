#!/usr/bin/env node
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { trackerListFrom } from "../client/tracker-list.js";
import { formatOptions, integerOption, type OptionSpec, type ParsedArgs, parseArgs } from "../util/cli-args.js";
import {
  ExitStatus,
  errorMessage,
  exitStatusFor,
  formatStatuses,
  PEER_EXIT_STATUSES,
  SwarmError,
} from "../util/errors.js";
import { randomSeed } from "../util/random.js";
import { logLine } from "../util/stdout.js";
import { packageVersion } from "../util/version.js";
import { DEFAULT_MAX_FILE_SIZE } from "../wire/limits.js";
import type { FaultConfig } from "./faults.js";
import { Peer } from "./peer.js";
import { DEFAULT_HASH_FIRST_BYTES } from "./scan.js";

const OPTIONS: readonly OptionSpec[] = [
  {
    name: "loss",
    kind: "number",
    placeholder: "P",
    env: "UDPSWARM_LOSS",
    help: "drop this fraction of datagrams, each way (0..1)",
  },
  { name: "delay", kind: "number", placeholder: "MS", env: "UDPSWARM_DELAY", help: "delay every datagram, each way" },
  { name: "jitter", kind: "number", placeholder: "MS", env: "UDPSWARM_JITTER", help: "add a random delay in [0, MS)" },
  {
    name: "dup",
    kind: "number",
    placeholder: "P",
    env: "UDPSWARM_DUP",
    help: "deliver this fraction of datagrams twice",
  },
  {
    name: "reorder",
    kind: "number",
    placeholder: "P",
    env: "UDPSWARM_REORDER",
    help: "hold back this fraction so later ones overtake",
  },
  {
    name: "corrupt",
    kind: "number",
    placeholder: "P",
    env: "UDPSWARM_CORRUPT",
    help: "flip one bit in this fraction of datagrams",
  },
  {
    name: "seed",
    kind: "number",
    placeholder: "N",
    env: "UDPSWARM_SEED",
    help: "seed of every random choice (repeatable runs)",
  },
  {
    name: "stats",
    kind: "string",
    placeholder: "FILE",
    env: "UDPSWARM_STATS",
    help: "write the counters as one JSON object to FILE at exit (-: to stderr); off by default",
  },
  {
    name: "udp-port",
    kind: "number",
    placeholder: "PORT",
    env: "UDPSWARM_UDP_PORT",
    help: "UDP port to bind (default: any free port)",
  },
  {
    name: "max-file-size",
    kind: "number",
    placeholder: "BYTES",
    env: "UDPSWARM_MAX_FILE_SIZE",
    help: "refuse files announced larger than this (default 64\u0000GiB)",
  },
  {
    name: "hash-first",
    kind: "number",
    placeholder: "BYTES",
    env: "UDPSWARM_HASH_FIRST",
    help: "hash this much of ./Shared before joining (default 32\u0000MiB); larger files are offered at once and hashed in the background, served once hashed",
  },
  {
    name: "chunks-per-request",
    kind: "number",
    placeholder: "K",
    env: "UDPSWARM_CHUNKS_PER_REQUEST",
    help: "chunks named by one request, 1..64 (default 64)",
  },
  {
    name: "max-inflight",
    kind: "number",
    placeholder: "N",
    env: "UDPSWARM_MAX_INFLIGHT",
    help: "chunks in flight from all peers together (default 3072)",
  },
  {
    name: "progress",
    kind: "boolean",
    env: "UDPSWARM_PROGRESS",
    help: "show per-file progress on stderr even when it is not a terminal",
  },
  {
    name: "quiet",
    kind: "boolean",
    env: "UDPSWARM_QUIET",
    help: "no progress display (errors and warnings are still reported)",
  },
  {
    name: "sync",
    kind: "boolean",
    env: "UDPSWARM_SYNC",
    help: "live folder: keep ./Shared in step until SIGINT/SIGTERM; MIN_ALIVE optional",
  },
  {
    name: "trackers",
    kind: "string",
    placeholder: "FILE",
    env: "UDPSWARM_TRACKERS",
    help: "with --sync, instead of TRACKER_IP TRACKER_PORT: the trackers to use, HOST PORT lines in order (BEP 12 tiers, not shuffled); a lost tracker is left for the next",
  },
  { name: "help", kind: "boolean", short: "h", help: "show this help and exit" },
  { name: "version", kind: "boolean", help: "show the version and exit" },
];

const USAGE = `usage: sh peer.sh TRACKER_IP TRACKER_PORT MIN_ALIVE_SECONDS [options]
       sh peer.sh TRACKER_IP TRACKER_PORT [MIN_ALIVE_SECONDS] --sync [options]
       sh peer.sh --trackers TRACKERS_FILE [MIN_ALIVE_SECONDS] --sync [options]

Joins the swarm of the tracker at TRACKER_IP:TRACKER_PORT (TRACKER_IP may be a
host name), offers every regular, non-hidden file of ./Shared, fetches every
file it lacks, serves what it holds, and leaves once everyone has everything
and at least MIN_ALIVE_SECONDS (0 or more, decimals allowed) have passed.
A sync peer given a trackers file (the client's format: one tier per line of
HOST PORT pairs) moves to the next tracker that answers when its own is lost.
Prints its SHUTDOWN block on stdout; diagnostics go to stderr, each line
prefixed "udpswarm peer:". The contract (output formats, limits):
docs/contract.md.

options (each also from the environment variable shown):
${formatOptions(OPTIONS)}

exit status:
${formatStatuses(PEER_EXIT_STATUSES)}`;

function probability(args: ParsedArgs, name: string): number {
  const v = Number(args.values.get(name) ?? 0);
  if (!(v >= 0 && v <= 1)) {
    const where = args.sources.get(name) ?? `--${name}`;
    throw new SwarmError("ERR_USAGE", `${where} must be a probability between 0 and 1, got ${v}`);
  }
  return v;
}

function milliseconds(args: ParsedArgs, name: string): number {
  const v = Number(args.values.get(name) ?? 0);
  if (!(v >= 0 && v <= 60_000)) {
    const where = args.sources.get(name) ?? `--${name}`;
    throw new SwarmError("ERR_USAGE", `${where} must be 0..60000 milliseconds, got ${v}`);
  }
  return v;
}

async function main(argv: readonly string[]): Promise<number> {
  const args = parseArgs(argv, OPTIONS, process.env);
  const v = args.values;
  if (v.get("help") === true) {
    process.stdout.write(`${USAGE}\n`);
    return ExitStatus.ok;
  }
  if (v.get("version") === true) {
    process.stdout.write(`udpswarm peer ${packageVersion()}\n`);
    return ExitStatus.ok;
  }
  const sync = v.get("sync") === true;
  const trackersFile = v.get("trackers");
  if (typeof trackersFile === "string" && !sync) {
    throw new SwarmError(
      "ERR_USAGE",
      "--trackers is for sync peers (--sync); a classic peer uses one tracker: TRACKER_IP TRACKER_PORT MIN_ALIVE_SECONDS",
    );
  }
  // SEVERAL TRACKERS (§11): the trackers file stands for TRACKER_IP TRACKER_PORT.
  const trackers =
    typeof trackersFile === "string"
      ? trackerListFrom(trackersFile, (f) => readFileSync(f, "utf8"), "as listed")
      : undefined;
  if (trackers !== undefined && args.positional.length > 1) {
    throw new SwarmError(
      "ERR_USAGE",
      "with --trackers, the trackers come from the file: give at most MIN_ALIVE_SECONDS (see --help)",
    );
  }
  const positional = trackers === undefined ? args.positional : ["-", "1", ...args.positional];
  // SYNC (§9): a live-folder peer never leaves by the departure rule, so MIN_ALIVE may be left out.
  const [host, portText, minAliveText = sync ? "0" : undefined, ...extra] = positional;
  if (host === undefined || portText === undefined || minAliveText === undefined) {
    throw new SwarmError("ERR_USAGE", "expected TRACKER_IP TRACKER_PORT MIN_ALIVE_SECONDS (see --help)");
  }
  if (extra.length > 0) throw new SwarmError("ERR_USAGE", `unexpected argument ${JSON.stringify(extra[0])}`);
  if (host.trim() === "") throw new SwarmError("ERR_USAGE", "TRACKER_IP must not be empty");
  const port = /^\d+$/.test(portText) ? Number(portText) : Number.NaN;
  if (!(port >= 1 && port <= 65535)) {
    throw new SwarmError("ERR_USAGE", `TRACKER_PORT must be an integer 1..65535, got ${JSON.stringify(portText)}`);
  }
  const minAlive = /^\d+(\.\d*)?$|^\.\d+$/.test(minAliveText) ? Number(minAliveText) : Number.NaN;
  if (!(minAlive >= 0 && Number.isFinite(minAlive))) {
    throw new SwarmError(
      "ERR_USAGE",
      `MIN_ALIVE_SECONDS must be a non-negative number (e.g. 0, 2, 1.5), got ${JSON.stringify(minAliveText)}`,
    );
  }
  const seedValue = v.get("seed");
  const seed = seedValue === undefined ? randomSeed() : Number(seedValue) >>> 0;
  const faults: FaultConfig = {
    loss: probability(args, "loss"),
    delayMs: milliseconds(args, "delay"),
    jitterMs: milliseconds(args, "jitter"),
    dup: probability(args, "dup"),
    reorder: probability(args, "reorder"),
    corrupt: probability(args, "corrupt"),
    seed,
  };
  const udpPort = integerOption(args, "udp-port", 0, 65535, 0);
  const maxFileSize = integerOption(args, "max-file-size", 0, Number.MAX_SAFE_INTEGER, DEFAULT_MAX_FILE_SIZE);
  const hashFirstBytes = integerOption(args, "hash-first", 0, Number.MAX_SAFE_INTEGER, DEFAULT_HASH_FIRST_BYTES);
  const perRequest = integerOption(args, "chunks-per-request", 1, 64, 64);
  const maxInflight = integerOption(args, "max-inflight", 1, Number.MAX_SAFE_INTEGER, 3072);
  const stats = v.get("stats");
  const log = (line: string) => logLine(`udpswarm peer: ${line}`);
  const peer = new Peer({
    trackerHost: host,
    trackerPort: port,
    ...(trackers === undefined ? {} : { trackers }),
    minAliveSeconds: minAlive,
    sharedDir: resolve("Shared"),
    stagingRoot: resolve(".udpswarm-staging"),
    udpPort,
    maxFileSize,
    hashFirstBytes,
    faults,
    stats: typeof stats !== "string" ? "off" : stats === "-" ? "stderr" : resolve(stats),
    transfer: { chunksPerRequest: perRequest, maxInflight },
    log,
    progress: v.get("progress") === true ? "on" : "auto",
    quiet: v.get("quiet") === true,
    sync,
  });
  process.on("SIGINT", () => peer.interrupt("SIGINT"));
  process.on("SIGTERM", () => peer.interrupt("SIGTERM"));
  return peer.run();
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    logLine(`udpswarm peer: ${errorMessage(err)}`);
    process.exit(exitStatusFor(err));
  },
);
