import { createHash, randomBytes } from "node:crypto";
import PQueue from "p-queue";
import { udpswarm } from "../wire/gen/swarm.js";
import { checkFileName } from "../wire/names.js";
import { checkManifest, isManifestProblem, manifestToWire } from "../wire/tracker-frame.js";
import type { ClientSwarm } from "./client-swarm.js";
import { checkAccountName, checkPassword } from "./names.js";
import { DEFAULT_SCRYPT, hashPassword, type ScryptParams, verifyPassword } from "./passwords.js";
import type { AccountStore, GroupRow, SessionRow } from "./store.js";
import { LoginThrottle } from "./throttle.js";

const Status = udpswarm.AccountStatus;
type Reply = udpswarm.IAccountReply;
type Request = udpswarm.IAccountRequest;

export type AccountServiceOptions = {
  /** A session unused this long expires (ms). @default 7 days */
  readonly sessionIdleMs?: number;
  /** A session expires this long after login, used or not (ms). @default 30 days */
  readonly sessionMaxMs?: number;
  /** scrypt cost (tests lower it). @default N=2^17, r=8, p=1 */
  readonly scrypt?: ScryptParams;
  /** Largest file a client may announce (bytes). */
  readonly maxFileSize: number;
};

/** Password hashes computed at once: each takes 128 MiB and a core for a few hundred ms. */
export const HASH_CONCURRENCY = 2;
/** Logins and registrations waiting for a hash slot before the tracker answers BUSY. */
export const MAX_WAITING_HASHES = 1024;
/** A session's last use is written at most this often (ms). */
const TOUCH_EVERY_MS = 60_000;
const TOKEN_BYTES = 32;

/** What the service knows of one connection. */
export type ClientContext = {
  readonly peerId: number;
  /** The client's IP address (login slow-down per address). */
  readonly address: string;
  session: { readonly tokenHash: Buffer; readonly row: SessionRow; touchedAt: number } | undefined;
};

/** The store failed: mapped to one reply, the detail goes to the log only. */
class StoreFailure extends Error {}

const reply = (status: udpswarm.AccountStatus, message: string, extra: Reply = {}): Reply => ({
  status,
  message,
  ...extra,
});
const ok = (message: string, extra: Reply = {}): Reply => reply(Status.STATUS_OK, message, extra);

/** A group and whether the asking user is a member of it. */
type Membership = { readonly group: GroupRow; readonly member: boolean };
/** A helper's answer when the command cannot go on: the reply to send. */
type Refused = { readonly refused: Reply };
const refused = (status: udpswarm.AccountStatus, message: string): Refused => ({ refused: reply(status, message) });
function isRefused<T extends object>(x: T | Refused): x is Refused {
  return "refused" in x;
}

/**
 * The account and group commands of SPEC §10: rules and replies, over the store and the
 * live client swarm. Each reply is one line for people (and rows for the lists); each
 * error says what to do. Passwords are hashed with scrypt, at most HASH_CONCURRENCY at a
 * time; sessions are 32 random bytes of which the store keeps only the SHA-256.
 */
export class AccountService {
  readonly #store: AccountStore;
  readonly #swarm: ClientSwarm;
  readonly #now: () => number;
  readonly #log: (line: string) => void;
  readonly #options: Required<AccountServiceOptions>;
  readonly #throttle = new LoginThrottle();
  readonly #hashing = new PQueue({ concurrency: HASH_CONCURRENCY });
  /** A stored hash to verify against when the user does not exist (same time either way). */
  #dummyHash: Promise<string> | undefined;

