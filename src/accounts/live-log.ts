import type pg from "pg";
import type { ClientSwarm, LiveChange } from "./client-swarm.js";
import type { SqlDb, SqlQueries } from "./sql-db.js";

/**
 * SEVERAL TRACKERS (SPEC §11): how trackers that share a store see each other's clients.
 *
 * Every tracker appends the live changes of its own clients (online at an address with a
 * secret, shares, offline; and the store-driven ones: memberships changed, a share or a
 * file removed) to `live_events`, and tails that table from the last id it applied,
 * replaying the other trackers' changes into its ClientSwarm. PostgreSQL wakes the tail
 * with LISTEN/NOTIFY (and it polls every second in case a notification was lost); SQLite
 * polls every 50 ms. Appends take a lock for the length of their transaction, so ids
 * become visible in order and a tail never skips one.
 *
 * Each tracker also keeps a heartbeat row in `live_trackers`. A tracker whose heartbeat
 * has not moved for `expiryMs` (judged on this tracker's own clock, so skewed clocks do
 * not matter), or whose row is gone (it stopped cleanly), is dead: its clients vanish
 * here. They come back when they reconnect to a live tracker and claim their id again.
 *
 * The log is soft state: an offline change deletes that client's earlier events, and
 * events of dead trackers and old store-driven ones are pruned. A tracker that starts
 * replays what is left, which is the live state of every live tracker.
 */
export type LiveLogOptions = {
  /** A tracker silent this long is dead (ms). @default 4000 */
  readonly expiryMs?: number;
  /** Heartbeat period (ms). @default 1000 */
  readonly heartbeatMs?: number;
  /** SQLite tail poll period (ms). @default 50 */
  readonly pollMs?: number;
  /** Shown in the trackers table (host:port). */
  readonly label: string;
  /**
   * The store's truth for a user's groups, read when another tracker's "online" or
   * "user-groups" change is replayed (see #apply). Without it the groups the change carries
   * are taken as they are.
   */
  readonly groupsOf?: (userId: number) => Promise<readonly string[]>;
};

const NOTIFY_CHANNEL = "udpswarm_live";
/** Any fixed number: appends to the log take this advisory lock in turn (PostgreSQL). */
const APPEND_LOCK = 0x75647074;
/** PostgreSQL: the tail also polls this often, in case a notification was missed (ms). */
const PG_FALLBACK_POLL_MS = 1000;
/** Events read per query at most. */
const TAIL_BATCH = 1000;
/** Store-driven events and dead trackers' rows are kept this long for late starters (ms). */
const PRUNE_AFTER_MS = 60_000;
const PRUNE_EVERY_MS = 15_000;
/** Peer ids per tracker: ids are (tracker id mod 4096) * 2^20 + a counter. */
export const IDS_PER_TRACKER = 1 << 20;
const ID_BLOCKS = 4096;

type EventRow = { id: number; tracker_id: number; body: string };
type TrackerRow = { id: number; heartbeat_at_ms: number };

export class LiveLog {
  readonly #db: SqlDb;
  readonly #swarm: ClientSwarm;
  readonly #log: (line: string) => void;
  readonly #expiryMs: number;
  readonly #heartbeatMs: number;
  readonly #pollMs: number;
  readonly #trackerId: number;
  readonly #groupsOf: ((userId: number) => Promise<readonly string[]>) | undefined;
  #offset = 0;
  #pending: LiveChange[] = [];
  #flushing: Promise<void> | undefined;
  /** The tail running now (a wake-up meanwhile makes it go round once more). */
  #tailing: Promise<void> | undefined;
  #tailAgain = false;
  #closed = false;
  readonly #timers: NodeJS.Timeout[] = [];
  #listener: pg.Client | undefined;
  /** Other trackers: their last heartbeat value and when (our clock) it last moved. */
  readonly #seen = new Map<number, { beat: number; movedAt: number }>();
  readonly #dead = new Set<number>();
  /** When (our clock) the trackers were last judged: a long gap means we were stalled ourselves. */
  #checkedAt = 0;
  #lastError = "";

