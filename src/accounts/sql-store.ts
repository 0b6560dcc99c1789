import { chunkCount, SHA256_BYTES } from "../wire/limits.js";
import type { CheckedManifest } from "../wire/tracker-frame.js";
import { LATEST_SCHEMA_VERSION, MIGRATIONS, POSTGRES, SQLITE } from "./migrations.js";
import type { SqlDb, SqlQueries } from "./sql-db.js";
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
 * The account store over any SqlDb (SQLite or PostgreSQL): the one place the schema is
 * queried. Every statement is parameterised; a method that changes several rows does it in
 * one transaction; statements are written in the SQL both databases accept.
 */
export class SqlStore implements AccountStore {
  readonly schemaVersion: number;
  /** The database, for the live-state log (tracker/live-log.ts) that shares it. */
  readonly db: SqlDb;

  private constructor(db: SqlDb, schemaVersion: number) {
    this.db = db;
    this.schemaVersion = schemaVersion;
  }

  /** Brings the database's schema up to date and wraps it; closes it if that fails. */
  static async open(db: SqlDb, now: number): Promise<SqlStore> {
    try {
      return new SqlStore(db, await migrate(db, now));
    } catch (err) {
      await db.close();
      throw err;
    }
  }

  async #one<T extends object>(
    sql: string,
    params: readonly unknown[],
    q: SqlQueries = this.db,
  ): Promise<T | undefined> {
    return (await q.query(sql, params)).rows[0] as T | undefined;
  }

  async #all<T extends object>(sql: string, params: readonly unknown[], q: SqlQueries = this.db): Promise<T[]> {
    return (await q.query(sql, params)).rows as T[];
  }

  async #changes(sql: string, params: readonly unknown[], q: SqlQueries = this.db): Promise<number> {
    return (await q.query(sql, params)).changes;
  }

  async createUser(name: string, passwordHash: string, now: number): Promise<UserRow | "exists"> {
    const row = await this.#one<{ id: number }>(
      "INSERT INTO users (name, password_hash, created_at_ms) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING RETURNING id",
      [name, passwordHash, now],
    );
    return row === undefined ? "exists" : { id: row.id, name, passwordHash };
  }

  async findUser(name: string): Promise<UserRow | undefined> {
    const row = await this.#one<{ id: number; name: string; password_hash: string }>(
      "SELECT id, name, password_hash FROM users WHERE name = ?",
      [name],
    );
    return row === undefined ? undefined : { id: row.id, name: row.name, passwordHash: row.password_hash };
  }

  async createSession(tokenHash: Buffer, userId: number, now: number): Promise<void> {
    await this.db.query(
      "INSERT INTO sessions (token_hash, user_id, created_at_ms, last_used_at_ms) VALUES (?, ?, ?, ?)",
      [tokenHash, userId, now, now],
    );
  }

  async findSession(tokenHash: Buffer): Promise<SessionRow | undefined> {
    const row = await this.#one<{ user_id: number; name: string; created_at_ms: number; last_used_at_ms: number }>(
      `SELECT s.user_id, u.name, s.created_at_ms, s.last_used_at_ms
       FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = ?`,
      [tokenHash],
    );
    if (row === undefined) return undefined;
    return { userId: row.user_id, userName: row.name, createdAt: row.created_at_ms, lastUsedAt: row.last_used_at_ms };
  }

  async touchSession(tokenHash: Buffer, now: number): Promise<void> {
    await this.db.query("UPDATE sessions SET last_used_at_ms = ? WHERE token_hash = ?", [now, tokenHash]);
  }

  async deleteSession(tokenHash: Buffer): Promise<void> {
    await this.db.query("DELETE FROM sessions WHERE token_hash = ?", [tokenHash]);
  }

  async deleteExpiredSessions(idleBefore: number, createdBefore: number): Promise<number> {
    return this.#changes("DELETE FROM sessions WHERE last_used_at_ms < ? OR created_at_ms < ?", [
      idleBefore,
      createdBefore,
    ]);
  }

  async createGroup(name: string, ownerId: number, now: number): Promise<GroupRow | "exists"> {
    return this.db.transaction(async (q) => {
      const row = await this.#one<{ id: number }>(
        "INSERT INTO user_groups (name, owner_id, created_at_ms) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING RETURNING id",
        [name, ownerId, now],
        q,
      );
      if (row === undefined) return "exists" as const;
      await q.query("INSERT INTO memberships (group_id, user_id, joined_at_ms) VALUES (?, ?, ?)", [
        row.id,
        ownerId,
        now,
      ]);
      return { id: row.id, name, ownerId };
    });
  }

  async findGroup(name: string): Promise<GroupRow | undefined> {
    const row = await this.#one<{ id: number; name: string; owner_id: number }>(
      "SELECT id, name, owner_id FROM user_groups WHERE name = ?",
      [name],
    );
    return row === undefined ? undefined : { id: row.id, name: row.name, ownerId: row.owner_id };
  }

  async listGroups(userId: number): Promise<GroupListing[]> {
    const rows = await this.#all<{
      name: string;
      owner: string;
      members: number;
      files: number;
      role: GroupListing["role"];
    }>(
      `SELECT g.name, u.name AS owner,
         (SELECT COUNT(*) FROM memberships m WHERE m.group_id = g.id) AS members,
         (SELECT COUNT(*) FROM files f WHERE f.group_id = g.id) AS files,
         CASE WHEN g.owner_id = ? THEN 'owner'
              WHEN EXISTS (SELECT 1 FROM memberships m WHERE m.group_id = g.id AND m.user_id = ?) THEN 'member'
              WHEN EXISTS (SELECT 1 FROM join_requests r WHERE r.group_id = g.id AND r.user_id = ?) THEN 'requested'
              ELSE '' END AS role
       FROM user_groups g JOIN users u ON u.id = g.owner_id
       ORDER BY g.name`,
      [userId, userId, userId],
    );
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
    const rows = await this.#all<{ name: string }>(
      "SELECT g.name FROM memberships m JOIN user_groups g ON g.id = m.group_id WHERE m.user_id = ? ORDER BY g.name",
      [userId],
    );
    return rows.map((r) => r.name);
  }

  async isMember(groupId: number, userId: number): Promise<boolean> {
    return (
      (await this.#one("SELECT 1 AS one FROM memberships WHERE group_id = ? AND user_id = ?", [groupId, userId])) !==
      undefined
    );
  }

  async addRequest(groupId: number, userId: number, now: number): Promise<"added" | "exists"> {
    const changes = await this.#changes(
      "INSERT INTO join_requests (group_id, user_id, requested_at_ms) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
      [groupId, userId, now],
    );
    return changes === 0 ? "exists" : "added";
  }

  async listRequests(groupId: number): Promise<RequestListing[]> {
    const rows = await this.#all<{ name: string; requested_at_ms: number }>(
      `SELECT u.name, r.requested_at_ms FROM join_requests r JOIN users u ON u.id = r.user_id
       WHERE r.group_id = ? ORDER BY r.requested_at_ms, u.name`,
      [groupId],
    );
    return rows.map((r) => ({ user: r.name, requestedAt: r.requested_at_ms }));
  }

  async acceptRequest(groupId: number, userId: number, now: number): Promise<boolean> {
    return this.db.transaction(async (q) => {
      const gone = await this.#changes(
        "DELETE FROM join_requests WHERE group_id = ? AND user_id = ?",
        [groupId, userId],
        q,
      );
      if (gone === 0) return false;
      await q.query(
        "INSERT INTO memberships (group_id, user_id, joined_at_ms) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
        [groupId, userId, now],
      );
      return true;
    });
  }

  async rejectRequest(groupId: number, userId: number): Promise<boolean> {
    return (await this.#changes("DELETE FROM join_requests WHERE group_id = ? AND user_id = ?", [groupId, userId])) > 0;
  }

  async leaveGroup(groupId: number, userId: number): Promise<LeaveResult> {
    return this.db.transaction(async (q): Promise<LeaveResult> => {
      const gone = await this.#changes(
        "DELETE FROM memberships WHERE group_id = ? AND user_id = ?",
        [groupId, userId],
        q,
      );
      if (gone === 0) return { kind: "not-member" };
      const shared = await this.#all<{ file_id: number }>(
        "SELECT s.file_id FROM shares s JOIN files f ON f.id = s.file_id WHERE f.group_id = ? AND s.user_id = ? ORDER BY s.file_id",
        [groupId, userId],
        q,
      );
      const unshared = shared.map((r) => r.file_id);
      const deletedFiles: number[] = [];
      for (const fileId of unshared) {
        await q.query("DELETE FROM shares WHERE file_id = ? AND user_id = ?", [fileId, userId]);
        if (await this.#deleteIfUnshared(fileId, q)) deletedFiles.push(fileId);
      }
      const group = await this.#one<{ owner_id: number }>(
        "SELECT owner_id FROM user_groups WHERE id = ?",
        [groupId],
        q,
      );
      let newOwner: string | undefined;
      let groupDeleted = false;
      if (group !== undefined && group.owner_id === userId) {
        const heir = await this.#one<{ user_id: number; name: string }>(
          `SELECT m.user_id, u.name FROM memberships m JOIN users u ON u.id = m.user_id
           WHERE m.group_id = ? ORDER BY m.id LIMIT 1`,
          [groupId],
          q,
        );
        if (heir === undefined) {
          const files = await this.#all<{ id: number }>("SELECT id FROM files WHERE group_id = ?", [groupId], q);
          deletedFiles.push(...files.map((f) => f.id));
          await q.query("DELETE FROM user_groups WHERE id = ?", [groupId]);
          groupDeleted = true;
        } else {
          await q.query("UPDATE user_groups SET owner_id = ? WHERE id = ?", [heir.user_id, groupId]);
          newOwner = heir.name;
        }
      }
      return { kind: "left", newOwner, groupDeleted, unshared, deletedFiles: [...new Set(deletedFiles)] };
    });
  }

  /** Deletes the file when no share of it is left; says whether it did. */
  async #deleteIfUnshared(fileId: number, q: SqlQueries): Promise<boolean> {
    const left = await this.#one<{ n: number }>("SELECT COUNT(*) AS n FROM shares WHERE file_id = ?", [fileId], q);
    if ((left?.n ?? 0) > 0) return false;
    await q.query("DELETE FROM files WHERE id = ?", [fileId]);
    return true;
  }

  async findFile(groupId: number, name: string): Promise<FileRecord | undefined> {
    const row = await this.#one<FileDbRow>("SELECT * FROM files WHERE group_id = ? AND name = ?", [groupId, name]);
    return row === undefined ? undefined : fileRecord(row);
  }

  async fileById(fileId: number): Promise<FileRecord | undefined> {
    const row = await this.#one<FileDbRow>("SELECT * FROM files WHERE id = ?", [fileId]);
    return row === undefined ? undefined : fileRecord(row);
  }

  async shareFile(groupId: number, userId: number, manifest: CheckedManifest, now: number): Promise<ShareResult> {
    return this.db.transaction(async (q): Promise<ShareResult> => {
      // Insert-or-nothing first: two trackers adding the same name at once cannot both win.
      const row =
        (await this.#one<FileDbRow>(
          `INSERT INTO files (group_id, name, size, sha256, chunks_per_piece, chunks_per_block, piece_sha256,
             uploader_id, created_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (group_id, name) DO NOTHING RETURNING *`,
          [
            groupId,
            manifest.name,
            manifest.size,
            manifest.sha256,
            manifest.chunksPerPiece,
            manifest.chunksPerBlock,
            Buffer.concat(manifest.pieceSha256),
            userId,
            now,
          ],
          q,
        )) ??
        (await this.#one<FileDbRow>(
          "SELECT * FROM files WHERE group_id = ? AND name = ?",
          [groupId, manifest.name],
          q,
        ));
      if (row === undefined) throw new Error(`file ${manifest.name} neither inserted nor found`);
      const file = fileRecord(row);
      if (file.manifest.size !== manifest.size || !file.manifest.sha256.equals(manifest.sha256)) {
        return { kind: "conflict", file };
      }
      const added = await this.#changes(
        "INSERT INTO shares (file_id, user_id, since_ms) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
        [file.id, userId, now],
        q,
      );
      return { kind: "shared", file, alreadyShared: added === 0 };
    });
  }

  async unshareFile(fileId: number, userId: number): Promise<{ removed: boolean; fileDeleted: boolean }> {
    return this.db.transaction(async (q) => {
      const removed =
        (await this.#changes("DELETE FROM shares WHERE file_id = ? AND user_id = ?", [fileId, userId], q)) > 0;
      return { removed, fileDeleted: removed && (await this.#deleteIfUnshared(fileId, q)) };
    });
  }

  async listFiles(groupId: number): Promise<FileListing[]> {
    const rows = await this.#all<{ id: number; name: string; size: number; uploader: string; sharers: number }>(
      `SELECT f.id, f.name, f.size, u.name AS uploader,
         (SELECT COUNT(*) FROM shares s WHERE s.file_id = f.id) AS sharers
       FROM files f JOIN users u ON u.id = f.uploader_id WHERE f.group_id = ? ORDER BY f.name`,
      [groupId],
    );
    return rows.map((r) => ({ id: r.id, name: r.name, size: r.size, uploader: r.uploader, sharers: r.sharers }));
  }

  async sharersOf(fileId: number): Promise<number[]> {
    const rows = await this.#all<{ user_id: number }>("SELECT user_id FROM shares WHERE file_id = ?", [fileId]);
    return rows.map((r) => r.user_id);
  }

  close(): Promise<void> {
    return this.db.close();
  }
}

/**
 * Runs the migrations the database has not seen, all in one transaction, while no other
 * tracker migrates it; returns the version reached.
 */
async function migrate(db: SqlDb, now: number): Promise<number> {
  const dialect = db.kind === "postgres" ? POSTGRES : SQLITE;
  return db.exclusive(() =>
    db.transaction(async (q) => {
      await q.query(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at_ms BIGINT NOT NULL)",
      );
      const current =
        (await q.query<{ v: number | null }>("SELECT MAX(version) AS v FROM schema_migrations")).rows[0]?.v ?? 0;
      if (current > LATEST_SCHEMA_VERSION) {
        throw new Error(
          `the store is at schema version ${current}, newer than this tracker knows (${LATEST_SCHEMA_VERSION}); use a newer udpswarm`,
        );
      }
      for (const m of MIGRATIONS) {
        if (m.version <= current) continue;
        for (const sql of m.statements(dialect)) await q.query(sql);
        await q.query("INSERT INTO schema_migrations (version, applied_at_ms) VALUES (?, ?)", [m.version, now]);
      }
      return LATEST_SCHEMA_VERSION;
    }),
  );
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
