// Console sessions. The browser holds a random 32-byte id (in the cookie); the store keeps only its SHA-256,
// so a copy of the table lets nobody take over a session. A session ends on sign-out, when it has been idle
// for `console.session.idleMinutes`, `console.session.maxHours` after sign-in (one shift), and when its
// account is disabled or gets a new password. Ended sessions are deleted; the audit log tells their story.
import { createHash, randomBytes } from "node:crypto";
import type { Kysely } from "kysely";
import { accountOf, type Account } from "./accounts.js";
import type { ConsoleConfig } from "./config.js";
import type { ConsoleAuthDb } from "./tables.js";

export interface SessionLimits {
  idleMs: number;
  maxMs: number;
}

export function sessionLimits(config: Pick<ConsoleConfig, "session">): SessionLimits {
  return { idleMs: config.session.idleMinutes * 60_000, maxMs: config.session.maxHours * 3_600_000 };
}

const SESSION_ID = /^[A-Za-z0-9_-]{43}$/;

export const sessionIdHash = (id: string) => createHash("sha256").update(id, "utf8").digest("hex");

/** A new session for the account; the id is for the cookie and nowhere else. */
export async function createSession(db: Kysely<ConsoleAuthDb>, accountId: string, at: number): Promise<string> {
  const id = randomBytes(32).toString("base64url");
  await db.insertInto("console_sessions").values({ id_hash: sessionIdHash(id), account_id: accountId, created_at: at, last_seen_at: at }).execute();
  return id;
}

export type ExpiryReason = "idle" | "lifetime";

export type SessionLookup =
  | { state: "none" }
  /** `ended`: this lookup deleted it (so it alone records the expiry). */
  | { state: "expired"; reason: ExpiryReason; username: string; ended: boolean }
  | { state: "live"; idHash: string; account: Account };

function expiry(s: { created_at: number; last_seen_at: number }, at: number, limits: SessionLimits): ExpiryReason | undefined {
  if (at - s.created_at >= limits.maxMs) return "lifetime";
  if (at - s.last_seen_at >= limits.idleMs) return "idle";
  return undefined;
}

/** The session behind a cookie's id at `at`; an expired one is ended on the way. */
export async function findSession(db: Kysely<ConsoleAuthDb>, id: string | undefined, at: number, limits: SessionLimits): Promise<SessionLookup> {
  if (id === undefined || !SESSION_ID.test(id)) return { state: "none" };
  const idHash = sessionIdHash(id);
  const r = await db
    .selectFrom("console_sessions as s")
    .innerJoin("console_accounts as a", "a.id", "s.account_id")
    .select(["s.created_at as s_created_at", "s.last_seen_at", "a.id", "a.username", "a.display_name", "a.role", "a.streets", "a.created_at", "a.password_changed_at", "a.disabled_at", "a.failed_logins", "a.locked_until", "a.last_login_at"])
    .where("s.id_hash", "=", idHash)
    .executeTakeFirst();
  if (!r) return { state: "none" };
  // Disabling deletes the sessions already; this covers a row written by a sign-in racing the disabling.
  if (r.disabled_at !== null) {
    await revokeSession(db, id);
    return { state: "none" };
  }
  const reason = expiry({ created_at: r.s_created_at, last_seen_at: r.last_seen_at }, at, limits);
  if (reason) {
    const ended = await revokeSession(db, id);
    return { state: "expired", reason, username: r.username, ended };
  }
  return { state: "live", idHash, account: accountOf(r) };
}

/** Activity: the idle timeout counts from now. */
export async function touchSession(db: Kysely<ConsoleAuthDb>, idHash: string, at: number): Promise<void> {
  // Never backwards (two requests finishing out of order).
  await db.updateTable("console_sessions").set({ last_seen_at: at }).where("id_hash", "=", idHash).where("last_seen_at", "<", at).execute();
}

/** Ends one session; false if it had ended already. */
export async function revokeSession(db: Kysely<ConsoleAuthDb>, id: string): Promise<boolean> {
  const r = await db.deleteFrom("console_sessions").where("id_hash", "=", sessionIdHash(id)).executeTakeFirst();
  return Number(r.numDeletedRows) > 0;
}

/** Ends every session of an account; how many there were. */
export async function revokeAccountSessions(db: Kysely<ConsoleAuthDb>, accountId: string): Promise<number> {
  const r = await db.deleteFrom("console_sessions").where("account_id", "=", accountId).executeTakeFirst();
  return Number(r.numDeletedRows);
}

/**
 * Ends the sessions that expired without their browser coming back to be told, and returns them (for the
 * audit log). Run at each sign-in, so the table holds about as many rows as there are people on shift.
 */
export async function purgeExpiredSessions(db: Kysely<ConsoleAuthDb>, at: number, limits: SessionLimits): Promise<Array<{ username: string; reason: ExpiryReason }>> {
  const rows = await db
    .selectFrom("console_sessions as s")
    .innerJoin("console_accounts as a", "a.id", "s.account_id")
    .select(["s.id_hash", "s.created_at", "s.last_seen_at", "a.username"])
    .where((eb) => eb.or([eb("s.created_at", "<=", at - limits.maxMs), eb("s.last_seen_at", "<=", at - limits.idleMs)]))
    .limit(500)
    .execute();
  const ended: Array<{ username: string; reason: ExpiryReason }> = [];
  for (const r of rows) {
    const d = await db.deleteFrom("console_sessions").where("id_hash", "=", r.id_hash).executeTakeFirst();
    // Another instance purging at the same time records the ones it deleted.
    if (Number(d.numDeletedRows) > 0) ended.push({ username: r.username, reason: expiry(r, at, limits) ?? "idle" });
  }
  return ended;
}