  private constructor(
    db: SqlDb,
    swarm: ClientSwarm,
    log: (line: string) => void,
    trackerId: number,
    options: LiveLogOptions,
  ) {
    this.#db = db;
    this.#swarm = swarm;
    this.#log = log;
    this.#trackerId = trackerId;
    this.#expiryMs = options.expiryMs ?? 4000;
    this.#heartbeatMs = options.heartbeatMs ?? 1000;
    this.#pollMs = options.pollMs ?? 50;
    this.#groupsOf = options.groupsOf;
  }

  get trackerId(): number {
    return this.#trackerId;
  }

  /** Registers this tracker, replays the live state of the others, and starts tailing. */
  static async start(
    db: SqlDb,
    swarm: ClientSwarm,
    log: (line: string) => void,
    options: LiveLogOptions,
  ): Promise<LiveLog> {
    const now = Date.now();
    const row = (
      await db.query<{ id: number }>(
        "INSERT INTO live_trackers (label, started_at_ms, heartbeat_at_ms) VALUES (?, ?, ?) RETURNING id",
        [options.label, now, now],
      )
    ).rows[0];
    if (row === undefined) throw new Error("could not register this tracker in the store");
    const live = new LiveLog(db, swarm, log, row.id, options);
    swarm.joinService((row.id % ID_BLOCKS) * IDS_PER_TRACKER, (change) => live.#append(change));
    await live.#checkTrackers();
    await live.#tail();
    await live.#listen();
    live.#every(live.#heartbeatMs, () => live.#beat());
    live.#every(Math.max(100, Math.floor(live.#expiryMs / 8)), () => live.#checkTrackers());
    live.#every(PRUNE_EVERY_MS, () => live.#prune());
    if (db.kind === "sqlite") live.#every(live.#pollMs, () => live.#tail());
    else live.#every(PG_FALLBACK_POLL_MS, () => live.#tail());
    return live;
  }

  #every(ms: number, fn: () => Promise<void>): void {
    let running = false;
    const timer = setInterval(() => {
      if (running || this.#closed) return;
      running = true;
      fn()
        .catch((err: unknown) => this.#failed(err))
        .finally(() => {
          running = false;
        });
    }, ms);
    timer.unref();
    this.#timers.push(timer);
  }

  /** Logs a store failure once (not every 50 ms while it lasts). */
  #failed(err: unknown): void {
    const message = (err as Error).message;
    if (message === this.#lastError) return;
    this.#lastError = message;
    this.#log(`live state: store failed: ${message}`);
  }

  async #listen(): Promise<void> {
    if (this.#db.kind !== "postgres") return;
    const { PgDb } = await import("./pg-db.js");
    if (!(this.#db instanceof PgDb)) return;
    const client = this.#db.dedicatedClient();
    client.on("notification", () => {
      this.#tail().catch((err: unknown) => this.#failed(err));
    });
    // A lost LISTEN connection: the fallback poll carries on; reconnecting is not worth it.
    client.on("error", (err) => this.#failed(err));
    await client.connect();
    await client.query(`LISTEN ${NOTIFY_CHANNEL}`);
    this.#listener = client;
  }

  // ---------------------------------------------------------------- writing

  #append(change: LiveChange): void {
    if (this.#closed) return;
    this.#pending.push(change);
    this.#flushing ??= this.#flush();
  }

  /** Writes what is pending, in order, in one transaction per batch. */
  async #flush(): Promise<void> {
    try {
      while (this.#pending.length > 0 && !this.#closed) {
        const batch = this.#pending;
        this.#pending = [];
        try {
          await this.#db.transaction((q) => this.#write(q, batch));
        } catch (err) {
          this.#failed(err);
          // Kept for the next try, ahead of what came meanwhile.
          this.#pending = [...batch, ...this.#pending];
          await new Promise((r) => setTimeout(r, 500));
        }
      }
    } finally {
      this.#flushing = undefined;
    }
  }

  async #write(q: SqlQueries, batch: readonly LiveChange[]): Promise<void> {
    const pgsql = this.#db.kind === "postgres";
    if (pgsql) await q.query("SELECT pg_advisory_xact_lock(?)", [APPEND_LOCK]);
    const now = Date.now();
    for (const change of batch) {
      const peerId = "peerId" in change ? change.peerId : 0;
      // A client gone: its earlier changes mean nothing any more.
      if (change.kind === "offline")
        await q.query("DELETE FROM live_events WHERE peer_id = ? AND tracker_id = ?", [peerId, this.#trackerId]);
      await q.query("INSERT INTO live_events (tracker_id, peer_id, kind, body, at_ms) VALUES (?, ?, ?, ?, ?)", [
        this.#trackerId,
        peerId,
        change.kind,
        JSON.stringify(change),
        now,
      ]);
    }
    if (pgsql) await q.query(`SELECT pg_notify('${NOTIFY_CHANNEL}', '')`);
  }

  // ---------------------------------------------------------------- reading

  /** Applies every event after the offset (one tail at a time; a wake-up meanwhile runs it again). */
  #tail(): Promise<void> {
    if (this.#tailing !== undefined) {
      this.#tailAgain = true;
      return this.#tailing;
    }
    this.#tailing = this.#tailRun();
    return this.#tailing;
  }

  async #tailRun(): Promise<void> {
    try {
      do {
        this.#tailAgain = false;
        for (;;) {
          const rows = (
            await this.#db.query<EventRow>(
              "SELECT id, tracker_id, body FROM live_events WHERE id > ? ORDER BY id LIMIT ?",
              [this.#offset, TAIL_BATCH],
            )
          ).rows;
          for (const row of rows) {
            this.#offset = row.id;
            if (row.tracker_id === this.#trackerId || this.#dead.has(row.tracker_id) || this.#closed) continue;
            await this.#apply(row);
          }
          if (rows.length < TAIL_BATCH) break;
        }
      } while (this.#tailAgain && !this.#closed);
    } finally {
      this.#tailing = undefined;
    }
  }

  /**
   * Replays one change of another tracker. The groups an "online" or "user-groups" change
   * carries are those its tracker read when it wrote it; meanwhile a tracker of the service
   * (this one, maybe) may have changed that user's memberships and applied the change to the
   * clients it knew then, which did not yet include this one. Taking the groups it carries
   * would then undo a newer membership here for good (the owner's accept, say: the two
   * clients were never introduced and a download stayed at 0%). So the store's truth is
   * read instead: every membership change is committed before its event is written, so the
   * last replayed event leaves every tracker with the store's groups.
   */
  async #apply(row: EventRow): Promise<void> {
    let change: LiveChange;
    try {
      change = JSON.parse(row.body) as LiveChange;
    } catch {
      this.#log(`live state: event ${row.id} is not JSON; skipped`);
      return;
    }
    if (this.#groupsOf !== undefined) {
      if (change.kind === "online") change = { ...change, groups: await this.#groupsOf(change.user.id) };
      else if (change.kind === "user-groups") change = { ...change, groups: await this.#groupsOf(change.userId) };
    }
    // Judged dead while the store answered: its clients were dropped and stay dropped.
    if (this.#closed || this.#dead.has(row.tracker_id)) return;
    this.#swarm.replay(row.tracker_id, change);
  }

  /** Applies every change the other trackers have written so far (tests; the tail does it by itself). */
  catchUp(): Promise<void> {
    return this.#tail();
  }

  // ---------------------------------------------------------------- trackers

  async #beat(): Promise<void> {
    const changed = (
      await this.#db.query("UPDATE live_trackers SET heartbeat_at_ms = ? WHERE id = ?", [Date.now(), this.#trackerId])
    ).changes;
    if (changed === 0 && !this.#closed) this.#log("live state: this tracker's heartbeat row is gone (pruned as dead?)");
    this.#lastError = "";
  }

  /** Judges the other trackers: one whose heartbeat stopped moving, or whose row went, is dead. */
  async #checkTrackers(): Promise<void> {
    const rows = (await this.#db.query<TrackerRow>("SELECT id, heartbeat_at_ms FROM live_trackers")).rows;
    const now = Date.now();
    // This process was stopped or starved: the others' silence is our own; judge them afresh.
    const stalled = this.#checkedAt !== 0 && now - this.#checkedAt > this.#expiryMs / 2;
    this.#checkedAt = now;
    if (stalled) for (const seen of this.#seen.values()) seen.movedAt = now;
    const present = new Set<number>();
    const revived: number[] = [];
    for (const r of rows) {
      if (r.id === this.#trackerId) continue;
      present.add(r.id);
      const seen = this.#seen.get(r.id);
      if (seen === undefined) {
        // First sight: trust its wall clock once (a row long unbeaten is of a dead tracker).
        this.#seen.set(r.id, { beat: r.heartbeat_at_ms, movedAt: now - Math.max(0, now - r.heartbeat_at_ms) });
      } else if (seen.beat !== r.heartbeat_at_ms) {
        seen.beat = r.heartbeat_at_ms;
        seen.movedAt = now;
        if (this.#dead.delete(r.id)) revived.push(r.id);
      }
      const s = this.#seen.get(r.id);
      if (s !== undefined && now - s.movedAt > this.#expiryMs) this.#died(r.id, "heartbeat stopped");
    }
    for (const id of this.#seen.keys()) {
      if (!present.has(id)) {
        this.#died(id, "stopped");
        this.#seen.delete(id);
      }
    }
    for (const id of revived) await this.#revive(id);
  }

  /** A tracker judged dead beats again (it was stalled or cut off from the store): its clients come back. */
  async #revive(trackerId: number): Promise<void> {
    const rows = (
      await this.#db.query<EventRow & { peer_id: number }>(
        "SELECT id, tracker_id, peer_id, body FROM live_events WHERE tracker_id = ? AND id <= ? ORDER BY id",
        [trackerId, this.#offset],
      )
    ).rows;
    // A client known here now has moved to another tracker meanwhile: its old events do not count.
    const moved = new Set(rows.filter((r) => r.peer_id !== 0 && this.#swarm.knows(r.peer_id)).map((r) => r.peer_id));
    for (const row of rows) if (!moved.has(row.peer_id)) await this.#apply(row);
    this.#log(`live state: tracker ${trackerId} beats again; ${rows.length} of its events replayed`);
  }

  #died(trackerId: number, why: string): void {
    if (this.#dead.has(trackerId)) return;
    this.#dead.add(trackerId);
    const n = this.#swarm.trackerGone(trackerId);
    this.#log(`live state: tracker ${trackerId} ${why}; ${n} of its clients gone from here`);
  }

  async #prune(): Promise<void> {
    const before = Date.now() - PRUNE_AFTER_MS;
    await this.#db.transaction(async (q) => {
      const dead = (
        await q.query<{ id: number }>("SELECT id FROM live_trackers WHERE heartbeat_at_ms < ? AND id <> ?", [
          before,
          this.#trackerId,
        ])
      ).rows;
      for (const { id } of dead) {
        await q.query("DELETE FROM live_events WHERE tracker_id = ?", [id]);
        await q.query("DELETE FROM live_trackers WHERE id = ?", [id]);
      }
      await q.query(
        "DELETE FROM live_events WHERE at_ms < ? AND kind IN ('offline', 'user-groups', 'unshare-user', 'file-deleted')",
        [before],
      );
    });
  }

  /**
   * Stops cleanly: this tracker's row and events go, so the others drop its clients at once
   * rather than after the expiry. Bounded: a store that does not answer is not waited for.
   */
  async close(timeoutMs = 1000): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const t of this.#timers) clearInterval(t);
    const work = (async () => {
      await this.#flushing;
      await this.#db.transaction(async (q) => {
        await q.query("DELETE FROM live_events WHERE tracker_id = ?", [this.#trackerId]);
        await q.query("DELETE FROM live_trackers WHERE id = ?", [this.#trackerId]);
      });
      await this.#listener?.end();
    })();
    await Promise.race([work.catch(() => undefined), new Promise((r) => setTimeout(r, timeoutMs).unref())]);
  }
}
