import { checkFileName } from "../wire/names.js";

/** Longest user name and group name (UTF-8 bytes). */
export const MAX_USER_BYTES = 32;
export const MAX_GROUP_BYTES = 64;
/** Password length bounds (UTF-8 bytes): a floor against the trivial, a ceiling against hashing megabytes. */
export const MIN_PASSWORD_BYTES = 4;
export const MAX_PASSWORD_BYTES = 1024;

/** Why a user or group name is refused (the file-name rules plus a length limit), or undefined. */
export function checkAccountName(kind: "user" | "group", name: string): string | undefined {
  const max = kind === "user" ? MAX_USER_BYTES : MAX_GROUP_BYTES;
  if (Buffer.byteLength(name, "utf8") > max) return `a ${kind} name is at most ${max} bytes`;
  const problem = checkFileName(name);
  return problem === undefined ? undefined : `bad ${kind} name: ${problem}`;
}

export function checkPassword(password: string): string | undefined {
  const bytes = Buffer.byteLength(password, "utf8");
  if (bytes < MIN_PASSWORD_BYTES) return `a password has at least ${MIN_PASSWORD_BYTES} characters`;
  if (bytes > MAX_PASSWORD_BYTES) return `a password is at most ${MAX_PASSWORD_BYTES} bytes`;
  return undefined;
}
