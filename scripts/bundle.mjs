// Bundles the peer into one file (run by `make` / `npm run build`, after tsc). A peer
// starts in a fraction of a second, and loading ~100 ES modules was most of it: resolving
// and reading each file and linking the graph cost ~60 ms on a quiet machine (~120 ms on
// a busy one) before any work. One bundle without whitespace skips all of that; names are
// kept, so stack traces stay readable.
//
// The bundle is CommonJS, not an ES module: importing a Node builtin from an ES module
// builds an ES facade of all its exports, which touches lazy getters (node:fs's
// ReadStream pulls in the whole streams stack) - about 13 ms of CPU per start here
// (10 starts: 2.07 -> 1.94 s). And a CommonJS script can be compiled from V8's code
// cache: dist/peer-start.cjs (what peer.sh runs) compiles dist/peer.cjs with
// dist/peer.cjs.cache, written below by that same launcher under the flags peer.sh
// gives node (V8 refuses a cache made under other flags) - another ~5 ms.

import { spawnSync } from "node:child_process";
import { copyFileSync, readFileSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const bundle = join(root, "dist/peer.cjs");
const launcher = join(root, "dist/peer-start.cjs");

await build({
  entryPoints: [join(root, "dist/src/peer/main.js")],
  outfile: bundle,
  bundle: true,
  platform: "node",
  format: "cjs",
  target: "node20",
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: "none",
  // The modules find package.json from import.meta.url (src/util/version.ts).
  define: { "import.meta.url": "__udpswarmModuleUrl" },
  banner: { js: 'const __udpswarmModuleUrl = require("node:url").pathToFileURL(__filename).href;' },
  logLevel: "warning",
});
rmSync(join(root, "dist/peer.mjs"), { force: true });
copyFileSync(join(root, "scripts/peer-start.cjs"), launcher);

// The node flags of peer.sh's `exec node FLAGS "$here/dist/peer-start.cjs"` line.
const peerSh = readFileSync(join(root, "peer.sh"), "utf8");
const exec = /^exec node ((?:--[\w-]+(?:=\S+)? )*)"\$here\/dist\/peer-start\.cjs"/m.exec(peerSh);
if (exec === null) throw new Error('bundle: peer.sh has no `exec node FLAGS "$here/dist/peer-start.cjs"` line');
const flags = (exec[1] ?? "")
  .trim()
  .split(/\s+/)
  .filter((f) => f !== "");
const made = spawnSync(process.execPath, [...flags, launcher], {
  env: { ...process.env, UDPSWARM_WRITE_CODE_CACHE: "1" },
  encoding: "utf8",
});
if (made.status !== 0) throw new Error(`bundle: writing the code cache failed: ${made.stderr}`);
