import { SqlStore } from "./sql-store.js";

/** A PostgreSQL URL rather than a SQLite file path. */
export function isPostgresUrl(location: string): boolean {
  return /^postgres(ql)?:\/\//u.test(location);
}

/**
 * Opens the store at `location`: a PostgreSQL URL (`postgres://…`, driver loaded only then)
 * or a SQLite file path (created if missing), with its schema brought up to date.
 */
export async function openStore(
  location: string,
  log: (line: string) => void,
  now: number = Date.now(),
): Promise<SqlStore> {
  if (isPostgresUrl(location)) {
    const { PgDb } = await import("./pg-db.js");
    return SqlStore.open(new PgDb(location, log), now);
  }
  const { SqliteDb } = await import("./sqlite-db.js");
  return SqlStore.open(new SqliteDb(location), now);
}

/** The location as it may be logged: a URL without its password. */
export function storeLabel(location: string): string {
  if (!isPostgresUrl(location)) return location;
  try {
    const url = new URL(location);
    if (url.password !== "") url.password = "***";
    return url.toString();
  } catch {
    return "postgres://(unparsable URL)";
  }
}
