// Signing in and out, and ending expired sessions, each recorded in the audit log. Nothing here knows about
// HTTP: the plugin turns these results into answers and cookies.
//
// A wrong password and an unknown username get the same answer, after the same work (an unknown username is
// verified against a dummy hash). A locked account answers "locked" without its password being checked; a
// disabled one says so only to someone who gave its right password. Passwords never reach the audit log.
import type { Kysely } from "kysely";
import { recordAudit } from "../../careplans/audit.js";
import { accountForSignIn, foldUsername, recordFailedLogin, recordSignIn, userActor, usernameProblem, type Account } from "./accounts.js";
import { dummyHash, hashPassword, needsRehash, verifyPassword } from "./password.js";
import { createSession, purgeExpiredSessions, revokeSession, type ExpiryReason, type SessionLimits } from "./sessions.js";
import { auditDb, type ConsoleAuthDb } from "./tables.js";

export type SignInResult =
  | { ok: true; account: Account; sessionId: string }
  | { ok: false; error: "bad_credentials" }
  | { ok: false; error: "locked"; until: number }
  | { ok: false; error: "disabled" };

const PURPOSE = "console";

/** What a failed attempt is recorded under: the username as typed, folded, without control characters, at most 64. */
export function attemptedName(raw: string): string {
  return foldUsername(raw).replace(/\p{Cc}/gu, "?").slice(0, 64) || "?";
}

async function audit(db: Kysely<ConsoleAuthDb>, username: string, action: string, purpose: string, at: number): Promise<void> {
  await recordAudit(auditDb(db), { actor: userActor(username), action, subject: userActor(username), purpose, at });
}

export async function signIn(db: Kysely<ConsoleAuthDb>, input: { username: string; password: string }, at: number, limits: SessionLimits): Promise<SignInResult> {
  const username = foldUsername(input.username);
  const account = usernameProblem(username) === null ? await accountForSignIn(db, username) : undefined;
  if (!account) {
    await verifyPassword(await dummyHash(), input.password);
    await audit(db, attemptedName(input.username), "console.signin_failed", "unknown_user", at);
    return { ok: false, error: "bad_credentials" };
  }
  if (account.lockedUntil !== null && account.lockedUntil > at) {
    await audit(db, username, "console.signin_failed", "locked", at);
    return { ok: false, error: "locked", until: account.lockedUntil };
  }
  if (!(await verifyPassword(account.passwordHash, input.password))) {
    if (account.disabledAt !== null) {
      // Nobody can sign in to a disabled account, so guessing at it locks nothing.
      await audit(db, username, "console.signin_failed", "wrong_password", at);
      return { ok: false, error: "bad_credentials" };
    }
    const lockedUntil = await recordFailedLogin(db, account.id, at);
    await audit(db, username, "console.signin_failed", "wrong_password", at);
    if (lockedUntil !== undefined) {
      await audit(db, username, "console.lockout", `locked until ${new Date(lockedUntil).toISOString()}`, at);
      return { ok: false, error: "locked", until: lockedUntil };
    }
    return { ok: false, error: "bad_credentials" };
  }
  if (account.disabledAt !== null) {
    await audit(db, username, "console.signin_failed", "disabled", at);
    return { ok: false, error: "disabled" };
  }
  await endExpiredSessions(db, at, limits);
  const rehash = needsRehash(account.passwordHash) ? await hashPassword(input.password) : undefined;
  await recordSignIn(db, account.id, at, rehash);
  const sessionId = await createSession(db, account.id, at);
  await audit(db, username, "console.signin", PURPOSE, at);
  const { passwordHash: _hash, ...rest } = account;
  return { ok: true, account: { ...rest, failedLogins: 0, lockedUntil: null, lastLoginAt: at }, sessionId };
}

/** Sign-out: ends the session; false if it had ended already. */
export async function signOut(db: Kysely<ConsoleAuthDb>, sessionId: string, username: string, at: number): Promise<boolean> {
  const ended = await revokeSession(db, sessionId);
  if (ended) await audit(db, username, "console.signout", PURPOSE, at);
  return ended;
}

export async function recordExpiry(db: Kysely<ConsoleAuthDb>, username: string, reason: ExpiryReason, at: number): Promise<void> {
  await audit(db, username, "console.session_expired", reason, at);
}

/** Sessions whose browsers never came back: ended and recorded (at each sign-in, which is often enough). */
async function endExpiredSessions(db: Kysely<ConsoleAuthDb>, at: number, limits: SessionLimits): Promise<void> {
  for (const s of await purgeExpiredSessions(db, at, limits)) await recordExpiry(db, s.username, s.reason, at);
}
