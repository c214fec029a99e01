// The console's accounts and sessions, written once for SQLite and PostgreSQL with the conventions of
// store/schema.ts (ms timestamps as bigint, JSON as text). Whatever opens the relay's store must pass
// consoleAuthMigrations with the rest (the migrator refuses a database that ran a migration it does not know).
import type { Kysely, Migration } from "kysely";
import type { LoopDb, RelayDbHandle } from "../../store/closed-loop-schema.js";

export interface ConsoleAccountsTable {
  id: string;
  /** Lower case, 2–32 of [a-z0-9._-]: compared case-insensitively by being stored folded. */
  username: string;
  display_name: string;
  /** operator | admin | installer, as for API tokens. */
  role: string;
  /** JSON array of the streets (街道) the account is limited to; NULL: every street. */
  streets: string | null;
  /** argon2id, PHC string (carries its own parameters and salt). */
  password_hash: string;
  created_at: number;
  password_changed_at: number;
  disabled_at: number | null;
  /** Wrong passwords since the last sign-in or lockout. */
  failed_logins: number;
  locked_until: number | null;
  last_login_at: number | null;
}

export interface ConsoleSessionsTable {
  /** sha256 (hex) of the session id in the cookie; the id itself is never stored. */
  id_hash: string;
  account_id: string;
  created_at: number;
  last_seen_at: number;
}

export interface ConsoleAuthTables {
  console_accounts: ConsoleAccountsTable;
  console_sessions: ConsoleSessionsTable;
}

/** The relay's database with the console's tables (and the audit log they write to). */
export type ConsoleAuthDb = LoopDb & ConsoleAuthTables;

/** The same kysely instance (or transaction), seen with the console's tables. */
export function consoleAuthDb(db: RelayDbHandle | Kysely<ConsoleAuthDb>): Kysely<ConsoleAuthDb> {
  return db as unknown as Kysely<ConsoleAuthDb>;
}

export const consoleAuthMigrations: Record<string, Migration> = {
  "2026_12_08_console_accounts": {
    async up(db): Promise<void> {
      await db.schema
        .createTable("console_accounts")
        .ifNotExists()
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("username", "text", (c) => c.notNull().unique())
        .addColumn("display_name", "text", (c) => c.notNull())
        .addColumn("role", "text", (c) => c.notNull())
        .addColumn("streets", "text")
        .addColumn("password_hash", "text", (c) => c.notNull())
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .addColumn("password_changed_at", "bigint", (c) => c.notNull())
        .addColumn("disabled_at", "bigint")
        .addColumn("failed_logins", "integer", (c) => c.notNull().defaultTo(0))
        .addColumn("locked_until", "bigint")
        .addColumn("last_login_at", "bigint")
        .execute();

      await db.schema
        .createTable("console_sessions")
        .ifNotExists()
        .addColumn("id_hash", "text", (c) => c.primaryKey())
        .addColumn("account_id", "text", (c) => c.notNull())
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .addColumn("last_seen_at", "bigint", (c) => c.notNull())
        .execute();
      // Revoking an account's sessions (disabled, new password) goes by account.
      await db.schema.createIndex("console_sessions_account").ifNotExists().on("console_sessions").columns(["account_id"]).execute();
    },
  },
};

/** The same instance as recordAudit takes it (the audit log is one of the tables it has). */
export function auditDb(db: Kysely<ConsoleAuthDb>): Kysely<LoopDb> {
  return db as unknown as Kysely<LoopDb>;
}
