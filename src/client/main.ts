#!/usr/bin/env node
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { ExitStatus, errorMessage, exitStatusFor, SwarmError } from "../util/errors.js";
import { logLine, writeBlock } from "../util/stdout.js";
import { Client, type Outcome } from "./client.js";
import { completeCommand, findCommand, helpText, usageOf } from "./commands.js";
import { printable } from "./format.js";
import { ClientState } from "./state.js";
import { trackerListFrom } from "./tracker-list.js";
import { splitWords } from "./words.js";

/** Exit status when every command ran but at least one of them failed. */
export const COMMAND_FAILED = 8;
/** Longest command line taken (bytes); a longer one is refused whole. */
export const MAX_LINE_BYTES = 16 * 1024;
/** After stdin ends, a download with no live sharer for this long is given up (ms). */
const STALL_LIMIT_MS = 15_000;

const USAGE = `usage: sh client.sh TRACKERS_FILE

Starts the udpswarm client: accounts, groups and group file sharing.
TRACKERS_FILE lists the trackers of one service (started with the same --store), one
tier per line: "HOST PORT [HOST PORT ...]". Tiers are tried in order, the trackers of a
tier in a random order; when the tracker in use is lost, the client moves to the next
one within a few seconds and keeps its session, its shares and its transfers. Commands are read from the prompt, or one per line
from stdin; replies go to stdout, errors to stderr ("error: ..."), background news to
stderr. The session and the uploads are remembered in ./.udpswarm/, and unfinished
downloads are kept in ./.udpswarm/staging/ and continued at the next start.

commands:
${helpText()
  .map((l) => `  ${l}`)
  .join("\n")}

exit status: 0 every command succeeded, ${COMMAND_FAILED} some command failed, 2 usage,
3 no tracker reachable, 4 tracker lost and no other answers, 5 storage failure, 6 the tracker
refused this client, 7 another client is running in this folder.`;

async function main(argv: readonly string[]): Promise<number> {
  if (argv[0] === "--help" || argv[0] === "-h") {
    writeBlock([USAGE]);
    return ExitStatus.ok;
  }
  if (argv.length !== 1) throw new SwarmError("ERR_USAGE", `expected one argument, TRACKERS_FILE\n${USAGE}`);
  const trackers = trackerListFrom(argv[0] ?? "", (file) => readFileSync(file, "utf8"));
  const notice = (line: string) => logLine(line);
  let lostError: SwarmError | undefined;
  let endNow: (() => void) | undefined;
  const client = new Client({
    trackers,
    state: new ClientState(join(process.cwd(), ".udpswarm")),
    notice,
    lost: (err) => {
      lostError = err;
      notice(`error: lost the tracker: ${err.message}`);
      endNow?.();
    },
  });
  try {
    for (const line of await client.start()) notice(line);
  } catch (err) {
    await client.close();
    throw err;
  }

  const interactive = process.stdin.isTTY === true && process.stdout.isTTY === true;
  const rl = createInterface({
    input: process.stdin,
    output: process.stdout,
    terminal: interactive,
    historySize: 1000,
    removeHistoryDuplicates: true,
    completer: completeCommand,
    prompt: "udpswarm> ",
  });
  let anyFailed = false;
  const queue: string[] = [];
  let busy = false;
  let inputEnded = false;
  let quitting = false;
  let signalled: "SIGINT" | "SIGTERM" | undefined;
  const finished = new Promise<void>((resolve) => {
    endNow = resolve;
  });

  const print = (outcome: Outcome) => {
    if (outcome.ok) writeBlock(outcome.lines.filter((l) => l !== ""));
    else {
      anyFailed = true;
      writeBlock(
        outcome.lines.map((l) => `error: ${l}`),
        2,
      );
    }
  };
  const pump = async () => {
    if (busy) return;
    busy = true;
    while (queue.length > 0 && !quitting && lostError === undefined) {
      const line = queue.shift() ?? "";
      const outcome = await runLine(client, line);
      if (outcome === "quit") {
        quitting = true;
        break;
      }
      if (outcome !== undefined) print(outcome);
    }
    busy = false;
    if (quitting || lostError !== undefined) endNow?.();
    else if (inputEnded)
      void drain(client).then((ok) => {
        if (!ok) anyFailed = true;
        endNow?.();
      });
    else if (interactive) rl.prompt();
  };
  rl.on("line", (line) => {
    queue.push(line);
    void pump();
  });
  rl.on("close", () => {
    inputEnded = true;
    if (!busy) void pump();
  });
  // Ctrl-C at the prompt (readline's), or a signal when stdin is not a terminal.
  const stop = (signal: "SIGINT" | "SIGTERM") => {
    signalled ??= signal;
    quitting = true;
    endNow?.();
  };
  rl.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGTERM", () => stop("SIGTERM"));
  if (interactive) {
    writeBlock([`logged in: ${client.user ?? "no"}; type help for the commands`]);
    rl.prompt();
  }
  await finished;
  rl.close();
  // Unfinished downloads are kept in staging for the next start (SPEC §12): one line says which.
  const kept = await client.close();
  if (signalled !== undefined) notice(`interrupted by ${signalled}; ${kept}`);
  else if (client.activeDownloads > 0) notice(`quit; ${kept}`);
  const statsFile = process.env.UDPSWARM_STATS;
  if (statsFile !== undefined && statsFile !== "") writeFileSync(statsFile, `${JSON.stringify(client.stats())}\n`);
  if (lostError !== undefined) return exitStatusFor(lostError);
  return anyFailed ? COMMAND_FAILED : ExitStatus.ok;
}

/** One line typed or piped: its outcome, "quit", or undefined for a blank line. */
async function runLine(client: Client, line: string): Promise<Outcome | "quit" | undefined> {
  if (Buffer.byteLength(line, "utf8") > MAX_LINE_BYTES) {
    return { ok: false, lines: [`line longer than ${MAX_LINE_BYTES} bytes ignored`] };
  }
  const words = splitWords(line);
  if (!Array.isArray(words)) return { ok: false, lines: [`${words.error}; close the quote`] };
  const [name, ...args] = words;
  if (name === undefined || name.startsWith("#")) return undefined;
  const spec = findCommand(name);
  if (spec === undefined) return { ok: false, lines: [`unknown command ${printable(name)}; type help for the list`] };
  if (args.length !== spec.args.length) {
    const n = spec.args.length;
    return {
      ok: false,
      lines: [`${name} takes ${n === 0 ? "no arguments" : `${n} argument${n === 1 ? "" : "s"}`}: ${usageOf(spec)}`],
    };
  }
  if (name === "quit") return "quit";
  if (name === "help") return { ok: true, lines: helpText() };
  return client.run(name, args);
}

/** Stdin ended: downloads in progress finish first (one with no live sharer for a while is given up). */
async function drain(client: Client): Promise<boolean> {
  let stalledSince: number | undefined;
  while (client.activeDownloads > 0) {
    const stalled = client.stalledDownloads();
    if (stalled.length === 0) stalledSince = undefined;
    else {
      stalledSince ??= Date.now();
      if (Date.now() - stalledSince > STALL_LIMIT_MS) {
        logLine(`error: no sharer of ${stalled.map((n) => printable(n)).join(", ")} is online; giving up`);
        return false;
      }
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return true;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    logLine(`udpswarm client: ${errorMessage(err)}`);
    process.exit(exitStatusFor(err));
  },
);
