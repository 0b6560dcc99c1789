import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import test from "ava";
import fc from "fast-check";
import { AUTH_BYTES, requestAuth, SECRET_BYTES } from "../../src/wire/auth.js";
import { udpswarm } from "../../src/wire/gen/swarm.js";
import {
  CHUNK_SIZE,
  CHUNKS_PER_PIECE,
  MAX_CHUNKS_PER_REQUEST,
  MAX_DATAGRAM_BYTES,
  MAX_REQUEST_SPAN,
} from "../../src/wire/limits.js";
import {
  CHUNK_DATA_OFFSET,
  CHUNK_HEADER_BYTES,
  ChunkHeader,
  type DropReason,
  decodePeerDatagram,
  encodeChunk,
  encodeCookie,
  encodeHashReply,
  encodeHashRequest,
  encodeRequest,
  KIND_CHUNK,
  KIND_MESSAGE,
  type PeerDatagram,
  PROTOCOL_VERSION,
  RECEIPT_SHARE_OFFSET,
  writeChunkHeader,
} from "../../src/wire/peer-datagram.js";
import { checkProperty } from "../helpers/property.js";

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
/** No auth: an absent bytes field decodes to an empty Buffer. */
const NO_AUTH = Buffer.alloc(0);
/** Block hashes of a whole piece: 32 blocks of 4 chunks, 32 bytes each. */
const BLOCKS_PER_PIECE = CHUNKS_PER_PIECE / 4;

test("constants match proto/swarm.proto", (t) => {
  t.is(KIND_MESSAGE, 1);
  t.is(KIND_CHUNK, 2);
  t.is(PROTOCOL_VERSION, 4);
  t.is(CHUNK_HEADER_BYTES, 32);
  t.is(CHUNK_DATA_OFFSET, 32);
  t.is(RECEIPT_SHARE_OFFSET, 24);
  t.is(MAX_DATAGRAM_BYTES, 1200);
  t.true(CHUNK_HEADER_BYTES + CHUNK_SIZE <= MAX_DATAGRAM_BYTES);
  t.is(AUTH_BYTES, 8);
  t.is(SECRET_BYTES, 16);
});

// ------------------------------------------------------------------ chunk datagrams

/** One chunk datagram, field by field: the encoder's output and the decoder's input. */
const CHUNK_VECTOR =
  // kind ver  flags rsvd  seq       request_seq token     file_id   chunk     receipt share       data
  "02" +
  "04" +
  "00" +
  "00" +
  "01020304" +
  "05060708" +
  "090a0b0c" +
  "0d0e0f10" +
  "11121314" +
  "a1a2a3a4a5a6a7a8" +
  "aabbcc";

test("encodeChunk: fixed 32-byte header, big-endian, then the data", (t) => {
  const share = Buffer.from("a1a2a3a4a5a6a7a8", "hex");
  const out = encodeChunk(
    0x01020304,
    0x05060708,
    0x090a0b0c,
    0x0d0e0f10,
    0x11121314,
    Uint8Array.of(0xaa, 0xbb, 0xcc),
    share,
  );
  t.is(hex(out), CHUNK_VECTOR);
  t.is(out.length, 35);
});

test("encodeChunk: all-zero fields and a full 512-byte chunk", (t) => {
  const data = Buffer.alloc(CHUNK_SIZE, 0x7e);
  const out = encodeChunk(0, 0, 0, 0, 0, data);
  t.is(out.length, 32 + 512);
  t.is(hex(out.subarray(0, 32)), "0204000000000000000000000000000000000000000000000000000000000000");
  t.true(out.subarray(32).equals(data));
});

test("encodeChunk: 32-bit maxima and negative numbers are written as unsigned", (t) => {
  const out = encodeChunk(0xffffffff, -1, 0x80000000, 0xfffffffe, 0x7fffffff, Uint8Array.of(1));
  t.is(
    hex(out),
    "02040000" + "ffffffff" + "ffffffff" + "80000000" + "fffffffe" + "7fffffff" + "0000000000000000" + "01",
  );
});

test("writeChunkHeader: writes exactly 32 bytes at the offset and nothing else; the share from its offset", (t) => {
  const out = Buffer.alloc(48, 0xee);
  const shares = Buffer.from("00000000000000000000000000000000" + "b1b2b3b4b5b6b7b8ffffffffffffffff", "hex");
  writeChunkHeader(out, 8, 1, 2, 3, 4, 5, shares, 16);
  t.is(hex(out.subarray(0, 8)), "eeeeeeeeeeeeeeee");
  t.is(
    hex(out.subarray(8, 40)),
    "02040000" + "00000001" + "00000002" + "00000003" + "00000004" + "00000005" + "b1b2b3b4b5b6b7b8",
  );
  t.is(hex(out.subarray(40)), "eeeeeeeeeeeeeeee");
  writeChunkHeader(out, 8, 1, 2, 3, 4, 5);
  t.is(hex(out.subarray(32, 40)), "0000000000000000", "no shares: zeros");
});

