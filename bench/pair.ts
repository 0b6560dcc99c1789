/**
 * The two-process pattern of the raw ceilings: a receiver child prints `port N`, a sender
 * child is pointed at that port for a fixed duration, and each prints one JSON line at
 * the end. Both are stopped on failure and on timeout.
 */
import { fileURLToPath } from "node:url";
import { Proc } from "./proc.js";
import { pollUntil, withTimeout } from "./util.js";

function lastJsonLine(p: Proc): unknown {
  const line = p.stdoutTail.trim().split("\n").pop() ?? "";
  try {
    return JSON.parse(line);
  } catch {
    throw new Error(`${p.label} printed no result: ${p.describe()}`);
  }
}

/** Runs `node SCRIPT receive` and `node SCRIPT send PORT SECONDS`; returns their JSON results. */
export async function runPair(
  moduleUrl: string,
  label: string,
  seconds: number,
  cwd: string,
): Promise<{ readonly receiver: unknown; readonly sender: unknown }> {
  const script = fileURLToPath(moduleUrl);
  const receiver = new Proc(`${label} receiver`, process.execPath, [script, "receive"], { cwd });
  let sender: Proc | undefined;
  try {
    const port = await pollUntil(
      () => {
        if (receiver.exit !== undefined) throw new Error(receiver.describe());
        return /port (\d+)/.exec(receiver.stdoutTail)?.[1];
      },
      10_000,
      `${label} receiver start`,
      10,
    );
    sender = new Proc(`${label} sender`, process.execPath, [script, "send", port, String(seconds)], { cwd });
    const both = Promise.all([sender.exited, receiver.exited]);
    const [se, re] = await withTimeout(both, seconds * 1000 + 15_000, label);
    if (se.code !== 0 || re.code !== 0) throw new Error(`${sender.describe()}\n${receiver.describe()}`);
    return { receiver: lastJsonLine(receiver), sender: lastJsonLine(sender) };
  } finally {
    await Promise.all([receiver.stop(500), sender?.stop(500)]);
  }
}

/** Runs `main(role, args)` when this module is the process's entry point. */
export function childMain(moduleUrl: string, usage: string, roles: Record<string, (args: string[]) => void>): void {
  if (process.argv[1] !== fileURLToPath(moduleUrl)) return;
  const [role = "", ...args] = process.argv.slice(2);
  const run = roles[role];
  if (run === undefined) {
    process.stderr.write(`usage: ${usage}\n`);
    process.exit(2);
  }
  run(args);
}
