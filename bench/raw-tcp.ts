/**
 * The TCP stream ceiling: one Node process writes 64 KiB buffers into a loopback TCP
 * connection as fast as the connection takes them (respecting backpressure), another
 * reads and counts, for a fixed duration. The kernel does segmentation, retransmission
 * and flow control: what a byte stream between two Node processes reaches here.
 *
 * As a child process: `node raw-tcp.js receive` (prints `port N`, then one JSON line at
 * the end of the stream) and `node raw-tcp.js send PORT SECONDS`.
 */
import net from "node:net";
import { childMain, runPair } from "./pair.js";
import { now, numberAt } from "./util.js";

const WRITE_BYTES = 64 * 1024;

export type RawTcpResult = { readonly bytes: number; readonly seconds: number; readonly MBps: number };

function receive(): void {
  const server = net.createServer((socket) => {
    let bytes = 0;
    let first = 0;
    let last = 0;
    socket.on("data", (chunk: Buffer) => {
      last = now();
      if (bytes === 0) first = last;
      bytes += chunk.length;
    });
    socket.on("end", () => {
      process.stdout.write(`${JSON.stringify({ bytes, seconds: (last - first) / 1000 })}\n`);
      process.exit(0);
    });
  });
  server.listen(0, "127.0.0.1", () => {
    const address = server.address();
    process.stdout.write(`port ${typeof address === "object" && address !== null ? address.port : 0}\n`);
  });
}

function send(port: number, seconds: number): void {
  const block = Buffer.alloc(WRITE_BYTES, 0x5a);
  const socket = net.connect(port, "127.0.0.1", () => {
    const end = now() + seconds * 1000;
    const pump = () => {
      while (now() < end) {
        if (!socket.write(block)) {
          socket.once("drain", pump);
          return;
        }
      }
      socket.end(() => process.stdout.write(`${JSON.stringify({ done: true })}\n`));
    };
    pump();
  });
}

/** Runs receiver and sender as two child processes for `seconds`. */
export async function measureRawTcp(seconds: number, cwd: string): Promise<RawTcpResult> {
  const { receiver } = await runPair(import.meta.url, "raw-tcp", seconds, cwd);
  const bytes = numberAt(receiver, "bytes") ?? 0;
  const secs = numberAt(receiver, "seconds") ?? 0;
  if (!(bytes > 0 && secs > 0)) throw new Error(`raw-tcp: nothing measured (${JSON.stringify(receiver)})`);
  return { bytes, seconds: secs, MBps: bytes / secs / 1e6 };
}

childMain(import.meta.url, "node raw-tcp.js receive | send PORT SECONDS", {
  receive: () => receive(),
  send: ([port, seconds]) => send(Number(port), Number(seconds)),
});