test("decodePeerDatagram: decodes the fixed chunk vector", (t) => {
  const bytes = Buffer.from(CHUNK_VECTOR, "hex");
  t.deepEqual(decodePeerDatagram(bytes), {
    kind: "chunk",
    seq: 0x01020304,
    requestSeq: 0x05060708,
    token: 0x090a0b0c,
    fileId: 0x0d0e0f10,
    chunk: 0x11121314,
    data: Buffer.from("aabbcc", "hex"),
    datagram: bytes,
  });
  t.is(hex(bytes.subarray(RECEIPT_SHARE_OFFSET, RECEIPT_SHARE_OFFSET + 8)), "a1a2a3a4a5a6a7a8");
});

test("decodePeerDatagram: chunk round-trip for 1-byte and 512-byte chunks", (t) => {
  for (const length of [1, 2, 511, 512]) {
    const data = Buffer.alloc(length);
    for (let i = 0; i < length; i++) data[i] = (i * 13 + length) & 0xff;
    const wire = encodeChunk(4000000000, 17, 0xdeadbeef, 3, 99999, data);
    const decoded = decodePeerDatagram(wire);
    t.deepEqual(decoded, {
      datagram: wire,
      kind: "chunk",
      seq: 4000000000,
      requestSeq: 17,
      token: 0xdeadbeef,
      fileId: 3,
      chunk: 99999,
      data,
    });
  }
});

test("property: chunk datagrams round-trip", (t) => {
  checkProperty(
    t,
    fc.property(
      fc.record({
        seq: fc.nat({ max: 0xffffffff }),
        requestSeq: fc.nat({ max: 0xffffffff }),
        token: fc.nat({ max: 0xffffffff }),
        fileId: fc.nat({ max: 0xffffffff }),
        chunk: fc.nat({ max: 0xffffffff }),
        data: fc.uint8Array({ minLength: 1, maxLength: CHUNK_SIZE }),
      }),
      (c) => {
        const wire = encodeChunk(c.seq, c.requestSeq, c.token, c.fileId, c.chunk, c.data);
        assert.equal(wire.length, CHUNK_HEADER_BYTES + c.data.length);
        assert.deepEqual(decodePeerDatagram(wire), {
          ...c,
          kind: "chunk",
          data: Buffer.from(c.data),
          datagram: wire,
        });
      },
    ),
  );
});

test("property: ChunkHeader.read, the receive path's, agrees with decodePeerDatagram on any chunk-kind datagram", (t) => {
  const header = new ChunkHeader();
  checkProperty(
    t,
    fc.property(
      fc.record({
        version: fc.oneof(fc.constant(PROTOCOL_VERSION), fc.nat({ max: 255 })),
        length: fc.oneof(
          fc.nat({ max: CHUNK_HEADER_BYTES + 2 }),
          fc.integer({ min: CHUNK_HEADER_BYTES + CHUNK_SIZE - 1, max: CHUNK_HEADER_BYTES + CHUNK_SIZE + 1 }),
          fc.integer({ min: MAX_DATAGRAM_BYTES - 1, max: MAX_DATAGRAM_BYTES + 1 }),
          fc.nat({ max: MAX_DATAGRAM_BYTES + 100 }),
        ),
        seed: fc.nat({ max: 255 }),
      }),
      ({ version, length, seed }) => {
        const wire = Buffer.from(Array.from({ length: Math.max(1, length) }, (_, i) => (i * 31 + seed) & 0xff));
        wire[0] = KIND_CHUNK;
        if (wire.length > 1) wire[1] = version;
        const d = decodePeerDatagram(wire);
        const fault = header.read(wire);
        if (d.kind === "invalid") {
          assert.equal(fault, d.reason);
          return;
        }
        assert.equal(fault, undefined);
        assert.equal(d.kind, "chunk");
        if (d.kind !== "chunk") return;
        const { seq, requestSeq, token, fileId, chunk, dataLength } = header;
        assert.deepEqual(
          { seq, requestSeq, token, fileId, chunk, dataLength },
          {
            seq: d.seq,
            requestSeq: d.requestSeq,
            token: d.token,
            fileId: d.fileId,
            chunk: d.chunk,
            dataLength: d.data.length,
          },
        );
      },
    ),
  );
});

// ------------------------------------------------------------------ request datagrams

test("encodeRequest: fixed protobuf bytes after the kind byte", (t) => {
  // kind 01 | PeerMessage: version(1)=2, seq(2)=5, request(3)=LEN 9 {
  //   file_id(1)=7, first(2)=10, mask(3)=LEN 1 [0b101], token(4)=9 }
  const out = encodeRequest(5, 7, 10, [10, 12], 9);
  t.is(hex(out), "01" + "0804" + "1005" + "1a09" + "0807" + "100a" + "1a0105" + "2009");
});

test("encodeRequest: the mask is as long as the highest bit needs", (t) => {
  // chunks first+0 and first+9: mask [0x01, 0x02]
  const out = encodeRequest(1, 2, 100, [100, 109], 3);
  t.is(hex(out), "01" + "0804" + "1001" + "1a0a" + "0802" + "1064" + "1a020102" + "2003");
  // chunk first+63: an 8-byte mask with only bit 7 of byte 7 set
  const last = encodeRequest(1, 2, 0, [63], 3);
  t.is(hex(last), "01" + "0804" + "1001" + "1a0e" + "0802" + "1a080000000000000080" + "2003");
});

