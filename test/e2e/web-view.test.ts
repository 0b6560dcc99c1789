/**
 * The tracker's live web view in a real browser: the real tracker.sh with the web view
 * on (`--http 0` through its environment variable UDPSWARM_HTTP, which Swarm's tracker
 * inherits), three real peers, and the page opened in headless Chromium (Debian's
 * `chromium`, found on the PATH; playwright-core drives it, its own browser download is
 * not used). Waits for every piece bar to reach 100 %, checks that a file named like an
 * HTML tag is shown as text, saves a screenshot in the swarm's temporary folder
 * (KEEP_TMP=1 keeps it), then watches the peers leave.
 *
 * Skipped, with a message, when no Chromium is installed (`apt-get install -y chromium`).
 */
import { accessSync, constants } from "node:fs";
import path from "node:path";
import test from "ava";
import { type Browser, chromium, type Page } from "playwright-core";
import { parseDisconnectBlock } from "../../src/tracker/web/model.js";
import { type FileSpec, Swarm } from "../helpers/swarm.js";

const EVIL = "<img src=x onerror=alert(1)>.txt";
const FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"];

/** CHROMIUM_PATH, else `chromium` (or `chromium-browser`) on the PATH. */
function findChromium(): string | undefined {
  const override = process.env.CHROMIUM_PATH;
  if (override !== undefined && override !== "") return override;
  for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
    if (dir === "") continue;
    for (const name of ["chromium", "chromium-browser"]) {
      const candidate = path.join(dir, name);
      try {
        accessSync(candidate, constants.X_OK);
        return candidate;
      } catch {
        // Not here.
      }
    }
  }
  return undefined;
}

const CHROMIUM = findChromium();
if (CHROMIUM === undefined) {
  console.error(
    "web-view e2e: SKIPPED: no `chromium` on the PATH (install it with `apt-get install -y chromium`, " +
      "or set CHROMIUM_PATH)",
  );
}
const browserTest = CHROMIUM === undefined ? test.serial.skip : test.serial;

/**
 * The little of the DOM these page functions use (the project compiles without the DOM
 * library; the functions run in the browser, where `document` is the real one).
 */
type El = {
  readonly dataset: Readonly<Record<string, string | undefined>>;
  readonly textContent: string | null;
  closest(selector: string): El | null;
  querySelector(selector: string): El | null;
  querySelectorAll(selector: string): ArrayLike<El>;
};
type Doc = { querySelectorAll(selector: string): ArrayLike<El>; getElementById(id: string): El | null };

/** What the page shows, read from the DOM. */
type PageState = {
  bars: Array<{ file: string; peer: string; percent: string }>;
  peerRows: number;
  departedRows: number;
  status: string;
};

function pageState(page: Page): Promise<PageState> {
  return page.evaluate(() => {
    const doc = (globalThis as unknown as { document: Doc }).document;
    return {
      bars: Array.from(doc.querySelectorAll("canvas.bar")).map((c) => ({
        file: c.closest(".file")?.querySelector(".file-name")?.textContent ?? "?",
        peer: c.dataset.peerId ?? "?",
        percent: c.dataset.percent ?? "?",
      })),
      peerRows: doc.querySelectorAll("#peer-rows tr").length,
      departedRows: doc.querySelectorAll("#departed-rows tr").length,
      status: doc.getElementById("status")?.textContent ?? "",
    };
  });
}

/** The files each DISCONNECT block of the tracker's stdout listed, by peer ID. */
function disconnectBlocks(stdout: string): Map<number, string[]> {
  const out = new Map<number, string[]>();
  const lines = stdout.split("\n");
  lines.forEach((line, i) => {
    const head = /^PEER (\d+) DISCONNECT: RECEIVED (\d+)$/.exec(line);
    if (head === null) return;
    const block = parseDisconnectBlock(lines.slice(i, i + 1 + Number(head[2])));
    if (block !== undefined) out.set(block.peerId, block.received);
  });
  return out;
}

