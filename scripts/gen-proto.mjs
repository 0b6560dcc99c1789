// Generates the static protobuf codec from proto/*.proto (run by `make` / `npm run build`).
// The output in src/wire/gen/ is built, never edited, and not committed.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const protoDir = join(root, "proto");
const outDir = join(root, "src", "wire", "gen");
const outJs = join(outDir, "swarm.js");
const outDts = join(outDir, "swarm.d.ts");
const bin = (name) => join(root, "node_modules", ".bin", name);

const protos = readdirSync(protoDir)
  .filter((f) => f.endsWith(".proto"))
  .map((f) => join(protoDir, f));
const newestInput = Math.max(
  ...protos.map((p) => statSync(p).mtimeMs),
  statSync(import.meta.filename ?? fileURLToPath(import.meta.url)).mtimeMs,
);
const upToDate =
  existsSync(outJs) &&
  existsSync(outDts) &&
  statSync(outJs).mtimeMs >= newestInput &&
  statSync(outDts).mtimeMs >= statSync(outJs).mtimeMs;

if (!upToDate) {
  mkdirSync(outDir, { recursive: true });
  execFileSync(
    bin("pbjs"),
    [
      "-t",
      "static-module",
      "-w",
      "es6",
      "--no-verify",
      "--no-convert",
      "--no-delimited",
      "--force-number",
      "-o",
      outJs,
      ...protos,
    ],
    { stdio: "inherit" },
  );
  execFileSync(bin("pbts"), ["-o", outDts, outJs], { stdio: "inherit" });
  process.stderr.write(`generated ${outJs}\n`);
}
