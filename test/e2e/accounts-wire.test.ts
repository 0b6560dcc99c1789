/**
 * Accounts on the wire (SPEC §10): many clients at once, and a client that speaks the
 * protocol by hand to get at a group it is not in, over TCP and with crafted datagrams.
 */
import { createSocket } from "node:dgram";
import { once } from "node:events";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import test from "ava";
import { ACCOUNTS_VERSION } from "../../src/accounts/connections.js";
import { TrackerClient } from "../../src/peer/tracker-client.js";
import { RealClock } from "../../src/util/clock.js";
import { PROOF_REQUEST, requestAuth, requestProof } from "../../src/wire/auth.js";
import { udpswarm } from "../../src/wire/gen/swarm.js";
import { decodePeerDatagram, encodeRequest } from "../../src/wire/peer-datagram.js";
import type { TrackerFrame } from "../../src/wire/tracker-frame.js";
import { ClientProc, LineProc, startTracker, stopTracker } from "../helpers/accounts.js";
import { acquireSwarmSlot, makeContent, TRACKER_SH, tempDir } from "../helpers/swarm.js";

const Status = udpswarm.AccountStatus;

/** A client speaking the accounts protocol by hand. */
class WireClient {
  readonly frames: TrackerFrame[] = [];
  #waiters: Array<() => void> = [];
  #next = 1;
  link!: TrackerClient;
  peerId = 0;
  secret: Uint8Array = new Uint8Array(0);