test("encodeRequest: refuses a chunk outside the 128-chunk span, and more than 64 chunks", (t) => {
  t.throws(() => encodeRequest(1, 1, 10, [9], 1), { instanceOf: RangeError });
  t.throws(() => encodeRequest(1, 1, 10, [10 + MAX_REQUEST_SPAN], 1), { instanceOf: RangeError });
  t.notThrows(() => encodeRequest(1, 1, 10, [10 + MAX_REQUEST_SPAN - 1], 1));
  const tooMany = Array.from({ length: MAX_CHUNKS_PER_REQUEST + 1 }, (_, i) => 10 + i);
  t.throws(() => encodeRequest(1, 1, 10, tooMany, 1), { instanceOf: RangeError });
});

test("decodePeerDatagram: a request may span a whole piece (16-byte mask) but name at most 64 chunks", (t) => {
  const spanning = decodePeerDatagram(encodeRequest(3, 1, 128, [128, 200, 255], 7));
  t.like(spanning, { kind: "request", first: 128, chunks: [128, 200, 255] });
  const all = Uint8Array.from({ length: 16 }, () => 0xff);
  t.like(decodePeerDatagram(message({ version: 4, seq: 1, request: { fileId: 1, mask: all, token: 1 } })), {
    kind: "invalid",
    reason: "range",
  });
});

test("decodePeerDatagram: decodes the fixed request vector", (t) => {
  const bytes = Buffer.from("01" + "0804" + "1005" + "1a09" + "0807" + "100a" + "1a0105" + "2009", "hex");
  t.deepEqual(decodePeerDatagram(bytes), {
    kind: "request",
    seq: 5,
    fileId: 7,
    first: 10,
    chunks: [10, 12],
    token: 9,
    auth: NO_AUTH,
    cookie: NO_AUTH,
  });
});

test("decodePeerDatagram: request round-trip, 64 chunks and large numbers", (t) => {
  const all = Array.from({ length: 64 }, (_, i) => 1000 + i);
  t.deepEqual(decodePeerDatagram(encodeRequest(0xffffffff, 0xfffffff0, 1000, all, 0xcafebabe)), {
    kind: "request",
    seq: 0xffffffff,
    fileId: 0xfffffff0,
    first: 1000,
    chunks: all,
    token: 0xcafebabe,
    auth: NO_AUTH,
    cookie: NO_AUTH,
  });
  // zero values are proto3 defaults, omitted on the wire: they still decode to 0
  t.deepEqual(decodePeerDatagram(encodeRequest(0, 0, 0, [0], 0)), {
    kind: "request",
    seq: 0,
    fileId: 0,
    first: 0,
    chunks: [0],
    token: 0,
    auth: NO_AUTH,
    cookie: NO_AUTH,
  });
});

test("property: request datagrams round-trip and fit in a datagram", (t) => {
  checkProperty(
    t,
    fc.property(
      fc.record({
        seq: fc.nat({ max: 0xffffffff }),
        fileId: fc.nat({ max: 0xffffffff }),
        first: fc.nat({ max: 0xffffffff - MAX_CHUNKS_PER_REQUEST }),
        bits: fc.uniqueArray(fc.nat({ max: MAX_CHUNKS_PER_REQUEST - 1 }), { minLength: 1, maxLength: 64 }),
        token: fc.nat({ max: 0xffffffff }),
        auth: fc.oneof(fc.constant(undefined), fc.uint8Array({ maxLength: AUTH_BYTES })),
      }),
      (r) => {
        const chunks = r.bits.map((b) => r.first + b);
        const wire = encodeRequest(r.seq, r.fileId, r.first, chunks, r.token, r.auth);
        assert.ok(wire.length <= MAX_DATAGRAM_BYTES);
        assert.equal(wire[0], KIND_MESSAGE);
        assert.deepEqual(decodePeerDatagram(wire), {
          kind: "request",
          seq: r.seq,
          fileId: r.fileId,
          first: r.first,
          chunks: [...chunks].sort((a, b) => a - b),
          token: r.token,
          auth: Buffer.from(r.auth ?? []),
          cookie: NO_AUTH,
        });
      },
    ),
  );
});

// ------------------------------------------------------------------ request authentication

test("encodeRequest: the auth is field 5 of ChunkRequest, after the token", (t) => {
  // kind 01 | PeerMessage: version(1)=2, seq(2)=5, request(3)=LEN 19 {
  //   file_id(1)=7, first(2)=10, mask(3)=LEN 1 [0b101], token(4)=9, auth(5)=LEN 8 [01..08] }
  const out = encodeRequest(5, 7, 10, [10, 12], 9, Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8));
  t.is(hex(out), "01" + "0804" + "1005" + "1a13" + "0807" + "100a" + "1a0105" + "2009" + "2a080102030405060708");
  // An empty auth is the proto3 default: not on the wire, the same bytes as no auth.
  t.is(hex(encodeRequest(5, 7, 10, [10, 12], 9, new Uint8Array(0))), hex(encodeRequest(5, 7, 10, [10, 12], 9)));
});

