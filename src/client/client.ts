import { createSocket, type Socket } from "node:dgram";
import { existsSync, linkSync, mkdirSync, statSync, unlinkSync } from "node:fs";
import { networkInterfaces } from "node:os";
import { basename, join, relative, resolve } from "node:path";
import { ACCOUNTS_VERSION } from "../accounts/connections.js";
import { CheckpointGate } from "../peer/checkpoint-gate.js";
import { addRemoteFrom } from "../peer/remote-address.js";
import { countResumed, interruptedDownloads, resumeCounters, resumedLine } from "../peer/resume-report.js";
import { FileStore } from "../peer/store.js";
import { FAILOVER_LINK_OPTIONS, TrackerClient } from "../peer/tracker-client.js";
import { hashFileAsync } from "../sync/hash-file.js";
import { TransferEngine } from "../transfer/engine.js";
import { RealClock } from "../util/clock.js";
import { errorMessage, SwarmError } from "../util/errors.js";
import { SeededRandom } from "../util/random.js";
import { udpswarm } from "../wire/gen/swarm.js";
import { checkFileName } from "../wire/names.js";
import {
  type CheckedManifest,
  checkManifest,
  isManifestProblem,
  manifestToWire,
  type TrackerFrame,
} from "../wire/tracker-frame.js";
import { DestinationLock } from "./dest-lock.js";
import { downloadTag, parseDownloadTag } from "./download-tag.js";
import { formatSize, formatTable, printable } from "./format.js";
import type { ClientState, SavedUpload } from "./state.js";
import { firstThatAnswers, type TrackerAddress, type TrackerList } from "./tracker-list.js";

const Status = udpswarm.AccountStatus;
type Reply = udpswarm.IAccountReply;
type Command = Omit<udpswarm.IAccountRequest, "requestId">;

/** A command's outcome: lines for stdout, or one error line. */
export type Outcome = { readonly ok: boolean; readonly lines: readonly string[] };
const done = (...lines: string[]): Outcome => ({ ok: true, lines });
const failed = (line: string): Outcome => ({ ok: false, lines: [line] });

/** The tracker must answer a request within this (ms); logins may queue behind others' hashing. */
const REPLY_TIMEOUT_MS = 120_000;
const WELCOME_TIMEOUT_MS = 10_000;
/**
 * Staging records (SPEC §12) are written at most this often (ms), as a peer does: one
 * positional write, no fsync (see StagingArea.writeRecord). With an fsync, which on ext4
 * also flushes the pieces written since the last one, a record every 4 pieces made a 64 MiB
 * download ~30% slower (bench/resume-cost.ts). show_downloads counts only recorded pieces,
 * so what it said survives a kill -9.
 */
const CHECKPOINT_EVERY_MS = 20;

type Download = {
  readonly fileId: number;
  readonly group: string;
  readonly manifest: CheckedManifest;
  /** DEST_DIR/FILE. */
  readonly target: string;
  /** Whose partial it is in staging (download-tag.ts). */
  readonly tag: string;
  /** Held until the file is in place or the download is dropped. */
  readonly lock: DestinationLock | undefined;
  state: "downloading" | "finishing" | "complete";
};
type Share = {
  readonly fileId: number;
  readonly group: string;
  readonly name: string;
  readonly path: string;
  readonly manifest: CheckedManifest;
};
/** A request sent and not answered yet: sent again to the next tracker if this one is lost. */
type Pending = { readonly command: Command; readonly resolve: (reply: Reply) => void };

export type ClientConfig = {
  /** The trackers of the service, in the order to try them (BEP 12 tiers). */
  readonly trackers: TrackerList;
  readonly state: ClientState;
  /** Things that happen in the background (a download finished): one line each. */
  readonly notice: (line: string) => void;
  /** The tracker link is gone and no other tracker answers: the client cannot go on. */
  readonly lost: (err: SwarmError) => void;
};

/**
 * The client of SPEC §10: a peer of the UDP data path (the transfer engine) that serves
 * its uploads and finished downloads to members of their groups only, and the account
 * commands over the tracker link. Each command resolves with its outcome.
 */
