// Bundles the peer into one file (run by `make` / `npm run build`, after tsc). A peer
// starts in a fraction of a second, and loading ~100 ES modules was most of it: resolving
// and reading each file and linking the graph cost ~60 ms on a quiet machine (~120 ms on
// a busy one) before any work. One bundle without whitespace skips all of that; names are
// kept, so stack traces stay readable.

import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

await build({
  entryPoints: [join(root, "dist/src/peer/main.js")],
  outfile: join(root, "dist/peer.mjs"),
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: "none",
  // protobufjs is CommonJS and reaches for `require`, which an ES module lacks.
  banner: {
    js: 'import { createRequire as __udpswarmRequire } from "node:module"; const require = __udpswarmRequire(import.meta.url);',
  },
  logLevel: "warning",
});
