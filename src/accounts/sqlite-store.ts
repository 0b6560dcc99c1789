import Database from "better-sqlite3";
import { chunkCount, SHA256_BYTES } from "../wire/limits.js";
import type { CheckedManifest } from "../wire/tracker-frame.js";
import { LATEST_SCHEMA_VERSION, MIGRATIONS, SQLITE } from "./migrations.js";
import type {
  AccountStore,
  FileListing,
  FileRecord,
  GroupListing,
  GroupRow,
  LeaveResult,
  RequestListing,
  SessionRow,
  ShareResult,
  UserRow,
} from "./store.js";

/** How long a statement waits for another process's lock before SQLITE_BUSY (ms). */
export const BUSY_TIMEOUT_MS = 5000;

type FileDbRow = {
  id: number;
  group_id: number;
  name: string;
  size: number;
  sha256: Buffer;
  chunks_per_piece: number;
  chunks_per_block: number;
  piece_sha256: Buffer;
  uploader_id: number;
};

/**
 * The embedded store: one SQLite file through better-sqlite3 (synchronous, so one
 * tracker's statements never race each other), in WAL mode with a busy timeout so that
 * several trackers may share the file. Every statement is parameterised; write
 * transactions start IMMEDIATE so two processes never deadlock upgrading a read lock.
 */
export class SqliteStore implements AccountStore {
  readonly schemaVersion: number;
  readonly #db: Database.Database;

  private constructor(db: Database.Database, schemaVersion: number) {
    this.#db = db;
    this.schemaVersion = schemaVersion;
  }

  /** Opens (creating if needed) the file at `path` and brings its schema up to date. */
  static open(path: string, now: number = Date.now()): SqliteStore {
    const db = new Database(path);
    try {
      db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
      db.pragma("journal_mode = WAL");
      db.pragma("foreign_keys = ON");
      db.pragma("synchronous = NORMAL");
      const version = migrate(db, now);
      return new SqliteStore(db, version);
    } catch (err) {
      db.close();
      throw err;
    }
  }

