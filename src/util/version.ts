import { readFileSync } from "node:fs";

/**
 * The package version, from udpswarm's package.json: the nearest one above this module,
 * which is dist/src/util/ when run from the modules and dist/ when run from a bundle.
 */
export function packageVersion(): string {
  for (let up = "../"; up.length <= 4 * 3; up += "../") {
    try {
      const pkg = JSON.parse(readFileSync(new URL(`${up}package.json`, import.meta.url), "utf8")) as {
        name?: unknown;
        version?: unknown;
      };
      if (pkg.name === "udpswarm" && typeof pkg.version === "string") return pkg.version;
    } catch {
      // not at this level
    }
  }
  return "unknown";
}
