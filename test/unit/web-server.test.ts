/**
 * The web view's HTTP side on loopback (src/tracker/web/server.ts), over a real, I/O-free
 * Registry: the JSON snapshot for scripts at its stable path, the event stream carrying
 * the same model, DISCONNECT blocks feeding "recently departed", and what it refuses.
 */
import http from "node:http";
import test from "ava";
import { disconnectBlock } from "../../src/tracker/output.js";
import { Registry } from "../../src/tracker/registry.js";
import type { ViewModel } from "../../src/tracker/web/model.js";
import { PAGE_HTML, PAGE_JS } from "../../src/tracker/web/page.js";
import { EVENTS_PATH, STATE_PATH, startWebView, type WebView } from "../../src/tracker/web/server.js";
import { SILENT_SINK as SILENT, testManifest } from "../helpers/manifest.js";

const manifest = testManifest;

async function setup(t: import("ava").ExecutionContext): Promise<{ registry: Registry; web: WebView }> {
  const registry = new Registry(SILENT, (n) => Buffer.alloc(n, 7));
  const web = await startWebView({ registry }, { port: 0, host: "127.0.0.1", minIntervalMs: 0 });
  t.teardown(() => web.close());
  return { registry, web };
}

function get(
  port: number,
  path: string,
  options: { method?: string; host?: string } = {},
): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: "127.0.0.1",
        port,
        path,
        method: options.method ?? "GET",
        headers: { Host: options.host ?? `127.0.0.1:${port}` },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            type: String(res.headers["content-type"] ?? ""),
            body: Buffer.concat(chunks).toString("utf8"),
          }),
        );
      },
    );
    req.on("error", reject);
    req.end();
  });
}

/** The first model on the event stream. */
function firstEvent(port: number): Promise<ViewModel> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: "127.0.0.1", port, path: EVENTS_PATH }, (res) => {
      let text = "";
      res.on("data", (c: Buffer) => {
        text += c.toString("utf8");
        const m = /^data: (.*)$/m.exec(text);
        if (m !== null) {
          req.destroy();
          resolve(JSON.parse(m[1] ?? "") as ViewModel);
        }
      });
    });
    req.on("error", reject);
  });
}

test("web server: /api/state.json is the model the page draws, as JSON", async (t) => {
  const { registry, web } = await setup(t);
  registry.join("10.0.0.1", 7001, [manifest("a.bin", 2000)]);
  registry.join("10.0.0.2", 7002, []);
  web.changed();
  const res = await get(web.port, STATE_PATH);
  t.is(res.status, 200);
  t.is(res.type, "application/json; charset=utf-8");
  const model = JSON.parse(res.body) as ViewModel;
  t.is(model.version, 1);
  t.is(model.chunkSize, 512);
  t.deepEqual(
    model.peers.map((p) => [p.id, p.address, p.activity, p.filesComplete, p.filesTotal]),
    [
      [1, "10.0.0.1:7001", "seeding", 1, 1],
      [2, "10.0.0.2:7002", "downloading", 0, 1],
    ],
  );
  t.deepEqual(
    model.files.map((f) => [f.name, f.chunks, f.bars.map((b) => b.percent)]),
    [["a.bin", 4, [100, 0]]],
  );
  t.deepEqual(await firstEvent(web.port), model, "the event stream carries the same model");
});

test("web server: a DISCONNECT block printed by the tracker is what 'recently departed' shows", async (t) => {
  const { registry, web } = await setup(t);
  registry.join("10.0.0.1", 7001, [manifest("a", 10), manifest("b", 10)]);
  registry.join("10.0.0.2", 7002, []);
  web.changed();
  await get(web.port, STATE_PATH);
  registry.leave(2);
  web.printed(["PEER 1 ACQUIRED: CHUNK 1/1 a"]); // not a DISCONNECT block: ignored
  web.printed(disconnectBlock(2, ["b", "a"]));
  const model = JSON.parse((await get(web.port, STATE_PATH)).body) as ViewModel;
  t.deepEqual(
    model.departed.map((d) => [d.id, d.address, d.received]),
    [[2, "10.0.0.2:7002", ["a", "b"]]],
  );
});

test("web server: read-only, loopback names only, nothing else served", async (t) => {
  const { web } = await setup(t);
  t.is((await get(web.port, STATE_PATH, { method: "POST" })).status, 405);
  t.is((await get(web.port, STATE_PATH, { host: "evil.example" })).status, 403);
  t.is((await get(web.port, STATE_PATH, { host: `localhost:${web.port}` })).status, 200);
  t.is((await get(web.port, "/snapshot.json")).status, 404);
  t.is((await get(web.port, "/../etc/passwd")).status, 404);
});

test("web page: the browser script is valid JavaScript (a stray escape in its template breaks the page)", (t) => {
  // Parsed, not run: the Function constructor compiles the body.
  t.notThrows(() => new Function(PAGE_JS));
  t.false(PAGE_HTML.includes("<script>"), "no inline script (the CSP forbids it)");
});