  #write<T>(fn: () => T): T {
    return this.#db.transaction(fn).immediate();
  }

  async createUser(name: string, passwordHash: string, now: number): Promise<UserRow | "exists"> {
    const row = this.#db
      .prepare(
        "INSERT INTO users (name, password_hash, created_at_ms) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING RETURNING id",
      )
      .get(name, passwordHash, now) as { id: number } | undefined;
    return row === undefined ? "exists" : { id: row.id, name, passwordHash };
  }

  async findUser(name: string): Promise<UserRow | undefined> {
    const row = this.#db.prepare("SELECT id, name, password_hash FROM users WHERE name = ?").get(name) as
      | { id: number; name: string; password_hash: string }
      | undefined;
    return row === undefined ? undefined : { id: row.id, name: row.name, passwordHash: row.password_hash };
  }

  async createSession(tokenHash: Buffer, userId: number, now: number): Promise<void> {
    this.#db
      .prepare("INSERT INTO sessions (token_hash, user_id, created_at_ms, last_used_at_ms) VALUES (?, ?, ?, ?)")
      .run(tokenHash, userId, now, now);
  }

  async findSession(tokenHash: Buffer): Promise<SessionRow | undefined> {
    const row = this.#db
      .prepare(
        `SELECT s.user_id, u.name, s.created_at_ms, s.last_used_at_ms
         FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = ?`,
      )
      .get(tokenHash) as { user_id: number; name: string; created_at_ms: number; last_used_at_ms: number } | undefined;
    if (row === undefined) return undefined;
    return { userId: row.user_id, userName: row.name, createdAt: row.created_at_ms, lastUsedAt: row.last_used_at_ms };
  }

  async touchSession(tokenHash: Buffer, now: number): Promise<void> {
    this.#db.prepare("UPDATE sessions SET last_used_at_ms = ? WHERE token_hash = ?").run(now, tokenHash);
  }

  async deleteSession(tokenHash: Buffer): Promise<void> {
    this.#db.prepare("DELETE FROM sessions WHERE token_hash = ?").run(tokenHash);
  }

  async deleteExpiredSessions(idleBefore: number, createdBefore: number): Promise<number> {
    return this.#db
      .prepare("DELETE FROM sessions WHERE last_used_at_ms < ? OR created_at_ms < ?")
      .run(idleBefore, createdBefore).changes;
  }

  async createGroup(name: string, ownerId: number, now: number): Promise<GroupRow | "exists"> {
    return this.#write(() => {
      const row = this.#db
        .prepare(
          "INSERT INTO user_groups (name, owner_id, created_at_ms) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING RETURNING id",
        )
        .get(name, ownerId, now) as { id: number } | undefined;
      if (row === undefined) return "exists" as const;
      this.#db
        .prepare("INSERT INTO memberships (group_id, user_id, joined_at_ms) VALUES (?, ?, ?)")
        .run(row.id, ownerId, now);
      return { id: row.id, name, ownerId };
    });
  }

  async findGroup(name: string): Promise<GroupRow | undefined> {
    const row = this.#db.prepare("SELECT id, name, owner_id FROM user_groups WHERE name = ?").get(name) as
      | { id: number; name: string; owner_id: number }
      | undefined;
    return row === undefined ? undefined : { id: row.id, name: row.name, ownerId: row.owner_id };
  }

  async listGroups(userId: number): Promise<GroupListing[]> {
    const rows = this.#db
      .prepare(
        `SELECT g.name, u.name AS owner,
           (SELECT COUNT(*) FROM memberships m WHERE m.group_id = g.id) AS members,
           (SELECT COUNT(*) FROM files f WHERE f.group_id = g.id) AS files,
           CASE WHEN g.owner_id = ? THEN 'owner'
                WHEN EXISTS (SELECT 1 FROM memberships m WHERE m.group_id = g.id AND m.user_id = ?) THEN 'member'
                WHEN EXISTS (SELECT 1 FROM join_requests r WHERE r.group_id = g.id AND r.user_id = ?) THEN 'requested'
                ELSE '' END AS role
         FROM user_groups g JOIN users u ON u.id = g.owner_id
         ORDER BY g.name`,
      )
      .all(userId, userId, userId) as Array<{
      name: string;
      owner: string;
      members: number;
      files: number;
      role: GroupListing["role"];
    }>;
    // Only members learn anything of a group's files, even how many there are.
    return rows.map((r) => ({
      name: r.name,
      owner: r.owner,
      members: r.members,
      files: r.role === "owner" || r.role === "member" ? r.files : undefined,
      role: r.role,
    }));
  }

  async groupsOf(userId: number): Promise<string[]> {
    const rows = this.#db
      .prepare(
        "SELECT g.name FROM memberships m JOIN user_groups g ON g.id = m.group_id WHERE m.user_id = ? ORDER BY g.name",
      )
      .all(userId) as Array<{ name: string }>;
    return rows.map((r) => r.name);
  }

  async isMember(groupId: number, userId: number): Promise<boolean> {
    return (
      this.#db.prepare("SELECT 1 FROM memberships WHERE group_id = ? AND user_id = ?").get(groupId, userId) !==
      undefined
    );
  }

  async addRequest(groupId: number, userId: number, now: number): Promise<"added" | "exists"> {
    const changes = this.#db
      .prepare("INSERT INTO join_requests (group_id, user_id, requested_at_ms) VALUES (?, ?, ?) ON CONFLICT DO NOTHING")
      .run(groupId, userId, now).changes;
    return changes === 0 ? "exists" : "added";
  }

  async listRequests(groupId: number): Promise<RequestListing[]> {
    const rows = this.#db
      .prepare(
        `SELECT u.name, r.requested_at_ms FROM join_requests r JOIN users u ON u.id = r.user_id
         WHERE r.group_id = ? ORDER BY r.requested_at_ms, u.name`,
      )
      .all(groupId) as Array<{ name: string; requested_at_ms: number }>;
    return rows.map((r) => ({ user: r.name, requestedAt: r.requested_at_ms }));
  }

  async acceptRequest(groupId: number, userId: number, now: number): Promise<boolean> {
    return this.#write(() => {
      const gone = this.#db
        .prepare("DELETE FROM join_requests WHERE group_id = ? AND user_id = ?")
        .run(groupId, userId).changes;
      if (gone === 0) return false;
      this.#db
        .prepare("INSERT INTO memberships (group_id, user_id, joined_at_ms) VALUES (?, ?, ?) ON CONFLICT DO NOTHING")
        .run(groupId, userId, now);
      return true;
    });
  }

  async rejectRequest(groupId: number, userId: number): Promise<boolean> {
    return (
      this.#db.prepare("DELETE FROM join_requests WHERE group_id = ? AND user_id = ?").run(groupId, userId).changes > 0
    );
  }

  async leaveGroup(groupId: number, userId: number): Promise<LeaveResult> {
    return this.#write((): LeaveResult => {
      const db = this.#db;
      const gone = db
        .prepare("DELETE FROM memberships WHERE group_id = ? AND user_id = ?")
        .run(groupId, userId).changes;
      if (gone === 0) return { kind: "not-member" };
      const shared = db
        .prepare(
          "SELECT s.file_id FROM shares s JOIN files f ON f.id = s.file_id WHERE f.group_id = ? AND s.user_id = ?",
        )
        .all(groupId, userId) as Array<{ file_id: number }>;
      const unshared = shared.map((r) => r.file_id);
      const deletedFiles: number[] = [];
      for (const fileId of unshared) {
        db.prepare("DELETE FROM shares WHERE file_id = ? AND user_id = ?").run(fileId, userId);
        if (this.#deleteIfUnshared(fileId)) deletedFiles.push(fileId);
      }
      const group = db.prepare("SELECT owner_id FROM user_groups WHERE id = ?").get(groupId) as
        | { owner_id: number }
        | undefined;
      let newOwner: string | undefined;
      let groupDeleted = false;
      if (group !== undefined && group.owner_id === userId) {
        const heir = db
          .prepare(
            `SELECT m.user_id, u.name FROM memberships m JOIN users u ON u.id = m.user_id
             WHERE m.group_id = ? ORDER BY m.id LIMIT 1`,
          )
          .get(groupId) as { user_id: number; name: string } | undefined;
        if (heir === undefined) {
          const files = db.prepare("SELECT id FROM files WHERE group_id = ?").all(groupId) as Array<{ id: number }>;
          deletedFiles.push(...files.map((f) => f.id));
          db.prepare("DELETE FROM user_groups WHERE id = ?").run(groupId);
          groupDeleted = true;
        } else {
          db.prepare("UPDATE user_groups SET owner_id = ? WHERE id = ?").run(heir.user_id, groupId);
          newOwner = heir.name;
        }
      }
      return { kind: "left", newOwner, groupDeleted, unshared, deletedFiles: [...new Set(deletedFiles)] };
    });
  }

  /** Deletes the file when no share of it is left; says whether it did. */
  #deleteIfUnshared(fileId: number): boolean {
    const left = this.#db.prepare("SELECT COUNT(*) AS n FROM shares WHERE file_id = ?").get(fileId) as { n: number };
    if (left.n > 0) return false;
    this.#db.prepare("DELETE FROM files WHERE id = ?").run(fileId);
    return true;
  }

  async findFile(groupId: number, name: string): Promise<FileRecord | undefined> {
    const row = this.#db.prepare("SELECT * FROM files WHERE group_id = ? AND name = ?").get(groupId, name) as
      | FileDbRow
      | undefined;
    return row === undefined ? undefined : fileRecord(row);
  }

  async fileById(fileId: number): Promise<FileRecord | undefined> {
    const row = this.#db.prepare("SELECT * FROM files WHERE id = ?").get(fileId) as FileDbRow | undefined;
    return row === undefined ? undefined : fileRecord(row);
  }

  async shareFile(groupId: number, userId: number, manifest: CheckedManifest, now: number): Promise<ShareResult> {
    return this.#write((): ShareResult => {
      const db = this.#db;
      let row = db.prepare("SELECT * FROM files WHERE group_id = ? AND name = ?").get(groupId, manifest.name) as
        | FileDbRow
        | undefined;
      if (row === undefined) {
        row = db
          .prepare(
            `INSERT INTO files (group_id, name, size, sha256, chunks_per_piece, chunks_per_block, piece_sha256,
               uploader_id, created_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *`,
          )
          .get(
            groupId,
            manifest.name,
            manifest.size,
            manifest.sha256,
            manifest.chunksPerPiece,
            manifest.chunksPerBlock,
            Buffer.concat(manifest.pieceSha256),
            userId,
            now,
          ) as FileDbRow;
      }
      const file = fileRecord(row);
      if (file.manifest.size !== manifest.size || !file.manifest.sha256.equals(manifest.sha256)) {
        return { kind: "conflict", file };
      }
      const added = db
        .prepare("INSERT INTO shares (file_id, user_id, since_ms) VALUES (?, ?, ?) ON CONFLICT DO NOTHING")
        .run(file.id, userId, now).changes;
      return { kind: "shared", file, alreadyShared: added === 0 };
    });
  }

  async unshareFile(fileId: number, userId: number): Promise<{ removed: boolean; fileDeleted: boolean }> {
    return this.#write(() => {
      const removed =
        this.#db.prepare("DELETE FROM shares WHERE file_id = ? AND user_id = ?").run(fileId, userId).changes > 0;
      return { removed, fileDeleted: removed && this.#deleteIfUnshared(fileId) };
    });
  }

  async listFiles(groupId: number): Promise<FileListing[]> {
    const rows = this.#db
      .prepare(
        `SELECT f.id, f.name, f.size, u.name AS uploader,
           (SELECT COUNT(*) FROM shares s WHERE s.file_id = f.id) AS sharers
         FROM files f JOIN users u ON u.id = f.uploader_id WHERE f.group_id = ? ORDER BY f.name`,
      )
      .all(groupId) as Array<{ id: number; name: string; size: number; uploader: string; sharers: number }>;
    return rows.map((r) => ({ id: r.id, name: r.name, size: r.size, uploader: r.uploader, sharers: r.sharers }));
  }

  async sharersOf(fileId: number): Promise<number[]> {
    const rows = this.#db.prepare("SELECT user_id FROM shares WHERE file_id = ?").all(fileId) as Array<{
      user_id: number;
    }>;
    return rows.map((r) => r.user_id);
  }

  close(): void {
    if (this.#db.open) this.#db.close();
  }
}

