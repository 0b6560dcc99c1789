/**
 * A throwaway PostgreSQL server for the tests (SPEC §10/§11: real, never mocked): Debian's
 * `postgresql` binaries, `initdb` into a temporary folder and `pg_ctl start` on a free
 * loopback port, run as an unprivileged user when the tests run as root (the server
 * refuses root). One server per test file; each test gets a database of its own.
 *
 * Without the binaries, `postgresUnavailable()` says why and the PostgreSQL half of a file
 * is skipped with a plain line on the console (never passed).
 */
import { execFileSync } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import pg from "pg";

const BIN_NAMES = ["initdb", "pg_ctl"] as const;
/** The unprivileged account the server runs as when the tests run as root. */
const RUN_AS = "nobody";

/** The folder holding initdb and pg_ctl: PATH first, then Debian's versioned folders. */
function findBinDir(): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(":")) {
    if (dir !== "" && BIN_NAMES.every((b) => existsSync(path.join(dir, b)))) return dir;
  }
  const base = "/usr/lib/postgresql";
  if (!existsSync(base)) return undefined;
  const versions = readdirSync(base)
    .filter((v) => /^\d+$/u.test(v))
    .sort((a, b) => Number(b) - Number(a));
  for (const v of versions) {
    const dir = path.join(base, v, "bin");
    if (BIN_NAMES.every((b) => existsSync(path.join(dir, b)))) return dir;
  }
  return undefined;
}

const binDir = findBinDir();

/** Why the PostgreSQL half cannot run here, or undefined when it can. */
export function postgresUnavailable(): string | undefined {
  if (process.env.UDPSWARM_SKIP_POSTGRES === "1") return "UDPSWARM_SKIP_POSTGRES=1";
  if (binDir === undefined) return "no PostgreSQL server binaries (initdb, pg_ctl) found; install Debian's postgresql";
  return undefined;
}

/** Says plainly, once per file, that the PostgreSQL half was skipped. */
export function reportPostgresSkipped(file: string): void {
  const why = postgresUnavailable();
  if (why !== undefined) console.log(`PostgreSQL half of ${file} SKIPPED: ${why}`);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      srv.close(() => resolve(typeof addr === "object" && addr !== null ? addr.port : 0));
    });
  });
}

export class PgServer {
  readonly port: number;
  readonly #dir: string;
  readonly #asRoot: boolean;
  #stopped = false;
  #databases = 0;

  private constructor(dir: string, port: number, asRoot: boolean) {
    this.#dir = dir;
    this.port = port;
    this.#asRoot = asRoot;
  }

  /** initdb + pg_ctl start; throws (with the server's log) when it does not come up. */
  static async start(): Promise<PgServer> {
    if (binDir === undefined) throw new Error("PostgreSQL binaries not found");
    const dir = mkdtempSync(path.join(os.tmpdir(), "udpswarm-pg-"));
    const asRoot = process.getuid?.() === 0;
    if (asRoot) {
      const uid = Number(execFileSync("id", ["-u", RUN_AS], { encoding: "utf8" }).trim());
      const gid = Number(execFileSync("id", ["-g", RUN_AS], { encoding: "utf8" }).trim());
      chownSync(dir, uid, gid);
    }
    const run = (bin: string, args: readonly string[]): void => {
      const cmd = path.join(binDir, bin);
      const [file, argv] = asRoot ? ["runuser", ["-u", RUN_AS, "--", cmd, ...args]] : [cmd, [...args]];
      execFileSync(file, argv, { stdio: ["ignore", "ignore", "pipe"], cwd: dir, timeout: 60_000 });
    };
    const data = path.join(dir, "data");
    run("initdb", ["-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync", "--no-instructions"]);
    for (let attempt = 0; ; attempt++) {
      const port = await freePort();
      const opts = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200`;
      try {
        run("pg_ctl", ["start", "-w", "-t", "60", "-D", data, "-l", path.join(dir, "log"), "-o", opts]);
        const server = new PgServer(dir, port, asRoot);
        process.on("exit", () => server.stopSync());
        return server;
      } catch (err) {
        if (attempt >= 2) {
          rmSync(dir, { recursive: true, force: true });
          throw err;
        }
      }
    }
  }

  /**
   * The URL of a fresh, empty database on this server. `via: "socket"` reaches it through
   * its Unix socket, which works from any network namespace (a tracker in a namespace of its
   * own cannot reach this one's loopback).
   */
  async createDatabase(prefix = "t", via: "tcp" | "socket" = "tcp"): Promise<string> {
    const name = `${prefix}_${process.pid}_${++this.#databases}`;
    const admin = new pg.Client({ connectionString: this.url("postgres") });
    await admin.connect();
    try {
      await admin.query(`CREATE DATABASE ${name}`);
    } finally {
      await admin.end();
    }
    return via === "socket" ? this.socketUrl(name) : this.url(name);
  }

  url(database: string): string {
    return `postgres://postgres@127.0.0.1:${this.port}/${database}`;
  }

  /** node-postgres takes a socket folder as `host`; the port names the socket file in it. */
  socketUrl(database: string): string {
    return `postgres://postgres@localhost:${this.port}/${database}?host=${encodeURIComponent(this.#dir)}`;
  }

  /** Stops the server at once (no checkpoint: the data is thrown away) and removes its folder. */
  stopSync(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    const cmd = path.join(binDir ?? "", "pg_ctl");
    const args = ["stop", "-m", "immediate", "-w", "-D", path.join(this.#dir, "data")];
    try {
      if (this.#asRoot) execFileSync("runuser", ["-u", RUN_AS, "--", cmd, ...args], { stdio: "ignore" });
      else execFileSync(cmd, args, { stdio: "ignore" });
    } catch {
      // already gone
    }
    rmSync(this.#dir, { recursive: true, force: true });
  }
}
