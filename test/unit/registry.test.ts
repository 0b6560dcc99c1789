import { createHash, createHmac } from "node:crypto";
import test from "ava";
import fc from "fast-check";
import { acquiredLine } from "../../src/tracker/output.js";
import { Registry, type RegistrySink } from "../../src/tracker/registry.js";
import { CLASSIC_TAG } from "../../src/tracker/versions.js";
import { requestAuth } from "../../src/wire/auth.js";
import { CHUNK_SIZE, CHUNKS_PER_PIECE, chunkCount, pieceCount } from "../../src/wire/limits.js";
import {
  type CheckedManifest,
  checkManifest,
  encodeTrackerFrame,
  type FrameBody,
  isManifestProblem,
  manifestToWire,
  RefusalReason,
  type udpswarm,
} from "../../src/wire/tracker-frame.js";
import { checkProperty } from "../helpers/property.js";

// ------------------------------------------------------------------ fixtures

const sha256 = (data: Uint8Array | string): Buffer => createHash("sha256").update(data).digest();
const PIECE_BYTES = CHUNK_SIZE * CHUNKS_PER_PIECE;
const BLOCK_BYTES = CHUNK_SIZE * 4;

/** `size` bytes that depend on `seed` (SHA-256 in counter mode). */
function bytesOf(seed: string, size: number): Buffer {
  const out = Buffer.alloc(size);
  for (let at = 0, block = 0; at < size; at += 32, block++) sha256(`${seed}/${block}`).copy(out, at);
  return out;
}

/** The manifest's piece hash: SHA-256 over the SHA-256 of each 2048-byte block. */
function pieceHashOf(piece: Uint8Array): Buffer {
  const blocks: Buffer[] = [];
  for (let at = 0; at < piece.length; at += BLOCK_BYTES) blocks.push(sha256(piece.subarray(at, at + BLOCK_BYTES)));
  return sha256(Buffer.concat(blocks));
}

/**
 * A validated manifest of real bytes derived from `content` (default: the name) and the
 * size, so two calls with the same name, size and content describe the same file, and a
 * different `content` (or size) describes a different file under the same name.
 */
function manifest(name: string, size: number, content = name): CheckedManifest {
  const bytes = bytesOf(content, size);
  const pieces = pieceCount(chunkCount(size));
  const checked = checkManifest(
    {
      name,
      size,
      chunkSize: CHUNK_SIZE,
      chunksPerPiece: CHUNKS_PER_PIECE,
      chunksPerBlock: 4,
      sha256: sha256(bytes),
      pieceSha256: Array.from({ length: pieces }, (_, i) =>
        pieceHashOf(bytes.subarray(i * PIECE_BYTES, (i + 1) * PIECE_BYTES)),
      ),
    },
    Number.MAX_SAFE_INTEGER,
  );
  if (isManifestProblem(checked)) throw new Error(`bad test manifest ${name}: ${checked.detail}`);
  return checked;
}

/**
 * What a peer hears, one change per entry: the frames sent to it, with each Updates frame
 * taken apart into its changes in the order the peer applies them (its own holders left
 * out: a peer ignores those).
 */
type Heard = FrameBody & {
  peerJoined?: { peer: udpswarm.IPeerAddress };
  peerLeft?: { peerId: number };
  fileAdded?: { file: udpswarm.IFileInfo };
  fileRemoved?: { fileId: number };
  holdersChanged?: udpswarm.IHoldersChanged;
  accepted?: { file: udpswarm.IFileInfo };
};

function heardOf(receiver: number, u: udpswarm.IUpdates): Heard[] {
  return [
    ...(u.removed ?? []).map((fileId) => ({ fileRemoved: { fileId } })),
    ...(u.left ?? []).map((peerId) => ({ peerLeft: { peerId } })),
    ...(u.joined ?? []).map((peer) => ({ peerJoined: { peer } })),
    ...(u.accepted ?? []).map((file) => ({ accepted: { file } })),
    ...(u.added ?? []).map((file) => ({ fileAdded: { file } })),
    ...(u.holders ?? []).filter((h) => h.peerId !== receiver).map((h) => ({ holdersChanged: h })),
  ];
}

/** A registry whose changes go out at once after each call (as if every call were its own burst). */
function flushing(registry: Registry): Registry {
  return new Proxy(registry, {
    get(target, prop) {
      const value: unknown = Reflect.get(target, prop, target);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        const result: unknown = value.apply(target, args);
        target.flush();
        return result;
      };
    },
  });
}

/** A manifest of `size` bytes with made-up hashes: for tests where only sizes matter (real bytes take long to hash). */
function madeUp(name: string, size: number): CheckedManifest {
  const checked = checkManifest(
    {
      ...manifestToWire(manifest(name, 0)),
      size,
      pieceSha256: Array.from({ length: pieceCount(chunkCount(size)) }, () => Buffer.alloc(32, 7)),
    },
    Number.MAX_SAFE_INTEGER,
  );
  if (isManifestProblem(checked)) throw new Error(`bad test manifest ${name}: ${checked.detail}`);
  return checked;
}

type Effect =
  | { readonly kind: "print"; readonly lines: readonly string[] }
  | { readonly kind: "send"; readonly to: number; readonly body: Heard }
  | { readonly kind: "log"; readonly line: string };

type FrameKind = keyof Heard;

/** The one body field a frame sets. */
function kindOf(body: Heard): FrameKind {
  const keys = (Object.keys(body) as FrameKind[]).filter((k) => body[k] !== undefined && body[k] !== null);
  if (keys.length !== 1 || keys[0] === undefined) throw new Error(`frame with ${keys.length} bodies`);
  return keys[0];
}

/** Records every effect, in order. */
class RecordingSink implements RegistrySink {
  readonly effects: Effect[] = [];

  print(lines: string[]): void {
    this.effects.push({ kind: "print", lines: [...lines] });
  }

  acquired(peerId: number, name: string, chunks: number, runs: ReadonlyArray<readonly [number, number]>): void {
    const lines: string[] = [];
    for (const [first, count] of runs) {
      for (let c = first; c < first + count; c++) lines.push(acquiredLine(peerId, c, chunks, name));
    }
    this.print(lines);
  }

  send(peerId: number, body: FrameBody): void {
    if (body.updates) {
      for (const heard of heardOf(peerId, body.updates)) this.effects.push({ kind: "send", to: peerId, body: heard });
    } else this.effects.push({ kind: "send", to: peerId, body });
  }

  sendUpdates(
    receivers: readonly number[],
    shared: udpswarm.IUpdates,
    own: ReadonlyMap<number, udpswarm.IUpdates>,
  ): void {
    for (const to of receivers) {
      const mine = own.get(to) ?? {};
      const merged: udpswarm.IUpdates = {
        joined: [...(shared.joined ?? []), ...(mine.joined ?? [])],
        added: [...(shared.added ?? []), ...(mine.added ?? [])],
        holders: [...(shared.holders ?? []), ...(mine.holders ?? [])],
        left: [...(shared.left ?? []), ...(mine.left ?? [])],
        removed: [...(shared.removed ?? []), ...(mine.removed ?? [])],
        accepted: [...(shared.accepted ?? []), ...(mine.accepted ?? [])],
      };
      for (const body of heardOf(to, merged)) this.effects.push({ kind: "send", to, body });
    }
  }

  /** The `urgent` flag of every pending() call, in order. */
  readonly pendings: boolean[] = [];

  pending(urgent: boolean): void {
    this.pendings.push(urgent);
  }

  log(line: string): void {
    this.effects.push({ kind: "log", line });
  }

  /** Printed blocks, each whole. */
  blocks(): string[][] {
    return this.effects.flatMap((e) => (e.kind === "print" ? [[...e.lines]] : []));
  }

  lines(): string[] {
    return this.blocks().flat();
  }

  /** Frames sent to one peer, in order. */
  sent(peerId: number): Heard[] {
    return this.effects.flatMap((e) => (e.kind === "send" && e.to === peerId ? [e.body] : []));
  }

  logs(): string[] {
    return this.effects.flatMap((e) => (e.kind === "log" ? [e.line] : []));
  }

  /** Every effect in one line each: "print PEER 1 ...", "send 2 peerLeft", "log ...". */
  trace(): string[] {
    return this.effects.map((e) =>
      e.kind === "print" ? `print ${e.lines[0] ?? ""}` : e.kind === "send" ? `send ${e.to} ${kindOf(e.body)}` : "log",
    );
  }

  /** Ids of the peers granted departure, in order. */
  granted(): number[] {
    return this.effects.flatMap((e) => (e.kind === "send" && e.body.leaveGranted ? [e.to] : []));
  }

  clear(): void {
    this.effects.length = 0;
  }
}

/** The k-th value (k from 1) the deterministic `random` of setup() gives: n bytes. */
function drawn(k: number, n: number): Buffer {
  return bytesOf(`random/${k}`, n);
}

/**
 * The secret of peer n: the registry draws one 16-byte secret per join, so peer n (ids
 * follow the join order) gets the n-th draw.
 */
