/**
 * The receipts `npm run bench:tracker`'s hand-made clients send (bench/tracker-receipts.ts):
 * a Registry that requires receipts, as the tracker's does, must record and print every
 * chunk reported with them, and only for the receiver and the chunks they were made for.
 */
import test from "ava";
import { spanReceipts } from "../../bench/tracker-receipts.js";
import { Registry } from "../../src/tracker/registry.js";
import { CHUNK_SIZE } from "../../src/wire/limits.js";
import type { udpswarm } from "../../src/wire/tracker-frame.js";
import { SILENT_SINK, testManifest } from "../helpers/manifest.js";

/** 200 chunks: a whole piece of 128 and a short one of 72, as in the bench. */
const CHUNKS = 200;
const SPAN = 64;

function swarm() {
  const acquired = new Map<number, number>();
  const welcomes = new Map<number, udpswarm.IWelcome>();
  const registry = new Registry(
    {
      ...SILENT_SINK,
      acquired: (peerId, _name, _chunks, runs) => {
        for (const [, count] of runs) acquired.set(peerId, (acquired.get(peerId) ?? 0) + count);
      },
      send: (peerId, body) => {
        if (body.welcome != null) welcomes.set(peerId, body.welcome);
      },
    },
    undefined,
    { maxFilesPerPeer: 10, maxManifestBytesPerPeer: 1 << 30, maxManifestBytes: 1 << 30, requireReceipts: true },
  );
  registry.join("10.0.0.1", 7001, [testManifest("seed.bin", CHUNKS * CHUNK_SIZE)]);
  registry.join("10.0.0.2", 7002, []);
  registry.join("10.0.0.3", 7003, []);
  registry.flush();
  const w = welcomes.get(1);
  const seeder = { peerId: w?.peerId ?? 0, secret: w?.secret ?? new Uint8Array() };
  const fileId = w?.accepted?.[0]?.fileId ?? 0;
  return { registry, acquired, seeder, fileId };
}

test("64-chunk reports with the holder's receipts are all recorded and printed", (t) => {
  const { registry, acquired, seeder, fileId } = swarm();
  t.is(seeder.secret.length, 16, "the Welcome carries the secret");
  for (let first = 0; first < CHUNKS; first += SPAN) {
    const count = Math.min(SPAN, CHUNKS - first);
    const receipts = spanReceipts(seeder, 2, fileId, CHUNKS, first, count);
    t.is(registry.have(2, fileId, [first, count], receipts), undefined);
  }
  t.is(acquired.get(2), CHUNKS);
  t.is(registry.unreceiptedChunks, 0);
  t.true(registry.holding(2, fileId)?.complete);
});

test("receipts made for another receiver or other chunks are refused", (t) => {
  const { registry, acquired, seeder, fileId } = swarm();
  registry.have(3, fileId, [0, SPAN], spanReceipts(seeder, 2, fileId, CHUNKS, 0, SPAN));
  registry.have(3, fileId, [0, SPAN], spanReceipts(seeder, 3, fileId, CHUNKS, SPAN, SPAN));
  t.is(acquired.get(3), undefined);
  t.is(registry.unreceiptedChunks, 2 * SPAN);
  // The same report with its own receipts goes through.
  registry.have(3, fileId, [0, SPAN], spanReceipts(seeder, 3, fileId, CHUNKS, 0, SPAN));
  t.is(acquired.get(3), SPAN);
});