  static async open(port: number, udpPort: number): Promise<WireClient> {
    const c = new WireClient();
    c.link = await TrackerClient.connect("127.0.0.1", port, new RealClock(), {
      frame: (f) => {
        c.frames.push(f);
        for (const w of c.#waiters.splice(0)) w();
      },
      lost: () => {
        for (const w of c.#waiters.splice(0)) w();
      },
    });
    c.link.send({ clientHello: { accountsVersion: ACCOUNTS_VERSION, udpPort } });
    const welcome = await c.waitFrame((f) => f.body === "welcome");
    c.peerId = welcome.welcome?.peerId ?? 0;
    c.secret = welcome.welcome?.secret ?? new Uint8Array(0);
    return c;
  }

  async waitFrame(match: (f: TrackerFrame) => boolean): Promise<TrackerFrame> {
    const deadline = Date.now() + 120_000;
    for (;;) {
      const f = this.frames.find(match);
      if (f !== undefined) return f;
      if (Date.now() > deadline) throw new Error("no such frame from the tracker");
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 1000);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  async request(command: Omit<udpswarm.IAccountRequest, "requestId">): Promise<udpswarm.IAccountReply> {
    const requestId = this.#next++;
    this.link.send({ accountRequest: { requestId, ...command } });
    const f = await this.waitFrame((x) => x.body === "accountReply" && x.accountReply?.requestId === requestId);
    return f.accountReply ?? {};
  }
}

test.serial("50 clients register and log in at once: all succeed, no SQLITE_BUSY", async (t) => {
  const release = await acquireSwarmSlot();
  t.teardown(release);
  const root = await tempDir(t, "udpswarm-accounts-");
  // What is under test is the concurrency (the store, the hashing queue), not the cost of
  // one hash: 2^14 keeps 100 hashes within seconds on two busy cores (2^17, the default, is
  // what every other test here runs with).
  const tracker = await startTracker(path.join(root, "tracker"), "./udpswarm.db", ["--scrypt-cost", "14"]);
  t.teardown(() => tracker.proc.kill());
  const clients = await Promise.all(Array.from({ length: 50 }, (_, i) => WireClient.open(tracker.port, 20_000 + i)));
  t.teardown(() => {
    for (const c of clients) c.link.close();
  });
  const results = await Promise.all(
    clients.map(async (c, i) => {
      const created = await c.request({ createUser: { user: `user${i}`, password: `password-${i}` } });
      const login = await c.request({ login: { user: `user${i}`, password: `password-${i}` } });
      return { created, login };
    }),
  );
  t.deepEqual(
    results.map((r) => [r.created.status, r.login.status]),
    results.map(() => [Status.STATUS_OK, Status.STATUS_OK]),
  );
  t.true(
    results.every((r) => r.login.sessionToken?.length === 32),
    "every login has a 32-byte token",
  );
  await stopTracker(tracker.proc);
  t.false(
    tracker.proc.err.some((l) => /BUSY|internal/u.test(l)),
    tracker.proc.err.join("\n"),
  );
});

test.serial("a non-member gets at a group's file by no route, not even with crafted datagrams", async (t) => {
  const release = await acquireSwarmSlot();
  t.teardown(release);
  const root = await tempDir(t, "udpswarm-accounts-");
  const tracker = await startTracker(path.join(root, "tracker"), "./udpswarm.db");
  t.teardown(() => tracker.proc.kill());
  const sDir = path.join(root, "s");
  await mkdir(sDir, { recursive: true });
  await writeFile(path.join(sDir, "secret.bin"), makeContent("secret", 40_000));
  await writeFile(path.join(sDir, "open.bin"), makeContent("open", 40_000));
  const s = new ClientProc("s", sDir, tracker.trackers, { UDPSWARM_STATS: path.join(sDir, "stats.json") });
  t.teardown(() => s.kill());
  await s.ok("create_user sam pw-sam1", /created/u);
  await s.ok("login sam pw-sam1", /^logged in/u);
  await s.ok("create_group secret", /created/u);
  await s.ok("create_group open", /created/u);
  await s.ok("upload_file secret.bin secret", /^uploaded/u);
  await s.ok("upload_file open.bin open", /^uploaded/u);

  const udp = createSocket("udp4");
  udp.bind(0, "127.0.0.1");
  await once(udp, "listening");
  t.teardown(() => udp.close());
  const eve = await WireClient.open(tracker.port, udp.address().port);
  t.teardown(() => eve.link.close());
  t.is((await eve.request({ createUser: { user: "eve", password: "pw-eve1" } })).status, Status.STATUS_OK);
  t.is((await eve.request({ login: { user: "eve", password: "pw-eve1" } })).status, Status.STATUS_OK);
  t.is((await eve.request({ joinGroup: { group: "open" } })).status, Status.STATUS_OK);
  await s.ok("accept_request open eve", /member/u);

  // Over TCP: the secret group's files are neither listed nor handed out.
  t.is((await eve.request({ listFiles: { group: "secret" } })).status, Status.STATUS_FORBIDDEN);
  const denied = await eve.request({ downloadFile: { group: "secret", file: "secret.bin" } });
  t.is(denied.status, Status.STATUS_FORBIDDEN);
  t.is(denied.file, null, "no file record for a non-member");
  const uploadInto = await eve.request({
    uploadFile: { group: "secret", manifest: { name: "x", size: 0, chunkSize: 512 } },
  });
  t.is(uploadInto.status, Status.STATUS_FORBIDDEN);
  const open = await eve.request({ downloadFile: { group: "open", file: "open.bin" } });
  t.is(open.status, Status.STATUS_OK);
  const openId = open.file?.fileId ?? 0;
  const joined = await eve.waitFrame((f) => (f.updates?.joined?.length ?? 0) > 0);
  const sam = joined.updates?.joined?.[0] ?? {};
  t.deepEqual(sam.groups, ["open"], "the tracker lists only the group they share");
  t.false(eve.frames.some((f) => (f.updates?.holders ?? []).some((h) => h.fileId !== openId)));

  // Over UDP, with a valid proof (eve is a peer of sam through "open"): every other file id is refused.
  const key = requestAuth(eve.secret, sam.peerId ?? 0);
  let seq = 1;
  const received: Array<ReturnType<typeof decodePeerDatagram>> = [];
  let wake: (() => void) | undefined;
  udp.on("message", (msg) => {
    received.push(decodePeerDatagram(Buffer.from(msg)));
    wake?.();
  });
  const ask = async (fileId: number, cookie?: Uint8Array) => {
    const s1 = seq++;
    const proof = requestProof(key, PROOF_REQUEST, s1, 7, fileId);
    const bytes = encodeRequest(s1, fileId, 0, [0, 1, 2], 7, proof, cookie);
    udp.send(bytes, sam.udpPort ?? 0, "127.0.0.1");
  };
  const next = async (match: (d: ReturnType<typeof decodePeerDatagram>) => boolean) => {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const d = received.find(match);
      if (d !== undefined) return d;
      if (Date.now() > deadline)
        throw new Error(`no such datagram; got ${JSON.stringify(received.map((r) => r.kind))}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 500);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  };
  await ask(openId);
  const cookie = await next((d) => d.kind === "cookie");
  const cookieBytes = cookie.kind === "cookie" ? cookie.cookie : new Uint8Array(0);
  for (let id = 1; id <= openId + 2; id++) if (id !== openId) await ask(id, cookieBytes);
  await ask(openId, cookieBytes);
  await next((d) => d.kind === "chunk" && d.fileId === openId);
  t.false(
    received.some((d) => d.kind === "chunk" && d.fileId !== openId),
    "no chunk of any other file",
  );
  t.is(await s.quit(), 0, s.describe());
  const stats = JSON.parse(await readFile(path.join(sDir, "stats.json"), "utf8")) as {
    drops: Record<string, number>;
  };
  t.true((stats.drops.forbidden ?? 0) >= 1, `requests refused as forbidden: ${stats.drops.forbidden}`);
  await stopTracker(tracker.proc);
});

test.serial("hostile input on the wire: out of order, oversized, repeated wrong passwords", async (t) => {
  const root = await tempDir(t, "udpswarm-accounts-");
  const tracker = await startTracker(path.join(root, "tracker"), "./udpswarm.db", ["--scrypt-cost", "14"]);
  t.teardown(() => tracker.proc.kill());
  const c = await WireClient.open(tracker.port, 30_001);
  t.teardown(() => c.link.close());
  // Out of order: commands before a login.
  for (const command of [
    { listGroups: {} },
    { logout: {} },
    { createGroup: { group: "g" } },
    { downloadFile: { group: "g", file: "f" } },
  ]) {
    t.is((await c.request(command)).status, Status.STATUS_NOT_LOGGED_IN, JSON.stringify(command));
  }
  t.is((await c.request({})).status, Status.STATUS_BAD_REQUEST, "a request with no command");
  const huge = "x".repeat(1024 * 1024);
  t.is((await c.request({ createUser: { user: huge, password: "pw-pw-pw" } })).status, Status.STATUS_BAD_REQUEST);
  t.is((await c.request({ createUser: { user: "mallory", password: huge } })).status, Status.STATUS_BAD_REQUEST);
  t.is((await c.request({ resume: { token: Buffer.alloc(32) } })).status, Status.STATUS_SESSION_EXPIRED);
  t.is((await c.request({ createUser: { user: "mallory", password: "right-pw" } })).status, Status.STATUS_OK);
  // Wrong passwords: a few are free, then each try must wait, even with the right password.
  const statuses: number[] = [];
  let retryAfterMs = 0;
  for (let i = 0; i < 6; i++) {
    const r = await c.request({ login: { user: "mallory", password: `bad-${i}` } });
    statuses.push(r.status ?? 0);
    retryAfterMs = r.retryAfterMs ?? 0;
  }
  t.deepEqual(statuses, [...Array.from({ length: 5 }, () => Status.STATUS_BAD_CREDENTIALS), Status.STATUS_SLOW_DOWN]);
  t.true(retryAfterMs > 0 && retryAfterMs <= 1000, `retry after ${retryAfterMs} ms`);
  // A second Hello on a client link, and frames of the classic protocol, are ignored.
  c.link.send({ hello: { udpPort: 1 } });
  c.link.send({ have: { fileId: 1, runs: [0, 1] } });
  t.is((await c.request({ listGroups: {} })).status, Status.STATUS_NOT_LOGGED_IN, "the link still works");
  await stopTracker(tracker.proc);
  t.false(
    tracker.proc.err.some((l) => /internal|SQLITE/u.test(l)),
    tracker.proc.err.join("\n"),
  );
});

test.serial("a tracker without --store takes no client: one clear line, exit status 6", async (t) => {
  const root = await tempDir(t, "udpswarm-accounts-");
  const trackerDir = path.join(root, "tracker");
  await mkdir(trackerDir, { recursive: true });
  const tracker = new LineProc("tracker", "sh", [TRACKER_SH], trackerDir);
  t.teardown(() => tracker.kill());
  await tracker.waitFor(/listening on port/u, "err");
  const port = await readFile(path.join(trackerDir, "port.txt"), "utf8");
  await writeFile(path.join(root, "trackers"), `127.0.0.1 ${port}\n`);
  const c = new ClientProc("c", root, path.join(root, "trackers"));
  t.is(await c.exited, 6, c.describe());
  t.deepEqual(c.out, []);
  t.regex(
    c.err.join("\n"),
    /^udpswarm client: the tracker at 127\.0\.0\.1:\d+ does not take clients \(is it started with --store\?\)/u,
  );
  await stopTracker(tracker);
  t.deepEqual(tracker.out, [], "the classic tracker printed nothing for it");
});
