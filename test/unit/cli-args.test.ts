import test from "ava";
import { formatOptions, integerOption, type OptionSpec, parseArgs, wrap } from "../../src/util/cli-args.js";
import { SwarmError } from "../../src/util/errors.js";

const SPECS: readonly OptionSpec[] = [
  { name: "port", kind: "number", placeholder: "PORT", env: "X_PORT", help: "TCP port" },
  { name: "quiet", kind: "boolean", help: "say less" },
  { name: "help", kind: "boolean", short: "h", help: "show this help and exit" },
];

test("cli-args: -h is --help; any other single-dash word stays an argument", (t) => {
  const args = parseArgs(["-h", "-1", "-x"], SPECS, {});
  t.is(args.values.get("help"), true);
  t.deepEqual(args.positional, ["-1", "-x"]);
});

test("cli-args: an out-of-range integer names its source and echoes the value", (t) => {
  const flag = parseArgs(["--port", "99999"], SPECS, {});
  const error = t.throws(() => integerOption(flag, "port", 0, 65535, 0), { instanceOf: SwarmError });
  t.is(error?.message, "--port must be an integer 0..65535, got 99999");
  t.is((error as SwarmError).code, "ERR_USAGE");
  const env = parseArgs([], SPECS, { X_PORT: "1.5" });
  t.throws(() => integerOption(env, "port", 0, 65535, 0), { message: "X_PORT must be an integer 0..65535, got 1.5" });
  t.is(integerOption(parseArgs([], SPECS, {}), "port", 0, 65535, 7), 7);
  t.is(integerOption(parseArgs(["--port=80"], SPECS, {}), "port", 0, 65535, 7), 80);
  t.throws(() => parseArgs(["--nope"], SPECS, {}), { message: "unknown option --nope (see --help)" });
});

test("cli-args: help is wrapped to 80 columns, [env NAME] kept whole", (t) => {
  const long: OptionSpec = {
    name: "a-rather-long-option-name",
    kind: "number",
    placeholder: "N",
    env: "UDPSWARM_SOMETHING_LONG",
    help: "a help text long enough that it cannot fit on one line next to the option, so it wraps",
  };
  const text = formatOptions([...SPECS, long]);
  const lines = text.split("\n");
  for (const line of lines) t.true(line.length <= 80, line);
  t.true(lines.some((l) => l.includes("[env UDPSWARM_SOMETHING_LONG]")));
  t.true(lines.includes(`${"  -h, --help".padEnd(26)}show this help and exit`), "the option column stops at 26");
  t.true(lines.includes("  --a-rather-long-option-name N"), "a long option gets its text on the next line");
  t.false(text.includes("\u0000"));
  t.deepEqual(wrap("one two three four", 9), ["one two", "three", "four"]);
  t.deepEqual(wrap("unbreakableword x", 4), ["unbreakableword", "x"]);
});
