import type { CheckedManifest } from "../wire/tracker-frame.js";

/**
 * The durable state of accounts and groups (SPEC §10), behind one interface so that the
 * embedded SQLite store and a PostgreSQL one are interchangeable. Every method is async
 * (a network database answers later) and atomic: a method that changes several rows does
 * it in one transaction. Times are ms since the epoch, given by the caller (its clock).
 */
export interface AccountStore {
  /** The schema version the store is at (after its migrations ran). */
  readonly schemaVersion: number;

  /** A new user; "exists" when the name is taken. */
  createUser(name: string, passwordHash: string, now: number): Promise<UserRow | "exists">;
  findUser(name: string): Promise<UserRow | undefined>;

  /** Sessions are found by the SHA-256 of their token; the token itself is never stored. */
  createSession(tokenHash: Buffer, userId: number, now: number): Promise<void>;
  findSession(tokenHash: Buffer): Promise<SessionRow | undefined>;
  touchSession(tokenHash: Buffer, now: number): Promise<void>;
  deleteSession(tokenHash: Buffer): Promise<void>;
  /** Removes sessions idle since before `idleBefore` or created before `createdBefore`. */
  deleteExpiredSessions(idleBefore: number, createdBefore: number): Promise<number>;

  /** A new group owned (and joined) by `ownerId`; "exists" when the name is taken. */
  createGroup(name: string, ownerId: number, now: number): Promise<GroupRow | "exists">;
  findGroup(name: string): Promise<GroupRow | undefined>;
  /** Every group, with the asking user's standing in each, by name. */
  listGroups(userId: number): Promise<GroupListing[]>;
  /** Names of the groups `userId` is a member of (owner included). */
  groupsOf(userId: number): Promise<string[]>;
  isMember(groupId: number, userId: number): Promise<boolean>;

  /** A join request; "exists" when one is pending already. */
  addRequest(groupId: number, userId: number, now: number): Promise<"added" | "exists">;
  listRequests(groupId: number): Promise<RequestListing[]>;
  /** Turns the pending request into a membership; false when there is none. */
  acceptRequest(groupId: number, userId: number, now: number): Promise<boolean>;
  rejectRequest(groupId: number, userId: number): Promise<boolean>;
  /**
   * The member leaves: its shares in the group go (and files nobody shares any more); an
   * owner hands the group to the longest-standing member, and a group left empty is deleted.
   */
  leaveGroup(groupId: number, userId: number): Promise<LeaveResult>;

  findFile(groupId: number, name: string): Promise<FileRecord | undefined>;
  fileById(fileId: number): Promise<FileRecord | undefined>;
  /** Adds the file record if the group has none of that name, then the user's share. */
  shareFile(groupId: number, userId: number, manifest: CheckedManifest, now: number): Promise<ShareResult>;
  /** Removes the user's share; a file nobody shares any more is deleted. */
  unshareFile(fileId: number, userId: number): Promise<{ readonly removed: boolean; readonly fileDeleted: boolean }>;
  listFiles(groupId: number): Promise<FileListing[]>;
  /** Ids of the users who share the file. */
  sharersOf(fileId: number): Promise<number[]>;

  close(): Promise<void>;
}

export type UserRow = { readonly id: number; readonly name: string; readonly passwordHash: string };
export type SessionRow = {
  readonly userId: number;
  readonly userName: string;
  readonly createdAt: number;
  readonly lastUsedAt: number;
};
export type GroupRow = { readonly id: number; readonly name: string; readonly ownerId: number };
export type GroupListing = {
  readonly name: string;
  readonly owner: string;
  readonly members: number;
  /** Shown to members only. */
  readonly files: number | undefined;
  readonly role: "owner" | "member" | "requested" | "";
};
export type RequestListing = { readonly user: string; readonly requestedAt: number };
export type LeaveResult =
  | { readonly kind: "not-member" }
  | {
      readonly kind: "left";
      /** The new owner's name when the owner left and a member remained. */
      readonly newOwner: string | undefined;
      readonly groupDeleted: boolean;
      /** Files that were shared by the leaver, and those deleted because nobody shares them now. */
      readonly unshared: readonly number[];
      readonly deletedFiles: readonly number[];
    };
export type FileRecord = {
  readonly id: number;
  readonly groupId: number;
  readonly manifest: CheckedManifest;
  readonly uploaderId: number;
};
export type ShareResult =
  | { readonly kind: "shared"; readonly file: FileRecord; readonly alreadyShared: boolean }
  | { readonly kind: "conflict"; readonly file: FileRecord };
export type FileListing = {
  readonly id: number;
  readonly name: string;
  readonly size: number;
  readonly uploader: string;
  readonly sharers: number;
};
