import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Clock, TimerHandle } from "../../util/clock.js";
import { RealClock } from "../../util/clock.js";
import { parseDisconnectBlock, ViewBuilder, type ViewSource } from "./model.js";
import { PAGE_CSS, PAGE_HTML, PAGE_JS } from "./page.js";

/**
 * The tracker's live web view: a read-only page on `node:http` and a Server-Sent Events
 * stream of the view model (model.ts). Changes are coalesced: at most one model per
 * `minIntervalMs`, sent only when it differs from the last one; while someone watches, a
 * slower tick keeps the rates honest when nothing happens.
 */
export type WebViewOptions = {
  readonly port: number;
  /** Address to listen on. @default "127.0.0.1" */
  readonly host?: string;
  /** @default RealClock */
  readonly clock?: Clock;
  /** Shortest time between two models (ms). @default 200 */
  readonly minIntervalMs?: number;
  /** Refresh while clients are connected, even without changes (ms). @default 1000 */
  readonly tickMs?: number;
  /** Most simultaneous event streams; more get 503. @default 64 */
  readonly maxClients?: number;
  /** A client with more unsent bytes than this is dropped (it reconnects). @default 4 MiB */
  readonly maxQueuedBytes?: number;
};

export interface WebView {
  /** http://host:port/ */
  readonly url: string;
  readonly port: number;
  /** The registry changed (the tracker's observer). Cheap: schedules one rebuild. */
  changed(): void;
  /** The tracker printed this block on stdout; a DISCONNECT block feeds "recently departed". */
  printed(lines: readonly string[]): void;
  /** Stops listening and ends every stream. Safe to call twice. */
  close(): Promise<void>;
}

/** The view model as one JSON document, for scripts (docs/web-view.md). A stable path. */
export const STATE_PATH = "/api/state.json";
/** The same model as Server-Sent Events, one `data:` line per change. */
export const EVENTS_PATH = "/events";

const SECURITY_HEADERS = {
  "Content-Security-Policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'none'; " +
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "no-referrer",
  "Cache-Control": "no-store",
} as const;

const STATIC: ReadonlyMap<string, { readonly type: string; readonly body: Buffer }> = new Map([
  ["/", { type: "text/html; charset=utf-8", body: Buffer.from(PAGE_HTML) }],
  ["/app.css", { type: "text/css; charset=utf-8", body: Buffer.from(PAGE_CSS) }],
  ["/app.js", { type: "text/javascript; charset=utf-8", body: Buffer.from(PAGE_JS) }],
]);

/** Starts the web view for `tracker` (anything with a registry); resolves once listening. */
export async function startWebView(
  tracker: { readonly registry: ViewSource },
  options: WebViewOptions,
): Promise<WebView> {
  const view = new WebViewServer(tracker.registry, options);
  await view.listen();
  return view;
}

class WebViewServer implements WebView {
  readonly #source: ViewSource;
  readonly #clock: Clock;
  readonly #host: string;
  readonly #requestedPort: number;
  readonly #minIntervalMs: number;
  readonly #tickMs: number;
  readonly #maxClients: number;
  readonly #maxQueuedBytes: number;
  readonly #server: Server;
  readonly #builder = new ViewBuilder();
  readonly #clients = new Set<ServerResponse>();
  #json = "";
  #lastBuildAt = Number.NEGATIVE_INFINITY;
  #pending: TimerHandle | undefined;
  #tick: TimerHandle | undefined;
  #keepalive: TimerHandle | undefined;
  #port = 0;
  #closed = false;

  constructor(source: ViewSource, options: WebViewOptions) {
    this.#source = source;
    this.#clock = options.clock ?? new RealClock();
    this.#host = options.host ?? "127.0.0.1";
    this.#requestedPort = options.port;
    this.#minIntervalMs = options.minIntervalMs ?? 200;
    this.#tickMs = options.tickMs ?? 1000;
    this.#maxClients = options.maxClients ?? 64;
    this.#maxQueuedBytes = options.maxQueuedBytes ?? 4 * 1024 * 1024;
    this.#server = createServer((req, res) => this.#handle(req, res));
  }

  get port(): number {
    return this.#port;
  }

