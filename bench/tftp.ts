/**
 * The TFTP reference: `atftp` fetches a file from `atftpd` on loopback. Plain RFC 1350
 * (512-byte blocks, one block per round trip: stop-and-wait) and with RFC 7440's
 * `windowsize 16` (16 blocks per acknowledgement). The time is the client's whole run,
 * from its spawn to its exit; the copy is checked byte for byte.
 */
import { linkSync, readFileSync } from "node:fs";
import path from "node:path";
import { checkCopy, type InputFile, mkdirp } from "./files.js";
import { freeUdpPort } from "./ports.js";
import { exitText, Proc, runSync } from "./proc.js";
import { MB, now, pollUntil, withTimeout } from "./util.js";

export type TftpResult = { readonly seconds: number; readonly MBps: number };

/** Whether something listens on 127.0.0.1:port (UDP), from /proc/net/udp. */
function udpBound(port: number): boolean {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  try {
    return readFileSync("/proc/net/udp", "utf8").includes(` ${local} `);
  } catch {
    return false;
  }
}

/** `user.group` of this process, for atftpd's --user (it switches to that user). */
function userDotGroup(): string {
  const user = runSync("id", ["-un"]);
  const group = runSync("id", ["-gn"]);
  return user.ok && group.ok ? `${user.output}.${group.output}` : "nobody.nogroup";
}

export async function measureTftp(
  file: InputFile,
  dir: string,
  windowSize: number | undefined,
  timeoutMs: number,
): Promise<TftpResult> {
  const served = mkdirp(path.join(dir, "srv"));
  linkSync(file.path, path.join(served, file.name));
  const port = await freeUdpPort();
  const server = new Proc(
    "atftpd",
    "atftpd",
    [
      "--daemon",
      "--no-fork",
      "--logfile",
      "-",
      "--port",
      String(port),
      "--bind-address",
      "127.0.0.1",
      "--user",
      userDotGroup(),
      "--no-multicast",
      served,
    ],
    { cwd: dir },
  );
  let client: Proc | undefined;
  try {
    await pollUntil(
      () => {
        if (server.exit !== undefined)
          throw new Error(`atftpd exited (${exitText(server.exit)}): ${server.describe()}`);
        return udpBound(port) ? true : undefined;
      },
      10_000,
      "atftpd listening",
      10,
    );
    const out = path.join(dir, `fetched-${file.name}`);
    const options = windowSize === undefined ? [] : ["--option", `windowsize ${windowSize}`];
    client = new Proc(
      `atftp${windowSize === undefined ? "" : ` windowsize ${windowSize}`}`,
      "atftp",
      [...options, "--get", "-r", file.name, "-l", out, "127.0.0.1", String(port)],
      { cwd: dir },
    );
    const t0 = client.startedAt;
    const exit = await withTimeout(client.exited, timeoutMs, client.label);
    const t1 = now();
    if (exit.code !== 0) throw new Error(`${client.describe()}\n${client.stdoutTail.trim()}`);
    const bad = await checkCopy(out, file);
    if (bad !== undefined) throw new Error(`atftp: ${bad}`);
    const seconds = (t1 - t0) / 1000;
    return { seconds, MBps: file.size / seconds / MB };
  } finally {
    await Promise.all([client?.stop(500), server.stop(500)]);
  }
}
