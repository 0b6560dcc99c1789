#!/usr/bin/env node
import { writeFileSync } from "node:fs";
import { hostname } from "node:os";
import type { AccountsFront } from "../accounts/connections.js";
import { formatOptions, integerOption, type OptionSpec, parseArgs } from "../util/cli-args.js";
import { RealClock } from "../util/clock.js";
import {
  ExitStatus,
  errorMessage,
  exitStatusFor,
  formatStatuses,
  SwarmError,
  TRACKER_EXIT_STATUSES,
} from "../util/errors.js";
import { logLine } from "../util/stdout.js";
import { packageVersion } from "../util/version.js";
import { DEFAULT_MAX_FILE_SIZE } from "../wire/limits.js";
import { LIMIT_OPTIONS, limitsFrom } from "./limits.js";
import { TrackerServer } from "./server.js";
import { fdTarget, StdoutWriter } from "./stdout-writer.js";
import { startWebView, type WebView } from "./web/server.js";

const OPTIONS: readonly OptionSpec[] = [
  { name: "port", kind: "number", placeholder: "PORT", help: "TCP port to listen on (default: any free port)" },
  { name: "host", kind: "string", placeholder: "ADDR", help: "address to listen on (default: all interfaces)" },
  {
    name: "max-file-size",
    kind: "number",
    placeholder: "BYTES",
    help: "largest file a peer may offer (default 64\u0000GiB)",
  },
  {
    name: "http",
    kind: "number",
    env: "UDPSWARM_HTTP",
    placeholder: "PORT",
    help: "also serve the live, read-only web view on this port (0: any free port; off by default)",
  },
  {
    name: "http-host",
    kind: "string",
    env: "UDPSWARM_HTTP_HOST",
    placeholder: "ADDR",
    help: "address of the web view (default 127.0.0.1)",
  },
  ...LIMIT_OPTIONS,
  {
    name: "store",
    kind: "string",
    env: "UDPSWARM_STORE",
    placeholder: "PATH",
    help: "turn on accounts and groups, durable in this SQLite file (e.g. ./udpswarm.db; created if missing) or PostgreSQL database (postgres://USER@HOST:PORT/DB); trackers given the same store form one service",
  },
  {
    name: "tracker-expiry",
    kind: "number",
    placeholder: "MS",
    help: "with --store: another tracker of the service whose heartbeat stops this long is dead, and its clients gone (default 4000)",
  },
  {
    name: "session-idle",
    kind: "number",
    placeholder: "SECONDS",
    help: "with --store: a session unused this long expires (default 604800, 7 days)",
  },
  {
    name: "session-max",
    kind: "number",
    placeholder: "SECONDS",
    help: "with --store: a session expires this long after login (default 2592000, 30 days)",
  },
  {
    name: "scrypt-cost",
    kind: "number",
    placeholder: "LOGN",
    help: "with --store: scrypt cost of new password hashes, N = 2^LOGN (default 17; 14..20; lower only for tests)",
  },
  { name: "help", kind: "boolean", short: "h", help: "show this help and exit" },
  { name: "version", kind: "boolean", help: "show the version and exit" },
];

const USAGE = `usage: sh tracker.sh [options]

Starts the udpswarm tracker: listens on TCP, writes the port to ./port.txt,
prints CONNECT / ACQUIRED / DISCONNECT lines on stdout, and runs until SIGINT or
SIGTERM. Diagnostics go to stderr, each line prefixed "udpswarm tracker:".
The contract (output formats, limits): docs/contract.md.

options:
${formatOptions(OPTIONS)}

exit status:
${formatStatuses(TRACKER_EXIT_STATUSES)}`;