  get url(): string {
    const wildcard = this.#host === "0.0.0.0" || this.#host === "::" || this.#host === "";
    const shown = wildcard ? "127.0.0.1" : this.#host;
    return `http://${shown.includes(":") ? `[${shown}]` : shown}:${this.#port}/`;
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#server.once("error", reject);
      this.#server.listen(this.#requestedPort, this.#host, () => {
        this.#server.off("error", reject);
        this.#server.on("error", () => {});
        const address = this.#server.address();
        if (address === null || typeof address === "string") {
          reject(new Error("web view: no TCP address"));
          return;
        }
        this.#port = address.port;
        this.#publish();
        resolve();
      });
    });
  }

  printed(lines: readonly string[]): void {
    const disconnect = parseDisconnectBlock(lines);
    if (disconnect === undefined) return;
    this.#builder.noteDisconnect(disconnect.peerId, disconnect.received, Date.now());
    this.changed();
  }

  changed(): void {
    if (this.#closed || this.#pending !== undefined) return;
    const delay = Math.max(0, this.#lastBuildAt + this.#minIntervalMs - this.#clock.now());
    this.#pending = this.#clock.setTimer(delay, () => {
      this.#pending = undefined;
      this.#publish();
    });
  }

  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      for (const timer of [this.#pending, this.#tick, this.#keepalive]) {
        if (timer !== undefined) this.#clock.clearTimer(timer);
      }
      for (const res of this.#clients) res.end();
      this.#clients.clear();
    }
    return new Promise((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }

  /** Builds the model; sends it to every stream when it changed. */
  #publish(): void {
    if (this.#closed) return;
    const now = this.#clock.now();
    this.#lastBuildAt = now;
    const json = JSON.stringify(this.#builder.build(this.#source, now, Date.now()));
    if (json === this.#json) return;
    this.#json = json;
    const frame = `data: ${json}\n\n`;
    for (const res of this.#clients) this.#write(res, frame);
  }

  #write(res: ServerResponse, text: string): void {
    res.write(text);
    if (res.writableLength > this.#maxQueuedBytes) {
      this.#clients.delete(res);
      res.destroy();
    }
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    if (!this.#hostAllowed(req.headers.host)) {
      this.#plain(res, 403, "forbidden: unexpected Host header\n");
      return;
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.setHeader("Allow", "GET, HEAD");
      this.#plain(res, 405, "read-only: GET only\n");
      return;
    }
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    if (path === EVENTS_PATH) {
      this.#openStream(req, res);
      return;
    }
    if (path === STATE_PATH) {
      this.#publish();
      this.#send(res, req, 200, "application/json; charset=utf-8", Buffer.from(this.#json));
      return;
    }
    if (path === "/favicon.ico") {
      res.writeHead(204, SECURITY_HEADERS).end();
      return;
    }
    const file = STATIC.get(path === "/index.html" ? "/" : path);
    if (file === undefined) this.#plain(res, 404, "not found\n");
    else this.#send(res, req, 200, file.type, file.body);
  }

  #openStream(req: IncomingMessage, res: ServerResponse): void {
    if (this.#clients.size >= this.#maxClients) {
      this.#plain(res, 503, "too many viewers\n");
      return;
    }
    res.writeHead(200, {
      ...SECURITY_HEADERS,
      "Content-Type": "text/event-stream; charset=utf-8",
      Connection: "keep-alive",
      "X-Accel-Buffering": "no",
    });
    if (req.method === "HEAD") {
      res.end();
      return;
    }
    res.socket?.setNoDelay(true);
    this.#write(res, "retry: 2000\n\n");
    this.#clients.add(res);
    const forget = () => {
      this.#clients.delete(res);
      if (this.#clients.size === 0) this.#stopTicking();
    };
    res.on("close", forget);
    res.on("error", forget);
    // A full model at once: rebuilt when stale, else the last one.
    const before = this.#json;
    this.#publish();
    if (this.#json === before) this.#write(res, `data: ${this.#json}\n\n`);
    this.#startTicking();
  }

  #startTicking(): void {
    if (this.#tick === undefined) {
      const tick = () => {
        this.#tick = undefined;
        if (this.#closed || this.#clients.size === 0) return;
        this.#publish();
        this.#tick = this.#clock.setTimer(this.#tickMs, tick);
      };
      this.#tick = this.#clock.setTimer(this.#tickMs, tick);
    }
    if (this.#keepalive === undefined) {
      const keepalive = () => {
        this.#keepalive = undefined;
        if (this.#closed || this.#clients.size === 0) return;
        for (const res of this.#clients) this.#write(res, ": keepalive\n\n");
        this.#keepalive = this.#clock.setTimer(15_000, keepalive);
      };
      this.#keepalive = this.#clock.setTimer(15_000, keepalive);
    }
  }

  #stopTicking(): void {
    for (const timer of [this.#tick, this.#keepalive]) if (timer !== undefined) this.#clock.clearTimer(timer);
    this.#tick = undefined;
    this.#keepalive = undefined;
  }

  #send(res: ServerResponse, req: IncomingMessage, status: number, type: string, body: Buffer): void {
    res.writeHead(status, { ...SECURITY_HEADERS, "Content-Type": type, "Content-Length": body.length });
    res.end(req.method === "HEAD" ? undefined : body);
  }

  #plain(res: ServerResponse, status: number, text: string): void {
    res.writeHead(status, { ...SECURITY_HEADERS, "Content-Type": "text/plain; charset=utf-8" });
    res.end(text);
  }

  /**
   * On a loopback address, only loopback host names are served: a web page elsewhere
   * cannot read the swarm through DNS rebinding. A wider address serves any name.
   */
  #hostAllowed(header: string | undefined): boolean {
    if (!isLoopback(this.#host)) return true;
    if (header === undefined) return false;
    let hostname: string;
    try {
      hostname = new URL(`http://${header}`).hostname;
    } catch {
      return false;
    }
    return isLoopback(hostname.replace(/^\[|\]$/g, "")) || hostname === this.#host;
  }
}

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}