browserTest("web view: live piece bars reach 100 % in Chromium, names shown as text, peers seen leaving", async (t) => {
  const previous = process.env.UDPSWARM_HTTP;
  process.env.UDPSWARM_HTTP = "0"; // Swarm starts tracker.sh with this environment.
  t.teardown(() => {
    if (previous === undefined) delete process.env.UDPSWARM_HTTP;
    else process.env.UDPSWARM_HTTP = previous;
  });
  const swarm = await Swarm.start(t, { timeoutMs: 90_000 });
  const announced = /udpswarm tracker: web view at (http:\/\/\S+)/.exec(swarm.tracker.stderr().toString("utf8"));
  t.truthy(announced, "the tracker prints the web view's URL on stderr");
  const url = announced?.[1] ?? "";
  t.regex(url, /^http:\/\/127\.0\.0\.1:\d+\/$/, "on loopback unless --http-host says otherwise");

  const browser: Browser = await chromium.launch({
    executablePath: CHROMIUM ?? "chromium",
    args: FLAGS,
    headless: true,
  });
  t.teardown(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
  const dialogs: string[] = [];
  const problems: string[] = [];
  page.on("dialog", (dialog) => {
    dialogs.push(`${dialog.type()}: ${dialog.message()}`);
    void dialog.dismiss();
  });
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error") problems.push(`console error: ${message.text()}`);
  });

  await page.goto(url);
  await page.waitForSelector("#status.live", { timeout: 10_000 });
  t.true(await page.isVisible("#no-peers"), "an empty swarm says so");

  const files: Record<string, FileSpec[]> = {
    a: [{ name: EVIL, size: 300_000 }],
    b: [{ name: "video.bin", size: 1024 * 1024 + 17 }],
    c: [
      { name: `notes & "quotes" 'too'.md`, size: 5000 },
      { name: "empty.dat", size: 0 },
    ],
  };
  const gate = await swarm.gate(3);
  const minAlive = 8; // long enough for the page to see everyone complete before anyone leaves
  const peers = await Promise.all(
    Object.entries(files).map(([label, list]) => swarm.startPeer({ label, files: list, minAlive, gate })),
  );
  const fileCount = Object.values(files).flat().length;
  const expectedBars = fileCount * peers.length;

  // Every bar at 100 %: each of the 3 peers holds each of the 4 files. Meanwhile, at every
  // poll, a peer that lacks a file must read "downloading" (never "ready to leave").
  try {
    await page.waitForFunction(
      (expected: number) => {
        const global = globalThis as unknown as { document: Doc; stateProblems?: string[] };
        const doc = global.document;
        global.stateProblems ??= [];
        for (const tr of Array.from(doc.querySelectorAll("#peer-rows tr"))) {
          const cells = Array.from(tr.querySelectorAll("td")).map((td) => td.textContent ?? "");
          const [held, total] = (cells[3] ?? "").split(" / ").map(Number);
          const lacking = held !== undefined && total !== undefined && held < total;
          if (lacking && cells[2] !== "downloading") global.stateProblems.push(cells.join(" | "));
        }
        const bars = Array.from(doc.querySelectorAll("canvas.bar"));
        return bars.length === expected && bars.every((b) => b.dataset.percent === "100");
      },
      expectedBars,
      { timeout: 60_000, polling: 50 },
    );
  } catch (error) {
    t.log(`page when giving up: ${JSON.stringify(await pageState(page))}`);
    throw error;
  }
  const full = await pageState(page);
  t.is(full.bars.length, expectedBars);
  t.is(full.peerRows, 3);
  const stateProblems = await page.evaluate(
    () => (globalThis as unknown as { stateProblems?: string[] }).stateProblems ?? [],
  );
  t.deepEqual(stateProblems, [], "a peer lacking a file always reads 'downloading'");

  // The same model for scripts, at its stable path.
  const snapshot = (await (await fetch(new URL("api/state.json", url))).json()) as {
    version: number;
    peers: Array<{ activity: string; filesComplete: number; filesTotal: number }>;
  };
  t.is(snapshot.version, 1);
  t.is(snapshot.peers.length, 3);
  for (const p of snapshot.peers) {
    t.is(p.filesComplete, fileCount);
    t.true(p.activity === "seeding" || p.activity === "ready", p.activity);
  }
  const screenshot = path.join(swarm.dir, "web-view.png");
  await page.screenshot({ path: screenshot, fullPage: true });
  t.log(`screenshot: ${screenshot}`);

  // The peers table: 3 live peers, each with every file.
  const rows = await page.evaluate(() => {
    const doc = (globalThis as unknown as { document: Doc }).document;
    return Array.from(doc.querySelectorAll("#peer-rows tr")).map((tr) =>
      Array.from(tr.querySelectorAll("td")).map((td) => td.textContent ?? ""),
    );
  });
  t.is(rows.length, 3);
  for (const cells of rows) {
    t.regex(cells[1] ?? "", /^127\.0\.0\.1:\d+$/);
    t.is(cells[3], `${fileCount} / ${fileCount}`);
    t.true(cells[2] === "seeding" || cells[2] === "ready to leave", `state ${cells[2]}`);
    // Upload and retransmissions come from the counters each peer reports once a second.
    t.regex(cells[6] ?? "", /^\d+(\.\d+)? (B|KiB|MiB|GiB)\/s$/, "upload rate from the peer's counters");
    t.regex(cells[7] ?? "", /^\d+$/, "retransmissions from the peer's counters");
  }

  // Names from the network are text, never markup.
  const names = await page.locator(".file-name").allTextContents();
  t.deepEqual(names, [EVIL, "empty.dat", `notes & "quotes" 'too'.md`, "video.bin"], "byte order of names");
  const evil = page.locator(".file-name", { hasText: EVIL });
  t.is(await evil.count(), 1);
  t.is(await evil.textContent(), EVIL);
  t.is(await evil.innerHTML(), "&lt;img src=x onerror=alert(1)&gt;.txt");
  t.is(await page.locator("img").count(), 0, "no <img> element came from a file name");
  t.true(await page.getByText(EVIL, { exact: true }).isVisible(), "the name is readable on the page");

  // Everyone leaves once MIN_ALIVE has passed: the page follows.
  await swarm.waitFor("every peer to exit", () => peers.every((p) => p.exited));
  await page.waitForFunction(
    () => {
      const doc = (globalThis as unknown as { document: Doc }).document;
      return (
        doc.querySelectorAll("#peer-rows tr").length === 0 &&
        doc.querySelectorAll("#departed-rows tr").length === 3 &&
        doc.querySelectorAll("canvas.bar").length === 0
      );
    },
    undefined,
    { timeout: 10_000, polling: 50 },
  );
  t.true(await page.isVisible("#no-peers"));
  t.true(await page.isVisible("#no-files"), "no live peer holds any file any more");
  // "Recently departed" lists what each DISCONNECT block said, no older count.
  const departedRows = await page.evaluate(() => {
    const doc = (globalThis as unknown as { document: Doc }).document;
    return Array.from(doc.querySelectorAll("#departed-rows tr")).map((tr) => ({
      id: tr.dataset.peerId ?? "",
      received: tr.querySelectorAll("td")[3]?.textContent ?? "",
    }));
  });
  const blocks = disconnectBlocks(swarm.tracker.stdout().toString("utf8"));
  t.is(blocks.size, 3);
  for (const row of departedRows) {
    const names = blocks.get(Number(row.id));
    t.truthy(names, `a DISCONNECT block for peer ${row.id}`);
    const files = `${names?.length} file${names?.length === 1 ? "" : "s"}`;
    t.is(row.received, names?.length === 0 ? files : `${files}: ${names?.join(", ")}`);
  }

  const problemsWhileLive = [...problems];
  const result = await swarm.finish();
  swarm.logSummary(result);
  await page.waitForSelector("#status.down", { timeout: 10_000 });

  t.deepEqual(dialogs, [], "no script ran from a file name");
  // (Once the tracker is stopped, the browser reports the broken event stream: expected.)
  t.deepEqual(problemsWhileLive, [], "no script error, CSP violation or failed load while the tracker ran");
});
