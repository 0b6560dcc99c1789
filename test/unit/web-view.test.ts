/**
 * The web view's model (src/tracker/web/model.ts): piece bars from chunk runs, percents,
 * download rates from successive snapshots, departures, and the model built from a real
 * (I/O-free) Registry. Escaping is not the model's job: names stay verbatim here and the
 * page puts them in the DOM as text (checked in Chromium by test/e2e/web-view.test.ts).
 */
import test from "ava";
import { disconnectBlock } from "../../src/tracker/output.js";
import { Registry } from "../../src/tracker/registry.js";
import {
  activityOf,
  barCells,
  formatAddress,
  parseDisconnectBlock,
  percentOf,
  type SourceSnapshot,
  ViewBuilder,
  type ViewModel,
  type ViewSource,
} from "../../src/tracker/web/model.js";
import { SILENT_SINK as SILENT, testManifest } from "../helpers/manifest.js";

const manifest = testManifest;

function swarm() {
  const registry = new Registry(SILENT, (n) => Buffer.alloc(n, 7));
  const fileId = (name: string): number => {
    const file = registry.snapshot().files.find((f) => f.name === name);
    if (file === undefined) throw new Error(`no file ${name}`);
    return file.id;
  };
  const have = (peerId: number, name: string, runs: number[]): void => {
    const problem = registry.have(peerId, fileId(name), runs);
    if (problem !== undefined) throw new Error(problem);
  };
  return { registry, fileId, have };
}

/** The source, counting holding() calls (bars are redrawn only when a count changed). */
function counting(source: ViewSource): ViewSource & { holdingCalls: number } {
  const counted = {
    holdingCalls: 0,
    snapshot: () => source.snapshot(),
    holding: (peerId: number, fileId: number) => {
      counted.holdingCalls++;
      return source.holding(peerId, fileId);
    },
  };
  return counted;
}

function bar(model: ViewModel, fileName: string, peerId: number) {
  const file = model.files.find((f) => f.name === fileName);
  const b = file?.bars.find((x) => x.peerId === peerId);
  if (b === undefined) throw new Error(`no bar for peer ${peerId} in ${fileName}`);
  return b;
}

// ------------------------------------------------------------------ bars and percents

test("barCells: one cell per chunk for small files, digits for how much of each cell is held", (t) => {
  t.is(barCells(3, [[1, 1]], 200), "090");
  t.is(barCells(5, [], 200), "00000");
  t.is(
    barCells(
      5,
      [
        [0, 2],
        [4, 1],
      ],
      200,
    ),
    "99009",
  );
  t.is(barCells(0, [], 200), "");
  // 10 chunks in 4 cells of 2, 3, 2, 3 chunks (boundaries at 0, 2, 5, 7, 10).
  t.is(barCells(10, [[0, 1]], 4), "5000");
  t.is(barCells(10, [[2, 3]], 4), "0900");
  t.is(barCells(10, [[4, 2]], 4), "0350");
  t.is(barCells(10, [[0, 10]], 4), "9999");
});

test("barCells: at most maxCells cells, O(runs + cells) on a multi-GiB file", (t) => {
  const chunks = 16 * 1024 * 1024; // 8 GiB of 512-byte chunks
  const cells = barCells(chunks, [[0, chunks / 2]], 200);
  t.is(cells.length, 200);
  t.is(cells, "9".repeat(100) + "0".repeat(100));
  // One chunk in a cell of 83886 chunks: visible (not "0"), not full.
  const one = barCells(chunks, [[chunks - 1, 1]], 200);
  t.is(one.slice(0, 199), "0".repeat(199));
  t.is(one[199], "1");
});

test("percentOf: floored, 100 only when complete, empty files 0 until held", (t) => {
  t.is(percentOf(0, 10, false), 0);
  t.is(percentOf(1, 3, false), 33);
  t.is(percentOf(999, 1000, false), 99);
  t.is(percentOf(1000, 1000, false), 99, "not 100 until the registry marks it complete");
  t.is(percentOf(1000, 1000, true), 100);
  t.is(percentOf(0, 0, false), 0);
  t.is(percentOf(0, 0, true), 100);
});