async function main(argv: readonly string[]): Promise<void> {
  const args = parseArgs(argv, OPTIONS, process.env);
  if (args.values.get("help") === true) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  if (args.values.get("version") === true) {
    process.stdout.write(`udpswarm tracker ${packageVersion()}\n`);
    return;
  }
  if (args.positional.length > 0)
    throw new SwarmError("ERR_USAGE", `unexpected argument ${JSON.stringify(args.positional[0])}`);
  const port = integerOption(args, "port", 0, 65535, 0);
  const maxFileSize = integerOption(args, "max-file-size", 0, Number.MAX_SAFE_INTEGER, DEFAULT_MAX_FILE_SIZE);
  const httpPort = args.values.has("http") ? integerOption(args, "http", 0, 65535, 0) : undefined;
  const httpHost = args.values.get("http-host");
  if (httpHost !== undefined && httpPort === undefined)
    throw new SwarmError("ERR_USAGE", "--http-host needs --http PORT");

  const log = (line: string) => logLine(`udpswarm tracker: ${line}`);
  const clock = new RealClock();
  const accounts = await openAccounts(args, maxFileSize, log);
  let web: WebView | undefined;
  const stdout = new StdoutWriter(fdTarget(1));
  stdout.onError = (err) => log(`cannot write to stdout: ${err.message}`);
  const limits = limitsFrom(args.values, maxFileSize);
  const server = new TrackerServer(
    clock,
    { maxFileSize, ...limits, ...(accounts === undefined ? {} : { accounts }) },
    stdout,
    log,
    (_event, block) => {
      if (block !== undefined) web?.printed(block);
      web?.changed();
    },
  );
  // Installed before the port is announced: a signal right after "listening" exits 0 too.
  const exit = () => {
    // Every line still queued goes out before the exit.
    stdout.flushSync();
    process.exit(ExitStatus.ok);
  };
  const stop = () => {
    server.close();
    void web?.close();
    if (accounts === undefined) exit();
    // SEVERAL TRACKERS: leaving the service tells the others at once (bounded wait).
    else void Promise.race([accounts.close(), new Promise((r) => setTimeout(r, 2000))]).finally(exit);
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);

  const host = args.values.get("host");
  let listenPort: number;
  try {
    listenPort = await server.listen(port, typeof host === "string" ? host : undefined);
  } catch (err) {
    throw new SwarmError("ERR_IO", `cannot listen: ${(err as Error).message}`, { cause: err });
  }
  if (httpPort !== undefined) {
    try {
      web = await startWebView(server, {
        port: Number(httpPort),
        host: typeof httpHost === "string" ? httpHost : "127.0.0.1",
        clock,
      });
    } catch (err) {
      throw new SwarmError("ERR_IO", `cannot start the web view: ${(err as Error).message}`, { cause: err });
    }
  }
  try {
    writeFileSync("port.txt", String(listenPort));
  } catch (err) {
    throw new SwarmError("ERR_IO", `cannot write port.txt: ${(err as Error).message}`, { cause: err });
  }
  if (web !== undefined) log(`web view at ${web.url}`);
  log(`listening on port ${listenPort}`);
}

/**
 * ACCOUNTS (§10): with --store, the store (migrated to the latest schema) and the front that
 * takes client connections. Loaded only then: without --store the tracker is exactly §3.
 */
async function openAccounts(
  args: ReturnType<typeof parseArgs>,
  maxFileSize: number,
  log: (line: string) => void,
): Promise<AccountsFront | undefined> {
  const path = args.values.get("store");
  if (path === undefined) {
    if (["session-idle", "session-max", "scrypt-cost", "tracker-expiry"].some((o) => args.values.has(o)))
      throw new SwarmError(
        "ERR_USAGE",
        "--session-idle, --session-max, --scrypt-cost and --tracker-expiry need --store PATH|URL",
      );
    return undefined;
  }
  if (typeof path !== "string" || path === "")
    throw new SwarmError("ERR_USAGE", "--store needs a SQLite file path or a postgres:// URL");
  const day = 24 * 3600;
  const idle = integerOption(args, "session-idle", 1, 3650 * day, 7 * day);
  const max = integerOption(args, "session-max", 1, 3650 * day, 30 * day);
  const logN = integerOption(args, "scrypt-cost", 14, 20, 17);
  const { openStore, storeLabel } = await import("../accounts/open-store.js");
  const { AccountsFront } = await import("../accounts/connections.js");
  let store: Awaited<ReturnType<typeof openStore>>;
  try {
    store = await openStore(path, log);
  } catch (err) {
    throw new SwarmError("ERR_IO", `cannot open the store ${storeLabel(path)}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  log(`accounts store ${storeLabel(path)} (schema version ${store.schemaVersion})`);
  const front = new AccountsFront(store, () => Date.now(), log, {
    maxFileSize,
    sessionIdleMs: idle * 1000,
    sessionMaxMs: max * 1000,
    scrypt: { logN, r: 8, p: 1 },
  });
  const { LiveLog } = await import("../accounts/live-log.js");
  try {
    const live = await LiveLog.start(store.db, front.swarm, log, {
      label: `${hostname()} pid ${process.pid}`,
      expiryMs: integerOption(args, "tracker-expiry", 500, 600_000, 4000),
      groupsOf: (userId) => store.groupsOf(userId),
    });
    front.live = live;
    log(`tracker ${live.trackerId} of the service on this store`);
  } catch (err) {
    await store.close();
    throw new SwarmError("ERR_IO", `cannot join the trackers of ${storeLabel(path)}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  return front;
}

main(process.argv.slice(2)).catch((err: unknown) => {
  logLine(`udpswarm tracker: ${errorMessage(err)}`);
  process.exit(exitStatusFor(err));
});
