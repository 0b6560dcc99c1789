/** Free ports for the reference servers (asked of the kernel, then released). */
import { createSocket } from "node:dgram";
import net from "node:net";
import { pollUntil } from "./util.js";

export function freeUdpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = createSocket("udp4");
    socket.once("error", reject);
    socket.bind(0, "127.0.0.1", () => {
      const { port } = socket.address();
      socket.close(() => resolve(port));
    });
  });
}

export function freeTcpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function tcpOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1");
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

/** Resolves once a TCP connection to 127.0.0.1:port succeeds (or rejects after `ms`). */
export async function waitTcpOpen(port: number, ms: number): Promise<void> {
  await pollUntil(async () => ((await tcpOpen(port)) ? true : undefined), ms, `a listener on TCP port ${port}`);
}