test("decodePeerDatagram: decodes the fixed authenticated request vector", (t) => {
  const bytes = Buffer.from(
    "01" + "0804" + "1005" + "1a13" + "0807" + "100a" + "1a0105" + "2009" + "2a080102030405060708",
    "hex",
  );
  t.deepEqual(decodePeerDatagram(bytes), {
    kind: "request",
    seq: 5,
    fileId: 7,
    first: 10,
    chunks: [10, 12],
    token: 9,
    auth: Buffer.from("0102030405060708", "hex"),
    cookie: NO_AUTH,
  });
});

test("request auth round-trip: the requestAuth of a secret arrives as sent", (t) => {
  const secret = Buffer.from("000102030405060708090a0b0c0d0e0f", "hex");
  const auth = requestAuth(secret, 2);
  const decoded = decodePeerDatagram(encodeRequest(0xfffffffe, 3, 64, [64, 100, 127], 0x01020304, auth));
  t.deepEqual(decoded, {
    kind: "request",
    seq: 0xfffffffe,
    fileId: 3,
    first: 64,
    chunks: [64, 100, 127],
    token: 0x01020304,
    auth: Buffer.from("330325658279c9e4", "hex"),
    cookie: NO_AUTH,
  });
  // An auth of another length is carried as is (the receiver compares it to what it expects).
  const long = Buffer.alloc(40, 0x5a);
  t.like(decodePeerDatagram(encodeRequest(1, 1, 0, [0], 1, long)), { kind: "request", auth: long });
});

/** requestAuth computed here from its definition, with node:crypto. */
function hmacAuth(secret: Uint8Array, toPeerId: number): Buffer {
  const id = Buffer.alloc(4);
  id.writeUInt32BE(toPeerId, 0);
  return createHmac("sha256", secret).update(id).digest().subarray(0, 8);
}

test("requestAuth: first 8 bytes of HMAC-SHA256(secret, receiver id as u32 big-endian)", (t) => {
  const secret = Buffer.from("000102030405060708090a0b0c0d0e0f", "hex");
  // Fixed vectors (computed with Python's hmac module).
  t.is(hex(requestAuth(secret, 1)), "ec6c7a112dcc9f8b");
  t.is(hex(requestAuth(secret, 2)), "330325658279c9e4");
  t.is(hex(requestAuth(secret, 0xffffffff)), "8451895da22a97fb");
  t.is(hex(requestAuth(Buffer.alloc(16, 0xff), 1)), "9d81a389f81de33d");
  for (const id of [0, 1, 2, 255, 256, 65536, 0x7fffffff, 0x80000000, 0xffffffff]) {
    const auth = requestAuth(secret, id);
    t.is(auth.length, AUTH_BYTES);
    t.is(hex(auth), hex(hmacAuth(secret, id)), `receiver ${id}`);
  }
});

test("requestAuth: differs per receiver id and per secret", (t) => {
  const a = Buffer.from("000102030405060708090a0b0c0d0e0f", "hex");
  const b = Buffer.from(a);
  b[15] = (b[15] ?? 0) ^ 1; // one bit of the secret
  const seen = new Set<string>();
  for (const secret of [a, b, Buffer.alloc(16), Buffer.alloc(16, 0xff)]) {
    for (const id of [1, 2, 3, 256, 0x01000000, 0xffffffff]) seen.add(hex(requestAuth(secret, id)));
  }
  t.is(seen.size, 4 * 6);
  t.not(hex(requestAuth(a, 1)), hex(requestAuth(a, 2)));
  t.not(hex(requestAuth(a, 1)), hex(requestAuth(b, 1)));
  // The same inputs always give the same proof.
  t.is(hex(requestAuth(Buffer.from(a), 7)), hex(requestAuth(a, 7)));
});

test("property: requestAuth matches its definition", (t) => {
  checkProperty(
    t,
    fc.property(
      fc.uint8Array({ minLength: SECRET_BYTES, maxLength: SECRET_BYTES }),
      fc.nat({ max: 0xffffffff }),
      (secret, id) => {
        assert.equal(hex(requestAuth(secret, id)), hex(hmacAuth(secret, id)));
      },
    ),
    { numRuns: 300 },
  );
});

// ------------------------------------------------------------------ hash request / reply datagrams

test("encodeHashRequest: fixed protobuf bytes after the kind byte", (t) => {
  // kind 01 | PeerMessage: version(1)=2, seq(2)=5, hash_request(4)=LEN 16 {
  //   file_id(1)=7, piece(2)=3, token(3)=9, auth(4)=LEN 8 [01..08] }
  const out = encodeHashRequest(5, 7, 3, 9, Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8));
  t.is(hex(out), "01" + "0804" + "1005" + "2210" + "0807" + "1003" + "1809" + "22080102030405060708");
  // Without auth, and with zero values (proto3 defaults, not on the wire): an empty body.
  t.is(hex(encodeHashRequest(5, 7, 3, 9)), "01" + "0804" + "1005" + "2206" + "0807" + "1003" + "1809");
  t.is(hex(encodeHashRequest(0, 0, 0, 0)), "01" + "0804" + "2200");
});

