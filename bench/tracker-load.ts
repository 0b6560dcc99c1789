/**
 * `npm run bench:tracker`: the tracker's own CPU time per join and per ACQUIRED line, for
 * swarms of 8, 32 and 128 peers (issue 17). The peers are hand-made clients in this
 * process (no data path), so only the tracker works: each offers one file, all join in a
 * burst, then each reports every chunk of every other file in 64-chunk Have frames, as
 * real peers do. CPU time comes from /proc/PID/schedstat (nanoseconds), read once the
 * tracker has printed everything expected and gone quiet.
 *
 *   npm run bench:tracker -- [--peers 8,32,128] [--chunks 200] [--runs 3] [--root DIR]
 *
 * --root runs another build's dist/src/tracker/main.js (to compare with an older tree).
 */
import { readFileSync, statSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { parseArgs } from "node:util";
import { FrameDecoder } from "../src/wire/framing.js";
import { CHUNK_SIZE, CHUNKS_PER_BLOCK, CHUNKS_PER_PIECE, MAX_FRAME_BYTES, pieceCount } from "../src/wire/limits.js";
import { decodeTrackerFrame, encodeTrackerFrame, type FrameBody } from "../src/wire/tracker-frame.js";
import { makeTempRoot, mkdirp, removeTempRoots } from "./files.js";
import { killAllSync, Proc } from "./proc.js";
import { now, ROOT, sleep } from "./util.js";

const HAVE_CHUNKS = 64;
/** The tracker has gone quiet once no client heard anything but keepalives for this long (ms). */
const QUIET_MS = 300;

/** One hand-made client: answers pings, counts what it hears. */
class Client {
  readonly socket: net.Socket;
  welcomed = false;
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
          if (d.ok && d.frame.body === "welcome") this.welcomed = true;
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

async function quiet(clients: readonly Client[], until: () => boolean, what: string): Promise<void> {
  const deadline = now() + 600_000;
  for (;;) {
    const last = Math.max(...clients.map((c) => c.lastHeard));
    if (until() && now() - last > QUIET_MS) return;
    if (now() > deadline) {
      const closed = clients.filter((c) => c.socket.destroyed).length;
      throw new Error(`timed out waiting for ${what} (${closed} of ${clients.length} connections closed)`);
    }
    await sleep(20);
  }
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
  const clients = await Promise.all(Array.from({ length: peers }, () => Client.connect(port)));
  const cpu0 = cpuMs(pid);
  const t0 = now();
  clients.forEach((c, i) => {
    c.send({ hello: { udpPort: 20000 + i, offers: [manifest(i + 1, chunks)] } });
  });
  await quiet(clients, () => clients.every((c) => c.welcomed), "every Welcome");
  const cpuJoin = cpuMs(pid) - cpu0; // the quiet wait is idle time
  const joinsMs = now() - t0 - QUIET_MS;
  const afterJoin = size();
  // Every client reports every chunk of every other file: 64 chunks a frame, files in turn.
  const cpu1 = cpuMs(pid);
  const lines = peers * (peers - 1) * chunks;
  let expectedBytes = afterJoin;
  for (let id = 1; id <= peers; id++) {
    for (let f = 1; f <= peers; f++) {
      if (f === id) continue;
      const name = manifest(f, chunks).name;
      for (let c = 1; c <= chunks; c++) expectedBytes += `PEER ${id} ACQUIRED: CHUNK ${c}/${chunks} ${name}\n`.length;
    }
  }
  for (let first = 0; first < chunks; first += HAVE_CHUNKS) {
    const count = Math.min(HAVE_CHUNKS, chunks - first);
    clients.forEach((c, i) => {
      for (let f = 1; f <= peers; f++) if (f !== i + 1) c.send({ have: { fileId: f, runs: [first, count] } });
    });
    await sleep(1);
  }
  await quiet(clients, () => size() >= expectedBytes, "every ACQUIRED line");
  const cpuHave = cpuMs(pid) - cpu1;
  for (const c of clients) c.socket.destroy();
  tracker.signal("SIGTERM");
  await tracker.exited;
  if (size() < expectedBytes) throw new Error(`tracker printed ${size()} bytes, expected ${expectedBytes}`);
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
  console.log("| peers | CPU per join | CPU per ACQUIRED line | ACQUIRED lines | burst of joins |");
  console.log("|---:|---:|---:|---:|---:|");
  for (const peers of sizes) {
    const results: Result[] = [];
    for (let r = 0; r < runs; r++) results.push(await runOnce(root, peers, chunks, path.join(tmp, `${peers}-${r}`)));
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
