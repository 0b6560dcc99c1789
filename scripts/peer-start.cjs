// What peer.sh runs: the peer bundle (dist/peer.cjs, see scripts/bundle.mjs) compiled from
// V8's code cache (dist/peer.cjs.cache) when there is one that fits this node and these
// flags, else compiled as usual. UDPSWARM_WRITE_CODE_CACHE=1 writes the cache instead of
// starting the peer (the build does that, under peer.sh's flags);
// UDPSWARM_DEBUG_CODE_CACHE=1 says on stderr whether V8 took the cache (a test checks it).
"use strict";
const { readFileSync, writeFileSync } = require("node:fs");
const { createRequire, wrap } = require("node:module");
const { join } = require("node:path");
const { Script } = require("node:vm");

const bundle = join(__dirname, "peer.cjs");
const cachePath = `${bundle}.cache`;
const writing = process.env.UDPSWARM_WRITE_CODE_CACHE === "1";
// esbuild keeps main.js's "#!" line, which is not valid inside the module wrapper.
const source = readFileSync(bundle, "utf8").replace(/^#!.*/, "");
let cachedData;
if (!writing) {
  try {
    cachedData = readFileSync(cachePath);
  } catch {
    cachedData = undefined; // no cache: V8 compiles the source
  }
}
const script = new Script(wrap(source), { filename: bundle, cachedData });
if (process.env.UDPSWARM_DEBUG_CODE_CACHE === "1") {
  const state = cachedData === undefined ? "missing" : script.cachedDataRejected ? "rejected" : "accepted";
  process.stderr.write(`udpswarm peer: code cache ${state}\n`);
}
if (writing) {
  writeFileSync(cachePath, script.createCachedData());
} else {
  const peerModule = { exports: {} };
  script
    .runInThisContext()
    .call(peerModule.exports, peerModule.exports, createRequire(bundle), peerModule, bundle, __dirname);
}