test("decodePeerDatagram: decodes the fixed hash request vectors", (t) => {
  t.deepEqual(
    decodePeerDatagram(
      Buffer.from("01" + "0804" + "1005" + "2210" + "0807" + "1003" + "1809" + "22080102030405060708", "hex"),
    ),
    {
      kind: "hash-request",
      seq: 5,
      fileId: 7,
      piece: 3,
      token: 9,
      auth: Buffer.from("0102030405060708", "hex"),
      cookie: NO_AUTH,
    },
  );
  t.deepEqual(decodePeerDatagram(Buffer.from("01" + "0804" + "2200", "hex")), {
    kind: "hash-request",
    seq: 0,
    fileId: 0,
    piece: 0,
    token: 0,
    auth: NO_AUTH,
    cookie: NO_AUTH,
  });
});

test("encodeHashReply: fixed protobuf bytes after the kind byte", (t) => {
  // kind 01 | PeerMessage: version(1)=2, seq(2)=5, hash_reply(5)=LEN 40 {
  //   file_id(1)=7, piece(2)=3, token(3)=9, hashes(4)=LEN 32 [ab x 32] }
  const out = encodeHashReply(5, 7, 3, 9, Buffer.alloc(32, 0xab));
  t.is(hex(out), "01" + "0804" + "1005" + "2a28" + "0807" + "1003" + "1809" + "2220" + "ab".repeat(32));
});

test("decodePeerDatagram: decodes the fixed hash reply vector", (t) => {
  const bytes = Buffer.from(
    "01" + "0804" + "1005" + "2a28" + "0807" + "1003" + "1809" + "2220" + "ab".repeat(32),
    "hex",
  );
  t.deepEqual(decodePeerDatagram(bytes), {
    kind: "hash-reply",
    seq: 5,
    fileId: 7,
    piece: 3,
    token: 9,
    hashes: Buffer.alloc(32, 0xab),
  });
});

test("address cookie and a request echoing it round-trip; an empty or 33-byte cookie is refused", (t) => {
  const cookie = Buffer.from("00112233445566778899aabbccddeeff", "hex");
  t.deepEqual(decodePeerDatagram(encodeCookie(-1, 0xfffffffe, 7, cookie)), {
    kind: "cookie",
    seq: 0xffffffff,
    requestSeq: 0xfffffffe,
    token: 7,
    cookie,
  });
  t.like(decodePeerDatagram(encodeRequest(1, 2, 0, [0], 3, NO_AUTH, cookie)), { kind: "request", cookie });
  t.like(decodePeerDatagram(encodeHashRequest(1, 2, 0, 3, NO_AUTH, cookie)), { kind: "hash-request", cookie });
  t.deepEqual(decodePeerDatagram(encodeCookie(1, 2, 3, NO_AUTH)), { kind: "invalid", reason: "range" });
  t.deepEqual(decodePeerDatagram(encodeCookie(1, 2, 3, Buffer.alloc(33))), { kind: "invalid", reason: "range" });
});

test("hash request and reply round-trip with 32-bit maxima and negative numbers as unsigned", (t) => {
  const auth = Buffer.from("fedcba9876543210", "hex");
  t.deepEqual(decodePeerDatagram(encodeHashRequest(-1, 0xffffffff, 0xfffffffe, -2, auth)), {
    kind: "hash-request",
    seq: 0xffffffff,
    fileId: 0xffffffff,
    piece: 0xfffffffe,
    token: 0xfffffffe,
    auth,
    cookie: NO_AUTH,
  });
  const hashes = Buffer.alloc(32 * BLOCKS_PER_PIECE);
  for (let i = 0; i < hashes.length; i++) hashes[i] = (i * 31 + 7) & 0xff;
  const wire = encodeHashReply(-1, 0xffffffff, 0xffffffff, -1, hashes);
  t.true(wire.length <= MAX_DATAGRAM_BYTES, `a full piece's hashes fit (${wire.length} bytes)`);
  t.deepEqual(decodePeerDatagram(wire), {
    kind: "hash-reply",
    seq: 0xffffffff,
    fileId: 0xffffffff,
    piece: 0xffffffff,
    token: 0xffffffff,
    hashes,
  });
});