const secretOf = (n: number): Buffer => drawn(n, 16);

/** requestAuth from its definition: HMAC-SHA256(secret, receiver id as u32 BE), 8 bytes. */
function authOf(secret: Uint8Array, receiverId: number): Buffer {
  const id = Buffer.alloc(4);
  id.writeUInt32BE(receiverId, 0);
  return createHmac("sha256", secret).update(id).digest().subarray(0, 8);
}

function setup() {
  const sink = new RecordingSink();
  /** Sizes asked of the injected random, in order. */
  const draws: number[] = [];
  const registry = flushing(
    new Registry(sink, (n) => {
      draws.push(n);
      return drawn(draws.length, n);
    }),
  );
  let joins = 0;
  /** Peer number n joins from 10.0.0.n, UDP port 7000 + n (ids follow the join order). */
  const join = (...offers: CheckedManifest[]): number => {
    joins++;
    return registry.join(`10.0.0.${joins}`, 7000 + joins, offers).peerId;
  };
  const fileId = (name: string): number => {
    const file = registry.snapshot().files.find((f) => f.name === name);
    if (file === undefined) throw new Error(`no file ${name}`);
    return file.id;
  };
  /** The peer reports every chunk of the file (nothing for an empty file). */
  const complete = (peerId: number, m: CheckedManifest): void => {
    const problem = registry.have(peerId, fileId(m.name), m.chunks === 0 ? [] : [0, m.chunks]);
    if (problem !== undefined) throw new Error(problem);
  };
  const welcomeOf = (peerId: number): udpswarm.IWelcome => {
    const w = sink.sent(peerId).find((b) => b.welcome)?.welcome;
    if (w === undefined || w === null) throw new Error(`no welcome for ${peerId}`);
    return w;
  };
  return { sink, registry, join, fileId, complete, welcomeOf, draws };
}

/** Peer n (of setup().join) as introduced to peer `to`: with the auth its requests to `to` carry. */
const addr = (n: number, to: number): udpswarm.IPeerAddress => ({
  peerId: n,
  host: `10.0.0.${n}`,
  udpPort: 7000 + n,
  expectedAuth: authOf(secretOf(n), to),
});
const info = (fileId: number, m: CheckedManifest): udpswarm.IFileInfo => ({ fileId, manifest: manifestToWire(m) });
const holders = (peerId: number, fileId: number, runs: number[], complete: boolean): Heard => ({
  holdersChanged: { peerId, fileId, runs, complete },
});
const peerLeft = (peerId: number): Heard => ({ peerLeft: { peerId } });
const GRANTED: Heard = { leaveGranted: {} };

// ------------------------------------------------------------------ ids and CONNECT

test("join: ids count from 1 in join order, are never reused, and are known before any effect", (t) => {
  const { sink, registry } = setup();
  for (let i = 1; i <= 3; i++) {
    const before = sink.effects.length;
    let assigned = -1;
    let effectsAtAssign = -1;
    const result = registry.join("h", 9000 + i, [], (id) => {
      assigned = id;
      effectsAtAssign = sink.effects.length;
    });
    t.is(result.peerId, i);
    t.is(assigned, i);
    t.is(effectsAtAssign, before); // the server maps the id to its socket before frames flow
    t.is(registry.peerCount, i);
    t.true(registry.hasPeer(i));
  }
  registry.leave(3);
  t.false(registry.hasPeer(3));
  t.is(registry.join("h", 9004, []).peerId, 4);
  t.deepEqual(
    [1, 2, 4].map((id) => sink.sent(id).find((b) => b.welcome)?.welcome?.peerId),
    [1, 2, 4],
  );
});

test("join: CONNECT block lists the offers sorted by UTF-8 byte order, four spaces, chunk counts", (t) => {
  const { sink, join } = setup();
  join(
    manifest("😀.txt", 1),
    manifest("zeta.txt", 512),
    manifest("Ａwide", 513),
    manifest("alpha", 0),
    manifest("émile.txt", CHUNK_SIZE * CHUNKS_PER_PIECE + 1),
    manifest("Zeta.txt", 1024),
    manifest("_x", 5000),
    manifest("Alpha", 1536),
  );
  t.deepEqual(sink.effects[0], {
    kind: "print",
    lines: [
      "PEER 1 CONNECT: OFFERS 8",
      "1    Alpha 3",
      "1    Zeta.txt 2",
      "1    _x 10",
      "1    alpha 0",
      "1    zeta.txt 1",
      "1    émile.txt 129",
      "1    Ａwide 2",
      "1    😀.txt 1",
    ],
  });
  sink.clear();
  join(manifest("b", 10), manifest("B", 10));
  join();
  t.deepEqual(sink.blocks(), [["PEER 2 CONNECT: OFFERS 2", "2    B 1", "2    b 1"], ["PEER 3 CONNECT: OFFERS 0"]]);
});

test("chunks acquired are news that may wait (pending not urgent); joins and whole copies are urgent", (t) => {
  const { sink, registry, join } = setup();
  const a = manifest("a", 1500); // 3 chunks
  join(a);
  t.deepEqual(sink.pendings, [true]);
  join();
  t.is(registry.have(2, 1, [0, 2]), undefined);
  t.is(registry.have(2, 1, [0, 2]), undefined); // nothing new: no flush asked
  t.is(registry.have(2, 1, [2, 1]), undefined); // the copy is whole
  t.deepEqual(sink.pendings, [true, true, false, true]);
});

test("join: the welcome carries files, live peers, holders and the accepted ids; others hear of the newcomer", (t) => {
  const { sink, registry, join } = setup();
  const a = manifest("a", 1500); // 3 chunks
  const b = manifest("b", 10);
  const c = manifest("c", 1000); // 2 chunks
  t.is(join(a), 1);
  t.deepEqual(sink.sent(1), [
    {
      welcome: {
        peerId: 1,
        files: [info(1, a)],
        peers: [],
        holders: [],
        refused: [],
        accepted: [info(1, a)],
        secret: secretOf(1),
      },
    },
  ]);
  t.is(join(b), 2);
  t.is(registry.have(2, 1, [0, 2]), undefined);
  sink.clear();

  t.is(join(c, manifest("b", 10)), 3); // c is new; b is the same file as peer 2's
  t.deepEqual(sink.trace(), [
    "print PEER 3 CONNECT: OFFERS 2",
    // The others first, so that they know the newcomer before its requests arrive.
    "send 1 peerJoined",
    "send 1 fileAdded",
    "send 1 holdersChanged",
    "send 1 holdersChanged",
    "send 2 peerJoined",
    "send 2 fileAdded",
    "send 2 holdersChanged",
    "send 2 holdersChanged",
    "send 3 welcome",
  ]);
  t.deepEqual(sink.blocks(), [["PEER 3 CONNECT: OFFERS 2", "3    b 1", "3    c 2"]]);
  t.deepEqual(sink.sent(3), [
    {
      welcome: {
        peerId: 3,
        files: [info(1, a), info(2, b), info(3, c)],
        peers: [addr(1, 3), addr(2, 3)],
        holders: [
          { peerId: 1, fileId: 1, runs: [], complete: true },
          { peerId: 2, fileId: 2, runs: [], complete: true },
          { peerId: 2, fileId: 1, runs: [0, 2], complete: false },
        ],
        refused: [],
        accepted: [info(3, c), info(2, b)],
        secret: secretOf(3),
      },
    },
  ]);
  // The same news for both, but each is told the auth of peer 3's requests to it.
  const toOther = (to: number): Heard[] => [
    { peerJoined: { peer: addr(3, to) } },
    { fileAdded: { file: info(3, c) } },
    holders(3, 3, [], true),
    holders(3, 2, [], true),
  ];
  t.deepEqual(sink.sent(1), toOther(1));
  t.deepEqual(sink.sent(2), toOther(2));
  t.deepEqual(sink.logs(), []);
  t.is(registry.fileCount, 3);
});

// ------------------------------------------------------------------ secrets and request authentication

const hex = (b: Uint8Array | null | undefined): string => Buffer.from(b ?? []).toString("hex");

test("secret: each welcome carries the peer's own 16-byte secret, from the injected random, different per peer", (t) => {
  const { join, welcomeOf, draws } = setup();
  for (let i = 0; i < 4; i++) join(manifest(`f${i}`, 100 * i));
  t.deepEqual(draws, [16, 16, 16, 16]); // one 16-byte secret per join
  const secrets = [1, 2, 3, 4].map((n) => welcomeOf(n).secret);
  for (const [i, secret] of secrets.entries()) {
    t.is(secret?.length, 16, `peer ${i + 1}`);
    t.is(hex(secret), hex(secretOf(i + 1)), `peer ${i + 1}`);
  }
  t.is(new Set(secrets.map(hex)).size, 4);
});

