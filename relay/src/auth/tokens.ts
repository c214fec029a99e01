// Bearer tokens for the operator API. A token is 256 random bits shown once at creation; the store keeps
// only its SHA-256 (with that much entropy a slow hash adds nothing, and every request can be checked
// cheaply). Roles: operator (incidents, alerts, care-plan reads), admin (all of that and more), installer
// (hub enrolment, and the households it registers: the elder's name and address it entered itself).
// An operator or installer token may be limited to streets (街道): it then reaches only the households on
// them (households/street-scope.ts).
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { Kysely } from "kysely";
import { ulid } from "ulid";
import { z } from "zod";
import { isUniqueViolation } from "../store/store.js";
import type { LoopDb } from "../store/closed-loop-schema.js";

export const ROLES = ["operator", "admin", "installer"] as const;
export type Role = (typeof ROLES)[number];
export const roleSchema = z.enum(ROLES);
export const tokenNameSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$/, "letters, digits, _ . @ - (up to 64)");
/** Spelled as a household's street is (trimmed, up to 64), so the two compare equal. */
export const tokenStreetsSchema = z.array(z.string().trim().min(1, "a street name, not empty").max(64)).min(1).max(50);

const PREFIX = "anx_";

export interface Principal {
  id: string;
  name: string;
  role: Role;
  /** The streets the token is limited to; absent: every street. */
  streets?: readonly string[];
}

export interface TokenInfo extends Principal {
  createdAt: number;
  revokedAt: number | null;
}

const hashOf = (token: string) => createHash("sha256").update(token, "utf8").digest("hex");

/**
 * Creates a token and returns it in clear (the only time it exists outside the caller's hands). `streets`
 * limits an operator or installer token to those streets; an admin's is never limited (it manages hubs,
 * tokens and care plans, which have no street).
 */
export async function addToken(db: Kysely<LoopDb>, name: string, role: Role, at: number, opts: { streets?: readonly string[] } = {}): Promise<{ token: string; id: string }> {
  tokenNameSchema.parse(name);
  const streets = opts.streets === undefined ? undefined : [...new Set(tokenStreetsSchema.parse(opts.streets))];
  if (streets && role === "admin") throw new Error("an admin token is not limited to streets: give an operator or installer token instead");
  const token = `${PREFIX}${randomBytes(32).toString("base64url")}`;
  const id = ulid(at);
  try {
    await db
      .insertInto("api_tokens")
      .values({ id, name, role, hash: hashOf(token), created_at: at, revoked_at: null, streets: streets ? JSON.stringify(streets) : null })
      .execute();
  } catch (e) {
    if (isUniqueViolation(e)) throw new Error(`a token named "${name}" exists already (revoke it first)`);
    throw e;
  }
  return { token, id };
}

/** The principal behind a presented token, or undefined (unknown, revoked, malformed). */
export async function verifyToken(db: Kysely<LoopDb>, token: string): Promise<Principal | undefined> {
  if (!token.startsWith(PREFIX) || token.length > 200) return undefined;
  const hash = hashOf(token);
  const r = await db.selectFrom("api_tokens").select(["id", "name", "role", "hash", "streets"]).where("hash", "=", hash).where("revoked_at", "is", null).executeTakeFirst();
  // The lookup is by hash already; the constant-time compare is belt and braces.
  if (!r || !timingSafeEqual(Buffer.from(r.hash, "hex"), Buffer.from(hash, "hex"))) return undefined;
  return { id: r.id, name: r.name, role: r.role as Role, ...streetsOf(r.streets) };
}

/** A stored street list, as the principal (or a console account) carries it (absent: every street). */
export function streetsOf(json: string | null): { streets?: readonly string[] } {
  if (json === null) return {};
  // A list that does not parse limits the token to nothing rather than to everything.
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    parsed = undefined;
  }
  const p = tokenStreetsSchema.safeParse(parsed);
  return { streets: p.success ? p.data : [] };
}

export async function listTokens(db: Kysely<LoopDb>): Promise<TokenInfo[]> {
  const rows = await db.selectFrom("api_tokens").select(["id", "name", "role", "created_at", "revoked_at", "streets"]).orderBy("name").execute();
  return rows.map((r) => ({ id: r.id, name: r.name, role: r.role as Role, ...streetsOf(r.streets), createdAt: r.created_at, revokedAt: r.revoked_at }));
}

export async function revokeToken(db: Kysely<LoopDb>, name: string, at: number): Promise<boolean> {
  // The name is freed for reuse: the revoked row keeps its history under a suffixed name.
  const r = await db.updateTable("api_tokens").set({ revoked_at: at, name: `${name}~revoked~${at}` }).where("name", "=", name).where("revoked_at", "is", null).executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}