test("property: hash request and reply datagrams round-trip and fit in a datagram", (t) => {
  checkProperty(
    t,
    fc.property(
      fc.record({
        seq: fc.nat({ max: 0xffffffff }),
        fileId: fc.nat({ max: 0xffffffff }),
        piece: fc.nat({ max: 0xffffffff }),
        token: fc.nat({ max: 0xffffffff }),
        auth: fc.uint8Array({ maxLength: AUTH_BYTES }),
        blocks: fc.integer({ min: 1, max: BLOCKS_PER_PIECE }),
        fill: fc.nat({ max: 255 }),
      }),
      (h) => {
        const request = encodeHashRequest(h.seq, h.fileId, h.piece, h.token, h.auth);
        assert.ok(request.length <= MAX_DATAGRAM_BYTES);
        assert.equal(request[0], KIND_MESSAGE);
        assert.deepEqual(decodePeerDatagram(request), {
          kind: "hash-request",
          seq: h.seq,
          fileId: h.fileId,
          piece: h.piece,
          token: h.token,
          auth: Buffer.from(h.auth),
          cookie: NO_AUTH,
        });
        const hashes = Buffer.alloc(32 * h.blocks);
        for (let i = 0; i < hashes.length; i++) hashes[i] = (h.fill + i * 13) & 0xff;
        const reply = encodeHashReply(h.seq, h.fileId, h.piece, h.token, hashes);
        assert.ok(reply.length <= MAX_DATAGRAM_BYTES);
        assert.equal(reply[0], KIND_MESSAGE);
        assert.deepEqual(decodePeerDatagram(reply), {
          kind: "hash-reply",
          seq: h.seq,
          fileId: h.fileId,
          piece: h.piece,
          token: h.token,
          hashes,
        });
      },
    ),
  );
});

// ------------------------------------------------------------------ invalid datagrams

function message(props: udpswarm.PeerMessage.$Properties): Buffer {
  return Buffer.concat([Uint8Array.of(KIND_MESSAGE), udpswarm.PeerMessage.encode(props).finish()]);
}

/** A valid request datagram of exactly `length` bytes (its auth pads it). */
function requestOfLength(length: number): Buffer {
  for (let pad = 0; pad < length; pad++) {
    const wire = encodeRequest(5, 7, 10, [10, 12], 9, Buffer.alloc(pad, 0x61));
    if (wire.length === length) return wire;
  }
  throw new Error(`no request of ${length} bytes`);
}

const INVALID: ReadonlyArray<readonly [string, Buffer, DropReason]> = [
  ["empty datagram", Buffer.alloc(0), "short"],
  ["one byte (chunk kind)", Buffer.of(KIND_CHUNK), "short"],
  ["one byte (message kind)", Buffer.of(KIND_MESSAGE), "short"],
  ["chunk header without data", encodeChunk(1, 2, 3, 4, 5, new Uint8Array(0)), "short"],
  ["chunk header cut at 23 bytes", encodeChunk(1, 2, 3, 4, 5, Uint8Array.of(1)).subarray(0, 23), "short"],
  ["1201 bytes of chunk", encodeChunk(1, 2, 3, 4, 5, new Uint8Array(1201 - 32)), "oversize"],
  ["1201 bytes of message kind", Buffer.concat([Buffer.of(KIND_MESSAGE), Buffer.alloc(1200)]), "oversize"],
  ["1201 bytes of unknown kind", Buffer.alloc(1201, 9), "oversize"],
  ["a valid request grown to 1201 bytes", requestOfLength(1201), "oversize"],
  ["chunk of 513 bytes", encodeChunk(1, 2, 3, 4, 5, new Uint8Array(CHUNK_SIZE + 1)), "oversize"],
  ["kind 0", Buffer.concat([Buffer.of(0), encodeChunk(1, 2, 3, 4, 5, Uint8Array.of(1)).subarray(1)]), "kind"],
  ["kind 3", Buffer.concat([Buffer.of(3), encodeChunk(1, 2, 3, 4, 5, Uint8Array.of(1)).subarray(1)]), "kind"],
  ["kind 255", Buffer.of(0xff, 0x01), "kind"],
  [
    "chunk version 0",
    Buffer.from("02000000000000010000000200000003000000040000000500000000000000007f", "hex"),
    "version",
  ],
  [
    "chunk version 3",
    Buffer.from("02030000000000010000000200000003000000040000000500000000000000007f", "hex"),
    "version",
  ],
  [
    "chunk version 2 (a peer from before receipts)",
    Buffer.from("02020000000000010000000200000003000000040000000500000000000000007f", "hex"),
    "version",
  ],
  [
    "request version 3",
    message({ version: 3, seq: 1, request: { fileId: 1, first: 0, mask: Uint8Array.of(1), token: 1 } }),
    "version",
  ],
  [
    "request without version",
    message({ seq: 1, request: { fileId: 1, first: 0, mask: Uint8Array.of(1), token: 1 } }),
    "version",
  ],
  ["message without a body", message({ version: 4, seq: 3 }), "malformed"],
  // field 7 (LEN, empty) is no body this version knows: skipped, so no body at all
  ["message with only an unknown body", Buffer.from("01" + "0804" + "1003" + "3a00", "hex"), "malformed"],
  ["message of garbage", Buffer.of(KIND_MESSAGE, 0xff), "malformed"],
  ["message with a truncated field", Buffer.from("01080410051a09080710", "hex"), "malformed"],
  ["request with empty mask", message({ version: 4, seq: 1, request: { fileId: 1, first: 0, token: 1 } }), "range"],
  [
    "request with all-zero mask",
    message({ version: 4, seq: 1, request: { fileId: 1, mask: Uint8Array.of(0, 0), token: 1 } }),
    "range",
  ],
  [
    "request with a 17-byte mask",
    message({
      version: 4,
      seq: 1,
      request: { fileId: 1, mask: Uint8Array.of(1, ...new Array<number>(16).fill(0)), token: 1 },
    }),
    "range",
  ],
  [
    "hash request version 3",
    message({ version: 3, seq: 1, hashRequest: { fileId: 1, piece: 0, token: 1 } }),
    "version",
  ],
  [
    "hash reply without version",
    message({ seq: 1, hashReply: { fileId: 1, piece: 0, token: 1, hashes: new Uint8Array(32) } }),
    "version",
  ],
  ["hash reply without hashes", message({ version: 4, seq: 1, hashReply: { fileId: 1, piece: 2, token: 1 } }), "range"],
  ["hash reply with no hashes (encodeHashReply)", encodeHashReply(1, 1, 2, 1, new Uint8Array(0)), "range"],
  ["hash reply of 1 byte", encodeHashReply(1, 1, 2, 1, new Uint8Array(1)), "range"],
  ["hash reply of 31 bytes", encodeHashReply(1, 1, 2, 1, new Uint8Array(31)), "range"],
  ["hash reply of 33 bytes", encodeHashReply(1, 1, 2, 1, new Uint8Array(33)), "range"],
  ["hash reply of 16 bytes", encodeHashReply(1, 1, 2, 1, new Uint8Array(16)), "range"],
  ["hash reply of 48 bytes", encodeHashReply(1, 1, 2, 1, new Uint8Array(48)), "range"],
  ["hash reply of 32 * 32 + 1 bytes", encodeHashReply(1, 1, 2, 1, new Uint8Array(32 * 32 + 1)), "range"],
  [
    "hash reply with its hashes cut short",
    encodeHashReply(1, 1, 2, 1, new Uint8Array(64)).subarray(0, 1 + 2 + 2 + 2 + 6 + 2 + 40),
    "malformed",
  ],
  [
    "hash request with its auth cut short",
    encodeHashRequest(5, 7, 3, 9, new Uint8Array(8)).subarray(0, 20),
    "malformed",
  ],
];

