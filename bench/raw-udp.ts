/**
 * The raw datagram ceiling: one Node process blasts 540-byte UDP datagrams (a udpswarm
 * chunk datagram: header + 512-byte chunk) at another over loopback, as fast as it can,
 * for a fixed duration; both sockets have 4 MiB buffers and the sender's is connect()ed.
 * The receiver counts what it gets between its first and its last datagram. No protocol,
 * no requests, no disk: what the kernel and Node's dgram carry between two processes.
 * CPU: the whole-life user + system CPU of both processes (as for udpswarm's processes,
 * from the kernel's accounting of reaped children) over the datagrams received.
 *
 * As a child process: `node raw-udp.js receive` (prints `port N`, then one JSON line once
 * the blast is over) and `node raw-udp.js send PORT SECONDS` (prints one JSON line).
 */
import { createSocket } from "node:dgram";
import { childMain, runPair } from "./pair.js";
import { reapedChildrenCpuSeconds } from "./proc.js";
import { now, numberAt } from "./util.js";

export const DATAGRAM_BYTES = 540;
export const PAYLOAD_BYTES = 512;
const SOCKET_BUFFER_BYTES = 4 * 1024 * 1024;
/** Datagrams sent per turn of the event loop. */
const BATCH = 64;
/** The receiver reports once nothing has arrived for this long. */
const QUIET_MS = 500;

export type RawUdpResult = {
  readonly received: number;
  readonly sent: number;
  readonly seconds: number;
  /** Datagrams received per second. */
  readonly datagramsPerSecond: number;
  /** datagramsPerSecond × 512 bytes / 10^6: the file bytes a perfect chunk protocol would move. */
  readonly chunkMBps: number;
  /** CPU of sender and receiver together per datagram received, µs. */
  readonly cpuUsPerDatagram: number;
};

function receive(): void {
  const socket = createSocket("udp4");
  let count = 0;
  let first = 0;
  let last = 0;
  socket.on("message", () => {
    last = now();
    if (count++ > 0) return;
    first = last;
    setInterval(() => {
      if (now() - last < QUIET_MS) return;
      process.stdout.write(`${JSON.stringify({ received: count, seconds: (last - first) / 1000 })}\n`);
      process.exit(0);
    }, 100);
  });
  socket.bind(0, "127.0.0.1", () => {
    socket.setRecvBufferSize(SOCKET_BUFFER_BYTES);
    process.stdout.write(`port ${socket.address().port}\n`);
  });
}

function send(port: number, seconds: number): void {
  const socket = createSocket("udp4");
  const datagram = Buffer.alloc(DATAGRAM_BYTES, 0xa5);
  let sent = 0;
  socket.bind(0, "127.0.0.1", () => {
    socket.setSendBufferSize(SOCKET_BUFFER_BYTES);
    socket.connect(port, "127.0.0.1", () => {
      const end = now() + seconds * 1000;
      const pump = () => {
        if (now() >= end) {
          process.stdout.write(`${JSON.stringify({ sent })}\n`);
          socket.close();
          return;
        }
        // libuv queues what the kernel does not take at once: keep that queue short.
        if (socket.getSendQueueCount() < 4 * BATCH) {
          for (let i = 0; i < BATCH; i++) socket.send(datagram);
          sent += BATCH;
        }
        setImmediate(pump);
      };
      pump();
    });
  });
}

/** Runs receiver and sender as two child processes for `seconds`. */
export async function measureRawUdp(seconds: number, cwd: string): Promise<RawUdpResult> {
  const cpuBefore = reapedChildrenCpuSeconds();
  const { receiver, sender } = await runPair(import.meta.url, "raw-udp", seconds, cwd);
  const cpuSeconds = reapedChildrenCpuSeconds() - cpuBefore;
  const received = numberAt(receiver, "received") ?? 0;
  const secs = numberAt(receiver, "seconds") ?? 0;
  if (!(received > 1 && secs > 0)) throw new Error(`raw-udp: nothing measured (${JSON.stringify(receiver)})`);
  const datagramsPerSecond = received / secs;
  return {
    received,
    sent: numberAt(sender, "sent") ?? 0,
    seconds: secs,
    datagramsPerSecond,
    chunkMBps: (datagramsPerSecond * PAYLOAD_BYTES) / 1e6,
    cpuUsPerDatagram: (cpuSeconds * 1e6) / received,
  };
}

childMain(import.meta.url, "node raw-udp.js receive | send PORT SECONDS", {
  receive: () => receive(),
  send: ([port, seconds]) => send(Number(port), Number(seconds)),
});
