/**
 * End-to-end faults: peers SIGKILLed mid-transfer, and a tracker that vanishes.
 */
import test from "ava";
import { chunkCount, parsePeerStdout, sortByNameBytes } from "../helpers/expect-output.js";
import { type FileSpec, readShared, Swarm } from "../helpers/swarm.js";

const KiB = 1024;
const MiB = 1024 * 1024;

test.serial("a peer killed mid-transfer, after its file is complete elsewhere: the others finish", async (t) => {
  const swarm = await Swarm.start(t);
  const gate = await swarm.gate(3);
  // k's downloads are 400 times its own file: on a quiet machine 2 MiB went whole before
  // the tracker's lines said k's file was complete elsewhere (precondition failed).
  const aFile: FileSpec = { name: "a big.bin", size: 8 * MiB };
  const bFile: FileSpec = { name: "b big.bin", size: 8 * MiB + 100 };
  const kFile: FileSpec = { name: "k small.bin", size: 20 * KiB };
  const [a, b, k] = await Promise.all([
    swarm.startPeer({ label: "a", files: [aFile], gate }),
    swarm.startPeer({ label: "b", files: [bFile], gate }),
    swarm.startPeer({ label: "k", files: [kFile], gate }),
  ]);
  const [ida, idb, idk] = await Promise.all([swarm.idOf(a), swarm.idOf(b), swarm.idOf(k)]);
  await swarm.killWhen(
    k,
    "a and b to complete k's file while k is downloading",
    () => swarm.completed(ida, kFile) && swarm.completed(idb, kFile) && swarm.acquired(idk) >= 1,
  );
  const result = await swarm.finish();
  swarm.logSummary(result);
  const needed = chunkCount(aFile.size) + chunkCount(bFile.size);
  t.true(swarm.acquired(idk) < needed, "precondition: k must not have finished its downloads before the kill");
  const all = sortByNameBytes([aFile.name, bFile.name, kFile.name]);
  t.deepEqual(result.has(a), all);
  t.deepEqual(result.has(b), all);
  t.false(result.has(k).includes(aFile.name) && result.has(k).includes(bFile.name));
});

test.serial("the only holder of a file is killed mid-transfer: the others leave without it", async (t) => {
  const swarm = await Swarm.start(t);
  const gate = await swarm.gate(3);
  const aFile: FileSpec = { name: "a.bin", size: MiB };
  const bFile: FileSpec = { name: "b.bin", size: 64 * KiB };
  const sFile: FileSpec = { name: "only on k.bin", size: 4 * MiB };
  const [a, b, k] = await Promise.all([
    swarm.startPeer({ label: "a", files: [aFile], gate }),
    swarm.startPeer({ label: "b", files: [bFile], gate }),
    swarm.startPeer({ label: "k", files: [sFile], gate }),
  ]);
  const [ida, idb, idk] = await Promise.all([swarm.idOf(a), swarm.idOf(b), swarm.idOf(k)]);
  await swarm.killWhen(
    k,
    "a and b to be fetching k's file while k is downloading",
    () => swarm.acquired(ida, sFile.name) >= 16 && swarm.acquired(idb, sFile.name) >= 16 && swarm.acquired(idk) >= 1,
  );
  const result = await swarm.finish();
  swarm.logSummary(result);
  t.true(swarm.acquired(ida, sFile.name) < chunkCount(sFile.size), "precondition: a must not have all of k's file");
  t.true(swarm.acquired(idb, sFile.name) < chunkCount(sFile.size), "precondition: b must not have all of k's file");
  const expected = sortByNameBytes([aFile.name, bFile.name]);
  t.deepEqual(result.has(a), expected);
  t.deepEqual(result.has(b), expected);
  t.deepEqual(result.outcome(a).received, [bFile.name]);
  t.deepEqual(result.outcome(b).received, [aFile.name]);
});

test.serial("a lost tracker: peers exit non-zero with a message and leave no partial file", async (t) => {
  const swarm = await Swarm.start(t);
  const gate = await swarm.gate(2);
  const aFile: FileSpec = { name: "a lost.bin", size: 2 * MiB };
  const bFile: FileSpec = { name: "b lost.bin", size: 2 * MiB + 1 };
  const [a, b] = await Promise.all([
    swarm.startPeer({ label: "a", files: [aFile], gate }),
    swarm.startPeer({ label: "b", files: [bFile], gate }),
  ]);
  const [ida, idb] = await Promise.all([swarm.idOf(a), swarm.idOf(b)]);
  await swarm.waitFor("both peers to be downloading", () => swarm.acquired(ida) >= 16 && swarm.acquired(idb) >= 16, [
    a,
    b,
  ]);
  swarm.killTracker();
  const originals = new Map([
    [aFile.name, swarm.original(aFile.name) ?? Buffer.alloc(0)],
    [bFile.name, swarm.original(bFile.name) ?? Buffer.alloc(0)],
  ]);
  for (const p of [a, b]) {
    const exit = await swarm.exitOf(p);
    const stderr = p.proc.stderr().toString("utf8");
    t.log(
      `peer ${p.label}: exit ${exit.code}, signal ${exit.signal}; last stderr line: ${stderr.trimEnd().split("\n").pop()}`,
    );
    t.true(exit.code !== null && exit.code !== 0, `peer ${p.label} exit code ${exit.code} (signal ${exit.signal})`);
    t.regex(stderr, /[^\n]\n$/, `peer ${p.label} must end its stderr with a message line`);
    const stdout = p.proc.stdout();
    if (stdout.length > 0) t.deepEqual(parsePeerStdout(stdout, `peer ${p.label} stdout`).problems, []);
    const shared = await readShared(p.sharedDir, originals);
    t.truthy(shared?.get(p.files[0]?.name ?? ""), `peer ${p.label} lost its own file`);
    for (const [name, entry] of shared ?? []) {
      t.deepEqual(entry, { kind: "file", content: "identical" }, `peer ${p.label}: ./Shared/${name}`);
    }
  }
});

test.serial("transfers complete byte-identical at 30% loss, with duplication, reordering and corruption", async (t) => {
  // Light: 600 KiB in all (the loss makes it slow, not heavy).
  const swarm = await Swarm.start(t, { timeoutMs: 90_000, exclusive: "half" });
  const gate = await swarm.gate(3);
  const faults = ["--loss", "0.3", "--dup", "0.05", "--reorder", "0.05", "--corrupt", "0.01"];
  const peers = await Promise.all([
    swarm.startPeer({
      label: "flag-options",
      gate,
      extraArgs: [...faults, "--seed", "11"],
      files: [{ name: "lossy a.bin", size: 300 * KiB + 3 }],
    }),
    // The three-argument form with the options in the environment.
    swarm.startPeer({
      label: "env-options",
      gate,
      env: { UDPSWARM_LOSS: "0.3", UDPSWARM_SEED: "12" },
      files: [
        { name: "lossy b.bin", size: 200 * KiB },
        { name: "lossy tiny", size: 1 },
      ],
    }),
    swarm.startPeer({
      label: "clean",
      gate,
      files: [{ name: "lossy c.bin", size: 100 * KiB + 511 }],
    }),
  ]);
  const result = await swarm.finish();
  swarm.logSummary(result);
  for (const p of peers) t.deepEqual(result.has(p), result.allFiles, `peer ${p.label}`);
});
