/**
 * The tracker's TCP shell on loopback with short timeouts (real clock): what a client that
 * never says Hello can and cannot do.
 */
import net from "node:net";
import test from "ava";
import { TrackerServer } from "../../src/tracker/server.js";
import { StdoutWriter } from "../../src/tracker/stdout-writer.js";
import { RealClock } from "../../src/util/clock.js";

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: "127.0.0.1", port });
    socket.once("error", reject);
    socket.once("connect", () => resolve(socket));
  });
}

test("a client that trickles a byte every 100 ms and never says Hello is dropped at the Hello deadline", async (t) => {
  const logs: string[] = [];
  const server = new TrackerServer(
    new RealClock(),
    { maxFileSize: 1 << 30, pingIntervalMs: 100, idleTimeoutMs: 400, helloTimeoutMs: 400 },
    new StdoutWriter({ write: (_bytes, done) => done(null), writeSync: () => {} }),
    (line) => logs.push(line),
  );
  t.teardown(() => server.close());
  const port = await server.listen(0, "127.0.0.1");
  const socket = await connect(port);
  t.teardown(() => socket.destroy());
  const started = performance.now();
  // The length prefix of a 1000-byte frame, then its body one byte at a time: the frame is
  // never whole, and every byte comes well within the idle timeout.
  socket.write(Buffer.from([0xe8, 0x07]));
  const trickle = setInterval(() => socket.write(Buffer.from([0x00])), 100);
  t.teardown(() => clearInterval(trickle));
  socket.on("error", () => {});
  const closed = await new Promise<boolean>((resolve) => {
    const bound = setTimeout(() => resolve(false), 5000);
    socket.once("close", () => {
      clearTimeout(bound);
      resolve(true);
    });
  });
  clearInterval(trickle);
  const ms = Math.round(performance.now() - started);
  t.log(`closed: ${closed} after ${ms} ms; tracker said ${JSON.stringify(logs)}`);
  t.true(closed, "the tracker must drop a client that never says Hello, however it trickles");
  t.true(ms >= 350, `not before the deadline (${ms} ms)`);
});
