/**
 * `npm run bench:tracker`: the tracker's own CPU time per join and per ACQUIRED line, for
 * swarms of 8, 32 and 128 peers (issue 17). The peers are hand-made clients in this
 * process (no data path), so only the tracker works: each offers one file, all join in a
 * burst, then each reports every chunk of every other file in 64-chunk Have frames, each
 * with the receipts its holder's chunk shares would have made (see tracker-receipts.ts): the
 * tracker prints only received chunks. CPU time comes from /proc/PID/schedstat
 * (nanoseconds), read once the tracker has printed everything expected and gone quiet; a run
 * whose tracker refuses reports or prints other than the expected ACQUIRED lines fails.
 *
 *   npm run bench:tracker -- [--peers 8,32,128] [--chunks 200] [--runs 3] [--root DIR]
 *
 * --root runs another build's dist/src/tracker/main.js (to compare with an older tree).
 */
import { createReadStream, readFileSync, statSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { acquiredLine } from "../src/tracker/output.js";
import { FrameDecoder } from "../src/wire/framing.js";
import { CHUNK_SIZE, CHUNKS_PER_BLOCK, CHUNKS_PER_PIECE, MAX_FRAME_BYTES, pieceCount } from "../src/wire/limits.js";
import { decodeTrackerFrame, encodeTrackerFrame, type FrameBody, type udpswarm } from "../src/wire/tracker-frame.js";
import { makeTempRoot, mkdirp, removeTempRoots } from "./files.js";
import { killAllSync, Proc } from "./proc.js";
import { type Identity, spanReceipts } from "./tracker-receipts.js";
import { errorText, now, ROOT, sleep } from "./util.js";

const HAVE_CHUNKS = 64;
/** The tracker has gone quiet once no client heard anything but keepalives for this long (ms). */
const QUIET_MS = 300;
/** A run has stalled once the tracker printed nothing, sent nothing and used no CPU for this long (ms). */
const STALL_MS = 5000;
/** What the tracker says on stderr when it refuses a report (src/tracker/registry.ts). */
const REFUSED = /claimed without a valid receipt|malformed receipts/;

/** One hand-made client: answers pings, keeps its Welcome, notes when it last heard something. */
class Client {
  readonly socket: net.Socket;
  welcome: udpswarm.IWelcome | undefined;
  lastHeard = now();
  readonly #decoder = new FrameDecoder(MAX_FRAME_BYTES);

  constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on("error", () => {});
    socket.on("data", (data: Buffer) => {
      for (const body of this.#decoder.push(data)) {
        const d = decodeTrackerFrame(body);
        if (d.ok && d.frame.body === "ping") this.send({ pong: { nonce: d.frame.ping?.nonce ?? 0 } });
        else {
          // Keepalives aside (and frames of an older tree counted too): quiet once nothing else comes.
          this.lastHeard = now();
          if (d.ok && d.frame.body === "welcome") this.welcome = d.frame.welcome ?? undefined;
        }
      }
    });
  }

  static connect(port: number): Promise<Client> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: "127.0.0.1", port, noDelay: true });
      socket.once("error", reject);
      socket.once("connect", () => resolve(new Client(socket)));
    });
  }

  send(body: FrameBody): void {
    this.socket.write(encodeTrackerFrame(body));
  }
}

/** CPU time of a process so far (ms), from the scheduler's own account. */
function cpuMs(pid: number): number {
  return Number(readFileSync(`/proc/${pid}/schedstat`, "utf8").split(" ")[0]) / 1e6;
}

function manifest(i: number, chunks: number) {
  const size = chunks * CHUNK_SIZE;
  const hash = (k: number) => Buffer.alloc(32, (i * 31 + k) & 0xff);
  return {
    name: `file ${String(i).padStart(3, "0")}.bin`,
    size,
    chunkSize: CHUNK_SIZE,
    chunksPerPiece: CHUNKS_PER_PIECE,
    chunksPerBlock: CHUNKS_PER_BLOCK,
    sha256: hash(0),
    pieceSha256: Array.from({ length: pieceCount(chunks) }, (_, k) => hash(k + 1)),
  };
}

/**
 * Waits until `until()` holds and the tracker has gone quiet. Fails with `failure()`'s text
 * as soon as it has one, and when the tracker has stalled (nothing printed, nothing sent, no
 * CPU used for STALL_MS) short of `until()`.
 */
