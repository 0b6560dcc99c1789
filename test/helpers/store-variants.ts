/**
 * The two kinds of account store, for tests that must hold over both (SPEC §10/§11): a
 * SQLite file in the tracker's folder, and a database on a throwaway PostgreSQL server that
 * the test file starts on first use and stops at its end. Where PostgreSQL is missing, its
 * variants are skipped (ava lists them as skipped) and one plain console line says why.
 */
import test, { type TestFn } from "ava";
import { PgServer, postgresUnavailable, reportPostgresSkipped } from "./postgres.js";

export type StoreVariant = {
  /** "SQLite" or "PostgreSQL", for test titles. */
  readonly name: string;
  /** test.serial, or test.skip where the store cannot run here. */
  readonly test: TestFn["serial"] | TestFn["skip"];
  /**
   * A fresh store location: relative SQLite file path, or a new database's URL (through the
   * server's Unix socket with `via: "socket"`, for trackers in a network namespace).
   */
  readonly location: (via?: "tcp" | "socket") => Promise<string>;
};

let server: Promise<PgServer> | undefined;

/** Both variants; call once per test file (it registers the server's teardown). */
export function storeVariants(file: string): readonly StoreVariant[] {
  reportPostgresSkipped(file);
  test.after.always(async () => {
    if (server !== undefined) (await server.catch(() => undefined))?.stopSync();
  });
  return [
    { name: "SQLite", test: test.serial, location: async () => "./udpswarm.db" },
    {
      name: "PostgreSQL",
      test: postgresUnavailable() === undefined ? test.serial : test.skip,
      location: async (via = "tcp") => {
        server ??= PgServer.start();
        return (await server).createDatabase("e2e", via);
      },
    },
  ];
}
