/**
 * The store's schema, as numbered migrations applied in order, each once, recorded in
 * `schema_migrations`. The SQL is what SQLite and PostgreSQL both accept; the few type
 * names that differ come from the dialect. Never edit a released migration: add one.
 */
export type Dialect = {
  /** An auto-numbered primary key column. */
  readonly serial: string;
  /** Bytes (hashes). */
  readonly bytes: string;
};

export const SQLITE: Dialect = { serial: "INTEGER PRIMARY KEY AUTOINCREMENT", bytes: "BLOB" };
export const POSTGRES: Dialect = { serial: "BIGSERIAL PRIMARY KEY", bytes: "BYTEA" };

export type Migration = { readonly version: number; readonly statements: (d: Dialect) => readonly string[] };

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    statements: (d) => [
      `CREATE TABLE users (
        id ${d.serial},
        name TEXT NOT NULL UNIQUE,
        password_hash TEXT NOT NULL,
        created_at_ms BIGINT NOT NULL)`,
      `CREATE TABLE sessions (
        token_hash ${d.bytes} PRIMARY KEY,
        user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        created_at_ms BIGINT NOT NULL,
        last_used_at_ms BIGINT NOT NULL)`,
      "CREATE INDEX sessions_by_user ON sessions(user_id)",
      `CREATE TABLE user_groups (
        id ${d.serial},
        name TEXT NOT NULL UNIQUE,
        owner_id BIGINT NOT NULL REFERENCES users(id),
        created_at_ms BIGINT NOT NULL)`,
      // id orders memberships by age: the longest-standing member has the smallest.
      `CREATE TABLE memberships (
        id ${d.serial},
        group_id BIGINT NOT NULL REFERENCES user_groups(id) ON DELETE CASCADE,
        user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        joined_at_ms BIGINT NOT NULL,
        UNIQUE (group_id, user_id))`,
      "CREATE INDEX memberships_by_user ON memberships(user_id)",
      `CREATE TABLE join_requests (
        group_id BIGINT NOT NULL REFERENCES user_groups(id) ON DELETE CASCADE,
        user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        requested_at_ms BIGINT NOT NULL,
        PRIMARY KEY (group_id, user_id))`,
      `CREATE TABLE files (
        id ${d.serial},
        group_id BIGINT NOT NULL REFERENCES user_groups(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        size BIGINT NOT NULL,
        sha256 ${d.bytes} NOT NULL,
        chunks_per_piece INTEGER NOT NULL,
        chunks_per_block INTEGER NOT NULL,
        piece_sha256 ${d.bytes} NOT NULL,
        uploader_id BIGINT NOT NULL REFERENCES users(id),
        created_at_ms BIGINT NOT NULL,
        UNIQUE (group_id, name))`,
      `CREATE TABLE shares (
        file_id BIGINT NOT NULL REFERENCES files(id) ON DELETE CASCADE,
        user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        since_ms BIGINT NOT NULL,
        PRIMARY KEY (file_id, user_id))`,
      "CREATE INDEX shares_by_user ON shares(user_id)",
    ],
  },
  {
    // SEVERAL TRACKERS (§11): the live state trackers of one store share. Soft state: a
    // tracker's rows mean nothing once its heartbeat stops; events are pruned as peers go.
    version: 2,
    statements: (d) => [
      `CREATE TABLE live_trackers (
        id ${d.serial},
        label TEXT NOT NULL,
        started_at_ms BIGINT NOT NULL,
        heartbeat_at_ms BIGINT NOT NULL)`,
      // Append-only: every tracker writes its clients' live changes and tails the others'.
      `CREATE TABLE live_events (
        id ${d.serial},
        tracker_id BIGINT NOT NULL,
        peer_id BIGINT NOT NULL,
        kind TEXT NOT NULL,
        body TEXT NOT NULL,
        at_ms BIGINT NOT NULL)`,
      "CREATE INDEX live_events_by_peer ON live_events(peer_id)",
      "CREATE INDEX live_events_by_tracker ON live_events(tracker_id)",
    ],
  },
];

/** The schema version a store reaches once every migration ran. */
export const LATEST_SCHEMA_VERSION = Math.max(...MIGRATIONS.map((m) => m.version));
