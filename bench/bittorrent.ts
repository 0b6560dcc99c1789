/**
 * The BitTorrent reference: N `aria2c` peers and a local `opentracker` on loopback, each
 * peer starting with one file and fetching the others (scenarios 2 and 3). Torrents are
 * private (`mktorrent -p`), so DHT, local peer discovery and peer exchange are off anyway,
 * and are also switched off explicitly. Debian's opentracker serves only whitelisted
 * info-hashes; its `-w` path is resolved inside its `-d` directory (its chroot when it
 * runs as root, its working directory otherwise), so the whitelist lives there.
 *
 * Timing: t0 just before the first aria2c is spawned; each aria2c runs a hook at every
 * completed download (`--on-bt-download-complete`) that appends `date +%s.%N`, its
 * directory and the file; t1 is the latest of those stamps once all N×(N−1) downloads are
 * in. The peers seed on (`--seed-ratio=0.0` means no ratio limit) until all are done and
 * are then stopped.
 */
import { createHash } from "node:crypto";
import { chmodSync, copyFileSync, readFileSync, realpathSync, writeFileSync } from "node:fs";
import path from "node:path";
import { checkCopy, type InputFile, mkdirp } from "./files.js";
import { freeTcpPort, freeUdpPort, waitTcpOpen } from "./ports.js";
import { exitText, Proc, runSync, stopAll } from "./proc.js";
import { errorText, now, pollUntil } from "./util.js";

// ------------------------------------------------------------------ bencode, just enough

const E = 0x65; // 'e'

/** Offset just past the bencoded value starting at `i`. */
function skipValue(buf: Buffer, i: number): number {
  const c = buf[i];
  if (c === undefined) throw new Error("bencode: truncated");
  if (c === 0x69 /* i */) {
    const end = buf.indexOf(E, i);
    if (end < 0) throw new Error("bencode: unterminated integer");
    return end + 1;
  }
  if (c === 0x6c /* l */ || c === 0x64 /* d */) {
    let j = i + 1;
    while (buf[j] !== E) {
      if (j >= buf.length) throw new Error("bencode: unterminated list");
      j = skipValue(buf, j);
    }
    return j + 1;
  }
  const colon = buf.indexOf(0x3a /* : */, i);
  const length = Number(buf.subarray(i, colon).toString("latin1"));
  if (colon < 0 || !Number.isSafeInteger(length)) throw new Error("bencode: bad string");
  return colon + 1 + length;
}

/** SHA-1 of the bencoded `info` dictionary of a .torrent: its info-hash, hex. */
export function infoHash(torrent: Buffer): string {
  if (torrent[0] !== 0x64) throw new Error("not a torrent: no top-level dictionary");
  let i = 1;
  while (torrent[i] !== E && i < torrent.length) {
    const keyEnd = skipValue(torrent, i);
    const key = torrent.subarray(torrent.indexOf(0x3a, i) + 1, keyEnd).toString("latin1");
    const valueEnd = skipValue(torrent, keyEnd);
    if (key === "info") return createHash("sha1").update(torrent.subarray(keyEnd, valueEnd)).digest("hex");
    i = valueEnd;
  }
  throw new Error("not a torrent: no info dictionary");
}

// ------------------------------------------------------------------ the swarm

export type Aria2Result = { readonly seconds: number };

function aria2Args(hook: string, torrents: readonly string[]): string[] {
  return [
    "--no-conf=true",
    "--dir=.",
    "--enable-dht=false",
    "--enable-dht6=false",
    "--bt-enable-lpd=false",
    "--enable-peer-exchange=false",
    "--disable-ipv6=true",
    "--interface=127.0.0.1",
    "--bt-external-ip=127.0.0.1",
    "--check-integrity=true",
    "--seed-ratio=0.0",
    "--bt-tracker-interval=2",
    `--max-concurrent-downloads=${torrents.length}`,
    "--file-allocation=none",
    `--on-bt-download-complete=${hook}`,
    "--summary-interval=0",
    "--console-log-level=warn",
    "--download-result=hide",
    ...torrents,
  ];
}

