/**
 * Hand-made ends of both links for end-to-end attack tests: a TCP client of the tracker
 * (raw bytes or frames out, decoded frames in), a UDP socket, and a "fake peer" that joins
 * the swarm with a UDP address of the test, so the real peers list it.
 */
import { createSocket, type RemoteInfo, type Socket as UdpSocket } from "node:dgram";
import net from "node:net";
import { pieceHash, sha256 } from "../../src/transfer/piece-hash.js";
import { PROOF_REQUEST, requestAuth, requestProof } from "../../src/wire/auth.js";
import { FrameDecoder } from "../../src/wire/framing.js";
import { CHUNK_SIZE, CHUNKS_PER_BLOCK, CHUNKS_PER_PIECE, chunkCount, MAX_FRAME_BYTES } from "../../src/wire/limits.js";
import { decodePeerDatagram, encodeRequest } from "../../src/wire/peer-datagram.js";
import {
  decodeTrackerFrame,
  encodeTrackerFrame,
  type FrameBody,
  type TrackerFrame,
  type udpswarm,
} from "../../src/wire/tracker-frame.js";

/** Rejects with a clear message unless `promise` settles within `ms`. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

// ------------------------------------------------------------------ a hand-made tracker client

/** A TCP client of the tracker written by hand: raw bytes or frames out, decoded frames in. */
export class HandClient {
  readonly socket: net.Socket;
  readonly frames: TrackerFrame[] = [];
  /** Frames the client could not decode (the tracker must only send good ones). */
  readonly badFrames: string[] = [];
  closedAt: number | undefined;
  #cursor = 0;
  readonly #decoder = new FrameDecoder(MAX_FRAME_BYTES);
  readonly #waiters = new Set<() => void>();
  readonly #answerPings: boolean;

