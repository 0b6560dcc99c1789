/**
 * Drop counters as test oracles: every dropped datagram counts under exactly one reason,
 * and a datagram that got an answer is not a drop. (Before: a request without a valid
 * proof counted as "bad-auth" even when it was answered, besides "amplification" when it
 * was not; a request for chunks not held counted "not-held" once per chunk.) Requests
 * without a valid proof, and replays, get nothing at all; a proven request from an
 * address not validated yet gets a cookie only.
 */
import test from "ava";
import { TransferEngine } from "../../src/transfer/engine.js";
import { ManualClock } from "../../src/util/clock.js";
import { SeededRandom } from "../../src/util/random.js";
import { PROOF_REQUEST, requestProof } from "../../src/wire/auth.js";
import { decodePeerDatagram, encodeRequest } from "../../src/wire/peer-datagram.js";
import { MemoryStore, manifestOf, randomBytes } from "../helpers/fake-network.js";

const KEY = Buffer.from("0123456789abcdef", "hex");
const WRONG = Buffer.from("fedcba9876543210", "hex");
const HELD = 1;
const MISSING = 2;
const FROM = { host: "10.0.0.2", port: 1002 };

function seeder() {
  const store = new MemoryStore();
  const answers: number[] = [];
  const cookies: Uint8Array[] = [];
  const engine = new TransferEngine({
    clock: new ManualClock(),
    port: {
      send: (bytes) => {
        const d = decodePeerDatagram(bytes);
        if (d.kind === "chunk") answers.push(d.requestSeq);
        if (d.kind === "cookie") cookies.push(d.cookie);
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
  engine.addRemote(2, FROM.host, FROM.port, { inbound: KEY, outbound: new Uint8Array(8) });
  return { engine, answers, cookies };
}

/** A request with a valid proof for its seq, token and file. */
function proven(seq: number, fileId: number, chunks: number[], token: number, cookie?: Uint8Array): Buffer {
  return encodeRequest(
    seq,
    fileId,
    chunks[0] ?? 0,
    chunks,
    token,
    requestProof(KEY, PROOF_REQUEST, seq, token, fileId),
    cookie,
  );
}

test("drops: one per datagram that got nothing, none for one that got an answer", (t) => {
  const { engine, answers, cookies } = seeder();
  const send = (d: Buffer) => engine.onDatagram(d, FROM.host, FROM.port);
  // Wrong proofs, and a proof made for another seq: nothing, not even a cookie.
  for (let i = 0; i < 8; i++) send(encodeRequest(10 + i, HELD, 0, [0, 1], 12, WRONG));
  send(encodeRequest(19, HELD, 0, [0], 12, requestProof(KEY, PROOF_REQUEST, 18, 12, HELD)));
  t.is(cookies.length, 0);
  // A proven request from an address not validated: a cookie only.
  send(proven(20, HELD, [0, 1], 12));
  t.is(cookies.length, 1);
  const cookie = cookies[0];
  // Echoing it: answered in full; chunks of a file still being fetched: nothing, one drop (not three).
  send(proven(21, HELD, [0, 1, 2], 13, cookie));
  send(proven(22, MISSING, [0, 1, 2], 11));
  // A replay of an answered request: nothing.
  send(proven(21, HELD, [0, 1, 2], 13, cookie));
  t.deepEqual([...new Set(answers)], [21]);
  t.is(answers.length, 3);
  const c = engine.counters;
  t.deepEqual(Object.fromEntries(Object.entries(c.drops).filter(([, n]) => n > 0)), {
    "bad-proof": 9,
    unvalidated: 1,
    "not-held": 1,
    replay: 1,
  });
});

test("drops: datagrams from an address the tracker never listed count under unknown-source, by address", (t) => {
  const { engine } = seeder();
  for (let i = 0; i < 3; i++) engine.onDatagram(proven(i, HELD, [0], 1), "10.9.9.9", 4000);
  engine.onDatagram(Buffer.from([0xff]), FROM.host, FROM.port);
  t.is(engine.counters.drops["unknown-source"], 3);
  t.deepEqual(engine.counters.dropsBySource, { "10.9.9.9:4000": { "unknown-source": 3 }, "peer 2": { short: 1 } });
});