for (const [name, bytes, reason] of INVALID) {
  test(`decodePeerDatagram: ${name} is invalid with reason "${reason}"`, (t) => {
    t.deepEqual(decodePeerDatagram(bytes), { kind: "invalid", reason });
  });
}

test("decodePeerDatagram: the largest valid chunk datagram (24 + 512) is accepted", (t) => {
  const decoded = decodePeerDatagram(encodeChunk(1, 2, 3, 4, 5, new Uint8Array(CHUNK_SIZE)));
  t.is(decoded.kind, "chunk");
});

test("decodePeerDatagram: a valid message of exactly 1200 bytes is accepted", (t) => {
  const wire = requestOfLength(1200);
  t.is(wire.length, MAX_DATAGRAM_BYTES);
  t.like(decodePeerDatagram(wire), { kind: "request", seq: 5, fileId: 7, chunks: [10, 12], token: 9 });
});

// ------------------------------------------------------------------ fuzzing

const REASONS: ReadonlySet<string> = new Set<DropReason>([
  "short",
  "oversize",
  "kind",
  "version",
  "malformed",
  "range",
]);

/** Decodes and checks the result is well-formed; any throw fails the property. */
function decodeChecked(bytes: Buffer): ReturnType<typeof decodePeerDatagram> {
  const result = decodePeerDatagram(bytes);
  switch (result.kind) {
    case "invalid":
      assert.ok(REASONS.has(result.reason), `unknown reason ${result.reason}`);
      break;
    case "chunk":
      assert.equal(bytes[0], KIND_CHUNK);
      assert.ok(result.data.length >= 1 && result.data.length <= CHUNK_SIZE);
      break;
    case "request":
      assert.equal(bytes[0], KIND_MESSAGE);
      assert.ok(result.chunks.length >= 1 && result.chunks.length <= MAX_CHUNKS_PER_REQUEST);
      for (const c of result.chunks) assert.ok(c >= result.first && c < result.first + MAX_CHUNKS_PER_REQUEST);
      assert.ok(result.auth instanceof Uint8Array);
      break;
    case "hash-request":
      assert.equal(bytes[0], KIND_MESSAGE);
      assert.ok(result.auth instanceof Uint8Array);
      break;
    case "hash-reply":
      assert.equal(bytes[0], KIND_MESSAGE);
      assert.ok(result.hashes.length >= 32 && result.hashes.length % 32 === 0);
      break;
    default:
      assert.fail(`unknown kind ${JSON.stringify(result)}`);
  }
  return result;
}

test("property: random bytes never throw", (t) => {
  checkProperty(
    t,
    fc.property(fc.uint8Array({ maxLength: MAX_DATAGRAM_BYTES + 40 }), (bytes) => {
      decodeChecked(Buffer.from(bytes));
    }),
    { numRuns: 1000 },
  );
});

