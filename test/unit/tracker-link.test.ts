import test from "ava";
import { ManualClock } from "../../src/util/clock.js";
import { encodeFrame, FrameDecoder } from "../../src/wire/framing.js";
import {
  decodeTrackerFrame,
  encodeTrackerFrame,
  TRACKER_PROTOCOL_VERSION,
  type TrackerFrame,
  udpswarm,
} from "../../src/wire/tracker-frame.js";
import { FramedLink, type LinkFailure } from "../../src/wire/tracker-link.js";

/** A link on a manual clock that records everything it does. */
function harness(options: { maxFrameBytes?: number; pingIntervalMs?: number; idleTimeoutMs?: number } = {}) {
  const clock = new ManualClock();
  const written: TrackerFrame[] = [];
  const frames: TrackerFrame[] = [];
  const bad: string[] = [];
  const failures: LinkFailure[] = [];
  const out = new FrameDecoder(1 << 20);
  const link = new FramedLink(
    clock,
    {
      write: (bytes) => {
        for (const body of out.push(bytes)) {
          const d = decodeTrackerFrame(body);
          if (d.ok) written.push(d.frame);
        }
      },
      frame: (f) => frames.push(f),
      badFrame: (r) => bad.push(r),
      failed: (f) => failures.push(f),
    },
    { maxFrameBytes: options.maxFrameBytes ?? 1 << 20, ...options },
  );
  return { clock, link, written, frames, bad, failures };
}

test("link: frames split at every offset arrive whole and in order; pings are answered, pongs swallowed", (t) => {
  const stream = Buffer.concat([
    encodeTrackerFrame({ readyToLeave: {} }),
    encodeTrackerFrame({ ping: { nonce: 42 } }),
    encodeTrackerFrame({ pong: { nonce: 7 } }),
    encodeTrackerFrame({ have: { fileId: 3, runs: [0, 2] } }),
  ]);
  for (let cut = 0; cut <= stream.length; cut++) {
    const h = harness();
    h.link.receive(stream.subarray(0, cut));
    h.link.receive(stream.subarray(cut));
    t.deepEqual(
      h.frames.map((f) => f.body),
      ["readyToLeave", "have"],
      `cut at ${cut}`,
    );
    t.deepEqual(
      h.written.map((f) => [f.body, Number(f.pong?.nonce ?? -1)]),
      [["pong", 42]],
      `cut at ${cut}`,
    );
  }
});

test("link: a ping every interval; silence beyond the idle timeout fails once, as silence", (t) => {
  const h = harness({ pingIntervalMs: 2000, idleTimeoutMs: 10_000 });
  h.clock.advance(6000);
  t.deepEqual(
    h.written.map((f) => [f.body, Number(f.ping?.nonce)]),
    [
      ["ping", 1],
      ["ping", 2],
      ["ping", 3],
    ],
  );
  h.link.receive(encodeTrackerFrame({ readyToLeave: {} })); // heard at 6000 (no round trip seen)
  h.clock.advance(10_000); // 16000: silent exactly 10 s, not more
  t.deepEqual(h.failures, []);
  h.clock.advance(2000);
  t.deepEqual(h.failures, [{ kind: "silence", silentMs: 12_000 }]);
  t.true(h.link.closed);
  h.clock.advance(60_000);
  t.is(h.failures.length, 1, "reported once");
  t.is(h.clock.pendingTimers, 0, "no timer left");
});

test("link: another version fails as version; a bad frame is counted and the link goes on", (t) => {
  const h = harness();
  h.link.receive(encodeFrame(Buffer.from([0xff, 0xff, 0xff])));
  h.link.receive(encodeFrame(udpswarm.TrackerFrame.encode({ version: TRACKER_PROTOCOL_VERSION }).finish()));
  t.deepEqual(h.bad, ["malformed", "empty"]);
  h.link.receive(encodeTrackerFrame({ goodbye: {} }));
  t.deepEqual(
    h.frames.map((f) => f.body),
    ["goodbye"],
  );
  h.link.receive(encodeFrame(udpswarm.TrackerFrame.encode({ version: 9, goodbye: {} }).finish()));
  t.deepEqual(h.failures, [{ kind: "version", version: 9 }]);
  h.link.receive(encodeTrackerFrame({ goodbye: {} }));
  t.is(h.frames.length, 1, "nothing passed on after the failure");
});

test("link: a length above the limit fails as framing before the body arrives; the limit can change", (t) => {
  const h = harness({ maxFrameBytes: 100 });
  h.link.receive(Buffer.from([101]));
  t.is(h.failures[0]?.kind, "framing");
  t.is(h.failures[0]?.kind === "framing" ? h.failures[0].error.code : "", "ERR_FRAME_TOO_LARGE");
  const g = harness({ maxFrameBytes: 100 });
  g.link.maxFrameBytes = 200;
  g.link.receive(Buffer.from([120]));
  t.deepEqual(g.failures, []);
  t.is(g.link.bufferedBytes, 0);
});

test("link: close stops the keepalives and is safe twice", (t) => {
  const h = harness();
  h.link.close();
  h.link.close();
  h.clock.advance(60_000);
  t.deepEqual(h.written, []);
  t.deepEqual(h.failures, []);
  h.link.send({ goodbye: {} });
  t.deepEqual(h.written, []);
});
