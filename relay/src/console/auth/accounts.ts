// Named console accounts: one per person on the duty team, with the roles of the API tokens (operator,
// admin, installer) and, like tokens, an optional limit to streets (an admin is never limited). Every change
// is written to the audit log in the same transaction, by whoever made it.
//
// Lockout: LOCKOUT.failures wrong passwords in a row lock the account for LOCKOUT.lockMs (5 and 5 minutes);
// a sign-in then answers "locked" until the time has passed or an admin unlocks it (`operators unlock`).
// The counter starts again from zero after a lockout or a successful sign-in.
import type { Kysely } from "kysely";
import { ulid } from "ulid";
import { tokenStreetsSchema, type Role, streetsOf } from "../../auth/tokens.js";
import { recordAudit } from "../../careplans/audit.js";
import { isUniqueViolation } from "../../store/store.js";
import { hashPassword, passwordProblem } from "./password.js";
import { revokeAccountSessions } from "./sessions.js";
import { auditDb, type ConsoleAccountsTable, type ConsoleAuthDb } from "./tables.js";

export const LOCKOUT = { failures: 5, lockMs: 5 * 60_000 } as const;

const USERNAME = /^[a-z0-9._-]{2,32}$/;
const DISPLAY_NAME_MAX = 64;

/** Who made a change, through which path, and when (for the audit log). */
export interface ChangeBy {
  actor: string;
  purpose: string;
  at: number;
}

export class AccountError extends Error {
  constructor(
    message: string,
    /** bad_input: the caller gave something not allowed; exists / not_found: about the account. */
    readonly code: "bad_input" | "exists" | "not_found",
  ) {
    super(message);
    this.name = "AccountError";
  }
}

export interface Account {
  id: string;
  username: string;
  displayName: string;
  role: Role;
  /** The streets the account is limited to; absent: every street. */
  streets?: readonly string[];
  createdAt: number;
  passwordChangedAt: number;
  disabledAt: number | null;
  failedLogins: number;
  lockedUntil: number | null;
  lastLoginAt: number | null;
}

/** Usernames are case-insensitive: they are kept and looked up folded. */
export const foldUsername = (raw: string) => raw.trim().toLowerCase();

/** Why `username` (folded) cannot be one, or null. */
export function usernameProblem(username: string): string | null {
  return USERNAME.test(username) ? null : "a username is 2 to 32 of a-z 0-9 . _ - (case does not matter)";
}

/** The audit log's name for an account, as actor and as subject. */
export const userActor = (username: string) => `user:${username}`;

function checkDisplayName(raw: string): string {
  const name = raw.trim();
  // Control characters would let a name forge lines wherever it is printed.
  if (!name || [...name].length > DISPLAY_NAME_MAX || /\p{Cc}/u.test(name)) throw new AccountError(`a display name is 1 to ${DISPLAY_NAME_MAX} characters, no control characters`, "bad_input");
  return name;
}

function checkStreets(role: Role, streets: readonly string[] | undefined): string[] | undefined {
  if (streets === undefined) return undefined;
  const p = tokenStreetsSchema.safeParse(streets);
  if (!p.success) throw new AccountError(`streets: ${p.error.issues.map((i) => i.message).join("; ")}`, "bad_input");
  // An admin manages hubs, tokens, accounts and care plans, none of which has a street.
  if (role === "admin") throw new AccountError("an admin account is not limited to streets: make it an operator or installer account instead", "bad_input");
  return [...new Set(p.data)];
}

export function accountOf(r: Omit<ConsoleAccountsTable, "password_hash">): Account {
  return {
    id: r.id,
    username: r.username,
    displayName: r.display_name,
    role: r.role as Role,
    ...streetsOf(r.streets),
    createdAt: r.created_at,
    passwordChangedAt: r.password_changed_at,
    disabledAt: r.disabled_at,
    failedLogins: r.failed_logins,
    lockedUntil: r.locked_until,
    lastLoginAt: r.last_login_at,
  };
}

export interface NewAccount {
  username: string;
  displayName: string;
  role: Role;
  streets?: readonly string[];
  password: string;
}

export async function createAccount(db: Kysely<ConsoleAuthDb>, a: NewAccount, by: ChangeBy): Promise<Account> {
  const username = foldUsername(a.username);
  const bad = usernameProblem(username) ?? passwordProblem(a.password, username);
  if (bad) throw new AccountError(bad, "bad_input");
  const row = {
    id: ulid(by.at),
    username,
    display_name: checkDisplayName(a.displayName),
    role: a.role,
    streets: (() => {
      const s = checkStreets(a.role, a.streets);
      return s ? JSON.stringify(s) : null;
    })(),
    password_hash: await hashPassword(a.password),
    created_at: by.at,
    password_changed_at: by.at,
    disabled_at: null,
    failed_logins: 0,
    locked_until: null,
    last_login_at: null,
  };
  try {
    await db.transaction().execute(async (trx) => {
      await trx.insertInto("console_accounts").values(row).execute();
      await recordAudit(auditDb(trx), { ...by, action: "console.account_add", subject: userActor(username) });
    });
  } catch (e) {
    if (isUniqueViolation(e)) throw new AccountError(`an account named "${username}" exists already`, "exists");
    throw e;
  }
  return accountOf(row);
}

