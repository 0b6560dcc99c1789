/**
 * The peer's end of the tracker link as it connects, against small TCP servers on
 * loopback: it speaks first (so a lost last packet of the handshake costs no second),
 * races connection attempts while none is established, and stops at once on a refusal.
 */
import net from "node:net";
import test from "ava";
import { TrackerClient } from "../../src/peer/tracker-client.js";
import { RealClock } from "../../src/util/clock.js";
import { FrameDecoder } from "../../src/wire/framing.js";
import { decodeTrackerFrame, encodeTrackerFrame, type TrackerFrame } from "../../src/wire/tracker-frame.js";

const HANDLERS = { frame: () => {}, lost: () => {} };

/** A server on loopback; `onConnection` gets each accepted socket. Closed at the test's end. */
async function serve(
  t: { teardown(fn: () => void): void },
  onConnection: (socket: net.Socket) => void,
): Promise<number> {
  const sockets: net.Socket[] = [];
  const server = net.createServer((socket) => {
    sockets.push(socket);
    socket.on("error", () => {});
    onConnection(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  const address = server.address();
  return typeof address === "object" && address !== null ? address.port : 0;
}

/** The frames `socket` receives, decoded, as they come. */
function framesOf(socket: net.Socket, onFrame: (frame: TrackerFrame) => void): void {
  const decoder = new FrameDecoder(1 << 20);
  socket.on("data", (bytes: Buffer) => {
    for (const body of decoder.push(bytes)) {
      const d = decodeTrackerFrame(body);
      if (d.ok) onFrame(d.frame);
    }
  });
}

test("tracker client: its first bytes are a keepalive, before the tracker has said anything", async (t) => {
  const heard: string[] = [];
  // A tracker that speaks only once spoken to: the client connects only if it speaks first.
  const port = await serve(t, (socket) =>
    framesOf(socket, (frame) => {
      heard.push(frame.body ?? "");
      if (frame.body === "ping") socket.write(encodeTrackerFrame({ pong: { nonce: frame.ping?.nonce ?? 0 } }));
    }),
  );
  const client = await TrackerClient.connect("127.0.0.1", port, new RealClock(), HANDLERS, {
    greetingTimeoutMs: 5000,
  });
  client.close();
  t.deepEqual(heard, ["ping"]);
});

test("tracker client: while no attempt connects, more start, and the first to connect wins", async (t) => {
  let accepted = 0;
  const port = await serve(t, (socket) => {
    accepted++;
    socket.write(encodeTrackerFrame({ ping: { nonce: 1 } }));
  });
  // The first two attempts never connect (their SYNs lost for good); the third goes through.
  const hanging: net.Socket[] = [];
  let attempts = 0;
  const client = await TrackerClient.connect("127.0.0.1", port, new RealClock(), HANDLERS, {
    connectAttempt: (host, p) => {
      attempts++;
      if (attempts <= 2) {
        const socket = new net.Socket();
        hanging.push(socket);
        return socket;
      }
      return net.connect({ host, port: p, family: 4 });
    },
  });
  client.close();
  t.is(attempts, 3, "a new attempt only while none has connected");
  t.is(accepted, 1);
  t.true(
    hanging.every((s) => s.destroyed),
    "the attempts that lost the race are given up",
  );
});

test("tracker client: a refusal ends every attempt at once", async (t) => {
  // A port nothing listens on any more: the first attempt is refused.
  const closed = net.createServer();
  await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", () => resolve()));
  const address = closed.address();
  const refusedPort = typeof address === "object" && address !== null ? address.port : 0;
  await new Promise<void>((resolve) => closed.close(() => resolve()));
  let attempts = 0;
  const error = await t.throwsAsync(
    TrackerClient.connect("127.0.0.1", refusedPort, new RealClock(), HANDLERS, {
      connectAttempt: (host, p) => {
        attempts++;
        return net.connect({ host, port: p, family: 4 });
      },
    }),
  );
  t.regex(error?.message ?? "", /^cannot reach the tracker at 127\.0\.0\.1:\d+: connect ECONNREFUSED/u);
  t.is(attempts, 1);
});
