import assert from "node:assert/strict";
import test, { type ExecutionContext } from "ava";
import fc from "fast-check";
import $protobuf from "protobufjs/minimal.js";
import { SwarmError } from "../../src/util/errors.js";
import { encodeFrame, FrameDecoder } from "../../src/wire/framing.js";
import { MAX_FRAME_BYTES } from "../../src/wire/limits.js";
import { checkProperty } from "../helpers/property.js";

/** A body of `n` bytes whose content depends on `salt`, so frames cannot be confused. */
function body(n: number, salt = 0): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + salt * 7 + 1) & 0xff;
  return b;
}

const PREFIX_VECTORS: ReadonlyArray<readonly [number, readonly number[]]> = [
  [0, [0x00]],
  [1, [0x01]],
  [127, [0x7f]],
  [128, [0x80, 0x01]],
  [300, [0xac, 0x02]],
  [16384, [0x80, 0x80, 0x01]],
];

for (const [length, prefix] of PREFIX_VECTORS) {
  test(`encodeFrame: ${length}-byte body gets prefix ${Buffer.from(prefix).toString("hex")}`, (t) => {
    const b = body(length, length);
    const frame = encodeFrame(b);
    t.is(frame.length, prefix.length + length);
    t.deepEqual([...frame.subarray(0, prefix.length)], [...prefix]);
    t.true(frame.subarray(prefix.length).equals(b));
  });

  test(`FrameDecoder: decodes the fixed ${length}-byte vector`, (t) => {
    const b = body(length, length);
    const decoder = new FrameDecoder(MAX_FRAME_BYTES);
    const frames = decoder.push(Buffer.concat([Buffer.from(prefix), b]));
    t.is(frames.length, 1);
    t.true(frames[0]?.equals(b));
    t.is(decoder.bufferedBytes, 0);
  });

  test(`encodeFrame: ${length}-byte body matches protobufjs length-delimited bytes`, (t) => {
    const b = body(length, length);
    const reference = $protobuf.Writer.create().bytes(b).finish();
    t.true(encodeFrame(b).equals(Buffer.from(reference)));
  });
}

test("encodeFrame: a 2 MiB body gets the 4-byte prefix 80 80 80 01", (t) => {
  const frame = encodeFrame(Buffer.alloc(2 ** 21, 0x5a));
  t.is(frame.length, 4 + 2 ** 21);
  t.deepEqual([...frame.subarray(0, 5)], [0x80, 0x80, 0x80, 0x01, 0x5a]);
});

test("FrameDecoder: reads the 5-byte prefix 80 80 80 80 01 as 2^28", (t) => {
  const decoder = new FrameDecoder(2 ** 28);
  t.deepEqual(decoder.push(Uint8Array.of(0x80, 0x80, 0x80, 0x80, 0x01)), []);
  t.is(decoder.bufferedBytes, 0); // the header was consumed: a length of 2^28 is within the limit
  const tooSmall = new FrameDecoder(2 ** 28 - 1);
  t.throws(() => tooSmall.push(Uint8Array.of(0x80, 0x80, 0x80, 0x80, 0x01)), { code: "ERR_FRAME_TOO_LARGE" });
});

const STREAM_BODIES = [body(0, 1), body(1, 2), body(127, 3), body(128, 4), body(300, 5), body(5, 6), body(0, 7)];
const STREAM = Buffer.concat(STREAM_BODIES.map((b) => encodeFrame(b)));

function assertFrames(t: ExecutionContext, got: Buffer[], note = ""): void {
  t.is(got.length, STREAM_BODIES.length, note);
  STREAM_BODIES.forEach((expected, i) => {
    t.true(got[i]?.equals(expected), `${note} frame ${i}`);
  });
}

test("FrameDecoder: the whole stream in one push", (t) => {
  const decoder = new FrameDecoder(MAX_FRAME_BYTES);
  assertFrames(t, decoder.push(STREAM));
  t.is(decoder.bufferedBytes, 0);
});

