/** The reference tools: found or missing (the benchmark installs nothing itself). */
import { runSync } from "./proc.js";
import { which } from "./util.js";

export type ToolName = "aria2c" | "opentracker" | "mktorrent" | "atftpd" | "atftp";

export type Tool = { readonly name: ToolName; readonly path: string | undefined; readonly version: string };

export type Reference = {
  readonly name: string;
  readonly tools: readonly ToolName[];
  readonly install: string;
};

export const REFERENCES = {
  tftp: { name: "TFTP (atftpd + atftp)", tools: ["atftpd", "atftp"], install: "apt-get install atftpd atftp" },
  bittorrent: {
    name: "BitTorrent (aria2c + opentracker + mktorrent)",
    tools: ["aria2c", "opentracker", "mktorrent"],
    install: "apt-get install aria2 opentracker mktorrent",
  },
} as const satisfies Record<string, Reference>;

function versionOf(name: ToolName, path: string): string {
  const first = (args: string[]) => runSync(path, args).output.split("\n")[0]?.trim() ?? "";
  switch (name) {
    case "aria2c":
      return first(["--version"]);
    case "atftp":
    case "atftpd":
      return first(["--version"]);
    case "mktorrent":
      return first(["-h"]).replace(/ \(c\).*/, "");
    case "opentracker":
      return "";
  }
}

export function findTools(): Map<ToolName, Tool> {
  const names: ToolName[] = ["aria2c", "opentracker", "mktorrent", "atftpd", "atftp"];
  return new Map(
    names.map((name) => {
      const path = which(name);
      return [name, { name, path, version: path === undefined ? "" : versionOf(name, path) }];
    }),
  );
}

/** Undefined when every tool of `ref` is there, else a line saying what is missing and how to install it. */
export function missingFor(ref: Reference, tools: Map<ToolName, Tool>): string | undefined {
  const missing = ref.tools.filter((t) => tools.get(t)?.path === undefined);
  if (missing.length === 0) return undefined;
  return `${ref.name}: ${missing.join(", ")} not found, reference skipped (install: ${ref.install})`;
}
