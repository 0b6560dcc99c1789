import { randomBytes, type ScryptOptions, scrypt, timingSafeEqual } from "node:crypto";

/** scrypt's cost: N = 2^logN, r, p (OWASP's 2^17 / 8 / 1: ~128 MiB and a few hundred ms per hash). */
export type ScryptParams = { readonly logN: number; readonly r: number; readonly p: number };

export const DEFAULT_SCRYPT: ScryptParams = { logN: 17, r: 8, p: 1 };
/** Memory scrypt may use (N = 2^17, r = 8 needs 128 MiB). */
export const SCRYPT_MAXMEM = 256 * 1024 * 1024;
const SALT_BYTES = 16;
const KEY_BYTES = 32;
const PREFIX = "scrypt";

function derive(password: string, salt: Buffer, params: ScryptParams): Promise<Buffer> {
  const options: ScryptOptions = { N: 2 ** params.logN, r: params.r, p: params.p, maxmem: SCRYPT_MAXMEM };
  return new Promise((resolve, reject) =>
    scrypt(password.normalize("NFC"), salt, KEY_BYTES, options, (err, key) => (err ? reject(err) : resolve(key))),
  );
}

/**
 * A password's stored form: `scrypt$logN$r$p$salt$key` (salt and key in base64), the
 * parameters kept with the hash so that a later cost change still verifies old ones.
 * Hashing runs on libuv's thread pool (async), never on the event loop.
 */
export async function hashPassword(password: string, params: ScryptParams = DEFAULT_SCRYPT): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const key = await derive(password, salt, params);
  return [PREFIX, params.logN, params.r, params.p, salt.toString("base64"), key.toString("base64")].join("$");
}

/** Whether `password` matches `stored`; false (never an exception) for a damaged record. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parts = stored.split("$");
  if (parts.length !== 6 || parts[0] !== PREFIX) return false;
  const [logN, r, p] = parts.slice(1, 4).map(Number);
  if (logN === undefined || r === undefined || p === undefined) return false;
  if (![logN, r, p].every((v) => Number.isInteger(v) && v > 0) || logN > 20 || r > 32 || p > 16) return false;
  const salt = Buffer.from(parts[4] ?? "", "base64");
  const expected = Buffer.from(parts[5] ?? "", "base64");
  if (expected.length !== KEY_BYTES) return false;
  const key = await derive(password, salt, { logN, r, p });
  return timingSafeEqual(key, expected);
}