/** Runs the migrations the file has not seen, each in its own transaction; returns the version reached. */
function migrate(db: Database.Database, now: number): number {
  db.exec("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at_ms BIGINT NOT NULL)");
  const current = (db.prepare("SELECT MAX(version) AS v FROM schema_migrations").get() as { v: number | null }).v ?? 0;
  if (current > LATEST_SCHEMA_VERSION) {
    throw new Error(
      `the store is at schema version ${current}, newer than this tracker knows (${LATEST_SCHEMA_VERSION}); use a newer udpswarm`,
    );
  }
  for (const m of MIGRATIONS) {
    if (m.version <= current) continue;
    db.transaction(() => {
      for (const sql of m.statements(SQLITE)) db.exec(sql);
      db.prepare("INSERT INTO schema_migrations (version, applied_at_ms) VALUES (?, ?)").run(m.version, now);
    }).immediate();
  }
  return LATEST_SCHEMA_VERSION;
}

function fileRecord(row: FileDbRow): FileRecord {
  const pieces: Buffer[] = [];
  for (let off = 0; off + SHA256_BYTES <= row.piece_sha256.length; off += SHA256_BYTES) {
    pieces.push(Buffer.from(row.piece_sha256.subarray(off, off + SHA256_BYTES)));
  }
  return {
    id: row.id,
    groupId: row.group_id,
    uploaderId: row.uploader_id,
    manifest: {
      name: row.name,
      size: row.size,
      chunks: chunkCount(row.size),
      chunksPerPiece: row.chunks_per_piece,
      chunksPerBlock: row.chunks_per_block,
      sha256: Buffer.from(row.sha256),
      pieceSha256: pieces,
    },
  };
}
