import { createHash } from "node:crypto";
import { connect, createServer, type Server } from "node:net";

/**
 * One download at a time into a given DEST_DIR/FILE, across clients started from different
 * folders (those started from the same folder are kept apart by the staging lock). Nothing
 * may appear in the destination before the file is whole, so the lock is not a file there:
 * it is a Linux abstract unix socket named after the target's path, which the kernel frees
 * when its holder dies (kill -9 included) and which leaves nothing on disk. Whoever holds
 * it answers a connection with its PID, for the refusal message. Elsewhere than on Linux
 * (no abstract sockets) there is no such lock: the final hard link still never replaces a
 * file, so the second download fails at its end instead of at its start.
 */
export class DestinationLock {
  readonly #server: Server | undefined;
  #held = true;

  private constructor(server: Server | undefined) {
    this.#server = server;
  }

  /** Takes the lock of `target`, or resolves with the PID of the live client that holds it. */
  static async acquire(target: string): Promise<DestinationLock | { readonly heldBy: number }> {
    if (process.platform !== "linux") return new DestinationLock(undefined);
    const address = `\0udpswarm-dest-${createHash("sha256").update(target).digest("hex").slice(0, 40)}`;
    for (let round = 0; round < 3; round++) {
      const server = createServer((socket) => {
        socket.on("error", () => {});
        socket.end(`${process.pid}\n`);
      });
      const taken = await new Promise<boolean>((resolve) => {
        server.once("error", () => resolve(false));
        server.listen(address, () => resolve(true));
      });
      if (taken) {
        server.unref(); // a held lock never keeps the process alive
        return new DestinationLock(server);
      }
      server.close();
      const pid = await holderOf(address);
      if (pid !== undefined) return { heldBy: pid };
      // The holder let go meanwhile: try again.
    }
    return { heldBy: 0 };
  }

  /** Safe to call twice. */
  release(): void {
    if (!this.#held) return;
    this.#held = false;
    this.#server?.close();
  }
}

function holderOf(address: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    let text = "";
    const socket = connect(address);
    socket.setEncoding("utf8");
    socket.setTimeout(2000, () => socket.destroy());
    socket.on("data", (chunk: string) => {
      text += chunk;
    });
    socket.on("error", () => resolve(undefined));
    socket.on("close", () => {
      const pid = Number(text.trim());
      resolve(Number.isSafeInteger(pid) && pid > 0 ? pid : undefined);
    });
  });
}
