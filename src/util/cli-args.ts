import { SwarmError } from "./errors.js";

/** A tiny, strict option parser: `--name value` or `--name=value`, booleans as `--flag`. */
export type OptionSpec = {
  readonly name: string;
  readonly kind: "string" | "number" | "boolean";
  /** Environment variable that supplies the value when the flag is absent. */
  readonly env?: string;
  readonly help: string;
  readonly placeholder?: string;
};

export type ParsedArgs = {
  readonly positional: string[];
  readonly values: Map<string, string | number | boolean>;
};

export function parseArgs(argv: readonly string[], specs: readonly OptionSpec[], env: NodeJS.ProcessEnv): ParsedArgs {
  const byName = new Map(specs.map((s) => [s.name, s]));
  const positional: string[] = [];
  const values = new Map<string, string | number | boolean>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? "";
    if (!arg.startsWith("--") || arg === "--") {
      positional.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    const spec = byName.get(name);
    if (spec === undefined) throw new SwarmError("ERR_USAGE", `unknown option --${name}`);
    if (spec.kind === "boolean") {
      if (eq >= 0) throw new SwarmError("ERR_USAGE", `option --${name} takes no value`);
      values.set(name, true);
      continue;
    }
    let raw: string | undefined;
    if (eq >= 0) raw = arg.slice(eq + 1);
    else {
      raw = argv[i + 1];
      i++;
    }
    if (raw === undefined)
      throw new SwarmError("ERR_USAGE", `option --${name} needs a value (${spec.placeholder ?? spec.kind})`);
    values.set(name, convert(spec, raw, `--${name}`));
  }
  for (const spec of specs) {
    if (values.has(spec.name) || spec.env === undefined) continue;
    const raw = env[spec.env];
    if (raw === undefined || raw === "") continue;
    values.set(spec.name, spec.kind === "boolean" ? raw !== "0" && raw !== "false" : convert(spec, raw, spec.env));
  }
  return { positional, values };
}

function convert(spec: OptionSpec, raw: string, where: string): string | number {
  if (spec.kind === "string") return raw;
  const n = Number(raw);
  if (raw.trim() === "" || !Number.isFinite(n)) {
    throw new SwarmError(
      "ERR_USAGE",
      `${where} must be a number (${spec.placeholder ?? "number"}), got ${JSON.stringify(raw)}`,
    );
  }
  return n;
}

export function formatOptions(specs: readonly OptionSpec[]): string {
  const rows = specs.map((s) => {
    const left = `  --${s.name}${s.kind === "boolean" ? "" : ` ${s.placeholder ?? s.kind.toUpperCase()}`}`;
    const env = s.env === undefined ? "" : ` [env ${s.env}]`;
    return [left, `${s.help}${env}`] as const;
  });
  const width = Math.max(...rows.map(([l]) => l.length)) + 2;
  return rows.map(([l, r]) => l.padEnd(width) + r).join("\n");
}