async function quiet(
  tracker: { readonly pid: number; readonly printed: () => number },
  clients: readonly Client[],
  until: () => boolean,
  what: string,
  failure: () => string | undefined,
): Promise<void> {
  let progress = "";
  let progressAt = now();
  for (;;) {
    const last = Math.max(...clients.map((c) => c.lastHeard));
    if (until() && now() - last > QUIET_MS) return;
    const failed = failure();
    if (failed !== undefined) throw new Error(`waiting for ${what}: ${failed}`);
    const state = `${tracker.printed()} ${last} ${Math.floor(cpuMs(tracker.pid) / 50)}`;
    if (state !== progress) {
      progress = state;
      progressAt = now();
    } else if (now() - progressAt > STALL_MS) {
      const closed = clients.filter((c) => c.socket.destroyed).length;
      throw new Error(
        `waiting for ${what}: the tracker stalled (nothing printed, sent or computed for ${STALL_MS} ms; ` +
          `${closed} of ${clients.length} connections closed)`,
      );
    }
    await sleep(20);
  }
}

/** A client after its Welcome: its identity and the id of the file it offered. */
type Joined = Identity & { readonly client: Client; readonly fileId: number; readonly name: string };

function joined(client: Client, name: string): Joined {
  const w = client.welcome;
  const fileId = [...(w?.accepted ?? []), ...(w?.files ?? [])].find((f) => f.manifest?.name === name)?.fileId;
  if (w?.peerId == null || fileId == null) {
    const refused = (w?.refused ?? []).map((r) => JSON.stringify(r)).join(", ");
    throw new Error(`the tracker did not accept the offer of ${JSON.stringify(name)}${refused && ` (${refused})`}`);
  }
  return { client, peerId: w.peerId, secret: w.secret ?? new Uint8Array(), fileId, name };
}

/**
 * Counts the tracker's ACQUIRED lines per (peer, file): each receiver must have exactly one
 * line per chunk of every file but its own, and there must be no others. Returns what is
 * wrong, or undefined.
 */
