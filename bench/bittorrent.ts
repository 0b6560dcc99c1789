/**
 * The BitTorrent reference: N `aria2c` peers and a local `opentracker` on loopback, each
 * peer starting with one file and fetching the others (scenarios 2 and 3). Two
 * configurations:
 * - "multi" (the reference, BitTorrent at its best): ONE multi-file torrent of all N files
 *   (`mktorrent -p -l 18`: 256 KiB pieces, which the file sizes are multiples of, so no
 *   piece straddles two peers' files) that all N aria2c join, with
 *   `--bt-tracker-connect-timeout=5 --bt-tracker-interval=2`; each fires the hook once.
 * - "per-file" (the earlier configuration, kept for comparison): one torrent per file with
 *   mktorrent's default piece size, every aria2c given all N; a hook per completed torrent.
 * Torrents are private (`mktorrent -p`), so DHT, local peer discovery and peer exchange are
 * off anyway, and are also switched off explicitly. Debian's opentracker serves only whitelisted
 * info-hashes; its `-w` path is resolved inside its `-d` directory (its chroot when it
 * runs as root, its working directory otherwise), so the whitelist lives there.
 *
 * Timing: t0 just before the first aria2c is spawned; each aria2c runs a hook at every
 * completed download (`--on-bt-download-complete`) that appends `date +%s.%N`, its
 * directory and the file; t1 is the latest of those stamps once all downloads are in
 * (N×(N−1) with a torrent per file; N with one torrent). The peers seed on
 * (`--seed-ratio=0.0` means no ratio limit) until all are done and are then stopped.
 */
import { createHash } from "node:crypto";
import { chmodSync, copyFileSync, linkSync, readFileSync, realpathSync, writeFileSync } from "node:fs";
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

export type TorrentLayout = "multi" | "per-file";

/** Piece size of the multi-file torrent: 2^18 = 256 KiB (`mktorrent -l 18`). */
export const MULTI_PIECE_BYTES = 2 ** 18;
/** The multi-file torrent's name: the folder its files live in, in every peer's directory. */
const MULTI_NAME = "swarm";

function aria2Args(hook: string, torrents: readonly string[], layout: TorrentLayout): string[] {
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
    ...(layout === "multi" ? ["--bt-tracker-connect-timeout=5"] : []),
    `--max-concurrent-downloads=${torrents.length}`,
    "--file-allocation=none",
    `--on-bt-download-complete=${hook}`,
    "--summary-interval=0",
    "--console-log-level=warn",
    "--download-result=hide",
    ...torrents,
  ];
}

/** The .torrent files of `layout`, written to `torrentDir`, with their info-hashes. */
function makeTorrents(
  files: readonly InputFile[],
  layout: TorrentLayout,
  dir: string,
  announce: string,
): { torrents: string[]; hashes: string[] } {
  const torrentDir = mkdirp(path.join(dir, "torrents"));
  const make = (out: string, args: readonly string[]) => {
    const r = runSync("mktorrent", ["-p", ...args, "-a", announce, "-o", out]);
    if (!r.ok) throw new Error(`mktorrent: ${r.output}`);
    return { torrents: [out], hashes: [infoHash(readFileSync(out))] };
  };
  if (layout === "multi") {
    const odd = files.find((f) => f.size % MULTI_PIECE_BYTES !== 0);
    if (odd !== undefined) throw new Error(`${odd.name}: size not a multiple of the 256 KiB piece`);
    const content = mkdirp(path.join(dir, "content", MULTI_NAME));
    for (const f of files) linkSync(f.path, path.join(content, f.name));
    return make(path.join(torrentDir, `${MULTI_NAME}.torrent`), ["-l", "18", content]);
  }
  const torrents: string[] = [];
  const hashes: string[] = [];
  for (const f of files) {
    const one = make(path.join(torrentDir, `${f.name}.torrent`), [f.path]);
    torrents.push(...one.torrents);
    hashes.push(...one.hashes);
  }
  return { torrents, hashes };
}

export async function measureAria2Swarm(
  files: readonly InputFile[],
  dir: string,
  timeoutMs: number,
  layout: TorrentLayout,
): Promise<Aria2Result> {
  const port = await freeTcpPort();
  const udpPort = await freeUdpPort();
  const announce = `http://127.0.0.1:${port}/announce`;
  const trackerDir = mkdirp(path.join(dir, "opentracker"));
  chmodSync(trackerDir, 0o755);
  const { torrents, hashes } = makeTorrents(files, layout, dir, announce);
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
    // Where a peer's files live: its directory, or the torrent's folder in it.
    const dataDir = (peerDir: string) => (layout === "multi" ? path.join(peerDir, MULTI_NAME) : peerDir);
    const peerDirs = files.map((f, i) => {
      const peerDir = mkdirp(path.join(dir, `peer${i + 1}`));
      copyFileSync(f.path, path.join(mkdirp(dataDir(peerDir)), f.name));
      own.set(realpathSync(peerDir), f.name);
      return peerDir;
    });
    const t0 = now();
    const t0Epoch = performance.timeOrigin + t0;
    peerDirs.forEach((peerDir, i) => {
      peers.push(new Proc(`aria2c ${i + 1}`, "aria2c", aria2Args(hook, torrents, layout), { cwd: peerDir }));
    });
    // One torrent: one download per peer (the hook names its first file); per file: one per
    // file fetched. The first stamp of each download counts, should a hook run twice.
    const downloadOf = (where: string, file: string): string | undefined => {
      if (!own.has(where)) return undefined;
      if (layout === "multi") return where;
      return own.get(where) === path.basename(file) ? undefined : `${where}\t${path.basename(file)}`;
    };
    const expected = layout === "multi" ? files.length : files.length * (files.length - 1);
    const stamps = await pollUntil(
      () => {
        for (const p of [tracker, ...peers]) {
          if (p.exit !== undefined) throw new Error(`${p.label} exited (${exitText(p.exit)})`);
        }
        const downloads = new Map<string, number>();
        for (const [stamp, where, file] of readFileSync(doneFile, "utf8")
          .split("\n")
          .map((line) => line.split("\t"))) {
          const key = where === undefined || file === undefined ? undefined : downloadOf(where, file);
          if (key !== undefined && !downloads.has(key)) downloads.set(key, Number(stamp) * 1000);
        }
        return downloads.size >= expected ? [...downloads.values()] : undefined;
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
        const bad = await checkCopy(path.join(dataDir(peerDir), f.name), f);
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