test("property: random bytes after each kind byte never throw", (t) => {
  checkProperty(
    t,
    fc.property(fc.constantFrom(KIND_MESSAGE, KIND_CHUNK), fc.uint8Array({ maxLength: 600 }), (kind: number, rest) => {
      const bytes = Buffer.concat([Uint8Array.of(kind), rest]);
      const result = decodeChecked(bytes);
      if (bytes.length < 2) assert.deepEqual(result, { kind: "invalid", reason: "short" });
    }),
    { numRuns: 1000 },
  );
});

const arbDatagram: fc.Arbitrary<Buffer> = fc.oneof(
  fc
    .record({
      seq: fc.nat({ max: 0xffffffff }),
      token: fc.nat({ max: 0xffffffff }),
      chunk: fc.nat({ max: 0xffffffff }),
      data: fc.uint8Array({ minLength: 1, maxLength: CHUNK_SIZE }),
    })
    .map((c) => encodeChunk(c.seq, 7, c.token, 1, c.chunk, c.data)),
  fc
    .record({
      seq: fc.nat({ max: 0xffffffff }),
      first: fc.nat({ max: 1_000_000 }),
      bits: fc.uniqueArray(fc.nat({ max: 63 }), { minLength: 1, maxLength: 64 }),
      token: fc.nat({ max: 0xffffffff }),
      auth: fc.uint8Array({ maxLength: AUTH_BYTES }),
    })
    .map((r) =>
      encodeRequest(
        r.seq,
        2,
        r.first,
        r.bits.map((b) => r.first + b),
        r.token,
        r.auth,
      ),
    ),
  fc
    .record({
      seq: fc.nat({ max: 0xffffffff }),
      piece: fc.nat({ max: 1_000_000 }),
      token: fc.nat({ max: 0xffffffff }),
      auth: fc.uint8Array({ maxLength: AUTH_BYTES }),
    })
    .map((h) => encodeHashRequest(h.seq, 2, h.piece, h.token, h.auth)),
  fc
    .record({
      seq: fc.nat({ max: 0xffffffff }),
      piece: fc.nat({ max: 1_000_000 }),
      token: fc.nat({ max: 0xffffffff }),
      blocks: fc.integer({ min: 1, max: BLOCKS_PER_PIECE }),
    })
    .map((h) => encodeHashReply(h.seq, 2, h.piece, h.token, Buffer.alloc(32 * h.blocks, h.piece & 0xff))),
);

test("property: truncations of valid datagrams never throw", (t) => {
  checkProperty(
    t,
    fc.property(arbDatagram, fc.nat(), (wire, rawCut) => {
      const cut = rawCut % wire.length;
      const result = decodeChecked(Buffer.from(wire.subarray(0, cut)));
      if (cut < 2) assert.deepEqual(result, { kind: "invalid", reason: "short" });
      else if (wire[0] === KIND_CHUNK) {
        // A truncated chunk is either too short, or a shorter chunk with the same header.
        if (cut < CHUNK_DATA_OFFSET + 1) assert.deepEqual(result, { kind: "invalid", reason: "short" });
        else {
          assert.equal(result.kind, "chunk");
          assert.equal((result as Extract<PeerDatagram, { kind: "chunk" }>).data.length, cut - CHUNK_DATA_OFFSET);
        }
      } else {
        // The body (request, hash request or reply) is the last field of PeerMessage: any
        // cut leaves it missing or cut short.
        assert.deepEqual(result, { kind: "invalid", reason: "malformed" });
      }
    }),
    { numRuns: 1000 },
  );
});

test("property: bit flips of valid datagrams never throw, and a flipped chunk header is caught or read as written", (t) => {
  checkProperty(
    t,
    fc.property(
      arbDatagram,
      fc.array(fc.tuple(fc.nat(), fc.nat({ max: 7 })), { minLength: 1, maxLength: 4 }),
      (wire, flips) => {
        const bytes = Buffer.from(wire);
        for (const [pos, bit] of flips) {
          const i = pos % bytes.length;
          bytes[i] = (bytes[i] ?? 0) ^ (1 << bit);
        }
        const result = decodeChecked(bytes);
        const kindIsKnown = bytes[0] === KIND_CHUNK || bytes[0] === KIND_MESSAGE;
        if (!kindIsKnown) assert.deepEqual(result, { kind: "invalid", reason: "kind" });
        else if (wire[0] === KIND_CHUNK && bytes[0] === KIND_CHUNK) {
          if (bytes[1] !== PROTOCOL_VERSION) assert.deepEqual(result, { kind: "invalid", reason: "version" });
          else
            assert.deepEqual(result, {
              kind: "chunk",
              seq: bytes.readUInt32BE(4),
              requestSeq: bytes.readUInt32BE(8),
              token: bytes.readUInt32BE(12),
              fileId: bytes.readUInt32BE(16),
              chunk: bytes.readUInt32BE(20),
              data: bytes.subarray(CHUNK_DATA_OFFSET),
              datagram: bytes,
            });
        }
      },
    ),
    { numRuns: 1000 },
  );
});
