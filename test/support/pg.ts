// PostgreSQL for tests and benchmarks: ANXIN_TEST_PG_URL names the server (CI sets it to
// postgres://postgres@127.0.0.1:5432/test); without it PostgreSQL tests skip with a reason that says how
// to run them. Every test file works in a schema of its own, dropped at the end, so parallel runs on one
// database never see each other's rows.
import { randomBytes } from "node:crypto";

export const PG_URL: string | undefined = process.env.ANXIN_TEST_PG_URL;

/** The skip message for `what` (e.g. "forwarders on PostgreSQL") when ANXIN_TEST_PG_URL is not set. */
export function pgSkipReason(what: string): string {
  return `ANXIN_TEST_PG_URL not set: ${what} skipped (e.g. ANXIN_TEST_PG_URL=postgres://postgres@127.0.0.1:5432/test)`;
}

/** A schema name nobody else uses: `<prefix>_<12 hex digits>`. */
export function uniquePgSchema(prefix: string): string {
  return `${prefix}_${randomBytes(6).toString("hex")}`;
}

/** Drops `schema` and everything in it (no error when it was never created). */
export async function dropPgSchema(url: string, schema: string): Promise<void> {
  // Loaded here, not at the top: benchmarks that measure a process's memory import this file's helpers too.
  const { default: pg } = await import("pg");
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query(`DROP SCHEMA IF EXISTS "${schema.replace(/"/g, '""')}" CASCADE`);
  } finally {
    await c.end();
  }
}

/**
 * A fresh schema on ANXIN_TEST_PG_URL, dropped by the hook `after` registers (a test's t.after, or a test's
 * own cleanup list when the drop must run after other cleanups). Only call it when PG_URL is set.
 */
export function tempPgSchema(prefix: string, after: (fn: () => Promise<void>) => unknown): { url: string; schema: string } {
  if (!PG_URL) throw new Error(pgSkipReason("PostgreSQL"));
  const url = PG_URL;
  const schema = uniquePgSchema(prefix);
  after(() => dropPgSchema(url, schema));
  return { url, schema };
}