test("secret: without an injected random, secrets are random: 16 bytes, different per peer and per registry", (t) => {
  const secrets: string[] = [];
  for (let r = 0; r < 2; r++) {
    const sink = new RecordingSink();
    const registry = flushing(new Registry(sink));
    for (let i = 0; i < 3; i++) {
      const id = registry.join("h", 7000 + i, []).peerId;
      const secret = sink.sent(id).find((b) => b.welcome)?.welcome?.secret;
      t.is(secret?.length, 16);
      secrets.push(hex(secret));
    }
  }
  t.is(new Set(secrets).size, 6);
});

test("auth: welcome.peers[i].expectedAuth is requestAuth(secret of that peer, id of the newcomer)", (t) => {
  const { registry, join, welcomeOf } = setup();
  join(manifest("f", 1000));
  join();
  join();
  registry.readyToLeave(3); // 3 is ready, not leaving: still listed
  join();
  const secret = (n: number): Uint8Array => welcomeOf(n).secret ?? new Uint8Array(0);
  let checked = 0;
  for (const receiver of [1, 2, 3, 4]) {
    const peers = welcomeOf(receiver).peers ?? [];
    t.deepEqual(
      peers.map((p) => p.peerId),
      [1, 2, 3].filter((n) => n < receiver),
    );
    for (const p of peers) {
      const listed = p.peerId ?? 0;
      const expected = authOf(secret(listed), receiver);
      t.is(p.expectedAuth?.length, 8);
      t.is(hex(p.expectedAuth), hex(expected), `peer ${listed} listed to ${receiver}`);
      t.is(hex(p.expectedAuth), hex(requestAuth(secret(listed), receiver)));
      checked++;
    }
  }
  t.is(checked, 0 + 1 + 2 + 3);
  // Peer 1 is listed to 2, 3 and 4, each time with another proof.
  const ofPeer1 = [2, 3, 4].map((r) => hex(welcomeOf(r).peers?.find((p) => p.peerId === 1)?.expectedAuth));
  t.is(new Set(ofPeer1).size, 3);
});

test("auth: peerJoined tells each other peer the auth of the newcomer's requests to it", (t) => {
  const { sink, registry, join, welcomeOf } = setup();
  join(manifest("f", 1000));
  join();
  join();
  registry.readyToLeave(1);
  registry.have(2, 1, [0, 2]);
  registry.have(3, 1, [0, 2]);
  t.deepEqual(sink.granted(), [1]); // 1 is leaving: not told of newcomers
  const secret2 = welcomeOf(2).secret ?? new Uint8Array(0);
  sink.clear();
  const newcomer = join();
  t.is(newcomer, 4);
  const secret4 = welcomeOf(4).secret ?? new Uint8Array(0);
  const joined = sink.effects.flatMap((e) =>
    e.kind === "send" && e.body.peerJoined ? [{ to: e.to, peer: e.body.peerJoined.peer }] : [],
  );
  t.deepEqual(
    joined.map((j) => j.to),
    [2, 3],
  );
  for (const { to, peer } of joined) {
    t.is(peer?.peerId, 4);
    t.is(peer?.expectedAuth?.length, 8);
    t.is(hex(peer?.expectedAuth), hex(authOf(secret4, to)), `to ${to}`);
    t.is(hex(peer?.expectedAuth), hex(requestAuth(secret4, to)));
  }
  t.not(hex(joined[0]?.peer?.expectedAuth), hex(joined[1]?.peer?.expectedAuth));
  // Both directions: 2 expects from 4 what 4 computes with its secret for 2, and 4 expects
  // from 2 what 2 computes with its own secret for 4.
  t.is(hex(welcomeOf(4).peers?.find((p) => p.peerId === 2)?.expectedAuth), hex(requestAuth(secret2, 4)));
  // A secret goes only to its owner, in its welcome: no other frame carries its bytes.
  const welcomes = sink.effects.flatMap((e) => (e.kind === "send" && e.body.welcome ? [e.to] : []));
  t.deepEqual(welcomes, [4]);
  for (const e of sink.effects) {
    if (e.kind !== "send" || e.body.welcome) continue;
    t.is(encodeTrackerFrame(e.body).indexOf(secret4), -1, `to ${e.to}: ${kindOf(e.body)}`);
  }
});

// ------------------------------------------------------------------ have / ACQUIRED

test("have: one ACQUIRED line per newly held chunk, 1-based; others get only the new runs", (t) => {
  const { sink, registry, join } = setup();
  join(manifest("f.bin", 4 * CHUNK_SIZE + 10)); // 5 chunks
  join();
  join();
  sink.clear();

  t.is(registry.have(2, 1, [1, 2]), undefined);
  t.deepEqual(sink.blocks(), [["PEER 2 ACQUIRED: CHUNK 2/5 f.bin", "PEER 2 ACQUIRED: CHUNK 3/5 f.bin"]]);
  t.deepEqual(sink.sent(1), [holders(2, 1, [1, 2], false)]);
  t.deepEqual(sink.sent(3), [holders(2, 1, [1, 2], false)]);
  t.deepEqual(sink.sent(2), []);
  sink.clear();

  // Overlapping the chunks already held: only chunks 1 and 4 are new.
  t.is(registry.have(2, 1, [0, 4]), undefined);
  t.deepEqual(sink.blocks(), [["PEER 2 ACQUIRED: CHUNK 1/5 f.bin", "PEER 2 ACQUIRED: CHUNK 4/5 f.bin"]]);
  t.deepEqual(sink.sent(1), [holders(2, 1, [0, 1, 3, 1], false)]);
  sink.clear();

  // Nothing new: nothing printed, nothing sent.
  t.is(registry.have(2, 1, [1, 2, 0, 1, 2, 1]), undefined);
  t.deepEqual(sink.effects, []);

  t.is(registry.have(2, 1, [4, 1]), undefined);
  t.deepEqual(sink.blocks(), [["PEER 2 ACQUIRED: CHUNK 5/5 f.bin"]]);
  // Once complete, the runs go without saying.
  t.deepEqual(sink.sent(1), [holders(2, 1, [], true)]);
  t.deepEqual(sink.sent(3), [holders(2, 1, [], true)]);
  t.deepEqual(registry.holding(2, 1), { complete: true, runs: [] });
  sink.clear();

  // Complete: every later report is ignored.
  t.is(registry.have(2, 1, [0, 5]), undefined);
  t.deepEqual(sink.effects, []);

  // Lines follow the report's order; overlapping runs in one report count each chunk once.
  t.is(registry.have(3, 1, [4, 1, 0, 1]), undefined);
  t.is(registry.have(3, 1, [0, 3, 1, 3]), undefined);
  t.deepEqual(sink.blocks(), [
    ["PEER 3 ACQUIRED: CHUNK 5/5 f.bin", "PEER 3 ACQUIRED: CHUNK 1/5 f.bin"],
    ["PEER 3 ACQUIRED: CHUNK 2/5 f.bin", "PEER 3 ACQUIRED: CHUNK 3/5 f.bin", "PEER 3 ACQUIRED: CHUNK 4/5 f.bin"],
  ]);
  t.deepEqual(sink.sent(1), [holders(3, 1, [4, 1, 0, 1], false), holders(3, 1, [], true)]);
  t.deepEqual(sink.sent(2), [holders(3, 1, [4, 1, 0, 1], false), holders(3, 1, [], true)]);
  t.is(registry.snapshot().files[0]?.completeHolders, 3);
});

test("have: bad runs return a reason and change nothing; unknown peers and files are harmless", (t) => {
  const { sink, registry, join } = setup();
  join(manifest("f", 4 * CHUNK_SIZE + 10)); // 5 chunks
  join();
  sink.clear();
  const bad: number[][] = [
    [0], // odd length
    [0, 1, 2],
    [4, 2], // past the last chunk
    [5, 1],
    [0, 0], // zero count
    [2, 0],
    [-1, 2],
    [1, -1],
    [0.5, 1],
    [Number.NaN, 1],
    [0, Number.POSITIVE_INFINITY],
    [0, 1, 9, 1], // one good run, one bad: nothing applies
  ];
  for (const runs of bad) t.is(registry.have(2, 1, runs), "bad chunk runs for file 1", JSON.stringify(runs));
  t.deepEqual(sink.effects, []);
  t.is(registry.holding(2, 1), undefined);

  t.is(registry.have(99, 1, [0, 1]), "unknown peer");
  t.is(registry.have(0, 1, [0]), "unknown peer");
  t.is(registry.have(2, 42, [0, 1]), undefined); // e.g. a file removed meanwhile
  t.deepEqual(sink.effects, []);

  t.is(registry.have(2, 1, [0, 1]), undefined);
  t.deepEqual(sink.lines(), ["PEER 2 ACQUIRED: CHUNK 1/5 f"]);
});

