/**
 * The README and docs/ stay true to the programs: every option `--help` lists is in the
 * README's tables, the exit statuses in docs/contract.md are the ones the code maps
 * errors to, and every link stays inside the repository.
 */
import { existsSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import test from "ava";
import { PEER_EXIT_STATUSES, type StatusTable, TRACKER_EXIT_STATUSES } from "../../src/util/errors.js";
import { PEER_SH, ROOT, runToExit, TRACKER_SH, tempDir } from "../helpers/swarm.js";

const read = (file: string): Promise<string> => readFile(path.join(ROOT, file), "utf8");

for (const [program, script, heading] of [
  ["peer", PEER_SH, "### Peer options"],
  ["tracker", TRACKER_SH, "### Tracker options"],
] as const) {
  test(`README lists every option of ${program}.sh --help, and no other`, async (t) => {
    const run = await runToExit(program, "sh", [script, "--help"], { cwd: await tempDir(t) });
    const help = run.stdout.toString("utf8");
    const fromHelp = [...help.matchAll(/^ {2}(?:-\w, )?(--[a-z-]+(?: [A-Z]+)?)/gm)].map((m) => m[1] ?? "");
    t.true(fromHelp.length >= 5, `options found in --help: ${fromHelp.join(", ")}`);
    const readme = await read("README.md");
    const start = readme.indexOf(heading);
    t.true(start >= 0, `README has "${heading}"`);
    const rest = readme.slice(start + heading.length);
    const section = rest.slice(0, rest.search(/\n#{2,3} /));
    const fromReadme = [...section.matchAll(/^\| `(?:-\w`, `)?(--[a-z-]+(?: [A-Z]+)?)`/gm)].map((m) => m[1] ?? "");
    t.deepEqual(fromReadme, fromHelp, "same options, same placeholders, same order");
    if (help.includes("-h, --help")) t.regex(section, /^\| `-h`, `--help` \|/m);
  });
}

function statusTable(markdown: string, caption: string): Array<[number, string]> {
  const start = markdown.indexOf(`\n${caption}\n`);
  if (start < 0) return [];
  const rows: Array<[number, string]> = [];
  for (const line of markdown
    .slice(start + caption.length + 2)
    .split("\n")
    .slice(1)) {
    if (!line.startsWith("|")) break;
    const m = /^\| (\d+) \| (.+) \|$/.exec(line);
    if (m !== null) rows.push([Number(m[1]), m[2] ?? ""]);
  }
  return rows;
}

test("docs/contract.md lists the exit statuses the code maps errors to", async (t) => {
  const contract = await read("docs/contract.md");
  const same = (table: StatusTable) => table.map(([s, meaning]) => [s, meaning]);
  t.deepEqual(statusTable(contract, "Peer:"), same(PEER_EXIT_STATUSES));
  t.deepEqual(statusTable(contract, "Tracker:"), same(TRACKER_EXIT_STATUSES));
});

test("README and docs/ point only inside the repository", async (t) => {
  const docs = (await readdir(path.join(ROOT, "docs"))).filter((f) => f.endsWith(".md")).map((f) => `docs/${f}`);
  t.true(docs.includes("docs/contract.md"));
  for (const file of ["README.md", ...docs]) {
    const text = await read(file);
    t.notRegex(text, /\bSPEC\b|shared\/SPEC|\/work\/|the issue/i, `${file} refers to something outside the repository`);
    for (const m of text.matchAll(/\]\(([^)#\s]+)(#[^)]*)?\)/g)) {
      const target = m[1] ?? "";
      if (/^[a-z]+:/.test(target)) continue; // http:, https:, mailto:
      const resolved = path.resolve(ROOT, path.dirname(file), target);
      t.true(resolved.startsWith(`${ROOT}${path.sep}`), `${file}: ${target} leaves the repository`);
      t.true(existsSync(resolved), `${file}: ${target} does not exist`);
    }
  }
});
