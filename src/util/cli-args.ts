import { SwarmError } from "./errors.js";

/** A tiny, strict option parser: `--name value` or `--name=value`, booleans as `--flag`. */
export type OptionSpec = {
  readonly name: string;
  readonly kind: "string" | "number" | "boolean";
  /** Environment variable that supplies the value when the flag is absent. */
  readonly env?: string;
  readonly help: string;
  readonly placeholder?: string;
  /** A one-letter alias used as `-x` (e.g. "h" for --help). */
  readonly short?: string;
};

export type ParsedArgs = {
  readonly positional: string[];
  readonly values: Map<string, string | number | boolean>;
  /** Where each value came from ("--port", or the environment variable's name), for messages. */
  readonly sources: Map<string, string>;
};

export function parseArgs(argv: readonly string[], specs: readonly OptionSpec[], env: NodeJS.ProcessEnv): ParsedArgs {
  const byName = new Map(specs.map((s) => [s.name, s]));
  const positional: string[] = [];
  const values = new Map<string, string | number | boolean>();
  const sources = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i] ?? "";
    // "-h": a one-letter alias; any other single-dash word ("-1") stays an argument.
    const short = /^-([A-Za-z])$/.exec(arg)?.[1];
    const aliased = short === undefined ? undefined : specs.find((s) => s.short === short);
    if (aliased !== undefined) arg = `--${aliased.name}`;
    if (!arg.startsWith("--") || arg === "--") {
      positional.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    const spec = byName.get(name);
    if (spec === undefined) throw new SwarmError("ERR_USAGE", `unknown option --${name} (see --help)`);
    sources.set(name, `--${name}`);
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
    sources.set(spec.name, spec.env);
    values.set(spec.name, spec.kind === "boolean" ? raw !== "0" && raw !== "false" : convert(spec, raw, spec.env));
  }
  return { positional, values, sources };
}

/**
 * An integer option within [min, max] (or `fallback` when absent); a value outside is a
 * usage error that names where it came from and echoes it.
 */
export function integerOption(args: ParsedArgs, name: string, min: number, max: number, fallback: number): number {
  const value = args.values.get(name);
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!(Number.isSafeInteger(n) && n >= min && n <= max)) {
    const range = max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer ${min}..${max}`;
    throw new SwarmError(
      "ERR_USAGE",
      `${args.sources.get(name) ?? `--${name}`} must be ${range}, got ${String(value)}`,
    );
  }
  return n;
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

/** Help text is wrapped to this many columns. */
export const HELP_COLUMNS = 80;
/** The option column never takes more than this; a longer option gets its text on the next line. */
const MAX_OPTION_COLUMN = 26;

/** The options as help text: one entry per option, wrapped to HELP_COLUMNS. */
export function formatOptions(specs: readonly OptionSpec[]): string {
  const rows = specs.map((s) => {
    const flag = `--${s.name}${s.kind === "boolean" ? "" : ` ${s.placeholder ?? s.kind.toUpperCase()}`}`;
    const left = `  ${s.short === undefined ? "" : `-${s.short}, `}${flag}`;
    // NUL keeps "[env NAME]" one word for wrap(); it is a space again once wrapped (help
    // texts use it the same way: "64\u0000GiB").
    const env = s.env === undefined ? "" : ` [env\u0000${s.env}]`;
    return [left, `${s.help}${env}`] as const;
  });
  const width = Math.min(MAX_OPTION_COLUMN, Math.max(...rows.map(([l]) => l.length)) + 2);
  const out: string[] = [];
  for (const [left, text] of rows) {
    const lines = wrap(text, HELP_COLUMNS - width);
    if (left.length + 2 > width) out.push(left);
    else out.push(left.padEnd(width) + (lines.shift() ?? ""));
    for (const line of lines) out.push(" ".repeat(width) + line);
  }
  return out.join("\n").replaceAll("\u0000", " ");
}

/** Greedy word wrap to `columns` (a longer word stays whole on its own line). */
export function wrap(text: string, columns: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/)) {
    if (word === "") continue;
    if (line !== "" && line.length + 1 + word.length > columns) {
      lines.push(line);
      line = word;
    } else line = line === "" ? word : `${line} ${word}`;
  }
  if (line !== "") lines.push(line);
  return lines;
}
