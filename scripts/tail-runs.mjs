// node scripts/tail-runs.mjs [ROOT] [RUNS] [LOSS]: the 99% -> 100% tail of one download,
// many times. Each run: a tracker and two peers on loopback (ROOT's tracker.sh and peer.sh,
// default this checkout), a 64 MiB file, `--loss LOSS` on the downloader (default 0.3);
// the tail is the time from the ACQUIRED line that makes 99% of the chunks to the last
// one, as `npm run bench` measures it, which prints only the median of 3 runs. Prints
// every run's tail (ms), sorted too: the bench's median hides the runs that wait.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const [rootArg = here, runsText = "10", loss = "0.3"] = process.argv.slice(2);
const root = path.resolve(rootArg);
const size = 64 * 1048576;
const chunks = size / 512;
const data = randomBytes(size);
const exited = (p) => new Promise((resolve) => p.on("exit", resolve));
const tails = [];
for (let r = 0; r < Number(runsText); r++) {
  const w = mkdtempSync(path.join(tmpdir(), "udpswarm-tail-"));
  for (const d of ["t", "s/Shared", "d"]) mkdirSync(path.join(w, d), { recursive: true });
  writeFileSync(path.join(w, "s/Shared/big.bin"), data);
  const tracker = spawn("sh", [path.join(root, "tracker.sh")], {
    cwd: path.join(w, "t"),
    stdio: ["ignore", "pipe", "ignore"],
  });
  let acquired = 0;
  let seederListed = false;
  let at99;
  let atEnd;
  let pending = "";
  tracker.stdout.on("data", (bytes) => {
    pending += bytes;
    for (let i = pending.indexOf("\n"); i >= 0; i = pending.indexOf("\n")) {
      if (pending.slice(0, i).includes(" CONNECT: ")) seederListed = true;
      if (pending.slice(0, i).includes(" ACQUIRED: ")) {
        acquired++;
        if (acquired === Math.ceil(chunks * 0.99)) at99 = performance.now();
        if (acquired === chunks) atEnd = performance.now();
      }
      pending = pending.slice(i + 1);
    }
  });
  const portFile = path.join(w, "t/port.txt");
  // "close", not "exit": its last ACQUIRED lines may still be in the pipe at its exit.
  const trackerGone = new Promise((resolve) => tracker.on("close", resolve));
  let gone = false;
  void trackerGone.then(() => {
    gone = true;
  });
  while (!existsSync(portFile) || readFileSync(portFile, "utf8") === "") {
    if (gone) throw new Error(`the tracker of ${root} exited before writing its port`);
    await new Promise((ok) => setTimeout(ok, 5));
  }
  const port = readFileSync(portFile, "utf8").trim();
  const peer = (dir, args) =>
    spawn("sh", [path.join(root, "peer.sh"), "127.0.0.1", port, ...args], { cwd: path.join(w, dir), stdio: "ignore" });
  const seeder = peer("s", ["1", "--quiet"]);
  // The downloader joins once the seeder is listed: else it may find nothing to fetch.
  while (!seederListed) await new Promise((ok) => setTimeout(ok, 5));
  const downloader = peer("d", ["0", "--quiet", "--loss", loss]);
  await Promise.all([exited(seeder), exited(downloader)]);
  tracker.kill("SIGTERM");
  await trackerGone;
  if (atEnd === undefined) console.error(`run ${r + 1}: ${acquired} of ${chunks} ACQUIRED lines`);
  tails.push(at99 !== undefined && atEnd !== undefined ? Math.round(atEnd - at99) : Number.NaN);
  rmSync(w, { recursive: true, force: true });
}
console.log(`loss ${loss}, ${tails.length} runs, tail 99% -> 100% (ms): ${tails.join(" ")}`);
console.log(`sorted: ${[...tails].sort((a, b) => a - b).join(" ")}`);