async function checkAcquired(out: string, all: readonly Joined[], chunks: number): Promise<string | undefined> {
  const counts = new Map<string, number>();
  let lines = 0;
  const re = /^PEER (\d+) ACQUIRED: CHUNK (\d+)\/(\d+) (.*)$/;
  for await (const line of createInterface({ input: createReadStream(out), crlfDelay: Number.POSITIVE_INFINITY })) {
    const m = re.exec(line);
    if (m === null) continue;
    lines++;
    const key = `${m[1]} ${m[4]}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  const expected = all.length * (all.length - 1) * chunks;
  const wrong: string[] = [];
  for (const r of all) {
    for (const h of all) {
      if (h === r) continue;
      const n = counts.get(`${r.peerId} ${h.name}`) ?? 0;
      if (n !== chunks) wrong.push(`peer ${r.peerId} × ${JSON.stringify(h.name)}: ${n} lines`);
    }
  }
  if (lines === expected && wrong.length === 0) return undefined;
  return (
    `the tracker printed ${lines} ACQUIRED lines, expected ${expected} (${chunks} per peer and file not its own)` +
    (wrong.length === 0 ? "" : `; ${wrong.length} pairs wrong, e.g. ${wrong.slice(0, 3).join(", ")}`)
  );
}

type Result = { peers: number; msPerJoin: number; usPerLine: number; lines: number; joinsMs: number };

async function runOnce(root: string, peers: number, chunks: number, dir: string): Promise<Result> {
  const out = path.join(dir, "tracker.stdout");
  mkdirp(dir);
  const tracker = new Proc("tracker", "sh", ["-c", `exec node "${root}/dist/src/tracker/main.js" > "${out}"`], {
    cwd: dir,
  });
  const port = Number((await tracker.waitForStderr(/listening on port (\d+)/, 10_000))[1]);
  // The sh exec'd node: the pid is the tracker's.
  const pid = tracker.pid;
  await sleep(200);
  const size = () => {
    try {
      return statSync(out).size;
    } catch {
      return 0;
    }
  };
  const watched = { pid, printed: size };
  const refused = (): string | undefined => {
    if (tracker.exit !== undefined) return `the tracker exited early:\n  ${tracker.describe()}`;
    const said = tracker.stderrTail.split("\n").find((l) => REFUSED.test(l));
    return said === undefined ? undefined : `the tracker refused a report: ${said.trim()}`;
  };
  const clients = await Promise.all(Array.from({ length: peers }, () => Client.connect(port)));
  const cpu0 = cpuMs(pid);
  const t0 = now();
  clients.forEach((c, i) => {
    c.send({ hello: { udpPort: 20000 + i, offers: [manifest(i + 1, chunks)] } });
  });
  await quiet(watched, clients, () => clients.every((c) => c.welcome !== undefined), "every Welcome", refused);
  const cpuJoin = cpuMs(pid) - cpu0; // the quiet wait is idle time
  const joinsMs = now() - t0 - QUIET_MS;
  const afterJoin = size();
  // Ids, secrets and file ids as the tracker gave them (the burst's order is the tracker's).
  const all = clients.map((c, i) => joined(c, manifest(i + 1, chunks).name));
  // Every client reports every chunk of every other file: 64 chunks a frame, files in turn.
  // The frames (and their receipts) are made before the clock starts: only the tracker works then.
  const rounds: Array<Array<{ client: Client; frame: Buffer }>> = [];
  let expectedBytes = afterJoin;
  for (let first = 0; first < chunks; first += HAVE_CHUNKS) {
    const count = Math.min(HAVE_CHUNKS, chunks - first);
    const round: Array<{ client: Client; frame: Buffer }> = [];
    for (const r of all) {
      for (const h of all) {
        if (h === r) continue;
        // An older tree (--root) gives no secret and wants no receipts.
        const receipts = h.secret.length === 0 ? undefined : spanReceipts(h, r.peerId, h.fileId, chunks, first, count);
        const have = { fileId: h.fileId, runs: [first, count], ...(receipts && { receipts }) };
        round.push({ client: r.client, frame: encodeTrackerFrame({ have }) });
        for (let c = first; c < first + count; c++)
          expectedBytes += acquiredLine(r.peerId, c, chunks, h.name).length + 1;
      }
    }
    rounds.push(round);
  }
  const lines = peers * (peers - 1) * chunks;
  const cpu1 = cpuMs(pid);
  for (const round of rounds) {
    for (const { client, frame } of round) client.socket.write(frame);
    await sleep(1);
  }
  let failed: unknown;
  try {
    await quiet(
      watched,
      clients,
      () => size() >= expectedBytes,
      "every ACQUIRED line",
      () => {
        const why = refused();
        if (why !== undefined) return why;
        return size() > expectedBytes
          ? `the tracker printed ${size() - expectedBytes} bytes more than expected`
          : undefined;
      },
    );
  } catch (err) {
    failed = err;
  }
  const cpuHave = cpuMs(pid) - cpu1;
  for (const c of clients) c.socket.destroy();
  tracker.signal("SIGTERM");
  await tracker.exited;
  // The lines themselves, also when the wait failed (then they say how far it got).
  const wrong = await checkAcquired(out, all, chunks);
  if (failed !== undefined) throw new Error(`${errorText(failed)}${wrong === undefined ? "" : `; ${wrong}`}`);
  if (wrong !== undefined) throw new Error(wrong);
  return { peers, msPerJoin: cpuJoin / peers, usPerLine: (cpuHave * 1000) / lines, lines, joinsMs };
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      peers: { type: "string", default: "8,32,128" },
      chunks: { type: "string", default: "200" },
      runs: { type: "string", default: "3" },
      root: { type: "string" },
    },
  });
  const root = path.resolve(values.root ?? ROOT);
  const sizes = (values.peers ?? "").split(",").map(Number);
  const chunks = Number(values.chunks);
  const runs = Number(values.runs);
  const tmp = makeTempRoot("tracker-load");
  console.log(`tracker CPU (${root}), ${chunks} chunks per file, median of ${runs} runs\n`);
  let header = false;
  for (const peers of sizes) {
    const results: Result[] = [];
    for (let r = 0; r < runs; r++) {
      try {
        results.push(await runOnce(root, peers, chunks, path.join(tmp, `${peers}-${r}`)));
      } catch (err) {
        throw new Error(`${peers} peers, run ${r + 1} of ${runs}: ${errorText(err)}`);
      }
    }
    // Rows of checked runs only: a failed run prints its error, never an empty table.
    if (!header) {
      console.log("| peers | CPU per join | CPU per ACQUIRED line | ACQUIRED lines | burst of joins |");
      console.log("|---:|---:|---:|---:|---:|");
      header = true;
    }
    const join = median(results.map((x) => x.msPerJoin));
    const line = median(results.map((x) => x.usPerLine));
    const burst = median(results.map((x) => x.joinsMs));
    console.log(
      `| ${peers} | ${join.toFixed(2)} ms | ${line.toFixed(2)} µs | ${results[0]?.lines ?? 0} | ${burst.toFixed(0)} ms |`,
    );
  }
}

main()
  .catch((err: unknown) => {
    process.stderr.write(`bench:tracker: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  })
  .finally(() => {
    killAllSync();
    removeTempRoots();
  });