test("formatAddress: brackets IPv6 hosts", (t) => {
  t.is(formatAddress("10.0.0.1", 7001), "10.0.0.1:7001");
  t.is(formatAddress("::1", 7001), "[::1]:7001");
});

// ------------------------------------------------------------------ the model from a registry

test("build: peers, files in byte order of names, one bar per live peer per file", (t) => {
  const { registry, have } = swarm();
  const evil = "<img src=x onerror=alert(1)>.txt";
  registry.join("10.0.0.1", 7001, [manifest("big.bin", 400 * 512), manifest(evil, 1000)]);
  registry.join("::1", 7002, [manifest("empty", 0)]);
  registry.join("10.0.0.3", 7003, []);
  have(2, "big.bin", [0, 100]);
  have(3, "big.bin", [100, 50, 300, 100]);
  have(3, evil, [0, 2]);

  const model = new ViewBuilder().build(registry, 0, 1_000);
  t.deepEqual(
    model.files.map((f) => f.name),
    [evil, "big.bin", "empty"],
  );
  t.deepEqual(
    model.peers.map((p) => [p.id, p.address, p.state, p.filesComplete, p.filesTotal, p.chunksHeld, p.chunksTotal]),
    [
      [1, "10.0.0.1:7001", "active", 2, 3, 402, 402],
      [2, "[::1]:7002", "active", 1, 3, 100, 402],
      [3, "10.0.0.3:7003", "active", 1, 3, 152, 402],
    ],
  );
  const big = model.files.find((f) => f.name === "big.bin");
  t.deepEqual(
    big?.bars.map((b) => [b.peerId, b.held, b.percent]),
    [
      [1, 400, 100],
      [2, 100, 25],
      [3, 150, 37],
    ],
  );
  t.is(bar(model, "big.bin", 1).cells, "", "a complete bar needs no cells");
  t.is(bar(model, "big.bin", 2).cells, "9".repeat(50) + "0".repeat(150));
  t.is(bar(model, "big.bin", 3).cells, "0".repeat(50) + "9".repeat(25) + "0".repeat(75) + "9".repeat(50));
  t.deepEqual(
    model.files.find((f) => f.name === "empty")?.bars.map((b) => [b.peerId, b.percent, b.cells]),
    [
      [1, 0, ""],
      [2, 100, ""],
      [3, 0, ""],
    ],
  );
  t.is(bar(model, evil, 3).percent, 100);
  // Names are data: the model keeps them verbatim and JSON carries them intact.
  const json = JSON.stringify(model);
  t.true(json.includes(JSON.stringify(evil)));
  t.deepEqual(JSON.parse(json), model);
  t.is(model.version, 1);
  t.is(model.chunkSize, 512);
});

test("build: a bar is recomputed only when its holder's count changed", (t) => {
  const { registry, have } = swarm();
  registry.join("10.0.0.1", 7001, [manifest("big.bin", 1000 * 512)]);
  registry.join("10.0.0.2", 7002, []);
  const source = counting(registry);
  const builder = new ViewBuilder();
  builder.build(source, 0, 0);
  t.is(source.holdingCalls, 0, "complete and empty bars need no runs");
  have(2, "big.bin", [0, 10]);
  builder.build(source, 100, 0);
  t.is(source.holdingCalls, 1);
  builder.build(source, 200, 0);
  builder.build(source, 300, 0);
  t.is(source.holdingCalls, 1, "nothing changed: the cached bar is reused");
  have(2, "big.bin", [500, 10]);
  const model = builder.build(source, 400, 0);
  t.is(source.holdingCalls, 2);
  t.is(bar(model, "big.bin", 2).cells, `${"9".repeat(2)}${"0".repeat(98)}${"9".repeat(2)}${"0".repeat(98)}`);
});

