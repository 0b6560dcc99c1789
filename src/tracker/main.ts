#!/usr/bin/env node
import { writeFileSync } from "node:fs";
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
  let web: WebView | undefined;
  const stdout = new StdoutWriter(fdTarget(1));
  stdout.onError = (err) => log(`cannot write to stdout: ${err.message}`);
  const limits = limitsFrom(args.values, maxFileSize);
  const server = new TrackerServer(clock, { maxFileSize, ...limits }, stdout, log, (_event, block) => {
    if (block !== undefined) web?.printed(block);
    web?.changed();
  });
  // Installed before the port is announced: a signal right after "listening" exits 0 too.
  const stop = () => {
    server.close();
    void web?.close();
    // Every line still queued goes out before the exit.
    stdout.flushSync();
    process.exit(ExitStatus.ok);
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

main(process.argv.slice(2)).catch((err: unknown) => {
  logLine(`udpswarm tracker: ${errorMessage(err)}`);
  process.exit(exitStatusFor(err));
});
