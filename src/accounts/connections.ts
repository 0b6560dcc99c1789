import { udpswarm } from "../wire/gen/swarm.js";
import type { FrameBody, TrackerFrame } from "../wire/tracker-frame.js";
import { ClientSwarm } from "./client-swarm.js";
import { AccountService, type AccountServiceOptions, type ClientContext } from "./service.js";
import type { AccountStore } from "./store.js";

/** The tracker's side of one client connection, as the TCP server hands it over. */
export type ClientLink = {
  /** The client's IP address as the tracker sees it. */
  readonly host: string;
  readonly label: string;
  send(body: FrameBody): void;
  close(reason: string): void;
};

/** What the TCP server calls for a connection it handed over. */
export type ClientHandler = {
  frame(frame: TrackerFrame): void;
  closed(): void;
};

/** Where the TCP server hands connections that open with ClientHello (trackers with --store). */
export interface ClientConnections {
  /** A new client; undefined when it is refused (the link is closed then). */
  open(link: ClientLink, hello: udpswarm.IClientHello): ClientHandler | undefined;
}

export const ACCOUNTS_VERSION = udpswarm.AccountsVersion.ACCOUNTS_VERSION;
/** Requests of one client waiting for their reply at most; more closes the link. */
export const MAX_PENDING_REQUESTS = 64;
/** Expired sessions are removed from the store this often (ms). */
const SWEEP_EVERY_MS = 3600_000;

/**
 * Accounts mode's front: one ClientSwarm and one AccountService over the store; each
 * client connection gets a peer id and secret (Welcome), then its requests are answered
 * one at a time, in order.
 */
export class AccountsFront implements ClientConnections {
  readonly swarm: ClientSwarm;
  readonly service: AccountService;
  readonly #store: AccountStore;
  readonly #links = new Map<number, ClientLink>();
  readonly #log: (line: string) => void;
  readonly #sweep: NodeJS.Timeout;

  constructor(store: AccountStore, now: () => number, log: (line: string) => void, options: AccountServiceOptions) {
    this.#store = store;
    this.#log = log;
    this.swarm = new ClientSwarm({ send: (peerId, body) => this.#links.get(peerId)?.send(body) });
    this.service = new AccountService(store, this.swarm, now, log, options);
    this.#sweep = setInterval(() => {
      this.service.sweepSessions().catch((err: unknown) => log(`session sweep failed: ${(err as Error).message}`));
    }, SWEEP_EVERY_MS);
    this.#sweep.unref();
  }

  open(link: ClientLink, hello: udpswarm.IClientHello): ClientHandler | undefined {
    const refuse = (message: string): undefined => {
      link.send({ accountReply: { status: udpswarm.AccountStatus.STATUS_VERSION, message } });
      link.close(message);
      return undefined;
    };
    if (hello.accountsVersion !== ACCOUNTS_VERSION) {
      return refuse(
        `accounts protocol version ${hello.accountsVersion ?? 0} is not supported (tracker speaks ${ACCOUNTS_VERSION}); use the same udpswarm version as the tracker`,
      );
    }
    const udpPort = hello.udpPort ?? 0;
    if (!Number.isInteger(udpPort) || udpPort <= 0 || udpPort > 65535) return refuse(`bad UDP port ${udpPort}`);
    const resumed = this.#resume(link, udpPort, hello);
    const owner = resumed === undefined ? this.swarm.endpointOwner(link.host, udpPort) : undefined;
    if (owner !== undefined) return refuse(`UDP endpoint ${link.host}:${udpPort} is client ${owner}'s`);
    const { peerId, secret } = resumed ?? this.swarm.open(link.host, udpPort, hello.addresses ?? []);
    this.#links.set(peerId, link);
    link.send({ welcome: { peerId, secret } });
    if (resumed !== undefined) this.swarm.reintroduce(peerId);
    const ctx: ClientContext = { peerId, address: link.host, session: undefined };
    let pending = 0;
    let chain: Promise<void> = Promise.resolve();
    let closed = false;
    return {
      frame: (frame) => {
        if (closed) return;
        if (frame.body === "goodbye") {
          link.close("goodbye");
          return;
        }
        const req = frame.accountRequest;
        if (frame.body !== "accountRequest" || req === null || req === undefined) {
          this.#log(`client ${peerId}: unexpected ${frame.body ?? "empty"} frame ignored`);
          return;
        }
        if (++pending > MAX_PENDING_REQUESTS) {
          link.close(`more than ${MAX_PENDING_REQUESTS} requests waiting`);
          return;
        }
        const requestId = req.requestId ?? 0;
        chain = chain.then(async () => {
          const answer = closed ? undefined : await this.service.handle(ctx, req);
          pending--;
          if (answer !== undefined && !closed) link.send({ accountReply: { ...answer, requestId } });
        });
      },
      closed: () => {
        closed = true;
        // A client that came back on a new link (or moved to another tracker) is not gone.
        if (this.#links.get(peerId) !== link) return;
        this.#links.delete(peerId);
        // Requests in flight still finish against the store; the swarm forgets the client now.
        this.swarm.close(peerId);
      },
    };
  }

  /**
   * SEVERAL TRACKERS (§11): a client that lost its tracker claims its peer id back with its
   * secret; undefined when the claim is not granted (it gets a new id, as any client).
   */
  #resume(
    link: ClientLink,
    udpPort: number,
    hello: udpswarm.IClientHello,
  ): { peerId: number; secret: Buffer } | undefined {
    const peerId = hello.resumePeerId ?? 0;
    const secret = hello.resumeSecret ?? new Uint8Array(0);
    if (peerId === 0 || secret.length === 0) return undefined;
    const old = this.#links.get(peerId);
    if (old !== undefined) {
      // Back on this tracker over a new connection before the old one was seen to drop.
      this.#links.delete(peerId);
      old.close("the client connected again");
      this.swarm.close(peerId);
    }
    if (!this.swarm.adopt(peerId, secret, link.host, udpPort, hello.addresses ?? [], Date.now())) return undefined;
    this.#log(`client ${peerId} resumed here (moved from another tracker)`);
    return { peerId, secret: Buffer.from(secret) };
  }

  /** SEVERAL TRACKERS: the shared live state this front's swarm takes part in. */
  live: { close(): Promise<void> } | undefined;

  /** Leaves the service (bounded) and closes the store. */
  async close(): Promise<void> {
    clearInterval(this.#sweep);
    await this.live?.close();
    await this.#store.close();
  }
}
