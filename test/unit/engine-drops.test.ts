/**
 * Drop counters as test oracles: every dropped datagram counts under exactly one reason,
 * and a datagram that got an answer is not a drop. (Before: a request without a valid
 * proof counted as "bad-auth" even when it was answered, besides "amplification" when it
 * was not; a request for chunks not held counted "not-held" once per chunk.)
 */
import test from "ava";
import { TransferEngine } from "../../src/transfer/engine.js";
import { ManualClock } from "../../src/util/clock.js";
import { SeededRandom } from "../../src/util/random.js";
import { decodePeerDatagram, encodeRequest } from "../../src/wire/peer-datagram.js";
import { MemoryStore, manifestOf, randomBytes } from "../helpers/fake-network.js";

const PROOF = Buffer.from("0123456789abcdef", "hex");
const WRONG = Buffer.from("fedcba9876543210", "hex");
const HELD = 1;
const MISSING = 2;
const FROM = { host: "10.0.0.2", port: 1002 };

function seeder() {
  const store = new MemoryStore();
  const answers: number[] = [];
  const engine = new TransferEngine({
    clock: new ManualClock(),
    port: {
      send: (bytes) => {
        const d = decodePeerDatagram(bytes);
        if (d.kind === "chunk") answers.push(d.requestSeq);
      },
    },
    store,
    events: { acquired: () => {}, fileComplete: () => {}, fatal: (err) => console.error(err) },
    random: new SeededRandom(1),
    defer: () => {},
  });
  const held = randomBytes(1, 10 * 512);
  store.seed(HELD, Buffer.from(held));
  engine.addFile(HELD, manifestOf("held.bin", held), "seeding");
  const missing = randomBytes(2, 10 * 512);
  store.startDownload(MISSING, missing.length);
  engine.addFile(MISSING, manifestOf("missing.bin", missing), "downloading");
  engine.addRemote(2, FROM.host, FROM.port, { inbound: PROOF, outbound: new Uint8Array(8) });
  return { engine, answers };
}

test("drops: one per datagram that got nothing, none for one that got an answer", (t) => {
  const { engine, answers } = seeder();
  const datagrams: Buffer[] = [
    // Chunks of a file this peer is still fetching: nothing to send, one drop (not three).
    encodeRequest(1, MISSING, 0, [0, 1, 2], 11, PROOF),
    // Unproven requests: the first ones exceed 3x what the address sent and get nothing;
    // once the address has sent enough, one chunk fits the budget and is answered.
    ...Array.from({ length: 8 }, (_, i) => encodeRequest(10 + i, HELD, 0, [0, 1], 12, WRONG)),
    // A proven request: answered in full.
    encodeRequest(30, HELD, 0, [0, 1, 2], 13, PROOF),
  ];
  for (const d of datagrams) engine.onDatagram(d, FROM.host, FROM.port);
  const answered = new Set(answers).size;
  t.true(answered >= 2, `some unproven requests were answered (${answered} requests answered)`);
  t.true(answered < datagrams.length - 1, "and some were not");
  const c = engine.counters;
  const drops = Object.values(c.drops).reduce((a, b) => a + b, 0);
  t.is(drops, datagrams.length - answered, `drops ${JSON.stringify(c.drops)}`);
  t.is(c.drops["not-held"], 1, "a request for 3 chunks not held is one drop");
  t.is(c.drops.amplification, datagrams.length - 1 - answered, "unproven requests that got nothing");
});

test("drops: datagrams from an address the tracker never listed count under unknown-source, by address", (t) => {
  const { engine } = seeder();
  for (let i = 0; i < 3; i++) engine.onDatagram(encodeRequest(i, HELD, 0, [0], 1, PROOF), "10.9.9.9", 4000);
  engine.onDatagram(Buffer.from([0xff]), FROM.host, FROM.port);
  t.is(engine.counters.drops["unknown-source"], 3);
  t.deepEqual(engine.counters.dropsBySource, { "10.9.9.9:4000": { "unknown-source": 3 }, "peer 2": { short: 1 } });
});