test("have: an empty file is completed by an empty report, prints no ACQUIRED line, and counts as received", (t) => {
  const { sink, registry, join, fileId, complete } = setup();
  const empty = manifest("empty", 0);
  const data = manifest("data", 700); // 2 chunks
  join(empty, data);
  t.deepEqual(sink.blocks(), [["PEER 1 CONNECT: OFFERS 2", "1    data 2", "1    empty 0"]]);
  join();
  registry.readyToLeave(1);
  complete(2, data);
  t.deepEqual(sink.granted(), []); // peer 2 still lacks the empty file
  sink.clear();

  const id = fileId("empty");
  t.is(registry.have(2, id, [0, 1]), `bad chunk runs for file ${id}`);
  t.is(registry.have(2, id, []), undefined);
  t.deepEqual(sink.blocks(), []);
  // Granted at once: a leaving peer hears nothing more of the swarm.
  t.deepEqual(sink.sent(1), [GRANTED]);
  t.deepEqual(registry.holding(2, id), { complete: true, runs: [] });
  sink.clear();
  t.is(registry.have(2, id, []), undefined);
  t.deepEqual(sink.effects, []);

  registry.leave(2);
  t.deepEqual(sink.blocks(), [["PEER 2 DISCONNECT: RECEIVED 2", "2    data", "2    empty"]]);
});

test("have: an empty report on a non-empty file is not a completion", (t) => {
  const { sink, registry, join } = setup();
  join(manifest("f", 700));
  join();
  sink.clear();
  t.is(registry.have(2, 1, []), undefined);
  t.deepEqual(sink.effects, []);
  t.is(registry.snapshot().files[0]?.completeHolders, 1);
});

// ------------------------------------------------------------------ DISCONNECT

test("leave: DISCONNECT lists only the files received whole, sorted by byte order", (t) => {
  const { sink, registry, join, fileId, complete } = setup();
  const zz = manifest("zz", 10);
  const Zz = manifest("Zz", 10);
  const e = manifest("é", 10);
  const part = manifest("part", 1000); // 2 chunks
  const mine = manifest("mine", 10);
  join(zz, part, e, Zz);
  join(mine);
  complete(2, zz);
  complete(2, e);
  complete(2, Zz);
  t.is(registry.have(2, fileId("part"), [0, 1]), undefined);
  const mineId = fileId("mine");
  sink.clear();

  registry.leave(2);
  t.deepEqual(sink.blocks(), [["PEER 2 DISCONNECT: RECEIVED 3", "2    Zz", "2    zz", "2    é"]]);
  // Peer 1 never fetched "mine": it has no live holder left.
  t.deepEqual(sink.sent(1), [{ fileRemoved: { fileId: mineId } }, peerLeft(2)]);
  t.deepEqual(sink.logs(), [
    'file "mine" is no longer available: no live peer holds all of it (peer 1 did not get it)',
  ]);
  t.is(registry.fileCount, 4);
  sink.clear();

  registry.leave(1);
  t.deepEqual(sink.blocks(), [["PEER 1 DISCONNECT: RECEIVED 0"]]);
  sink.clear();
  registry.leave(1); // twice: nothing
  registry.leave(2);
  t.deepEqual(sink.effects, []);
  t.is(registry.peerCount, 0);
});

// ------------------------------------------------------------------ name conflicts

test("conflict: the same name with the same content makes both holders", (t) => {
  const { sink, registry, join, welcomeOf } = setup();
  const same = manifest("same", 700);
  const own = manifest("own", 10);
  join(same);
  sink.clear();
  join(manifest("same", 700), own);
  t.deepEqual(sink.blocks(), [["PEER 2 CONNECT: OFFERS 2", "2    own 1", "2    same 2"]]);
  t.deepEqual(welcomeOf(2).accepted, [info(1, same), info(2, own)]);
  t.deepEqual(welcomeOf(2).refused, []);
  t.deepEqual(sink.sent(1), [
    { peerJoined: { peer: addr(2, 1) } },
    { fileAdded: { file: info(2, own) } },
    holders(2, 1, [], true),
    holders(2, 2, [], true),
  ]);
  t.deepEqual(sink.logs(), []);
  t.deepEqual(registry.snapshot().files, [
    { id: 2, name: "own", size: 10, chunks: 1, completeHolders: 1 },
    { id: 1, name: "same", size: 700, chunks: 2, completeHolders: 2 },
  ]);
  sink.clear();

  registry.leave(1);
  t.deepEqual(sink.blocks(), [["PEER 1 DISCONNECT: RECEIVED 0"]]);
  t.deepEqual(sink.sent(2), [peerLeft(1)]); // "same" stays: peer 2 holds it
  t.is(registry.fileCount, 2);
  sink.clear();
  registry.leave(2);
  t.deepEqual(sink.blocks(), [["PEER 2 DISCONNECT: RECEIVED 0"]]); // offered, not received
});

test("conflict: the same name with different content is refused and never required of that peer", (t) => {
  const { sink, registry, join, fileId, complete, welcomeOf } = setup();
  const same = manifest("same", 700, "X");
  const a = manifest("a", 10);
  const other = manifest("other", 10);
  join(same, a);
  sink.clear();

  join(manifest("same", 700, "Y"), other); // same size, different hash
  t.deepEqual(sink.blocks(), [["PEER 2 CONNECT: OFFERS 1", "2    other 1"]]);
  t.is(sink.logs().length, 1);
  t.regex(sink.logs()[0] ?? "", /^peer 2: refused "same": name conflict/);
  const welcome = welcomeOf(2);
  t.is(welcome.refused?.length, 1);
  t.like(welcome.refused?.[0], { reason: 2, fileName: "same" });
  t.is(typeof welcome.refused?.[0]?.detail, "string");
  t.deepEqual(welcome.accepted, [info(3, other)]);
  t.deepEqual(welcome.files, [info(1, same), info(2, a), info(3, other)]);
  t.deepEqual(sink.sent(1), [
    { peerJoined: { peer: addr(2, 1) } },
    { fileAdded: { file: info(3, other) } },
    holders(2, 3, [], true),
  ]);
  t.deepEqual(registry.snapshot().peers[1]?.files, [{ fileId: 3, held: 1, complete: true }]);
  sink.clear();

  // Reports about the refused name are refused too.
  t.regex(registry.have(2, fileId("same"), [0, 2]) ?? "", /refused/);
  t.deepEqual(sink.effects, []);

  registry.readyToLeave(1);
  registry.readyToLeave(2);
  complete(1, other);
  t.deepEqual(sink.granted(), []); // peer 2 lacks "a"
  complete(2, a);
  // Peer 2 never holds "same", yet nobody waits for it; once both are granted, the files
  // they held are gone with them.
  t.deepEqual(sink.granted(), [1, 2]);
  t.deepEqual(registry.snapshot().files, []);
});

test("conflict: a different size under the same name is refused too", (t) => {
  const { sink, join, welcomeOf } = setup();
  join(manifest("same", 700));
  sink.clear();
  join(manifest("same", 900));
  t.deepEqual(sink.blocks(), [["PEER 2 CONNECT: OFFERS 0"]]);
  t.like(welcomeOf(2).refused?.[0], { reason: 2, fileName: "same" });
  t.deepEqual(welcomeOf(2).accepted, []);
  t.deepEqual(sink.sent(1), [{ peerJoined: { peer: addr(2, 1) } }]);
  t.is(sink.logs().length, 1);
});

// ------------------------------------------------------------------ departures

test("departure: never without readyToLeave, even when everyone holds everything", (t) => {
  const { sink, registry, join, complete } = setup();
  const f = manifest("f", 1000);
  join(f);
  join();
  complete(2, f);
  t.deepEqual(sink.granted(), []);
  t.deepEqual(
    registry.snapshot().peers.map((p) => p.state),
    ["active", "active"],
  );
});

test("departure: a lone peer that is ready leaves at once, and is granted only once", (t) => {
  const { sink, registry, join } = setup();
  join(manifest("f", 1000));
  registry.readyToLeave(1);
  t.deepEqual(sink.granted(), [1]);
  t.is(registry.snapshot().peers[0]?.state, "leaving");
  registry.readyToLeave(1);
  t.deepEqual(sink.granted(), [1]);
});

test("departure: a ready peer waits until every other live peer holds every file", (t) => {
  const { sink, registry, join } = setup();
  join(manifest("f", 1500)); // 3 chunks
  join();
  registry.readyToLeave(1);
  t.is(registry.snapshot().peers[0]?.state, "ready");
  registry.have(2, 1, [0, 2]);
  t.deepEqual(sink.granted(), []);
  sink.clear();

  registry.have(2, 1, [2, 1]);
  t.deepEqual(sink.sent(1), [GRANTED]);
  t.deepEqual(sink.sent(2), [peerLeft(1)]);
  sink.clear();

  // The granted peer's goodbye: its DISCONNECT block, no second peerLeft, the file stays.
  registry.leave(1);
  t.deepEqual(sink.blocks(), [["PEER 1 DISCONNECT: RECEIVED 0"]]);
  t.deepEqual(sink.sent(2), []);
  t.is(registry.fileCount, 1);
});

test("departure: a ready peer that lacks a file waits for it, whoever else is ready", (t) => {
  const { sink, registry, join, complete } = setup();
  const f = manifest("f", 1000);
  join(f);
  join();
  registry.readyToLeave(2);
  t.deepEqual(sink.granted(), []);
  complete(2, f);
  t.deepEqual(sink.granted(), [2]); // peer 1 (active) already holds everything
  t.deepEqual(sink.sent(1).slice(-1), [peerLeft(2)]);
});

