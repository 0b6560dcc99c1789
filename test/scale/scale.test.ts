/**
 * Many peers on few cores (issue 17): whole swarms of 64 and 128 real peer processes on
 * loopback, with exact output and every exit 0. Slow on a small machine, so not part of
 * `make test`: run them with `make test-scale` (or `npm run test:scale`).
 *
 * SCALE_WAVES=N starts the peers in N waves, each once the tracker has printed the
 * previous wave's CONNECT blocks (default 1: all at once).
 */
import test from "ava";
import type { FileSpec, Peer } from "../helpers/swarm.js";
import { Swarm } from "../helpers/swarm.js";

const KB = 1000;
const WAVES = Math.max(1, Number(process.env.SCALE_WAVES ?? 1) || 1);

async function bigSwarm(
  t: import("ava").ExecutionContext,
  peers: number,
  size: number,
  minAlive: number,
  timeoutMs: number,
): Promise<void> {
  const started = performance.now();
  const swarm = await Swarm.start(t, { timeoutMs });
  const all: Peer[] = [];
  const perWave = Math.ceil(peers / WAVES);
  for (let wave = 0; wave < WAVES; wave++) {
    const first = wave * perWave;
    const count = Math.min(perWave, peers - first);
    const starting: Promise<Peer>[] = [];
    for (let i = first; i < first + count; i++) {
      const file: FileSpec = { name: `p${String(i + 1).padStart(3, "0")} ${size / KB} kB.bin`, size };
      starting.push(swarm.startPeer({ label: `p${i + 1}`, files: [file], minAlive }));
    }
    const wavePeers = await Promise.all(starting);
    all.push(...wavePeers);
    if (wave < WAVES - 1) {
      await swarm.waitFor(`the CONNECT blocks of wave ${wave + 1}`, () => swarm.connectedIds().length >= first + count);
    }
  }
  const result = await swarm.finish();
  const elapsed = Math.round(performance.now() - started);
  const exits = all.map((p) => p.proc.exitInfo?.elapsedMs ?? 0);
  t.log(
    `${peers} peers x ${size / KB} kB, MIN_ALIVE ${minAlive}, ${WAVES} wave(s): ${elapsed} ms in all; ` +
      `peers exited after ${Math.min(...exits)}..${Math.max(...exits)} ms`,
  );
  for (const p of all) t.is(p.proc.exitInfo?.code, 0, `peer ${p.label} exit status`);
  t.is(result.outcomes.size, peers);
}

test.serial("64 peers x 100 kB, MIN_ALIVE 20: exact output, every exit 0", async (t) => {
  await bigSwarm(t, 64, 100 * KB, 20, 900_000);
});

test.serial("128 peers x 10 kB, MIN_ALIVE 30: exact output, every exit 0", async (t) => {
  await bigSwarm(t, 128, 10 * KB, 30, 900_000);
});
