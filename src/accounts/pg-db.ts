import pg from "pg";
import { type Result, type Row, type SqlDb, type SqlQueries, StoreBusyError } from "./sql-db.js";

/** Connections one tracker keeps open to PostgreSQL at most. */
export const POOL_SIZE = 8;
/** A serializable transaction that lost a race is run again this many times at most. */
const MAX_RETRIES = 8;
/** Any fixed number: the advisory lock that trackers migrating one database take in turn. */
const MIGRATION_LOCK = 0x75647073; // "udps"

/** int8 (COUNT(*), BIGINT columns) as a number: ids and ms times stay far below 2^53. */
const types = {
  getTypeParser: ((oid: number, format?: string) =>
    oid === pg.types.builtins.INT8
      ? (v: string) => Number(v)
      : pg.types.getTypeParser(oid, format as "text")) as typeof pg.types.getTypeParser,
};

/** `?` placeholders numbered `$1, $2, …` (the statements hold no `?` in literals). */
export function numberPlaceholders(sql: string): string {
  let n = 0;
  return sql.replace(/\?/gu, () => `$${++n}`);
}

async function run<T extends Row>(
  client: pg.Pool | pg.PoolClient,
  sql: string,
  params: readonly unknown[],
): Promise<Result<T>> {
  const res = await client.query<T>(numberPlaceholders(sql), params as unknown[]);
  return { rows: res.rows, changes: res.command === "SELECT" ? res.rows.length : (res.rowCount ?? 0) };
}

/** Serialization failure and deadlock: the transaction lost a race and may simply run again. */
const RETRYABLE = new Set(["40001", "40P01"]);

/** PostgreSQL through node-postgres: a pool of connections, SERIALIZABLE transactions. */
export class PgDb implements SqlDb {
  readonly kind = "postgres";
  readonly pool: pg.Pool;
  readonly #url: string;

  constructor(url: string, log: (line: string) => void) {
    this.#url = url;
    this.pool = new pg.Pool({ connectionString: url, max: POOL_SIZE, types, connectionTimeoutMillis: 10_000 });
    // An idle connection's error (the server restarted) must not crash the tracker.
    this.pool.on("error", (err) => log(`store connection lost: ${err.message}`));
  }

  /** A new client outside the pool (LISTEN keeps its connection for itself). */
  dedicatedClient(): pg.Client {
    return new pg.Client({ connectionString: this.#url, types });
  }

  query<T extends Row = Row>(sql: string, params: readonly unknown[] = []): Promise<Result<T>> {
    return run<T>(this.pool, sql, params);
  }

  async transaction<T>(fn: (q: SqlQueries) => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const client = await this.pool.connect();
      let broken = false;
      try {
        await client.query("BEGIN ISOLATION LEVEL SERIALIZABLE");
        const result = await fn({ query: (sql, params = []) => run(client, sql, params) });
        await client.query("COMMIT");
        return result;
      } catch (err) {
        await client.query("ROLLBACK").catch(() => {
          broken = true;
        });
        const code = (err as { code?: unknown }).code;
        if (typeof code !== "string" || !RETRYABLE.has(code)) throw err;
        if (attempt >= MAX_RETRIES)
          throw new StoreBusyError("the store is busy (concurrent changes); try again", { cause: err });
      } finally {
        client.release(broken);
      }
    }
  }

  async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    try {
      await client.query("SELECT pg_advisory_lock($1)", [MIGRATION_LOCK]);
      try {
        return await fn();
      } finally {
        await client.query("SELECT pg_advisory_unlock($1)", [MIGRATION_LOCK]);
      }
    } finally {
      client.release();
    }
  }

  close(): Promise<void> {
    return this.pool.end();
  }
}