test("departure: a new peer with a new file blocks a pending departure until everyone has it", (t) => {
  const { sink, registry, join, complete } = setup();
  const f = manifest("f", 1000);
  const g = manifest("g", 10);
  const h = manifest("h", 2000);
  join(f);
  join(g);
  registry.readyToLeave(1);
  complete(1, g);
  t.deepEqual(sink.granted(), []); // peer 2 lacks f
  join(h);
  complete(2, f); // would have released peer 1 without peer 3's h
  t.deepEqual(sink.granted(), []);
  complete(1, h);
  complete(2, h);
  complete(3, f);
  t.deepEqual(sink.granted(), []);
  sink.clear();
  complete(3, g);
  t.deepEqual(sink.granted(), [1]);
  t.deepEqual(sink.sent(2), [peerLeft(1), holders(3, 2, [], true)]);
  t.deepEqual(sink.sent(3), [peerLeft(1)]);
});

test("departure: a peer that joins with nothing blocks the others until it has everything", (t) => {
  const { sink, registry, join, complete } = setup();
  const f = manifest("f", 1000);
  join(f);
  join();
  complete(2, f);
  join();
  registry.readyToLeave(1);
  registry.readyToLeave(2);
  t.deepEqual(sink.granted(), []);
  sink.clear();

  complete(3, f);
  t.deepEqual(sink.granted(), [1, 2]);
  // Both at once: the rule is one count for the whole swarm.
  t.deepEqual(sink.sent(1), [GRANTED]);
  t.deepEqual(sink.sent(2), [GRANTED]);
  t.deepEqual(sink.sent(3), [peerLeft(1), peerLeft(2)]);
  sink.clear();

  registry.leave(1);
  registry.leave(2);
  t.deepEqual(sink.blocks(), [["PEER 1 DISCONNECT: RECEIVED 0"], ["PEER 2 DISCONNECT: RECEIVED 1", "2    f"]]);
  t.deepEqual(sink.sent(3), []);
  t.is(registry.fileCount, 1);
});

test("departure: two ready peers swapping files are both granted on the last completion", (t) => {
  const { sink, registry, join, complete } = setup();
  const f = manifest("f", 1000);
  const g = manifest("g", 3000);
  join(f);
  join(g);
  registry.readyToLeave(1);
  registry.readyToLeave(2);
  complete(1, g);
  t.deepEqual(sink.granted(), []);
  registry.have(2, 1, [0, 1]);
  t.deepEqual(sink.granted(), []);
  registry.have(2, 1, [1, 1]);
  t.deepEqual(sink.granted(), [1, 2]);
  t.deepEqual(
    registry.snapshot().peers.map((p) => p.state),
    ["leaving", "leaving"],
  );
});

test("departure: a granted peer is gone at once: a newcomer neither sees it nor its files", (t) => {
  const { sink, registry, join, welcomeOf } = setup();
  const f = manifest("f", 1000);
  join(f);
  registry.readyToLeave(1);
  t.deepEqual(sink.granted(), [1]);
  t.deepEqual(sink.logs(), [], "nobody lacked f: a normal departure says nothing");
  sink.clear();
  join();
  t.deepEqual(welcomeOf(2), {
    peerId: 2,
    files: [],
    peers: [],
    holders: [],
    refused: [],
    accepted: [],
    secret: secretOf(2),
  });
  t.deepEqual(sink.sent(1), []);
  sink.clear();
  registry.leave(1);
  t.deepEqual(sink.blocks(), [["PEER 1 DISCONNECT: RECEIVED 0"]]);
  t.deepEqual(sink.sent(2), []);
  t.deepEqual(sink.logs(), []);
});

// ------------------------------------------------------------------ leave and availability

test("leave: a file whose partial holders together still cover it stays available", (t) => {
  const { sink, registry, join } = setup();
  join(manifest("f", 2000)); // 4 chunks
  join();
  join();
  registry.have(2, 1, [0, 3]);
  registry.have(3, 1, [1, 3]);
  sink.clear();

  registry.leave(1);
  t.deepEqual(sink.blocks(), [["PEER 1 DISCONNECT: RECEIVED 0"]]);
  t.deepEqual(sink.sent(2), [peerLeft(1)]);
  t.deepEqual(sink.sent(3), [peerLeft(1)]);
  t.deepEqual(sink.logs(), []);
  t.is(registry.fileCount, 1);
  t.is(registry.snapshot().files[0]?.completeHolders, 0);
  sink.clear();

  t.is(registry.have(2, 1, [3, 1]), undefined);
  t.deepEqual(sink.lines(), ["PEER 2 ACQUIRED: CHUNK 4/4 f"]);
  t.deepEqual(sink.sent(3), [holders(2, 1, [], true)]);
});

test("leave: the sole seeder leaving before anyone completes a file removes it and frees the others", (t) => {
  const { sink, registry, join, complete } = setup();
  const F = manifest("F", 2000); // 4 chunks, file 1
  const G = manifest("G", 10); // file 2
  join(F);
  join(G);
  join();
  complete(3, G);
  registry.have(2, 1, [0, 2]);
  registry.have(3, 1, [1, 2]); // together chunks 1-3 of 4
  registry.readyToLeave(2);
  registry.readyToLeave(3);
  t.deepEqual(sink.granted(), []);
  sink.clear();

  registry.leave(1);
  t.deepEqual(sink.blocks(), [["PEER 1 DISCONNECT: RECEIVED 0"]]);
  // F goes with its only seeder (peers 2 and 3 lose it); G goes once its last holders are
  // granted departure, which costs nobody anything: not worth a line.
  t.deepEqual(sink.logs(), [
    'file "F" is no longer available: no live peer holds all of it (peers 2, 3 did not get it)',
  ]);
  // Granted in the same call: they hear nothing of the swarm any more.
  t.deepEqual(sink.sent(2), [GRANTED]);
  t.deepEqual(sink.sent(3), [GRANTED]);
  t.deepEqual(sink.granted(), [2, 3]);
  t.is(registry.fileCount, 0);
  t.is(registry.holding(2, 1), undefined);
  t.is(registry.holding(3, 1), undefined);
  t.deepEqual(registry.snapshot(), {
    peers: [
      { id: 2, host: "10.0.0.2", udpPort: 7002, state: "leaving", files: [], refusedNames: [], stats: undefined },
      { id: 3, host: "10.0.0.3", udpPort: 7003, state: "leaving", files: [], refusedNames: [], stats: undefined },
    ],
    files: [],
  });
  sink.clear();

  // A late report about the removed file is stale, not bad, and prints nothing.
  t.is(registry.have(2, 1, [3, 1]), undefined);
  t.deepEqual(sink.effects, []);
  // The name is free again: different content under it is a new file, not a conflict.
  join(manifest("F", 2000, "new content"));
  t.deepEqual(sink.blocks(), [["PEER 4 CONNECT: OFFERS 1", "4    F 4"]]);
  t.deepEqual(sink.logs(), []);
  t.deepEqual(
    registry.snapshot().files.map((f) => [f.id, f.name]),
    [[3, "F"]],
  );
});

test("leave: a peer lost while ready (never granted) is announced as peerLeft", (t) => {
  const { sink, registry, join } = setup();
  join(manifest("f", 10));
  join();
  registry.readyToLeave(2);
  sink.clear();
  registry.leave(2);
  t.deepEqual(sink.blocks(), [["PEER 2 DISCONNECT: RECEIVED 0"]]);
  t.deepEqual(sink.sent(1), [peerLeft(2)]);
});

// ------------------------------------------------------------------ snapshot

test("snapshot: peers in id order with what they hold; files sorted by name bytes", (t) => {
  const { registry, join } = setup();
  join(manifest("b.bin", 1500), manifest("A.bin", 100));
  join();
  registry.have(2, 1, [0, 1, 2, 1]);
  join();
  registry.readyToLeave(2);
  const stats = {
    bytesSent: 10,
    bytesReceived: 2048,
    chunksSent: 0,
    chunksReceived: 4,
    retransmissions: 1,
    requestsSent: 2,
    srttMs: 0.5,
  };
  registry.stats(2, stats);
  registry.stats(99, stats); // unknown peer: ignored
  t.deepEqual(registry.snapshot(), {
    peers: [
      {
        id: 1,
        host: "10.0.0.1",
        udpPort: 7001,
        state: "active",
        files: [
          { fileId: 1, held: 3, complete: true },
          { fileId: 2, held: 1, complete: true },
        ],
        refusedNames: [],
        stats: undefined,
      },
      {
        id: 2,
        host: "10.0.0.2",
        udpPort: 7002,
        state: "ready",
        files: [{ fileId: 1, held: 2, complete: false }],
        refusedNames: [],
        stats,
      },
      { id: 3, host: "10.0.0.3", udpPort: 7003, state: "active", files: [], refusedNames: [], stats: undefined },
    ],
    files: [
      { id: 2, name: "A.bin", size: 100, chunks: 1, completeHolders: 1 },
      { id: 1, name: "b.bin", size: 1500, chunks: 3, completeHolders: 1 },
    ],
  });
  t.is(registry.peerCount, 3);
  t.is(registry.fileCount, 2);
  t.deepEqual(registry.holding(2, 1), {
    complete: false,
    runs: [
      [0, 1],
      [2, 1],
    ],
  });
  t.deepEqual(registry.holding(1, 2), { complete: true, runs: [] });
  t.is(registry.holding(3, 1), undefined);
  t.is(registry.holding(9, 1), undefined);
});