test("build: download rate in chunks per second over the window, back to 0 when idle", (t) => {
  const { registry, have } = swarm();
  registry.join("10.0.0.1", 7001, [manifest("big.bin", 2000 * 512)]);
  registry.join("10.0.0.2", 7002, []);
  const builder = new ViewBuilder({ rateWindowMs: 3000 });
  const rateOf = (now: number, peerId: number): number | undefined =>
    builder.build(registry, now, 0).peers.find((p) => p.id === peerId)?.downloadChunksPerSec;
  t.is(rateOf(0, 2), 0);
  have(2, "big.bin", [0, 100]);
  t.is(rateOf(1000, 2), 100);
  have(2, "big.bin", [100, 200]);
  t.is(rateOf(2000, 2), 150, "300 chunks in 2 s");
  t.is(rateOf(1000 + 3000, 2), 66.7, "window (1000, 4000]: 200 chunks in 3 s (baseline at 1000)");
  t.is(rateOf(2000 + 3000, 2), 0, "nothing for 3 s");
  t.is(rateOf(9000, 1), 0, "a seeder that acquires nothing");
});

test("build: a removed file restarts the rate instead of going negative", (t) => {
  const { registry, have } = swarm();
  registry.join("10.0.0.1", 7001, [manifest("a.bin", 100 * 512)]);
  registry.join("10.0.0.2", 7002, []);
  const builder = new ViewBuilder();
  builder.build(registry, 0, 0);
  have(2, "a.bin", [0, 50]);
  t.is(builder.build(registry, 1000, 0).peers[1]?.downloadChunksPerSec, 50);
  registry.leave(1); // a.bin is no longer available: peer 2's 50 chunks are forgotten
  const model = builder.build(registry, 1500, 0);
  t.deepEqual(model.files, []);
  t.is(model.peers[0]?.chunksHeld, 0);
  t.is(model.peers[0]?.downloadChunksPerSec, 0);
});

test("build: departed peers are listed, most recent first, and bounded", (t) => {
  const { registry } = swarm();
  registry.join("10.0.0.1", 7001, [manifest("a.bin", 512)]);
  for (let i = 2; i <= 5; i++) registry.join(`10.0.0.${i}`, 7000 + i, []);
  const builder = new ViewBuilder({ maxDeparted: 2 });
  builder.build(registry, 0, 1000);
  registry.leave(3);
  let model = builder.build(registry, 10, 2000);
  t.deepEqual(
    model.peers.map((p) => p.id),
    [1, 2, 4, 5],
  );
  // Without the DISCONNECT block (the tracker feeds it through noteDisconnect), received is unknown.
  t.deepEqual(model.departed, [{ id: 3, address: "10.0.0.3:7003", leftAt: 2000, received: null }]);
  t.deepEqual(
    model.files[0]?.bars.map((b) => b.peerId),
    [1, 2, 4, 5],
    "no bar for a departed peer",
  );
  registry.leave(4);
  registry.leave(2);
  model = builder.build(registry, 20, 3000);
  t.deepEqual(
    model.departed.map((d) => [d.id, d.leftAt]),
    [
      [2, 3000],
      [4, 3000],
    ],
  );
});

test("build: a peer refused a name (when the snapshot says so) gets no bar for it", (t) => {
  const snapshot: SourceSnapshot = {
    peers: [
      { id: 1, host: "10.0.0.1", udpPort: 7001, state: "active", files: [{ fileId: 1, held: 2, complete: true }] },
      {
        id: 2,
        host: "10.0.0.2",
        udpPort: 7002,
        state: "ready",
        files: [],
        refusedNames: ["same name.txt"],
      },
    ],
    files: [{ id: 1, name: "same name.txt", size: 1000, chunks: 2, completeHolders: 1 }],
  };
  const model = new ViewBuilder().build({ snapshot: () => snapshot, holding: () => undefined }, 0, 0);
  t.deepEqual(
    model.files[0]?.bars.map((b) => b.peerId),
    [1],
  );
  t.deepEqual(
    model.peers.map((p) => [p.id, p.state, p.activity, p.filesComplete, p.filesTotal]),
    [
      [1, "active", "seeding", 1, 1],
      [2, "ready", "ready", 0, 0],
    ],
  );
});