const PUBLIC_COLUMNS = ["id", "username", "display_name", "role", "streets", "created_at", "password_changed_at", "disabled_at", "failed_logins", "locked_until", "last_login_at"] as const;

export async function getAccount(db: Kysely<ConsoleAuthDb>, username: string): Promise<Account | undefined> {
  const r = await db.selectFrom("console_accounts").select(PUBLIC_COLUMNS).where("username", "=", foldUsername(username)).executeTakeFirst();
  return r && accountOf(r);
}

/** The account with its password hash: for the sign-in alone. */
export async function accountForSignIn(db: Kysely<ConsoleAuthDb>, username: string): Promise<(Account & { passwordHash: string }) | undefined> {
  const r = await db.selectFrom("console_accounts").selectAll().where("username", "=", username).executeTakeFirst();
  return r && { ...accountOf(r), passwordHash: r.password_hash };
}

export async function listAccounts(db: Kysely<ConsoleAuthDb>): Promise<Account[]> {
  const rows = await db.selectFrom("console_accounts").select(PUBLIC_COLUMNS).orderBy("username").execute();
  return rows.map(accountOf);
}

/** Runs `change` on the account's row inside a transaction with its audit row; not_found if there is no such account. */
async function changeAccount(db: Kysely<ConsoleAuthDb>, rawUsername: string, action: string, by: ChangeBy, change: (trx: Kysely<ConsoleAuthDb>, id: string) => Promise<void>): Promise<void> {
  const username = foldUsername(rawUsername);
  await db.transaction().execute(async (trx) => {
    const r = await trx.selectFrom("console_accounts").select("id").where("username", "=", username).executeTakeFirst();
    if (!r) throw new AccountError(`no account named "${username}"`, "not_found");
    await change(trx, r.id);
    await recordAudit(auditDb(trx), { ...by, action, subject: userActor(username) });
  });
}

/** A new password; every session of the account ends (whoever knew the old one is signed out). */
export async function setPassword(db: Kysely<ConsoleAuthDb>, username: string, password: string, by: ChangeBy): Promise<void> {
  const bad = passwordProblem(password, foldUsername(username));
  if (bad) throw new AccountError(bad, "bad_input");
  const passwordHash = await hashPassword(password);
  await changeAccount(db, username, "console.account_passwd", by, async (trx, id) => {
    await trx.updateTable("console_accounts").set({ password_hash: passwordHash, password_changed_at: by.at, failed_logins: 0, locked_until: null }).where("id", "=", id).execute();
    await revokeAccountSessions(trx, id);
  });
}

/** The account can no longer sign in, and its sessions end now. */
export async function disableAccount(db: Kysely<ConsoleAuthDb>, username: string, by: ChangeBy): Promise<void> {
  await changeAccount(db, username, "console.account_disable", by, async (trx, id) => {
    await trx.updateTable("console_accounts").set({ disabled_at: by.at }).where("id", "=", id).where("disabled_at", "is", null).execute();
    await revokeAccountSessions(trx, id);
  });
}

export async function enableAccount(db: Kysely<ConsoleAuthDb>, username: string, by: ChangeBy): Promise<void> {
  await changeAccount(db, username, "console.account_enable", by, async (trx, id) => {
    await trx.updateTable("console_accounts").set({ disabled_at: null, failed_logins: 0, locked_until: null }).where("id", "=", id).execute();
  });
}

/** Lifts a lockout and clears the failure counter. */
export async function unlockAccount(db: Kysely<ConsoleAuthDb>, username: string, by: ChangeBy): Promise<void> {
  await changeAccount(db, username, "console.account_unlock", by, async (trx, id) => {
    await trx.updateTable("console_accounts").set({ failed_logins: 0, locked_until: null }).where("id", "=", id).execute();
  });
}

/**
 * Counts a wrong password. Returns the lock's end when this failure locked the account (only one of two
 * failures racing each other gets it, so the lockout is recorded once).
 */
export async function recordFailedLogin(db: Kysely<ConsoleAuthDb>, id: string, at: number): Promise<number | undefined> {
  // One statement, so concurrent failures on several instances all count.
  const r = await db
    .updateTable("console_accounts")
    .set((eb) => ({ failed_logins: eb("failed_logins", "+", 1) }))
    .where("id", "=", id)
    .returning("failed_logins")
    .executeTakeFirst();
  if (!r || r.failed_logins < LOCKOUT.failures) return undefined;
  const until = at + LOCKOUT.lockMs;
  const locked = await db.updateTable("console_accounts").set({ failed_logins: 0, locked_until: until }).where("id", "=", id).where("failed_logins", ">=", LOCKOUT.failures).executeTakeFirst();
  return Number(locked.numUpdatedRows) === 1 ? until : undefined;
}

/** A successful sign-in: the counter starts again; `rehash` replaces a hash made with older parameters. */
export async function recordSignIn(db: Kysely<ConsoleAuthDb>, id: string, at: number, rehash?: string): Promise<void> {
  await db
    .updateTable("console_accounts")
    .set({ failed_logins: 0, locked_until: null, last_login_at: at, ...(rehash ? { password_hash: rehash } : {}) })
    .where("id", "=", id)
    .execute();
}