// ------------------------------------------------------------------ weird input

test("weird input: unknown peers, unknown files and duplicate offers never throw", (t) => {
  const { sink, registry, join } = setup();
  t.notThrows(() => {
    registry.leave(1);
    registry.readyToLeave(1);
    t.is(registry.have(1, 1, [0, 1]), "unknown peer");
    registry.leave(-1);
    registry.leave(Number.NaN);
    registry.readyToLeave(0);
  });
  t.deepEqual(sink.effects, []);
  // Two offers of one name in one Hello: the first counts.
  join(manifest("dup", 10), manifest("dup", 20, "other"));
  t.deepEqual(sink.blocks(), [["PEER 1 CONNECT: OFFERS 1", "1    dup 1"]]);
  t.deepEqual(registry.snapshot().files, [{ id: 1, name: "dup", size: 10, chunks: 1, completeHolders: 1 }]);
  t.notThrows(() => {
    registry.have(1, 0, [0, 1]);
    registry.have(1, 99, [0, 1]);
    registry.have(1, 1, [0, 1]); // its own offer
    registry.have(1, 1, [0, 2 ** 32]);
    registry.have(1, 1, [2 ** 53, 1]);
    registry.leave(2);
  });
});

type Op =
  | { readonly op: "join"; readonly offers: number[] }
  | { readonly op: "have"; readonly peer: number; readonly file: number; readonly runs: Runs }
  | { readonly op: "ready"; readonly peer: number }
  | { readonly op: "leave"; readonly peer: number };

/** A report's runs: raw numbers (mostly bad), or valid runs scaled to the file, or the whole file. */
type Runs =
  | { readonly kind: "raw"; readonly flat: number[] }
  | { readonly kind: "scaled"; readonly pairs: Array<[number, number]> }
  | { readonly kind: "whole" };

const POOL = [
  manifest("a", 1500),
  manifest("a", 1500, "other content"),
  manifest("B", 0),
  manifest("c", 600),
  manifest("é", 70_000),
];

const peerArb = fc.oneof(
  { arbitrary: fc.integer({ min: 1, max: 5 }), weight: 9 },
  { arbitrary: fc.constantFrom(-1, 0, 99), weight: 1 },
);
const fraction = fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true });
const runsArb: fc.Arbitrary<Runs> = fc.oneof(
  fc.record({
    kind: fc.constant("raw" as const),
    flat: fc.array(fc.oneof(fc.integer({ min: -2, max: 140 }), fc.constantFrom(Number.NaN, 0.5, 2 ** 32)), {
      maxLength: 5,
    }),
  }),
  fc.record({ kind: fc.constant("scaled" as const), pairs: fc.array(fc.tuple(fraction, fraction), { maxLength: 3 }) }),
  fc.record({ kind: fc.constant("whole" as const) }),
);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    arbitrary: fc.record({ op: fc.constant("join" as const), offers: fc.shuffledSubarray([0, 1, 2, 3, 4]) }),
    weight: 2,
  },
  {
    arbitrary: fc.record({
      op: fc.constant("have" as const),
      peer: peerArb,
      file: fc.oneof(
        { arbitrary: fc.integer({ min: 1, max: 7 }), weight: 9 },
        { arbitrary: fc.constant(0), weight: 1 },
      ),
      runs: runsArb,
    }),
    weight: 6,
  },
  { arbitrary: fc.record({ op: fc.constant("ready" as const), peer: peerArb }), weight: 2 },
  { arbitrary: fc.record({ op: fc.constant("leave" as const), peer: peerArb }), weight: 1 },
);

/** The flat runs of a report, for a file of `chunks` chunks (undefined: unknown file). */
function flatRuns(runs: Runs, chunks: number | undefined): number[] {
  if (runs.kind === "raw") return runs.flat;
  if (chunks === undefined || chunks === 0) return [];
  if (runs.kind === "whole") return [0, chunks];
  return runs.pairs.flatMap(([a, b]) => {
    const first = Math.floor(a * chunks);
    return [first, 1 + Math.floor(b * (chunks - first))];
  });
}

/** Runs a random sequence against the registry and checks its invariants after every step. */
function runSequence(ops: readonly Op[]): string | undefined {
  const sink = new RecordingSink();
  const registry = flushing(new Registry(sink));
  const acquired = new Set<string>();
  const everReady = new Set<number>();
  const granted = new Set<number>();
  const refused = new Map<number, Set<string>>();
  let lastId = 0;
  for (const [step, op] of ops.entries()) {
    sink.clear();
    const where = `step ${step} ${JSON.stringify(op)}`;
    try {
      if (op.op === "join") {
        const id = registry.join(
          "h",
          7000,
          op.offers.flatMap((i) => POOL[i] ?? []),
        );
        if (id.peerId !== lastId + 1) return `${where}: id ${id.peerId} after ${lastId}`;
        lastId = id.peerId;
        const welcome = sink.sent(id.peerId).find((b) => b.welcome)?.welcome;
        refused.set(id.peerId, new Set((welcome?.refused ?? []).map((r) => r.fileName ?? "")));
      } else if (op.op === "have") {
        const chunks = registry.snapshot().files.find((f) => f.id === op.file)?.chunks;
        const problem = registry.have(op.peer, op.file, flatRuns(op.runs, chunks));
        if (op.runs.kind !== "raw" && registry.hasPeer(op.peer) && problem !== undefined && !/refused/.test(problem))
          return `${where}: valid report refused: ${problem}`;
        for (const line of sink.lines()) {
          const m = /^PEER (\d+) ACQUIRED: CHUNK (\d+)\/(\d+) \S+$/.exec(line);
          if (m === null || Number(m[1]) !== op.peer || Number(m[2]) < 1 || Number(m[2]) > Number(m[3]))
            return `${where}: bad line ${line}`;
          const key = `${op.file}|${line}`;
          if (acquired.has(key)) return `${where}: printed twice: ${line}`;
          acquired.add(key);
        }
      } else if (op.op === "ready") {
        if (registry.hasPeer(op.peer)) everReady.add(op.peer);
        registry.readyToLeave(op.peer);
      } else {
        const known = registry.hasPeer(op.peer);
        registry.leave(op.peer);
        const blocks = sink.blocks();
        if (known !== (blocks.length === 1 && blocks[0]?.[0]?.startsWith(`PEER ${op.peer} DISCONNECT`) === true))
          return `${where}: DISCONNECT blocks ${JSON.stringify(blocks)}`;
      }
    } catch (e) {
      return `${where}: threw ${String(e)}`;
    }

    const snap = registry.snapshot();
    const nowGranted = sink.granted();
    for (const id of nowGranted) {
      if (granted.has(id)) return `${where}: peer ${id} granted twice`;
      if (!everReady.has(id)) return `${where}: peer ${id} granted without readyToLeave`;
      granted.add(id);
    }
    if (nowGranted.length > 0) {
      for (const peer of snap.peers) {
        // A granted peer is gone for holdings at once; the peers that stay must hold everything.
        if (peer.state === "leaving") continue;
        for (const file of snap.files) {
          if (refused.get(peer.id)?.has(file.name)) continue;
          if (!peer.files.some((h) => h.fileId === file.id && h.complete))
            return `${where}: granted ${nowGranted} while peer ${peer.id} lacks ${file.name}`;
        }
      }
    }
    for (const file of snap.files) {
      const complete = snap.peers.filter((p) => p.files.some((h) => h.fileId === file.id && h.complete)).length;
      if (complete !== file.completeHolders) return `${where}: ${file.name} completeHolders ${file.completeHolders}`;
      if (complete === 0) {
        // Still available: the partial holders must cover it together.
        const covered = new Set<number>();
        for (const peer of snap.peers) {
          for (const [first, count] of registry.holding(peer.id, file.id)?.runs ?? []) {
            for (let c = first; c < first + count; c++) covered.add(c);
          }
        }
        if (covered.size !== file.chunks) return `${where}: ${file.name} kept but not covered`;
      }
    }
    for (const e of sink.effects) {
      const removed = e.kind === "send" ? e.body.fileRemoved?.fileId : undefined;
      if (removed !== undefined && removed !== null && snap.files.some((f) => f.id === removed))
        return `${where}: file ${removed} removed but still listed`;
    }
  }
  return undefined;
}