  private constructor(socket: net.Socket, answerPings: boolean) {
    this.socket = socket;
    this.#answerPings = answerPings;
    socket.on("data", (data: Buffer) => this.#onData(data));
    socket.on("error", () => {});
    socket.on("close", () => {
      this.closedAt = performance.now();
      this.#notify();
    });
  }

  static connect(port: number, options: { answerPings?: boolean } = {}): Promise<HandClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: "127.0.0.1", port, noDelay: true });
      socket.once("error", reject);
      socket.once("connect", () => {
        socket.off("error", reject);
        resolve(new HandClient(socket, options.answerPings ?? true));
      });
    });
  }

  get closed(): boolean {
    return this.closedAt !== undefined;
  }

  send(body: FrameBody): void {
    this.socket.write(encodeTrackerFrame(body));
  }

  #onData(data: Buffer): void {
    let bodies: Buffer[];
    try {
      bodies = this.#decoder.push(data);
    } catch (error) {
      this.badFrames.push(String(error));
      this.socket.destroy();
      return;
    }
    for (const body of bodies) {
      const decoded = decodeTrackerFrame(body);
      if (!decoded.ok) {
        this.badFrames.push(decoded.reason);
        continue;
      }
      const frame = decoded.frame;
      if (frame.body === "ping") {
        if (this.#answerPings && !this.socket.destroyed) this.send({ pong: { nonce: frame.ping?.nonce ?? 0 } });
        continue;
      }
      this.frames.push(frame);
    }
    this.#notify();
  }

  #notify(): void {
    for (const w of [...this.#waiters]) w();
  }

  /** Resolves once `check()` holds (checked on every frame and on close). */
  async until(check: () => boolean, what: string, ms: number): Promise<void> {
    let w: () => void = () => {};
    try {
      await within(
        new Promise<void>((resolve) => {
          w = () => {
            if (check()) resolve();
          };
          this.#waiters.add(w);
          w();
        }),
        ms,
        what,
      );
    } finally {
      this.#waiters.delete(w);
    }
  }

  /** The next frame not read yet (pings excluded). */
  async next(what: string, ms = 5000): Promise<TrackerFrame> {
    await this.until(() => this.frames.length > this.#cursor, what, ms);
    const frame = this.frames[this.#cursor++];
    if (frame === undefined) throw new Error("unreachable");
    return frame;
  }

  waitClosed(what: string, ms: number): Promise<void> {
    return this.until(() => this.closed, what, ms);
  }

  /** Says goodbye and waits for the tracker to close the connection. */
  async leave(ms = 5000): Promise<void> {
    this.send({ goodbye: {} });
    await this.waitClosed("the tracker to close a hand-made client's connection after Goodbye", ms);
  }
}

// ------------------------------------------------------------------ a hand-made UDP end

export type Datagram = { readonly bytes: Buffer; readonly from: RemoteInfo };

/** A UDP socket of the test: sends what it is told, hands every datagram to listeners. */
export class UdpEnd {
  readonly socket: UdpSocket;
  readonly #listeners = new Set<(d: Datagram) => void>();
  sent = 0;

  private constructor(socket: UdpSocket) {
    this.socket = socket;
    socket.on("message", (bytes, from) => {
      for (const l of [...this.#listeners]) l({ bytes, from });
    });
    socket.on("error", () => {});
  }

  static open(): Promise<UdpEnd> {
    return new Promise((resolve, reject) => {
      const socket = createSocket("udp4");
      socket.once("error", reject);
      socket.bind(0, "127.0.0.1", () => {
        socket.off("error", reject);
        resolve(new UdpEnd(socket));
      });
    });
  }

  get port(): number {
    return this.socket.address().port;
  }

  listen(l: (d: Datagram) => void): () => void {
    this.#listeners.add(l);
    return () => this.#listeners.delete(l);
  }

  send(bytes: Buffer, port: number): Promise<void> {
    this.sent++;
    return new Promise((resolve) => this.socket.send(bytes, port, "127.0.0.1", () => resolve()));
  }

  /** Sends a list of datagrams, at most `batch` in flight at a time (so the sender does not queue them all). */
  async sendAll(items: readonly { bytes: Buffer; port: number }[], batch = 64): Promise<void> {
    for (let i = 0; i < items.length; i += batch) {
      await Promise.all(items.slice(i, i + batch).map((d) => this.send(d.bytes, d.port)));
    }
  }

  close(): void {
    try {
      this.socket.close();
    } catch {
      // already closed
    }
  }
}

// ------------------------------------------------------------------ a listed fake peer

/**
 * A hand-made client that joins the swarm as a peer whose UDP address is a socket of the
 * test: the real peers list it, so its datagrams pass the source check and reach the
 * decoders and the engine.
 */
export class FakePeer {
  readonly client: HandClient;
  readonly udp: UdpEnd;
  readonly welcome: udpswarm.IWelcome;
  readonly id: number;
  readonly secret: Uint8Array;
  /** The address cookie each real peer gave this fake. */
  readonly cookies = new Map<number, Buffer>();
  #seq = 1;
  /** Probes made so far: each has its own token (see probe). */
  #probes = 0;

  private constructor(client: HandClient, udp: UdpEnd, welcome: udpswarm.IWelcome) {
    this.client = client;
    this.udp = udp;
    this.welcome = welcome;
    this.id = welcome.peerId ?? 0;
    this.secret = welcome.secret ?? new Uint8Array(0);
  }

  static async join(trackerPort: number, offers: udpswarm.IManifest[] = [], welcomeMs = 5000): Promise<FakePeer> {
    const udp = await UdpEnd.open();
    const client = await HandClient.connect(trackerPort);
    client.send({ hello: { udpPort: udp.port, offers } });
    const first = await client.next("the tracker's Welcome to a hand-made peer", welcomeMs);
    if (first.body !== "welcome" || first.welcome === null || first.welcome === undefined) {
      throw new Error(`first frame to a hand-made peer is ${first.body}, expected welcome`);
    }
    return new FakePeer(client, udp, first.welcome);
  }

  /** UDP port the tracker listed for PEER id. */
  portOf(id: number): number | undefined {
    return this.welcome.peers?.find((p) => p.peerId === id)?.udpPort ?? undefined;
  }

  /** A file PEER id holds whole, from the Welcome. */
  heldBy(id: number): { fileId: number; chunks: number } {
    const h = this.welcome.holders?.find((x) => x.peerId === id && x.complete === true);
    const info = this.welcome.files?.find((f) => f.fileId === h?.fileId);
    if (h === undefined || info === undefined) throw new Error(`PEER ${id} holds no whole file in the Welcome`);
    return { fileId: info.fileId ?? 0, chunks: chunkCount(Number(info.manifest?.size ?? 0)) };
  }

  /**
   * Asks PEER id (at `port`) for chunk 0 of `fileId` with a valid proof (a fresh sequence
   * number each time), echoing the address cookie the peer answers with, re-sending every
   * 100 ms until the chunk comes back: then the peer knows this fake, and everything sent
   * to it from this socket before has been handled (one socket, one queue). Returns the
   * number of requests sent. Each probe has its own token: a slow peer still answers the
   * re-sent requests of an earlier probe, and such a late chunk must not end this one
   * before the peer has handled what was sent in between.
   */
  async probe(id: number, port: number, fileId: number): Promise<number> {
    const token = (0x70000000 + this.#probes++ * 0x10000 + id) >>> 0;
    const key = requestAuth(this.secret, id);
    let sent = 0;
    let timer: NodeJS.Timeout | undefined;
    let stop: () => void = () => {};
    try {
      await within(
        new Promise<void>((resolve) => {
          const fire = (): void => {
            clearTimeout(timer);
            sent++;
            const seq = this.#seq++;
            const proof = requestProof(key, PROOF_REQUEST, seq, token, fileId);
            void this.udp.send(encodeRequest(seq, fileId, 0, [0], token, proof, this.cookies.get(id)), port);
            timer = setTimeout(fire, 100);
          };
          stop = this.udp.listen(({ bytes, from }) => {
            const d = decodePeerDatagram(bytes);
            if (from.port !== port) return;
            if (d.kind === "chunk" && d.token === token) resolve();
            if (d.kind === "cookie" && d.token === token && !this.cookies.has(id)) {
              this.cookies.set(id, Buffer.from(d.cookie));
              fire();
            }
          });
          fire();
        }),
        10_000,
        `PEER ${id} to answer a proven request of the hand-made peer`,
      );
    } finally {
      clearTimeout(timer);
      stop();
    }
    return sent;
  }

  close(): void {
    this.client.socket.destroy();
    this.udp.close();
  }
}

export function manifestOf(name: string, content: Buffer): udpswarm.IManifest {
  const pieceBytes = CHUNK_SIZE * CHUNKS_PER_PIECE;
  const pieces: Buffer[] = [];
  for (let off = 0; off < content.length; off += pieceBytes)
    pieces.push(pieceHash(content.subarray(off, off + pieceBytes)));
  return {
    name,
    size: content.length,
    chunkSize: CHUNK_SIZE,
    chunksPerPiece: CHUNKS_PER_PIECE,
    chunksPerBlock: CHUNKS_PER_BLOCK,
    sha256: sha256(content),
    pieceSha256: pieces,
  };
}

/** The tracker's stdout lines that belong to PEER id. */
export function linesOf(stdout: Buffer, id: number): string[] {
  return stdout
    .toString("utf8")
    .split("\n")
    .filter((l) => l.startsWith(`PEER ${id} `) || l.startsWith(`${id}    `));
}