export async function measureAria2Swarm(
  files: readonly InputFile[],
  dir: string,
  timeoutMs: number,
): Promise<Aria2Result> {
  const port = await freeTcpPort();
  const udpPort = await freeUdpPort();
  const announce = `http://127.0.0.1:${port}/announce`;
  const torrentDir = mkdirp(path.join(dir, "torrents"));
  const trackerDir = mkdirp(path.join(dir, "opentracker"));
  chmodSync(trackerDir, 0o755);
  const torrents: string[] = [];
  const hashes: string[] = [];
  for (const f of files) {
    const out = path.join(torrentDir, `${f.name}.torrent`);
    const r = runSync("mktorrent", ["-p", "-a", announce, "-o", out, f.path]);
    if (!r.ok) throw new Error(`mktorrent: ${r.output}`);
    torrents.push(out);
    hashes.push(infoHash(readFileSync(out)));
  }
  writeFileSync(path.join(trackerDir, "whitelist"), `${hashes.join("\n")}\n`, { mode: 0o644 });

  const doneFile = path.join(dir, "done.txt");
  const hook = path.join(dir, "hook.sh");
  writeFileSync(doneFile, "");
  writeFileSync(hook, `#!/bin/sh\nprintf '%s\\t%s\\t%s\\n' "$(date +%s.%N)" "$(pwd -P)" "$3" >> '${doneFile}'\n`, {
    mode: 0o755,
  });

  const tracker = new Proc(
    "opentracker",
    "opentracker",
    ["-i", "127.0.0.1", "-p", String(port), "-P", String(udpPort), "-d", trackerDir, "-w", "whitelist"],
    { cwd: trackerDir },
  );
  const peers: Proc[] = [];
  try {
    await Promise.race([
      waitTcpOpen(port, 10_000),
      tracker.exited.then((e) => {
        throw new Error(`opentracker exited (${exitText(e)}): ${tracker.describe()}`);
      }),
    ]);
    const own = new Map<string, string>();
    const peerDirs = files.map((f, i) => {
      const peerDir = mkdirp(path.join(dir, `peer${i + 1}`));
      copyFileSync(f.path, path.join(peerDir, f.name));
      own.set(realpathSync(peerDir), f.name);
      return peerDir;
    });
    const t0 = now();
    const t0Epoch = performance.timeOrigin + t0;
    peerDirs.forEach((peerDir, i) => {
      peers.push(new Proc(`aria2c ${i + 1}`, "aria2c", aria2Args(hook, torrents), { cwd: peerDir }));
    });
    const expected = files.length * (files.length - 1);
    const stamps = await pollUntil(
      () => {
        for (const p of [tracker, ...peers]) {
          if (p.exit !== undefined) throw new Error(`${p.label} exited (${exitText(p.exit)})`);
        }
        const downloads = readFileSync(doneFile, "utf8")
          .split("\n")
          .map((line) => line.split("\t"))
          .filter(
            ([, where, file]) => where !== undefined && file !== undefined && own.get(where) !== path.basename(file),
          )
          .map(([stamp]) => Number(stamp) * 1000);
        return downloads.length >= expected ? downloads : undefined;
      },
      timeoutMs,
      `aria2c: ${expected} downloads complete`,
      20,
    );
    const seen = now();
    const last = Math.max(...stamps);
    // Without GNU date's %N the stamps are unusable: fall back to when the hook file was read.
    const seconds = Number.isFinite(last) ? (last - t0Epoch) / 1000 : (seen - t0) / 1000;
    await stopAll(peers, 1000);
    const problems: string[] = [];
    for (const peerDir of peerDirs) {
      for (const f of files) {
        const bad = await checkCopy(path.join(peerDir, f.name), f);
        if (bad !== undefined) problems.push(bad);
      }
    }
    if (problems.length > 0) throw new Error(`aria2c copies differ: ${problems.join("; ")}`);
    return { seconds };
  } catch (err) {
    const who = [tracker, ...peers].map((p) => `  ${p.describe()}`).join("\n");
    throw new Error(`${errorText(err)}\n${who}`);
  } finally {
    await stopAll([...peers, tracker], 1000);
  }
}