test("weird input: random join/have/ready/leave sequences never throw and keep the invariants (property)", (t) => {
  checkProperty(
    t,
    fc.property(fc.array(opArb, { minLength: 10, maxLength: 80, size: "max" }), (ops) => {
      const problem = runSequence(ops);
      if (problem !== undefined) throw new Error(problem);
    }),
    { numRuns: 400 },
  );
});

// ------------------------------------------------------------------ addresses

test("addresses: a peer seen on loopback is introduced to remote peers by an address it announced", (t) => {
  const sink = new RecordingSink();
  const registry = flushing(new Registry(sink, (n) => Buffer.alloc(n, 7)));
  const a = registry.join("127.0.0.1", 7001, [], undefined, ["192.0.2.2", "127.0.0.1", "not-an-ip", "192.0.2.2"]);
  const b = registry.join("192.0.2.50", 7002, []);
  const c = registry.join("127.0.0.1", 7003, []);
  const aToB = sink
    .sent(b.peerId)
    .find((f) => f.welcome)
    ?.welcome?.peers?.find((p) => p.peerId === a.peerId);
  const aToC = sink
    .sent(c.peerId)
    .find((f) => f.welcome)
    ?.welcome?.peers?.find((p) => p.peerId === a.peerId);
  // B is elsewhere: A's loopback address would not reach it.
  t.is(aToB?.host, "192.0.2.2");
  t.deepEqual(aToB?.aliases, ["127.0.0.1", "192.0.2.2"]);
  // C is on A's host too: the address the tracker sees works.
  t.is(aToC?.host, "127.0.0.1");
  // B announced nothing: it is introduced as seen, with no aliases.
  const bToA = sink.sent(a.peerId).find((f) => f.peerJoined?.peer?.peerId === b.peerId)?.peerJoined?.peer;
  t.is(bToA?.host, "192.0.2.50");
  t.is(bToA?.aliases, undefined);
});

// ------------------------------------------------------------------ names, limits, bounded welcomes

test("conflict: once the name is free, the refused file is offered again, told to its peer, and required of the others", (t) => {
  const { sink, registry, join, welcomeOf } = setup();
  const x = manifest("same", 700, "X");
  const y = manifest("same", 700, "Y");
  join(x); // 1, file 1
  join(y); // 2: refused
  join(); // 3
  t.like(welcomeOf(2).refused?.[0], { reason: RefusalReason.REASON_NAME_CONFLICT, fileName: "same" });
  registry.readyToLeave(2);
  sink.clear();

  registry.leave(1); // the only holder of X: the name is free
  t.deepEqual(sink.logs(), [
    'file "same" is no longer available: no live peer holds all of it (peer 3 did not get it)',
    'peer 2: "same" offered again now that the name is free',
  ]);
  t.deepEqual(sink.sent(2), [
    { fileRemoved: { fileId: 1 } },
    { peerLeft: { peerId: 1 } },
    { accepted: { file: info(2, y) } },
    { fileAdded: { file: info(2, y) } },
  ]);
  t.deepEqual(sink.sent(3), [
    { fileRemoved: { fileId: 1 } },
    { peerLeft: { peerId: 1 } },
    { fileAdded: { file: info(2, y) } },
    holders(2, 2, [], true),
  ]);
  t.deepEqual(sink.granted(), [], "peer 3 lacks the file offered again");
  t.deepEqual(registry.snapshot().peers[0]?.refusedNames, []);
  sink.clear();
  registry.have(3, 2, [0, 2]);
  t.deepEqual(sink.granted(), [2]);
  registry.leave(3);
  t.deepEqual(sink.blocks().at(-1), ["PEER 3 DISCONNECT: RECEIVED 1", "3    same"]);
});

test("names: two spellings of one visible name (NFC, NFD) are one name: the second is a name conflict", (t) => {
  const { sink, join, welcomeOf } = setup();
  const nfc = manifest("caf\u00e9.txt", 10, "same content");
  const nfd = manifest("cafe\u0301.txt", 10, "same content");
  join(nfc);
  sink.clear();
  join(nfd);
  t.deepEqual(sink.blocks(), [["PEER 2 CONNECT: OFFERS 0"]]);
  const refused = welcomeOf(2).refused?.[0];
  t.is(refused?.reason, RefusalReason.REASON_NAME_CONFLICT);
  t.is(refused?.fileName, "cafe\u0301.txt");
  t.regex(refused?.detail ?? "", /already offers "caf\u00e9\.txt", a name that prints the same/);
  t.deepEqual(sink.logs(), ['peer 2: refused "cafe\u0301.txt": name conflict (same name, another Unicode spelling)']);
  // Peer 2 is not asked for the other spelling: it may leave once ready.
  t.deepEqual(welcomeOf(2).files?.length, 1);
});

