import test from "ava";
import { MAX_NAME_BYTES } from "../../src/wire/limits.js";
import { checkFileName, isPlainFileName } from "../../src/wire/names.js";

const ACCEPTED = [
  "file.txt",
  "a",
  "a b c",
  "a..b",
  "trailing.",
  "-dash",
  "日本語.txt",
  "emoji-😀.bin",
  "x".repeat(MAX_NAME_BYTES),
  // 85 three-byte characters = 255 bytes
  "日".repeat(85),
];

for (const name of ACCEPTED) {
  test(`accepts ${JSON.stringify(name.length > 20 ? `${name.slice(0, 4)}…(${name.length} chars)` : name)}`, (t) => {
    t.is(checkFileName(name), undefined);
    t.true(isPlainFileName(name));
  });
}

const REFUSED: ReadonlyArray<readonly [string, string]> = [
  ["", "empty name"],
  [".", "name is . or .."],
  ["..", "name is . or .."],
  [".hidden", "hidden name"],
  ["../../escape", "name contains a path separator"],
  ["a/b", "name contains a path separator"],
  ["a\\b", "name contains a path separator"],
  ["/abs", "name contains a path separator"],
  ["dir/", "name contains a path separator"],
  ["x/../../etc", "name contains a path separator"],
  ["a\u0000b", "name contains a control character"],
  ["a\nb", "name contains a control character"],
  ["a\rb", "name contains a control character"],
  ["tab\t", "name contains a control character"],
  ["del\u007f", "name contains a control character"],
  ["c1\u0085", "name contains a control character"],
  ["c1\u009f", "name contains a control character"],
  ["bad\ufffd", "name is not valid UTF-8"],
  ["x".repeat(MAX_NAME_BYTES + 1), "name longer than 255 bytes"],
  // 86 three-byte characters = 258 bytes, although only 86 UTF-16 units
  ["日".repeat(86), "name longer than 255 bytes"],
  // 254 ASCII bytes + one 2-byte character = 256 bytes
  [`${"x".repeat(254)}é`, "name longer than 255 bytes"],
];

for (const [name, reason] of REFUSED) {
  test(`refuses ${JSON.stringify(name.length > 20 ? `${name.slice(0, 4)}…(${name.length} chars)` : name)}: ${reason}`, (t) => {
    t.is(checkFileName(name), reason);
    t.false(isPlainFileName(name));
  });
}

test("MAX_NAME_BYTES is 255", (t) => {
  t.is(MAX_NAME_BYTES, 255);
});