test("build: a peer that asked to leave but still lacks files is downloading, not ready to leave", (t) => {
  const { registry, have } = swarm();
  registry.join("10.0.0.1", 7001, [manifest("a", 512), manifest("b", 512), manifest("c", 300_000)]);
  registry.join("10.0.0.2", 7002, []);
  have(2, "a", [0, 1]);
  have(2, "b", [0, 1]);
  have(2, "c", [0, 128]); // 2 of 3 files, and a part of the third
  registry.readyToLeave(2);
  const peer = new ViewBuilder().build(registry, 0, 0).peers[1];
  t.like(peer, { state: "ready", activity: "downloading", filesComplete: 2, filesTotal: 3 });
  t.is(activityOf("ready", 3, 3), "ready");
  t.is(activityOf("active", 3, 3), "seeding");
  t.is(activityOf("active", 0, 0), "seeding");
  t.is(activityOf("leaving", 1, 3), "leaving");
});

test("build: recently departed shows the files of the DISCONNECT block, not a count seen earlier", (t) => {
  const { registry, have } = swarm();
  registry.join("10.0.0.1", 7001, [manifest("a", 512), manifest("b", 512), manifest("c", 512)]);
  registry.join("10.0.0.2", 7002, []);
  const builder = new ViewBuilder();
  have(2, "a", [0, 1]);
  have(2, "b", [0, 1]);
  t.is(builder.build(registry, 0, 1000).peers[1]?.filesComplete, 2, "last seen with 2 of 3");
  // The last file completes and the peer leaves before the next build.
  have(2, "c", [0, 1]);
  registry.leave(2);
  const block = disconnectBlock(2, ["c", "a", "b"]);
  t.deepEqual(parseDisconnectBlock(block), { peerId: 2, received: ["a", "b", "c"] });
  builder.noteDisconnect(2, ["a", "b", "c"], 1500);
  // And one that joined and left between two builds.
  builder.noteDisconnect(9, [], 1700);
  const model = builder.build(registry, 10, 2000);
  t.deepEqual(model.departed, [
    { id: 9, address: "", leftAt: 1700, received: [] },
    { id: 2, address: "10.0.0.2:7002", leftAt: 1500, received: ["a", "b", "c"] },
  ]);
  t.deepEqual(builder.build(registry, 20, 3000).departed.length, 2, "listed once");
});

test("parseDisconnectBlock: only a whole, well-formed DISCONNECT block", (t) => {
  t.deepEqual(parseDisconnectBlock(["PEER 4 DISCONNECT: RECEIVED 0"]), { peerId: 4, received: [] });
  t.deepEqual(parseDisconnectBlock(disconnectBlock(12, ["x y.txt", "é"])), { peerId: 12, received: ["x y.txt", "é"] });
  t.is(parseDisconnectBlock(["PEER 4 CONNECT: OFFERS 0"]), undefined);
  t.is(parseDisconnectBlock(["PEER 4 DISCONNECT: RECEIVED 2", "4    a"]), undefined);
  t.is(parseDisconnectBlock(["PEER 4 DISCONNECT: RECEIVED 1", "5    a"]), undefined);
  t.is(parseDisconnectBlock([]), undefined);
});

test("noteDisconnect: bounded when nobody builds (no viewer)", (t) => {
  const { registry } = swarm();
  const builder = new ViewBuilder({ maxDeparted: 3 });
  for (let id = 1; id <= 100; id++) builder.noteDisconnect(id, [`f${id}`], id);
  t.deepEqual(
    builder.build(registry, 0, 200).departed.map((d) => d.id),
    [100, 99, 98],
  );
});
