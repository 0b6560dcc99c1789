/**
 * The little a store needs of a SQL database, so that one set of statements (sql-store.ts)
 * runs on SQLite and on PostgreSQL. Statements use `?` placeholders; the PostgreSQL driver
 * numbers them. Integers come back as numbers (ids and ms times stay far below 2^53), bytes
 * as Buffers.
 */
export type Row = Record<string, unknown>;

export type Result<T extends Row = Row> = {
  readonly rows: T[];
  /** Rows inserted, updated or deleted (for a statement with RETURNING, the rows returned). */
  readonly changes: number;
};

/** Runs statements; inside a transaction, all of them belong to it. */
export interface SqlQueries {
  query<T extends Row = Row>(sql: string, params?: readonly unknown[]): Promise<Result<T>>;
}

export interface SqlDb extends SqlQueries {
  /** "sqlite" or "postgres": the dialect of the migrations. */
  readonly kind: "sqlite" | "postgres";
  /**
   * Runs `fn` as one atomic transaction that sees no concurrent writer's half-done work
   * (SQLite: BEGIN IMMEDIATE; PostgreSQL: SERIALIZABLE, retried on a serialization failure,
   * so `fn` must have no effect outside the database).
   */
  transaction<T>(fn: (q: SqlQueries) => Promise<T>): Promise<T>;
  /**
   * Runs `fn` while no other process migrates the same database (PostgreSQL: an advisory
   * lock; SQLite: the IMMEDIATE transaction inside already serialises).
   */
  exclusive<T>(fn: () => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** A coded store error, so that callers can say "busy, try again" instead of "failed". */
export class StoreBusyError extends Error {
  readonly code = "ERR_STORE_BUSY";
}
