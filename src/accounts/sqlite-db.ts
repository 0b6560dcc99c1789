import path from "node:path";
import Database from "better-sqlite3";
import type { Result, Row, SqlDb, SqlQueries } from "./sql-db.js";

/** The last queued statement or transaction of each open file (by absolute path). */
const turns = new Map<string, Promise<void>>();

/** How long a statement waits for another process's lock before SQLITE_BUSY (ms). */
export const BUSY_TIMEOUT_MS = 5000;

/**
 * The embedded database: one SQLite file through better-sqlite3, in WAL mode with a busy
 * timeout so that several trackers on one host may share the file. better-sqlite3 is
 * synchronous, but a transaction body is async (the same code runs on PostgreSQL): while
 * one is open, another request's statements would land inside it, so every statement and
 * transaction takes turns through one queue per file: per file and not per connection,
 * because a second connection of the same process waiting for the lock would block the
 * event loop (better-sqlite3 waits synchronously) and so the transaction it waits for.
 */
export class SqliteDb implements SqlDb {
  readonly kind = "sqlite";
  readonly #db: Database.Database;
  readonly #key: string;

  constructor(file: string) {
    this.#key = path.resolve(file);
    const db = new Database(file);
    try {
      db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
      db.pragma("journal_mode = WAL");
      db.pragma("foreign_keys = ON");
      db.pragma("synchronous = NORMAL");
    } catch (err) {
      db.close();
      throw err;
    }
    this.#db = db;
  }

  #inTurn<T>(fn: () => Promise<T>): Promise<T> {
    const run = (turns.get(this.#key) ?? Promise.resolve()).then(fn, fn);
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    turns.set(this.#key, tail);
    // The map forgets a file once its queue is empty.
    void tail.then(() => {
      if (turns.get(this.#key) === tail) turns.delete(this.#key);
    });
    return run;
  }

  #run<T extends Row>(sql: string, params: readonly unknown[]): Result<T> {
    const stmt = this.#db.prepare(sql);
    if (stmt.reader) {
      const rows = stmt.all(...params) as T[];
      return { rows, changes: rows.length };
    }
    return { rows: [], changes: stmt.run(...params).changes };
  }

  query<T extends Row = Row>(sql: string, params: readonly unknown[] = []): Promise<Result<T>> {
    return this.#inTurn(async () => this.#run<T>(sql, params));
  }

  transaction<T>(fn: (q: SqlQueries) => Promise<T>): Promise<T> {
    return this.#inTurn(async () => {
      const q: SqlQueries = {
        query: async <R extends Row>(sql: string, params: readonly unknown[] = []) => this.#run<R>(sql, params),
      };
      // IMMEDIATE: take the write lock at once, so two processes never deadlock upgrading a read lock.
      this.#db.exec("BEGIN IMMEDIATE");
      try {
        const result = await fn(q);
        this.#db.exec("COMMIT");
        return result;
      } catch (err) {
        if (this.#db.inTransaction) this.#db.exec("ROLLBACK");
        throw err;
      }
    });
  }

  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    return fn();
  }

  async close(): Promise<void> {
    await this.#inTurn(async () => undefined);
    if (this.#db.open) this.#db.close();
  }
}
