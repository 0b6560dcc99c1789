import { MAX_NAME_BYTES } from "./limits.js";

/**
 * A file name from the network is accepted only as a plain base name: no path
 * separators, no "." or "..", no NUL or other control characters, not hidden, and at
 * most MAX_NAME_BYTES of UTF-8. Returns a reason when the name is refused.
 */
export function checkFileName(name: string): string | undefined {
  if (name.length === 0) return "empty name";
  if (Buffer.byteLength(name, "utf8") > MAX_NAME_BYTES) return `name longer than ${MAX_NAME_BYTES} bytes`;
  if (name === "." || name === "..") return "name is . or ..";
  if (name.includes("/") || name.includes("\\")) return "name contains a path separator";
  if (name.startsWith(".")) return "hidden name";
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what we refuse.
  if (/[\u0000-\u001f\u007f-\u009f]/u.test(name)) return "name contains a control character";
  if (name.includes("\ufffd")) return "name is not valid UTF-8";
  return undefined;
}

export function isPlainFileName(name: string): boolean {
  return checkFileName(name) === undefined;
}