export class Client {
  readonly #config: ClientConfig;
  readonly #clock = new RealClock();
  readonly #socket: Socket = createSocket("udp4");
  readonly #store: FileStore;
  readonly #engine: TransferEngine;
  /** Staging records are brought up to date as pieces arrive (coalesced; see CHECKPOINT_*). */
  readonly #checkpoints: CheckpointGate<number>;
  /** What downloads taken up from an earlier run kept (the same counters as a peer's). */
  readonly #resumed = resumeCounters();
  #tracker: TrackerClient | undefined;
  /** The tracker in use. */
  #where: TrackerAddress | undefined;
  #udpPort = 0;
  /** While the client moves to another tracker: requests wait for this. */
  #moving: Promise<void> | undefined;
  /** Tracker moves so far, and the time the last one took (ms), for the stats. */
  #moves = 0;
  #lastMoveMs = 0;
  #peerId = 0;
  #secret: Uint8Array = new Uint8Array(0);
  #welcomed: (() => void) | undefined;
  #user: string | undefined;
  #nextRequest = 1;
  readonly #pending = new Map<number, Pending>();
  /** Groups each introduced peer shares with us: it is served those groups' files only. */
  readonly #allowed = new Map<number, ReadonlySet<string>>();
  /** Live holders the tracker announced, by file (kept for downloads that start later). */
  readonly #holders = new Map<number, Set<number>>();
  readonly #fileGroup = new Map<number, string>();
  readonly #shares = new Map<number, Share>();
  readonly #downloads = new Map<number, Download>();
  readonly #local = new Set(
    Object.values(networkInterfaces())
      .flatMap((l) => l ?? [])
      .filter((a) => a.family === "IPv4" && !a.internal)
      .map((a) => a.address),
  );
  #closed = false;

  constructor(config: ClientConfig) {
    this.#config = config;
    // Nothing is placed in the state folder: uploads are served where they are, and a
    // finished download is put in its destination by #finish. The staging folder's lock
    // keeps a second client out of this folder (ERR_FOLDER_IN_USE).
    this.#store = new FileStore(config.state.dir, config.state.stagingDir, config.notice, true, "client");
    this.#checkpoints = new CheckpointGate<number>({
      clock: this.#clock,
      checkpoint: () => this.#store.checkpoint(),
      send: () => {},
      // Downloads go on; a restart would check their partials piece by piece.
      fail: (err) => config.notice(`cannot record download progress: ${errorMessage(err)}`),
      everyMs: CHECKPOINT_EVERY_MS,
    });
    const socket = this.#socket;
    this.#engine = new TransferEngine({
      clock: this.#clock,
      port: { send: (bytes, host, port) => socket.send(bytes, port, host) },
      store: this.#store,
      random: new SeededRandom(process.pid ^ Date.now()),
      defer: (fn) => setImmediate(fn),
      mayServe: (fileId, peerId) => {
        const group = this.#fileGroup.get(fileId);
        return group !== undefined && this.#allowed.get(peerId)?.has(group) === true;
      },
      events: {
        acquired: (fileId) => this.#checkpoints.push([fileId]),
        fileComplete: (fileId) => void this.#finish(fileId),
        fatal: (err) => config.notice(`storage failed: ${errorMessage(err)}`),
        withdrawn: (fileId, why) => {
          const share = this.#shares.get(fileId);
          config.notice(`${share?.path ?? `file ${fileId}`} changed on disk (${why}): no longer shared`);
        },
      },
    });
  }

  get user(): string | undefined {
    return this.#user;
  }

  /** Binds UDP, reaches the first tracker that answers, and resumes a saved session. */
  async start(): Promise<string[]> {
    const udpPort = await new Promise<number>((ok, fail) => {
      this.#socket.once("error", (err) => fail(new SwarmError("ERR_IO", `cannot bind UDP: ${err.message}`)));
      this.#socket.bind(0, () => {
        this.#socket.removeAllListeners("error");
        this.#socket.on("error", () => {});
        this.#socket.on("message", (msg, rinfo) => this.#engine.onDatagram(msg, rinfo.address, rinfo.port));
        ok(this.#socket.address().port);
      });
    });
    this.#udpPort = udpPort;
    await this.#reachAny(undefined);
    const saved = this.#config.state.session();
    if (saved === undefined) return [];
    const reply = await this.#request({ resume: { token: Buffer.from(saved.token, "base64") } });
    if (reply.status !== Status.STATUS_OK) {
      this.#config.state.saveSession(undefined);
      return [`the saved session of ${saved.user} has expired; log in again`];
    }
    this.#user = reply.user ?? saved.user;
    return [
      `logged in as ${this.#user} (saved session)`,
      ...(await this.#reannounce()),
      ...(await this.#takeUpPartials()),
    ];
  }

  /**
   * Connects to the first tracker of the list that answers (`last`, the one just lost, is
   * tried after every other). Throws one clear error when none does.
   */
  async #reachAny(last: TrackerAddress | undefined): Promise<void> {
    const { tracker } = await firstThatAnswers(
      this.#config.trackers.order(last),
      (t) => this.#connect(t.host, t.port, this.#udpPort),
      () => this.#closed,
    );
    this.#where = tracker;
    this.#config.trackers.answered(tracker);
  }

  async #connect(host: string, port: number, udpPort: number): Promise<void> {
    const welcomed = new Promise<void>((ok, fail) => {
      this.#welcomed = ok;
      setTimeout(
        () => fail(new SwarmError("ERR_TRACKER_REFUSED", `the tracker at ${host}:${port} did not welcome this client`)),
        WELCOME_TIMEOUT_MS,
      ).unref();
    });
    let early: SwarmError | undefined;
    const tracker = await TrackerClient.connect(
      host,
      port,
      this.#clock,
      {
        frame: (frame) => this.#onFrame(frame),
        lost: (err) => {
          if (this.#welcomed !== undefined) {
            early = new SwarmError(
              "ERR_TRACKER_REFUSED",
              `the tracker at ${host}:${port} does not take clients (is it started with --store?): ${err.message}`,
            );
            this.#welcomed();
            return;
          }
          if (this.#tracker === tracker) void this.#move(err);
        },
      },
      FAILOVER_LINK_OPTIONS,
    );
    this.#tracker = tracker;
    tracker.send({
      clientHello: {
        accountsVersion: ACCOUNTS_VERSION,
        udpPort,
        addresses: [...this.#local],
        // Moving from a lost tracker: keep the peer id its peers know us by.
        ...(this.#peerId === 0 ? {} : { resumePeerId: this.#peerId, resumeSecret: this.#secret }),
      },
    });
    await welcomed;
    if (early !== undefined) {
      this.#tracker = undefined;
      throw early;
    }
  }

  #lost(err: SwarmError): void {
    for (const p of this.#pending.values()) p.resolve({ status: Status.STATUS_BUSY, message: err.message });
    this.#pending.clear();
    if (!this.#closed) this.#config.lost(err);
  }

  /**
   * SEVERAL TRACKERS (§11): the tracker in use is lost. The client moves to the next that
   * answers, keeping its peer id (so transfers between peers carry on meanwhile), resumes
   * its session by token (no password), announces again what it shares and fetches, and
   * sends again the requests that were waiting. Commands typed meanwhile wait for it.
   */
  async #move(err: SwarmError): Promise<void> {
    if (this.#closed || this.#moving !== undefined) return;
    const lostAt = Date.now();
    const from = this.#where;
    this.#tracker?.close();
    this.#tracker = undefined;
    let done: () => void = () => {};
    this.#moving = new Promise((resolve) => {
      done = resolve;
    });
    this.#config.notice(
      `lost the tracker ${from === undefined ? "" : `${from.host}:${from.port} `}(${err.message}); moving to another`,
    );
    try {
      await this.#reachAny(from);
    } catch (failure) {
      this.#moving = undefined;
      done();
      this.#lost(
        new SwarmError(
          "ERR_TRACKER_LOST",
          `${err.message}; no other tracker answers (${failure instanceof Error ? failure.message : String(failure)})`,
        ),
      );
      return;
    }
    const lines: string[] = [];
    const saved = this.#config.state.session();
    if (this.#user !== undefined && saved !== undefined) {
      const reply = await this.#send({ resume: { token: Buffer.from(saved.token, "base64") } });
      if (reply.status === Status.STATUS_OK) lines.push(...(await this.#announceAgain()));
      else {
        lines.push(
          `the session of ${this.#user} could not be resumed (${printable(reply.message ?? "")}); log in again`,
        );
        this.#user = undefined;
      }
    }
    this.#moving = undefined;
    done();
    // Requests that were waiting for the lost tracker's answer go to this one.
    const tracker = this.#tracker as TrackerClient | undefined;
    for (const [requestId, p] of this.#pending) tracker?.send({ accountRequest: { requestId, ...p.command } });
    this.#moves++;
    this.#lastMoveMs = Date.now() - lostAt;
    const where = this.#where;
    this.#config.notice(
      `moved to the tracker ${where?.host ?? "?"}:${where?.port ?? 0} in ${this.#lastMoveMs} ms${lines.length > 0 ? `; ${lines.join("; ")}` : ""}`,
    );
  }

  /** After a move: shares and downloads are announced to the new tracker (no file read again). */
  async #announceAgain(): Promise<string[]> {
    let shared = 0;
    const problems: string[] = [];
    for (const s of [...this.#shares.values()]) {
      const reply = await this.#send({ uploadFile: { group: s.group, manifest: manifestToWire(s.manifest) } });
      if (reply.status === Status.STATUS_OK) shared++;
      else problems.push(`not sharing ${printable(s.name)} any more: ${printable(reply.message ?? "")}`);
    }
    for (const d of [...this.#downloads.values()]) {
      if (d.state !== "downloading") continue;
      const reply = await this.#send({ downloadFile: { group: d.group, file: d.manifest.name } });
      if (reply.status !== Status.STATUS_OK && reply.status !== Status.STATUS_UNAVAILABLE)
        problems.push(`download of ${printable(d.manifest.name)}: ${printable(reply.message ?? "")}`);
    }
    return [`sharing ${shared} ${shared === 1 ? "file" : "files"} again`, ...problems];
  }

  /** A request to the tracker; while the client moves to another tracker, it waits for that. */
  async #request(command: Command): Promise<Reply> {
    while (this.#moving !== undefined) await this.#moving;
    return this.#send(command);
  }

  #send(command: Command): Promise<Reply> {
    const tracker = this.#tracker;
    if (tracker === undefined) return Promise.resolve({ status: Status.STATUS_BUSY, message: "no tracker" });
    const requestId = this.#nextRequest++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#pending.delete(requestId);
        resolve({ status: Status.STATUS_BUSY, message: "the tracker did not answer in time; try again" });
      }, REPLY_TIMEOUT_MS);
      this.#pending.set(requestId, {
        command,
        resolve: (reply) => {
          clearTimeout(timer);
          resolve(reply);
        },
      });
      tracker.send({ accountRequest: { requestId, ...command } });
    });
  }

  // ---------------------------------------------------------------- tracker frames

  #onFrame(frame: TrackerFrame): void {
    switch (frame.body) {
      case "welcome": {
        const peerId = frame.welcome?.peerId ?? 0;
        // A new id after a move: every pair key we hold was for the old one; peers are introduced again.
        if (this.#peerId !== 0 && peerId !== this.#peerId)
          for (const id of [...this.#allowed.keys()]) this.#peerLeft(id);
        this.#peerId = peerId;
        this.#secret = frame.welcome?.secret ?? new Uint8Array(0);
        this.#welcomed?.();
        this.#welcomed = undefined;
        return;
      }
      case "accountReply": {
        const r = frame.accountReply ?? {};
        const pending = this.#pending.get(r.requestId ?? 0);
        this.#pending.delete(r.requestId ?? 0);
        pending?.resolve(r);
        return;
      }
      case "updates": {
        // In the order the tracker's Updates are applied (proto/swarm.proto).
        const u = frame.updates ?? {};
        for (const fileId of u.removed ?? []) this.#fileRemoved(fileId);
        for (const peerId of u.left ?? []) this.#peerLeft(peerId);
        for (const p of u.joined ?? []) this.#introduce(p);
        for (const h of u.holders ?? []) this.#holderAdded(h.peerId ?? 0, h.fileId ?? 0);
        return;
      }
      default:
        return;
    }
  }

  #peerLeft(id: number): void {
    this.#allowed.delete(id);
    for (const set of this.#holders.values()) set.delete(id);
    this.#engine.removeRemote(id);
  }

  #holderAdded(peerId: number, fileId: number): void {
    if (!this.#allowed.has(peerId)) return;
    const set = this.#holders.get(fileId) ?? new Set<number>();
    this.#holders.set(fileId, set);
    set.add(peerId);
    if (this.#downloads.get(fileId)?.state === "downloading") this.#engine.holdersChanged(peerId, fileId, [], true);
  }

  #fileRemoved(fileId: number): void {
    const d = this.#downloads.get(fileId);
    if (d?.state === "downloading") {
      this.#config.notice(`download of ${d.manifest.name} from ${d.group} stopped: nobody shares it any more`);
      this.#drop(fileId, false); // the group's file record is gone: that version will not come back
    }
  }

  #introduce(p: udpswarm.IPeerAddress): void {
    const id = addRemoteFrom(this.#engine, p, {
      peerId: this.#peerId,
      secret: this.#secret,
      localAddresses: this.#local,
    });
    if (id !== undefined) this.#allowed.set(id, new Set(p.groups ?? []));
  }

  // ---------------------------------------------------------------- commands

  /** Runs one command (already split into words, the name first, arguments checked). */
  async run(name: string, args: readonly string[]): Promise<Outcome> {
    const [a = "", b = "", c = ""] = args;
    switch (name) {
      case "create_user":
        return this.#simple(await this.#request({ createUser: { user: a, password: b } }));
      case "login":
        return this.#login(a, b);
      case "logout":
        return this.#logout();
      case "create_group":
        return this.#simple(await this.#request({ createGroup: { group: a } }));
      case "join_group":
        return this.#simple(await this.#request({ joinGroup: { group: a } }));
      case "leave_group": {
        const reply = await this.#request({ leaveGroup: { group: a } });
        if (reply.status === Status.STATUS_OK) this.#forgetGroup(a);
        return this.#simple(reply);
      }
      case "list_groups":
        return this.#listGroups();
      case "list_requests":
        return this.#listRequests(a);
      case "accept_request":
        return this.#simple(await this.#request({ acceptRequest: { group: a, user: b } }));
      case "reject_request":
        return this.#simple(await this.#request({ rejectRequest: { group: a, user: b } }));
      case "upload_file":
        return this.#upload(a, b);
      case "list_files":
        return this.#listFiles(a);
      case "download_file":
        return this.#download(a, b, c);
      case "stop_share":
        return this.#stopShare(a, b);
      case "show_downloads":
        return this.#showDownloads();
      default:
        return failed(`unknown command ${name}; type help`);
    }
  }

  #simple(reply: Reply): Outcome {
    const message = printable(reply.message ?? "");
    return reply.status === Status.STATUS_OK ? done(message) : failed(message || "the tracker refused");
  }

  async #login(user: string, password: string): Promise<Outcome> {
    const reply = await this.#request({ login: { user, password } });
    if (reply.status !== Status.STATUS_OK) return this.#simple(reply);
    this.#user = reply.user ?? user;
    this.#config.state.saveSession({
      user: this.#user,
      token: Buffer.from(reply.sessionToken ?? []).toString("base64"),
    });
    return done(printable(reply.message ?? ""), ...(await this.#reannounce()), ...(await this.#takeUpPartials()));
  }

  async #logout(): Promise<Outcome> {
    const reply = await this.#request({ logout: {} });
    if (reply.status === Status.STATUS_OK) {
      // Partial downloads stay for this user's next login.
      for (const id of [...this.#fileGroup.keys()]) this.#drop(id, true);
      this.#config.state.saveSession(undefined);
      this.#user = undefined;
    }
    return this.#simple(reply);
  }

  /** Shares again what this user shared from here before (files changed since are hashed again). */
  async #reannounce(): Promise<string[]> {
    const user = this.#user;
    if (user === undefined) return [];
    const lines: string[] = [];
    let shared = 0;
    for (const u of this.#config.state.uploads(user)) {
      const outcome = await this.#share(u.path, u.group, false);
      if (outcome.ok) shared++;
      else lines.push(`not sharing ${printable(u.path)} with ${printable(u.group)} again: ${outcome.lines[0] ?? ""}`);
    }
    if (shared > 0) lines.unshift(`sharing ${shared} ${shared === 1 ? "file" : "files"} again`);
    return lines;
  }

  async #upload(path: string, group: string): Promise<Outcome> {
    if (this.#user === undefined) return failed("not logged in; log in first: login USER PASSWORD");
    return this.#share(path, group, true);
  }

  async #share(path: string, group: string, remember: boolean): Promise<Outcome> {
    const full = resolve(path);
    let size: number;
    try {
      const st = statSync(full);
      if (!st.isFile()) return failed(`${printable(path)} is not a regular file; give the path of a file`);
      size = st.size;
    } catch {
      return failed(`no file at ${printable(path)}; check the path`);
    }
    const name = basename(full);
    const problem = checkFileName(name);
    if (problem !== undefined) return failed(`cannot share ${printable(name)}: ${problem}; rename it`);
    for (const s of this.#shares.values()) {
      if (s.group === group && s.name === name)
        return failed(`you already share ${printable(name)} with ${printable(group)}`);
    }
    let manifest: CheckedManifest;
    try {
      manifest = await hashFileAsync(full, name);
    } catch (err) {
      return failed(`cannot read ${printable(path)}: ${errorMessage(err)}`);
    }
    const reply = await this.#request({ uploadFile: { group, manifest: manifestToWire(manifest) } });
    if (reply.status !== Status.STATUS_OK) return this.#simple(reply);
    const fileId = reply.file?.fileId ?? 0;
    if (this.#downloads.get(fileId)?.state === "downloading" || this.#shares.has(fileId)) {
      return failed(`${printable(name)} is already being fetched or shared by this client`);
    }
    this.#store.addSeed(fileId, name, size, full);
    this.#fileGroup.set(fileId, group);
    this.#shares.set(fileId, { fileId, group, name, path: full, manifest });
    this.#engine.addFile(fileId, manifest, "seeding");
    if (remember) this.#saveUploads();
    return this.#simple(reply);
  }

  #saveUploads(): void {
    if (this.#user === undefined) return;
    const list: SavedUpload[] = [...this.#shares.values()].map((s) => ({ group: s.group, path: s.path }));
    this.#config.state.saveUploads(this.#user, list);
  }

  async #listGroups(): Promise<Outcome> {
    const reply = await this.#request({ listGroups: {} });
    if (reply.status !== Status.STATUS_OK) return this.#simple(reply);
    const groups = reply.groups ?? [];
    if (groups.length === 0) return done("no groups yet; create one: create_group GROUP");
    const rows = groups.map((g) => [
      g.name ?? "",
      g.owner ?? "",
      String(g.members ?? 0),
      g.role === "owner" || g.role === "member" ? String(g.files ?? 0) : "-",
      g.role === "" || g.role == null ? "-" : g.role,
    ]);
    return done(
      ...formatTable(
        ["GROUP", "OWNER", "MEMBERS", "FILES", "YOU"],
        rows.map((r) => r.map(printable)),
      ),
    );
  }

  async #listRequests(group: string): Promise<Outcome> {
    const reply = await this.#request({ listRequests: { group } });
    const rows = reply.requests ?? [];
    if (reply.status !== Status.STATUS_OK || rows.length === 0) return this.#simple(reply);
    const table = rows.map((r) => [r.user ?? "", new Date(Number(r.requestedAtMs ?? 0)).toISOString()]);
    return done(
      ...formatTable(
        ["USER", "REQUESTED"],
        table.map((r) => r.map(printable)),
      ),
    );
  }

  async #listFiles(group: string): Promise<Outcome> {
    const reply = await this.#request({ listFiles: { group } });
    const files = reply.files ?? [];
    if (reply.status !== Status.STATUS_OK || files.length === 0) return this.#simple(reply);
    const rows = files.map((f) => [
      f.name ?? "",
      formatSize(Number(f.size ?? 0)),
      String(f.sharers ?? 0),
      String(f.online ?? 0),
      f.uploader ?? "",
    ]);
    return done(
      ...formatTable(
        ["FILE", "SIZE", "SHARERS", "ONLINE", "UPLOADER"],
        rows.map((r) => r.map(printable)),
      ),
    );
  }

  async #download(group: string, file: string, destDir: string): Promise<Outcome> {
    if (this.#user === undefined) return failed("not logged in; log in first: login USER PASSWORD");
    const problem = checkFileName(file);
    if (problem !== undefined) return failed(`no file ${printable(file)} can be in a group: ${problem}`);
    const dest = resolve(destDir);
    try {
      mkdirSync(dest, { recursive: true });
    } catch (err) {
      return failed(`cannot use ${printable(destDir)} as the destination: ${errorMessage(err)}`);
    }
    return (await this.#fetch(group, file, dest)).outcome;
  }

  /**
   * Asks the tracker for `file` of `group` and downloads it into `dest`, taking up the
   * partial an earlier run of this user left for that same destination and version (its
   * recorded pieces are hashed again; SPEC §12). Asking again for a download already under
   * way into the same place (one taken up at start) is no error.
   */
  async #fetch(group: string, file: string, dest: string): Promise<{ outcome: Outcome; status: number }> {
    const user = this.#user;
    if (user === undefined) return { outcome: failed("not logged in"), status: Status.STATUS_NOT_LOGGED_IN };
    const target = join(dest, file);
    const under = [...this.#downloads.values()].some((d) => d.target === target && d.state !== "complete");
    if (under) return this.#fetchInto(user, group, file, dest, undefined);
    if (existsSync(target)) {
      return { outcome: failed(`${printable(target)} already exists; remove it or choose another folder`), status: 0 };
    }
    const lock = await DestinationLock.acquire(target);
    if (!(lock instanceof DestinationLock)) {
      const who = lock.heldBy > 0 ? `another client (pid ${lock.heldBy})` : "another client";
      const line = `${who} is downloading ${printable(file)} into ${printable(dest)}; wait for it to finish, or choose another folder`;
      return { outcome: failed(line), status: 0 };
    }
    const result = await this.#fetchInto(user, group, file, dest, lock);
    if (![...this.#downloads.values()].some((d) => d.lock === lock)) lock.release();
    return result;
  }

  async #fetchInto(
    user: string,
    group: string,
    file: string,
    dest: string,
    lock: DestinationLock | undefined,
  ): Promise<{ outcome: Outcome; status: number }> {
    const target = join(dest, file);
    const reply = await this.#request({ downloadFile: { group, file } });
    const status = reply.status ?? 0;
    const refused = (line: string) => ({ outcome: failed(line), status });
    if (status !== Status.STATUS_OK) return { outcome: this.#simple(reply), status };
    const fileId = reply.file?.fileId ?? 0;
    const manifest = checkManifest(reply.file?.manifest ?? {}, Number.MAX_SAFE_INTEGER);
    if (isManifestProblem(manifest) || manifest.name !== file)
      return refused("the tracker sent a bad file record; try again");
    if (this.#shares.has(fileId)) return refused(`you already share ${printable(file)} in ${printable(group)}`);
    const into = done(`${printable(reply.message ?? "")} into ${printable(dest)}`);
    const running = this.#downloads.get(fileId);
    if (lock === undefined) {
      // Asked again for a download under way into the same place (one taken up at start).
      if (running?.target === target && running.state !== "complete") return { outcome: into, status };
      return refused(`another download into ${printable(target)} is under way; wait for it, or choose another folder`);
    }
    if (running !== undefined && running.state !== "complete") {
      return refused(`${printable(file)} is being downloaded already, into ${printable(join(running.target, ".."))}`);
    }
    const tag = downloadTag({ user, group, dest });
    let kept: readonly number[] = [];
    try {
      if (this.#store.hasPartial(manifest, tag)) {
        const result = await this.#store.resumeDownload(fileId, manifest, tag);
        if (this.#closed) return refused("the client is stopping");
        kept = result.kept;
        countResumed(this.#resumed, manifest, result);
        this.#config.notice(resumedLine(manifest.name, manifest.pieceSha256.length, result));
      } else if (this.#store.startDownload(fileId, manifest, tag) > 0) {
        this.#config.notice(
          `the partial download of ${JSON.stringify(manifest.name)} kept from an earlier run was of another version: removed`,
        );
      }
    } catch (err) {
      return refused(`cannot prepare the download: ${errorMessage(err)}`);
    }
    this.#downloads.delete(fileId);
    this.#downloads.set(fileId, { fileId, group, manifest, target, tag, lock, state: "downloading" });
    this.#fileGroup.set(fileId, group);
    this.#engine.addFile(fileId, manifest, "downloading", { verifiedPieces: kept });
    for (const peerId of this.#holders.get(fileId) ?? []) this.#engine.holdersChanged(peerId, fileId, [], true);
    // A first record at once: a client killed before its first piece still knows at its
    // next start what it was downloading, for whom and where to (it has no other memory of it).
    this.#checkpoints.push([fileId], true);
    return { outcome: into, status };
  }

  /**
   * After a login (or a saved session taken up at start): the partial downloads this user
   * left here are taken up again, each into its own destination. A partial whose file is
   * gone from its group, or whose destination now holds the file, is removed; one whose
   * sharers are all offline now is kept for later (download_file takes it up).
   */
  async #takeUpPartials(): Promise<string[]> {
    const user = this.#user;
    if (user === undefined) return [];
    const lines: string[] = [];
    for (const identity of this.#store.partials()) {
      const owner = parseDownloadTag(identity.tag);
      if (owner === undefined || owner.user !== user) continue;
      const what = `${printable(identity.name)} from ${printable(owner.group)}`;
      if (existsSync(join(owner.dest, identity.name))) {
        this.#store.discardPartial(identity);
        lines.push(`partial download of ${what} removed: ${printable(join(owner.dest, identity.name))} exists now`);
        continue;
      }
      const { outcome, status } = await this.#fetch(owner.group, identity.name, owner.dest);
      if (outcome.ok) {
        lines.push(`continuing the download of ${what} into ${printable(owner.dest)}`);
      } else if (status === Status.STATUS_NOT_FOUND || status === Status.STATUS_FORBIDDEN) {
        this.#store.discardPartial(identity);
        lines.push(`partial download of ${what} removed: ${outcome.lines[0] ?? ""}`);
      } else {
        lines.push(`partial download of ${what} kept for later: ${outcome.lines[0] ?? ""}`);
      }
    }
    return lines;
  }

  /** Every piece is verified: the whole file is checked, put in place, and shared. */
  async #finish(fileId: number): Promise<void> {
    const d = this.#downloads.get(fileId);
    if (d === undefined || d.state !== "downloading") return;
    d.state = "finishing";
    const path = d.target;
    try {
      // Linked, never renamed: whatever appeared at the target meanwhile is not replaced.
      await this.#store.finalize(fileId, d.manifest, (staged) => {
        linkSync(staged, path);
        unlinkSync(staged);
        return path;
      });
    } catch (err) {
      this.#config.notice(`download of ${printable(d.manifest.name)} failed: ${errorMessage(err)}`);
      this.#drop(fileId, false);
      return;
    } finally {
      d.lock?.release();
    }
    if (this.#downloads.get(fileId) !== d) return;
    // Shared before it is said to be done (and before a piped script's end lets the client
    // quit): whoever hears "downloaded" finds this client among the file's sharers.
    const reply = await this.#request({ uploadFile: { group: d.group, manifest: manifestToWire(d.manifest) } });
    d.state = "complete";
    const done = `downloaded ${printable(d.manifest.name)} from ${printable(d.group)} into ${printable(path)}`;
    if (reply.status !== Status.STATUS_OK) {
      this.#config.notice(`${done}; not shared: ${reply.message}`);
      return;
    }
    this.#config.notice(done);
    if (this.#fileGroup.get(fileId) !== d.group) return;
    this.#shares.set(fileId, { fileId, group: d.group, name: d.manifest.name, path, manifest: d.manifest });
    this.#saveUploads();
  }

  async #stopShare(group: string, file: string): Promise<Outcome> {
    const reply = await this.#request({ stopShare: { group, file } });
    if (reply.status === Status.STATUS_OK) {
      const fileId = reply.file?.fileId ?? 0;
      if (this.#shares.has(fileId)) this.#drop(fileId, false);
      this.#saveUploads();
    }
    return this.#simple(reply);
  }

  #showDownloads(): Outcome {
    if (this.#downloads.size === 0) return done("no downloads yet");
    const lines: string[] = [];
    for (const d of this.#downloads.values()) {
      const what = `${printable(d.group)} ${printable(d.manifest.name)}`;
      if (d.state === "complete") {
        lines.push(`[C] ${what}`);
        continue;
      }
      // Pieces recorded in staging (at most ~100 ms behind): what a restart would keep.
      const pieces = d.manifest.pieceSha256.length;
      const held = this.#store.durablePieces(d.fileId) ?? 0;
      const percent = pieces === 0 ? 100 : Math.floor((100 * held) / pieces);
      lines.push(`[D] ${what} ${Math.min(d.state === "finishing" ? 100 : 99, percent)}%`);
    }
    return done(...lines);
  }

  /** Transfer counters (per remote too): UDPSWARM_STATS=FILE writes them at exit. */
  stats(): Record<string, unknown> {
    return {
      peer: this.#peerId,
      trackerMoves: this.#moves,
      lastMoveMs: this.#lastMoveMs,
      ...this.#engine.counters,
      remotes: this.#engine.remoteStats(),
      resumed: this.#resumed,
      stagingRecordWrites: this.#store.recordWrites,
    };
  }

  /** Downloads not finished yet. */
  get activeDownloads(): number {
    let n = 0;
    for (const d of this.#downloads.values()) if (d.state !== "complete") n++;
    return n;
  }

  /** Whether a running download has no live holder (it cannot progress now). */
  stalledDownloads(): string[] {
    const names: string[] = [];
    for (const d of this.#downloads.values()) {
      if (d.state === "downloading" && (this.#engine.file(d.fileId)?.holders.size ?? 0) === 0)
        names.push(d.manifest.name);
    }
    return names;
  }

  #forgetGroup(group: string): void {
    for (const [id, g] of [...this.#fileGroup]) if (g === group) this.#drop(id, false);
    this.#saveUploads();
  }

  /** Stops serving or fetching a file here; a download's partial is kept for later or removed. */
  #drop(fileId: number, keepPartial: boolean): void {
    this.#engine.removeFile(fileId);
    this.#store.abandon(fileId, keepPartial);
    this.#fileGroup.delete(fileId);
    this.#shares.delete(fileId);
    const d = this.#downloads.get(fileId);
    d?.lock?.release();
    if (d !== undefined && d.state !== "complete") this.#downloads.delete(fileId);
  }

  /**
   * Says goodbye and closes everything. Downloads in progress stay in staging with their
   * records, for the next start (SPEC §12): returns the line that says which. Safe to call twice.
   */
  async close(): Promise<string> {
    if (this.#closed) return "";
    this.#closed = true;
    // A download with no piece yet leaves nothing (FileStore.close).
    const unfinished = [...this.#downloads.values()]
      .filter((d) => d.state !== "complete" && (this.#engine.file(d.fileId)?.done.count ?? 0) > 0)
      .map((d) => d.manifest.name);
    this.#checkpoints.close();
    for (const d of this.#downloads.values()) d.lock?.release();
    await this.#tracker?.goodbye();
    this.#tracker?.close();
    this.#engine.close();
    const { failure } = this.#store.close("keep");
    const where = relative(process.cwd(), this.#store.stagingDir) || this.#store.stagingDir;
    let line = interruptedDownloads(unfinished, where);
    if (failure !== undefined) line += ` (their records could not all be written: ${errorMessage(failure)})`;
    try {
      this.#socket.close();
    } catch {
      // not bound
    }
    return line;
  }
}