  constructor(
    store: AccountStore,
    swarm: ClientSwarm,
    now: () => number,
    log: (line: string) => void,
    options: AccountServiceOptions,
  ) {
    this.#store = store;
    this.#swarm = swarm;
    this.#now = now;
    this.#log = log;
    this.#options = {
      sessionIdleMs: 7 * 24 * 3600_000,
      sessionMaxMs: 30 * 24 * 3600_000,
      scrypt: DEFAULT_SCRYPT,
      ...options,
    };
  }

  /** Answers one request; never throws. */
  async handle(ctx: ClientContext, req: Request): Promise<Reply> {
    try {
      return await this.#dispatch(ctx, req);
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      this.#log(`client ${ctx.peerId}: ${req.command ?? "request"} failed: ${(err as Error).message}`);
      if (code === "SQLITE_BUSY" || code === "SQLITE_LOCKED" || code === "ERR_STORE_BUSY")
        return reply(Status.STATUS_BUSY, "the tracker's store is busy; try again in a moment");
      if (err instanceof StoreFailure) return reply(Status.STATUS_BUSY, err.message);
      return reply(Status.STATUS_INTERNAL, "the tracker could not do this (store error); try again later");
    }
  }

  async #dispatch(ctx: ClientContext, req: Request): Promise<Reply> {
    switch (req.command) {
      case "createUser":
        return this.#createUser(req.createUser?.user ?? "", req.createUser?.password ?? "");
      case "login":
        return this.#login(ctx, req.login?.user ?? "", req.login?.password ?? "");
      case "resume":
        return this.#resume(ctx, req.resume?.token ?? new Uint8Array(0));
      case undefined:
        return reply(Status.STATUS_BAD_REQUEST, "empty request");
      default:
        break;
    }
    const session = await this.#session(ctx);
    if (isRefused(session)) return session.refused;
    const user = { id: session.userId, name: session.userName };
    switch (req.command) {
      case "logout":
        return this.#logout(ctx);
      case "createGroup":
        return this.#createGroup(user, req.createGroup?.group ?? "");
      case "joinGroup":
        return this.#joinGroup(user, req.joinGroup?.group ?? "");
      case "leaveGroup":
        return this.#leaveGroup(user, req.leaveGroup?.group ?? "");
      case "listGroups":
        return ok("", {
          groups: (await this.#store.listGroups(user.id)).map((g) => ({ ...g, files: g.files ?? 0 })),
        });
      case "listRequests":
        return this.#listRequests(user, req.listRequests?.group ?? "");
      case "acceptRequest":
      case "rejectRequest": {
        const m = req.acceptRequest ?? req.rejectRequest;
        return this.#decide(user, m?.group ?? "", m?.user ?? "", req.command === "acceptRequest");
      }
      case "uploadFile":
        return this.#upload(ctx, user, req.uploadFile?.group ?? "", req.uploadFile?.manifest ?? {});
      case "listFiles":
        return this.#listFiles(user, req.listFiles?.group ?? "");
      case "downloadFile":
        return this.#download(ctx, user, req.downloadFile?.group ?? "", req.downloadFile?.file ?? "");
      case "stopShare":
        return this.#stopShare(ctx, user, req.stopShare?.group ?? "", req.stopShare?.file ?? "");
      default:
        return reply(Status.STATUS_BAD_REQUEST, `unknown command ${String(req.command)}`);
    }
  }

  // ---------------------------------------------------------------- users and sessions

  #hash<T>(work: () => Promise<T>): Promise<T> {
    if (this.#hashing.size >= MAX_WAITING_HASHES) {
      return Promise.reject(new StoreFailure("the tracker is busy with other logins; try again in a moment"));
    }
    return this.#hashing.add(work);
  }

  async #createUser(name: string, password: string): Promise<Reply> {
    const problem = checkAccountName("user", name) ?? checkPassword(password);
    if (problem !== undefined) return reply(Status.STATUS_BAD_REQUEST, `${problem}; choose another`);
    if ((await this.#store.findUser(name)) !== undefined) {
      return reply(Status.STATUS_EXISTS, `user ${name} already exists; choose another name, or log in`);
    }
    const hash = await this.#hash(() => hashPassword(password, this.#options.scrypt));
    const created = await this.#store.createUser(name, hash, this.#now());
    if (created === "exists") return reply(Status.STATUS_EXISTS, `user ${name} already exists; choose another name`);
    this.#log(`user ${JSON.stringify(name)} created`);
    return ok(`user ${name} created; log in with: login ${quoteArg(name)} PASSWORD`);
  }

  async #login(ctx: ClientContext, name: string, password: string): Promise<Reply> {
    if (ctx.session !== undefined) {
      return reply(Status.STATUS_BAD_REQUEST, `already logged in as ${ctx.session.row.userName}; logout first`);
    }
    const keys = [`u:${name}`, `a:${ctx.address}`];
    const wait = this.#throttle.retryAfter(keys, this.#now());
    if (wait > 0) {
      return reply(
        Status.STATUS_SLOW_DOWN,
        `too many wrong passwords; wait ${Math.ceil(wait / 1000)} s and try again`,
        {
          retryAfterMs: wait,
        },
      );
    }
    const user = checkAccountName("user", name) === undefined ? await this.#store.findUser(name) : undefined;
    const stored = user?.passwordHash ?? (await this.#dummy());
    const good = await this.#hash(() => verifyPassword(password.slice(0, 4096), stored));
    if (user === undefined || !good) {
      this.#throttle.failed(keys, this.#now());
      return reply(Status.STATUS_BAD_CREDENTIALS, "wrong user name or password; check both and try again");
    }
    this.#throttle.succeeded(`u:${name}`);
    const token = randomBytes(TOKEN_BYTES);
    const tokenHash = sha256(token);
    const now = this.#now();
    await this.#store.createSession(tokenHash, user.id, now);
    const row: SessionRow = { userId: user.id, userName: user.name, createdAt: now, lastUsedAt: now };
    await this.#bind(ctx, tokenHash, row);
    return ok(`logged in as ${user.name}`, { user: user.name, sessionToken: token });
  }

  async #resume(ctx: ClientContext, token: Uint8Array): Promise<Reply> {
    if (ctx.session !== undefined) {
      return reply(Status.STATUS_BAD_REQUEST, `already logged in as ${ctx.session.row.userName}; logout first`);
    }
    const expired = reply(Status.STATUS_SESSION_EXPIRED, "your session has expired; log in again");
    if (token.length !== TOKEN_BYTES) return expired;
    const tokenHash = sha256(token);
    const row = await this.#store.findSession(tokenHash);
    if (row === undefined) return expired;
    if (this.#expired(row)) {
      await this.#store.deleteSession(tokenHash);
      return expired;
    }
    await this.#store.touchSession(tokenHash, this.#now());
    await this.#bind(ctx, tokenHash, { ...row, lastUsedAt: this.#now() });
    return ok(`logged in as ${row.userName} (session resumed)`, { user: row.userName });
  }

  async #bind(ctx: ClientContext, tokenHash: Buffer, row: SessionRow): Promise<void> {
    ctx.session = { tokenHash, row, touchedAt: this.#now() };
    this.#swarm.login(ctx.peerId, { id: row.userId, name: row.userName }, await this.#store.groupsOf(row.userId));
  }

  #dummy(): Promise<string> {
    this.#dummyHash ??= hashPassword(randomBytes(16).toString("hex"), this.#options.scrypt);
    return this.#dummyHash;
  }

  #expired(row: SessionRow): boolean {
    const now = this.#now();
    return now - row.lastUsedAt > this.#options.sessionIdleMs || now - row.createdAt > this.#options.sessionMaxMs;
  }

  /** The connection's session, checked for expiry (and its last use recorded now and then). */
  async #session(ctx: ClientContext): Promise<SessionRow | Refused> {
    const s = ctx.session;
    if (s === undefined)
      return refused(Status.STATUS_NOT_LOGGED_IN, "not logged in; log in first: login USER PASSWORD");
    const now = this.#now();
    const row = { ...s.row, lastUsedAt: s.touchedAt };
    if (this.#expired(row)) {
      ctx.session = undefined;
      this.#swarm.logout(ctx.peerId);
      await this.#store.deleteSession(s.tokenHash);
      return refused(Status.STATUS_SESSION_EXPIRED, "your session has expired; log in again");
    }
    if (now - s.touchedAt > TOUCH_EVERY_MS) {
      s.touchedAt = now;
      await this.#store.touchSession(s.tokenHash, now);
    }
    return s.row;
  }

  async #logout(ctx: ClientContext): Promise<Reply> {
    const s = ctx.session;
    if (s === undefined) return reply(Status.STATUS_NOT_LOGGED_IN, "not logged in");
    ctx.session = undefined;
    this.#swarm.logout(ctx.peerId);
    await this.#store.deleteSession(s.tokenHash);
    return ok(`logged out ${s.row.userName}`);
  }

  /** Removes expired sessions from the store (called now and then). */
  async sweepSessions(): Promise<number> {
    const now = this.#now();
    return this.#store.deleteExpiredSessions(now - this.#options.sessionIdleMs, now - this.#options.sessionMaxMs);
  }

  // ---------------------------------------------------------------- groups

  /** The group and whether the user is a member, or the reply saying it does not exist. */
  async #group(name: string, userId: number): Promise<Membership | Refused> {
    const problem = checkAccountName("group", name);
    if (problem !== undefined) return refused(Status.STATUS_BAD_REQUEST, problem);
    const group = await this.#store.findGroup(name);
    if (group === undefined) return refused(Status.STATUS_NOT_FOUND, `no group ${name}; see list_groups`);
    return { group, member: await this.#store.isMember(group.id, userId) };
  }

  /** The group if the user is a member, or the reply saying why not. */
  async #memberOf(name: string, userId: number): Promise<GroupRow | Refused> {
    const m = await this.#group(name, userId);
    if (isRefused(m)) return m;
    if (!m.member) {
      return refused(
        Status.STATUS_FORBIDDEN,
        `you are not a member of ${name}; ask to join: join_group ${quoteArg(name)}`,
      );
    }
    return m.group;
  }

  async #ownerOf(name: string, userId: number): Promise<GroupRow | Refused> {
    const m = await this.#group(name, userId);
    if (isRefused(m)) return m;
    if (m.group.ownerId !== userId) {
      return refused(Status.STATUS_FORBIDDEN, `only the owner of ${name} can do this; you are not its owner`);
    }
    return m.group;
  }

  async #createGroup(user: { id: number; name: string }, name: string): Promise<Reply> {
    const problem = checkAccountName("group", name);
    if (problem !== undefined) return reply(Status.STATUS_BAD_REQUEST, `${problem}; choose another`);
    const created = await this.#store.createGroup(name, user.id, this.#now());
    if (created === "exists") {
      return reply(Status.STATUS_EXISTS, `group ${name} already exists; ask to join it: join_group ${quoteArg(name)}`);
    }
    this.#swarm.groupsChanged(user.id, await this.#store.groupsOf(user.id));
    return ok(`group ${name} created; you are its owner`);
  }

  async #joinGroup(user: { id: number; name: string }, name: string): Promise<Reply> {
    const m = await this.#group(name, user.id);
    if (isRefused(m)) return m.refused;
    if (m.member) return reply(Status.STATUS_EXISTS, `you are already a member of ${name}`);
    const added = await this.#store.addRequest(m.group.id, user.id, this.#now());
    if (added === "exists") {
      return reply(Status.STATUS_EXISTS, `your request to join ${name} is already waiting for its owner`);
    }
    return ok(`asked to join ${name}; its owner must accept the request`);
  }

  async #leaveGroup(user: { id: number; name: string }, name: string): Promise<Reply> {
    const m = await this.#memberOf(name, user.id);
    if (isRefused(m)) return m.refused;
    const result = await this.#store.leaveGroup(m.id, user.id);
    if (result.kind === "not-member") return reply(Status.STATUS_FORBIDDEN, `you are not a member of ${name}`);
    for (const fileId of result.unshared) this.#swarm.unshareUser(user.id, fileId);
    for (const fileId of result.deletedFiles) this.#swarm.fileDeleted(fileId);
    this.#swarm.groupsChanged(user.id, await this.#store.groupsOf(user.id));
    const after = result.groupDeleted
      ? "; it had no other member and is deleted"
      : result.newOwner !== undefined
        ? `; ${result.newOwner} owns it now`
        : "";
    return ok(`left group ${name}${after}`);
  }

  async #listRequests(user: { id: number; name: string }, name: string): Promise<Reply> {
    const g = await this.#ownerOf(name, user.id);
    if (isRefused(g)) return g.refused;
    const rows = await this.#store.listRequests(g.id);
    return ok(rows.length === 0 ? `no pending requests for ${name}` : "", {
      requests: rows.map((r) => ({ user: r.user, requestedAtMs: r.requestedAt })),
    });
  }

  async #decide(owner: { id: number; name: string }, name: string, userName: string, accept: boolean): Promise<Reply> {
    const g = await this.#ownerOf(name, owner.id);
    if (isRefused(g)) return g.refused;
    const problem = checkAccountName("user", userName);
    if (problem !== undefined) return reply(Status.STATUS_BAD_REQUEST, problem);
    const user = await this.#store.findUser(userName);
    if (user === undefined) return reply(Status.STATUS_NOT_FOUND, `no user ${userName}`);
    const done = accept
      ? await this.#store.acceptRequest(g.id, user.id, this.#now())
      : await this.#store.rejectRequest(g.id, user.id);
    if (!done) {
      return reply(
        Status.STATUS_NOT_FOUND,
        `${userName} has not asked to join ${name}; see list_requests ${quoteArg(name)}`,
      );
    }
    if (!accept) return ok(`rejected ${userName}'s request to join ${name}`);
    this.#swarm.groupsChanged(user.id, await this.#store.groupsOf(user.id));
    return ok(`${userName} is now a member of ${name}`);
  }

  // ---------------------------------------------------------------- files

  async #upload(
    ctx: ClientContext,
    user: { id: number; name: string },
    name: string,
    wire: udpswarm.IManifest,
  ): Promise<Reply> {
    const g = await this.#memberOf(name, user.id);
    if (isRefused(g)) return g.refused;
    const manifest = checkManifest(wire, this.#options.maxFileSize);
    if (isManifestProblem(manifest)) return reply(Status.STATUS_BAD_REQUEST, manifest.detail);
    const result = await this.#store.shareFile(g.id, user.id, manifest, this.#now());
    if (result.kind === "conflict") {
      return reply(
        Status.STATUS_CONFLICT,
        `a different file named ${manifest.name} is already in ${name}; rename yours, or have its sharers stop_share it`,
      );
    }
    const id = result.file.id;
    this.#swarm.share(ctx.peerId, id, name);
    return ok(`${result.alreadyShared ? "sharing" : "uploaded"} ${manifest.name} to ${name} (${manifest.size} bytes)`, {
      file: { fileId: id, manifest: manifestToWire(result.file.manifest) },
    });
  }

  async #listFiles(user: { id: number; name: string }, name: string): Promise<Reply> {
    const g = await this.#memberOf(name, user.id);
    if (isRefused(g)) return g.refused;
    const files = await this.#store.listFiles(g.id);
    return ok(files.length === 0 ? `no files in ${name}` : "", {
      files: files.map((f) => ({
        name: f.name,
        size: f.size,
        sharers: f.sharers,
        online: this.#swarm.onlineSharers(f.id).size,
        uploader: f.uploader,
      })),
    });
  }

  async #download(ctx: ClientContext, user: { id: number; name: string }, name: string, file: string): Promise<Reply> {
    const g = await this.#memberOf(name, user.id);
    if (isRefused(g)) return g.refused;
    const record = checkFileName(file) === undefined ? await this.#store.findFile(g.id, file) : undefined;
    if (record === undefined)
      return reply(Status.STATUS_NOT_FOUND, `no file ${file} in ${name}; see list_files ${quoteArg(name)}`);
    const holders = this.#swarm.holderCount(record.id, ctx.peerId);
    if (holders === 0) {
      return reply(Status.STATUS_UNAVAILABLE, `nobody who shares ${file} is online now; try again later`);
    }
    this.#swarm.want(ctx.peerId, record.id, name);
    return ok(`downloading ${file} from ${holders} ${holders === 1 ? "sharer" : "sharers"}`, {
      file: { fileId: record.id, manifest: manifestToWire(record.manifest) },
      sharers: holders,
    });
  }

  async #stopShare(ctx: ClientContext, user: { id: number; name: string }, name: string, file: string): Promise<Reply> {
    const g = await this.#memberOf(name, user.id);
    if (isRefused(g)) return g.refused;
    const record = await this.#store.findFile(g.id, file);
    if (record === undefined)
      return reply(Status.STATUS_NOT_FOUND, `no file ${file} in ${name}; see list_files ${quoteArg(name)}`);
    const result = await this.#store.unshareFile(record.id, user.id);
    if (!result.removed) return reply(Status.STATUS_NOT_FOUND, `you do not share ${file} in ${name}`);
    this.#swarm.unshare(ctx.peerId, record.id);
    this.#swarm.unshareUser(user.id, record.id);
    if (result.fileDeleted) this.#swarm.fileDeleted(record.id);
    return ok(
      `stopped sharing ${file} in ${name}${result.fileDeleted ? "; nobody shares it now, so it is removed" : ""}`,
      {
        file: { fileId: record.id },
      },
    );
  }
}

function sha256(bytes: Uint8Array): Buffer {
  return createHash("sha256").update(bytes).digest();
}

/** An argument as the user would type it again (quoted when it has spaces or quotes). */
export function quoteArg(arg: string): string {
  return /^[^\s"'\\]+$/u.test(arg) ? arg : `"${arg.replace(/["\\]/gu, (c) => `\\${c}`)}"`;
}