test("FrameDecoder: a stream of several frames split at every byte offset", (t) => {
  t.is(STREAM.length, 1 + 1 + 1 + 1 + 127 + 2 + 128 + 2 + 300 + 1 + 5 + 1);
  for (let cut = 0; cut <= STREAM.length; cut++) {
    const decoder = new FrameDecoder(MAX_FRAME_BYTES);
    // Copies, not views of STREAM: each push really is a separate buffer.
    const first = decoder.push(Buffer.from(STREAM.subarray(0, cut)));
    const second = decoder.push(Buffer.from(STREAM.subarray(cut)));
    assertFrames(t, [...first, ...second], `cut at ${cut}`);
    t.is(decoder.bufferedBytes, 0, `cut at ${cut}`);
  }
});

test("FrameDecoder: a stream split at every pair of offsets", (t) => {
  let checked = 0;
  for (let a = 0; a <= STREAM.length; a += 3) {
    for (let b = a; b <= STREAM.length; b += 7) {
      const decoder = new FrameDecoder(MAX_FRAME_BYTES);
      const got = [
        ...decoder.push(Buffer.from(STREAM.subarray(0, a))),
        ...decoder.push(Buffer.from(STREAM.subarray(a, b))),
        ...decoder.push(Buffer.from(STREAM.subarray(b))),
      ];
      assert.equal(got.length, STREAM_BODIES.length, `cuts ${a},${b}`);
      got.forEach((f, i) => {
        assert.ok(f.equals(STREAM_BODIES[i] ?? Buffer.alloc(0)), `cuts ${a},${b} frame ${i}`);
      });
      checked++;
    }
  }
  t.true(checked > 1000);
});

test("FrameDecoder: one byte at a time yields each frame exactly when its last byte arrives", (t) => {
  // Offsets (exclusive ends) where each frame completes.
  const ends: number[] = [];
  let offset = 0;
  for (const b of STREAM_BODIES) {
    offset += encodeFrame(b).length;
    ends.push(offset);
  }
  const decoder = new FrameDecoder(MAX_FRAME_BYTES);
  const got: Buffer[] = [];
  const emittedAt: number[] = [];
  for (let i = 0; i < STREAM.length; i++) {
    const frames = decoder.push(Uint8Array.of(STREAM[i] ?? 0));
    for (const f of frames) {
      got.push(f);
      emittedAt.push(i + 1);
    }
  }
  assertFrames(t, got);
  t.deepEqual(emittedAt, ends);
  t.is(decoder.bufferedBytes, 0);
});

test("FrameDecoder: bufferedBytes counts body bytes held back", (t) => {
  const decoder = new FrameDecoder(MAX_FRAME_BYTES);
  const frame = encodeFrame(body(300));
  t.deepEqual(decoder.push(frame.subarray(0, 1)), []);
  t.is(decoder.bufferedBytes, 1); // half a header stays buffered
  t.deepEqual(decoder.push(frame.subarray(1, 102)), []);
  t.is(decoder.bufferedBytes, 100); // header consumed, 100 body bytes held
  const frames = decoder.push(frame.subarray(102));
  t.is(frames.length, 1);
  t.is(decoder.bufferedBytes, 0);
});

test("FrameDecoder: accepts a Uint8Array view with a non-zero byteOffset", (t) => {
  const frame = encodeFrame(body(10, 9));
  const backing = new Uint8Array(frame.length + 20).fill(0xee);
  backing.set(frame, 7);
  const view = backing.subarray(7, 7 + frame.length);
  const decoder = new FrameDecoder(MAX_FRAME_BYTES);
  const frames = decoder.push(view);
  t.is(frames.length, 1);
  t.true(frames[0]?.equals(body(10, 9)));
});

test("FrameDecoder: an empty push returns nothing", (t) => {
  const decoder = new FrameDecoder(MAX_FRAME_BYTES);
  t.deepEqual(decoder.push(new Uint8Array(0)), []);
  t.is(decoder.bufferedBytes, 0);
});