test("limits: files and manifest bytes beyond a peer's or the swarm's budget are refused with REASON_LIMIT after the Welcome", (t) => {
  const sink = new RecordingSink();
  const limits = { maxFilesPerPeer: 2, maxManifestBytesPerPeer: 10_000, maxManifestBytes: 12_000 };
  const registry = flushing(new Registry(sink, (n) => Buffer.alloc(n, 1), limits));
  const small = (name: string) => manifest(name, 1000);
  const big = madeUp("big", 128 * 512 * 200); // 200 pieces: about 6.9 kB of manifest
  registry.join("10.0.0.1", 7001, [small("a"), small("b"), small("c")]);
  t.deepEqual(
    sink.sent(1).map((b) => Object.keys(b)[0]),
    ["welcome", "refusal"],
  );
  t.like(sink.sent(1)[1]?.refusal, { reason: RefusalReason.REASON_LIMIT, fileName: "c" });
  t.regex(sink.sent(1)[1]?.refusal?.detail ?? "", /at most 2 files/);
  registry.join("10.0.0.2", 7002, [big, madeUp("big2", 128 * 512 * 100)]);
  const refusals = sink
    .sent(2)
    .filter((b) => b.refusal)
    .map((b) => b.refusal);
  t.deepEqual(
    refusals.map((r) => [r?.reason, r?.fileName]),
    [[RefusalReason.REASON_LIMIT, "big2"]],
  );
  t.regex(refusals[0]?.detail ?? "", /from one peer/);
  registry.join("10.0.0.3", 7003, [madeUp("big3", 128 * 512 * 150)]);
  t.regex(sink.sent(3).find((b) => b.refusal)?.refusal?.detail ?? "", /the swarm's manifests would exceed 12000 bytes/);
  t.deepEqual(
    registry.snapshot().files.map((f) => f.name),
    ["a", "b", "big"],
  );
  t.is(sink.logs().filter((l) => l.includes("refused")).length, 3);
});

test("welcome: what peers hold goes in groups of bounded size, the first in the Welcome, the rest in Updates", (t) => {
  const { sink, registry, join, welcomeOf } = setup();
  const chunks = 262_144;
  const f = madeUp("long", chunks * 512);
  join(f);
  join();
  // Peer 2 holds every other chunk: 131072 runs.
  const flat: number[] = [];
  for (let c = 0; c < chunks; c += 2) flat.push(c, 1);
  t.is(registry.have(2, 1, flat), undefined);
  sink.clear();
  join();
  const w = welcomeOf(3);
  const inWelcome = (w.holders ?? []).reduce((n, h) => n + (h.runs?.length ?? 0) / 2, 0);
  const later = sink.sent(3).filter((b) => b.holdersChanged);
  const inUpdates = later.reduce((n, b) => n + (b.holdersChanged?.runs?.length ?? 0) / 2, 0);
  t.true(inWelcome <= 64 * 1024, `${inWelcome} runs in the Welcome`);
  t.is(inWelcome + inUpdates, chunks / 2, "every run of peer 2");
  t.true(
    (w.holders ?? []).some((h) => h.peerId === 1 && h.complete === true),
    "and peer 1's whole file",
  );
  t.true(later.length >= 1);
});

// ------------------------------------------------------------------ issue 15.6a: a client that never fetches

test("idle: a peer that fetches nothing for the grace holds nobody back; reporting again puts it back", (t) => {
  const { sink, registry, join, fileId, complete } = setup();
  const a = manifest("a", 3000);
  const b = manifest("b", 2000);
  join(a); // 1: seeds a
  join(b); // 2: seeds b
  const idle = join(); // 3: never fetches
  complete(1, b);
  complete(2, a);
  registry.readyToLeave(1);
  registry.readyToLeave(2);
  t.deepEqual(sink.granted(), [], "peer 3 lacks both files");
  registry.sweepIdle(0, 15_000); // the grace of each peer starts
  registry.have(idle, fileId("a"), [0, 1]); // one chunk: progress, at 5 s
  registry.sweepIdle(5_000, 15_000);
  registry.sweepIdle(19_000, 15_000);
  t.deepEqual(sink.granted(), [], "15 s have not passed since its last report");
  sink.clear();
  registry.sweepIdle(20_000, 15_000);
  t.deepEqual(sink.logs(), [
    "peer 3 has fetched nothing for 15 s while files it lacks were there for it: not acquiring data, it holds no other peer back until it reports chunks again",
    // What it lacks goes with its seeders: it was not acquiring it.
    'file "b" is no longer available: no live peer holds all of it (peer 3 did not get it)',
    'file "a" is no longer available: no live peer holds all of it (peer 3 did not get it)',
  ]);
  t.deepEqual(sink.granted(), [1, 2]);
});

test("idle: an idle peer reporting again counts again; a ready idle peer is not granted while it lacks files", (t) => {
  const { sink, registry, join, fileId, complete } = setup();
  const a = manifest("a", 3000);
  join(a); // 1
  join(); // 2
  join(); // 3
  registry.readyToLeave(2);
  registry.sweepIdle(0, 1000);
  registry.sweepIdle(1000, 1000); // 2 and 3 go idle
  t.deepEqual(sink.granted(), [], "peer 2 is ready but lacks a: idle peers are never granted");
  registry.have(3, fileId("a"), [0, 2]); // 3 fetches again
  t.true(sink.logs().includes("peer 3 is fetching again: it holds others back as before"));
  registry.readyToLeave(1);
  t.deepEqual(sink.granted(), [], "peer 3 lacks a again: peer 1 stays");
  complete(3, a);
  t.deepEqual(sink.granted(), [1], "peer 2 is still idle and lacks a");
  registry.have(2, fileId("a"), [0, 6]);
  t.deepEqual(sink.granted(), [1, 2]);
});

test("idle: a peer that lacks nothing is never idle; its grace starts when a file comes", (t) => {
  const { sink, registry, join } = setup();
  join(); // 1
  join(); // 2
  registry.sweepIdle(0, 1000);
  registry.sweepIdle(5000, 1000);
  t.deepEqual(sink.logs(), []);
  join(manifest("late", 700)); // 3: peers 1 and 2 lack it from now
  registry.sweepIdle(5500, 1000);
  t.deepEqual(sink.logs(), []);
  registry.sweepIdle(6000, 1000);
  t.deepEqual(
    sink.logs().map((l) => l.slice(0, 42)),
    ["peer 1 has fetched nothing for 1 s while f", "peer 2 has fetched nothing for 1 s while f"],
    "both went idle after the grace since the file came",
  );
});

// ------------------------------------------------------------------ issue 15.8: a seeder withdraws a changed file

test("withdraw: the only holder withdraws: the file goes, nobody waits for it, the withdrawer keeps its name", (t) => {
  const { sink, registry, join, fileId, complete } = setup();
  const f = manifest("f", 5000);
  const g = manifest("g", 600);
  join(f, g); // 1
  join(); // 2
  complete(2, g);
  registry.readyToLeave(1);
  registry.readyToLeave(2);
  t.deepEqual(sink.granted(), []);
  sink.clear();
  const id = fileId("f");
  t.is(registry.withdraw(1, id), undefined);
  t.deepEqual(sink.logs(), [
    'peer 1 withdrew "f": it no longer serves it',
    'file "f" is no longer available: no live peer holds all of it (peer 2 did not get it)',
  ]);
  // Granted in the same call: peer 2 hears nothing of the swarm any more.
  t.deepEqual(sink.sent(2), [GRANTED]);
  t.deepEqual(sink.granted(), [1, 2]);
});

test("withdraw: with another holder the file stays; a peer joining later with that name is no lack of the withdrawer", (t) => {
  const { sink, registry, join, fileId, complete } = setup();
  const f = manifest("f", 5000);
  join(f); // 1
  join(); // 2
  complete(2, f);
  t.is(registry.withdraw(1, fileId("f")), undefined);
  t.is(registry.fileCount, 1, "peer 2 holds it whole");
  t.is(registry.holding(1, fileId("f")), undefined);
  t.is(registry.have(1, fileId("f"), [0, 1]), "report for withdrawn file f");
  registry.readyToLeave(1);
  registry.readyToLeave(2);
  t.deepEqual(sink.granted(), [1, 2], "peer 1 does not lack the file it withdrew");
});

// ------------------------------------------------------------------ offers still being hashed

/** Peer `n` joins from 10.0.0.n offering `hashed` and, still being hashed, `unhashed`. */
function joinHashing(registry: Registry, n: number, hashed: CheckedManifest[], unhashed: CheckedManifest[]): number {
  const pending = unhashed.map((m) => ({ name: m.name, size: m.size, chunks: m.chunks }));
  return registry.join(`10.0.0.${n}`, 7000 + n, hashed, undefined, [], [], undefined, undefined, pending).peerId;
}

test("hashing: an offer still being hashed is in the CONNECT block, told to nobody, and holds departures back until hashed", (t) => {
  const { sink, registry, join, complete, fileId, welcomeOf } = setup();
  const big = manifest("big", 3000);
  const small = manifest("small", 10);
  t.is(joinHashing(registry, 1, [small], [big]), 1);
  t.deepEqual(sink.blocks()[0], ["PEER 1 CONNECT: OFFERS 2", "1    big 6", "1    small 1"]);
  join(); // 2
  t.deepEqual(
    (welcomeOf(2).files ?? []).map((f) => f.manifest?.name),
    ["small"],
    "nothing can be verified yet: the newcomer is not told of it",
  );
  complete(2, small);
  registry.readyToLeave(1);
  registry.readyToLeave(2);
  t.deepEqual(sink.granted(), [], "everyone lacks the file being hashed");
  sink.clear();
  t.is(registry.hashed(1, big, CLASSIC_TAG), undefined);
  const id = fileId("big");
  t.deepEqual(sink.sent(1), [{ accepted: { file: info(id, big) } }, { fileAdded: { file: info(id, big) } }]);
  t.deepEqual(sink.sent(2), [{ fileAdded: { file: info(id, big) } }, holders(1, id, [], true)]);
  t.deepEqual(sink.lines(), [], "printed once, at CONNECT");
  t.deepEqual(sink.granted(), []);
  complete(2, big);
  t.deepEqual(sink.granted(), [1, 2]);
  t.regex(registry.hashed(1, big, CLASSIC_TAG) ?? "", /not an offer it is hashing/, "settled once");
});

test("hashing: settled as at the Hello (a name conflict refuses it); a size change or a give-up holds nobody back", (t) => {
  const { sink, registry, join } = setup();
  const x = manifest("same", 700, "X");
  join(x); // 1
  joinHashing(registry, 2, [], [manifest("same", 700, "Y")]);
  joinHashing(registry, 3, [], [manifest("grows", 700)]);
  joinHashing(registry, 4, [], [manifest("gone", 700)]);
  for (const p of [1, 2, 3, 4]) registry.readyToLeave(p);
  t.deepEqual(sink.granted(), []);
  sink.clear();
  t.is(registry.hashed(2, manifest("same", 700, "Y"), CLASSIC_TAG), undefined);
  t.like(sink.sent(2)[0]?.refusal, { reason: RefusalReason.REASON_NAME_CONFLICT, fileName: "same" });
  t.is(registry.hashed(3, manifest("grows", 900), CLASSIC_TAG), undefined);
  t.like(sink.sent(3)[0]?.refusal, { reason: RefusalReason.REASON_BAD_MESSAGE, fileName: "grows" });
  t.deepEqual(sink.granted(), [], "peer 4 is still hashing");
  t.regex(registry.giveUpHashing(4, "nope") ?? "", /not an offer it is hashing/);
  t.is(registry.giveUpHashing(4, "gone"), undefined);
  t.deepEqual(sink.granted(), [], "peers 2, 3 and 4 lack x");
  t.deepEqual(
    registry.snapshot().files.map((f) => f.name),
    ["same"],
    "the refused and given-up offers never became files",
  );
  for (const p of [2, 3, 4]) registry.have(p, 1, [0, 2]);
  t.deepEqual(sink.granted(), [1, 2, 3, 4]);
});

test("hashing: a peer that leaves while hashing releases the others", (t) => {
  const { sink, registry, join, complete } = setup();
  const a = manifest("a", 100);
  join(a); // 1
  joinHashing(registry, 2, [], [manifest("big", 5000)]);
  complete(2, a);
  registry.readyToLeave(1);
  t.deepEqual(sink.granted(), []);
  registry.leave(2);
  t.deepEqual(sink.granted(), [1]);
});

test("idle: once what an idle peer lacked is gone, it lacks nothing, counts again and may leave", (t) => {
  const { sink, registry, join } = setup();
  const a = manifest("a", 3000);
  join(a); // 1: seeds a
  const idle = join(); // 2: never fetches
  registry.readyToLeave(1);
  registry.readyToLeave(idle);
  registry.sweepIdle(0, 15_000);
  registry.sweepIdle(15_000, 15_000);
  // The idle peer held nobody back: the seeder went, and its file with it. Then the idle
  // peer lacked nothing: without that it waited for ever for a file that no longer exists.
  t.deepEqual(registry.snapshot().files, []);
  t.true(sink.logs().includes(`peer ${idle} lacks nothing any more: no longer idle`));
  t.deepEqual(sink.granted(), [1, idle]);
});
