import { chmodSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** What the client remembers of a login: the session token (never the password). */
export type SavedSession = { readonly user: string; readonly token: string };
/** A file the client shares: re-announced at the next login of the same user. */
export type SavedUpload = { readonly group: string; readonly path: string };

/**
 * The client's memory under ./.udpswarm/ (folder 0700, files 0600): session.json and
 * uploads.json (per user). Each write goes to a temporary file renamed over the old one.
 * A damaged file reads as empty: the user logs in again and uploads again.
 */
export class ClientState {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700);
  }

  get stagingDir(): string {
    return join(this.dir, "staging");
  }

  session(): SavedSession | undefined {
    const s = this.#read("session.json") as Partial<SavedSession> | undefined;
    return typeof s?.user === "string" && typeof s.token === "string" ? { user: s.user, token: s.token } : undefined;
  }

  saveSession(session: SavedSession | undefined): void {
    if (session === undefined) rmSync(join(this.dir, "session.json"), { force: true });
    else this.#write("session.json", session);
  }

  uploads(user: string): SavedUpload[] {
    const list = this.#allUploads().find((e) => e.user === user)?.uploads ?? [];
    return list.filter((u): u is SavedUpload => typeof u?.group === "string" && typeof u?.path === "string");
  }

  saveUploads(user: string, uploads: readonly SavedUpload[]): void {
    // A list of entries, not an object keyed by user: a user may be called "__proto__".
    const all = this.#allUploads().filter((e) => e.user !== user);
    if (uploads.length > 0) all.push({ user, uploads: [...uploads] });
    this.#write("uploads.json", all);
  }

  #allUploads(): Array<{ user: string; uploads: SavedUpload[] }> {
    const all = this.#read("uploads.json");
    if (!Array.isArray(all)) return [];
    return all.filter((e) => typeof e?.user === "string" && Array.isArray(e?.uploads));
  }

  #read(name: string): unknown {
    try {
      return JSON.parse(readFileSync(join(this.dir, name), "utf8"));
    } catch {
      return undefined;
    }
  }

  #write(name: string, value: unknown): void {
    const tmp = join(this.dir, `.${name}.tmp`);
    writeFileSync(tmp, `${JSON.stringify(value)}\n`, { mode: 0o600 });
    chmodSync(tmp, 0o600);
    renameSync(tmp, join(this.dir, name));
  }
}