test("FrameDecoder: a frame of exactly the limit is accepted", (t) => {
  const decoder = new FrameDecoder(1000);
  const frames = decoder.push(encodeFrame(body(1000)));
  t.is(frames.length, 1);
  t.is(frames[0]?.length, 1000);
});

test("FrameDecoder: an oversize length is rejected with ERR_FRAME_TOO_LARGE before the body arrives", (t) => {
  const decoder = new FrameDecoder(1000);
  // 1001 = 0xe9 0x07; no body byte is ever pushed.
  const err = t.throws(() => decoder.push(Uint8Array.of(0xe9, 0x07)), {
    instanceOf: SwarmError,
    code: "ERR_FRAME_TOO_LARGE",
  });
  t.regex(err?.message ?? "", /1001/);
});

test("FrameDecoder: an oversize length split across pushes is rejected when its last byte arrives", (t) => {
  const decoder = new FrameDecoder(1000);
  t.deepEqual(decoder.push(Uint8Array.of(0xe9)), []);
  t.throws(() => decoder.push(Uint8Array.of(0x07)), { instanceOf: SwarmError, code: "ERR_FRAME_TOO_LARGE" });
});

test("FrameDecoder: a huge 5-byte length is rejected with ERR_FRAME_TOO_LARGE", (t) => {
  const decoder = new FrameDecoder(MAX_FRAME_BYTES);
  // 0xffffffff
  t.throws(() => decoder.push(Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0x0f)), {
    instanceOf: SwarmError,
    code: "ERR_FRAME_TOO_LARGE",
  });
});

test("FrameDecoder: an oversize frame after a good one still yields nothing past the good one", (t) => {
  const decoder = new FrameDecoder(1000);
  const good = encodeFrame(body(3));
  t.deepEqual(decoder.push(good), [body(3)]);
  t.throws(() => decoder.push(encodeFrame(body(1001))), { code: "ERR_FRAME_TOO_LARGE" });
});

test("FrameDecoder: a 6-byte varint length is rejected with ERR_BAD_MESSAGE", (t) => {
  const decoder = new FrameDecoder(MAX_FRAME_BYTES);
  t.throws(() => decoder.push(Uint8Array.of(0x80, 0x80, 0x80, 0x80, 0x80, 0x00)), {
    instanceOf: SwarmError,
    code: "ERR_BAD_MESSAGE",
  });
});

test("FrameDecoder: a 6-byte varint fed one byte at a time is rejected at its fifth continuation byte", (t) => {
  const decoder = new FrameDecoder(MAX_FRAME_BYTES);
  for (let i = 0; i < 4; i++) t.deepEqual(decoder.push(Uint8Array.of(0x80)), []);
  t.throws(() => decoder.push(Uint8Array.of(0x80)), { instanceOf: SwarmError, code: "ERR_BAD_MESSAGE" });
});

test("property: random frames, concatenated and split at random points, round-trip", (t) => {
  checkProperty(
    t,
    fc.property(
      fc.array(fc.uint8Array({ maxLength: 700 }), { maxLength: 12 }),
      fc.array(fc.nat(), { maxLength: 16 }),
      (bodies, rawCuts) => {
        const stream = Buffer.concat(bodies.map((b) => encodeFrame(b)));
        const cuts = [...new Set(rawCuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b);
        const decoder = new FrameDecoder(MAX_FRAME_BYTES);
        const got: Buffer[] = [];
        let from = 0;
        for (const cut of [...cuts, stream.length]) {
          got.push(...decoder.push(Buffer.from(stream.subarray(from, cut))));
          from = cut;
        }
        assert.equal(got.length, bodies.length);
        got.forEach((f, i) => {
          assert.deepEqual([...f], [...(bodies[i] ?? [])]);
        });
        assert.equal(decoder.bufferedBytes, 0);
      },
    ),
    { numRuns: 300 },
  );
});
