// Bearer tokens for the operator API. A token is 256 random bits shown once at creation; the store keeps
// only its SHA-256 (with that much entropy a slow hash adds nothing, and every request can be checked
// cheaply). Roles: operator (incidents, alerts, care-plan reads), admin (all of that and more), installer
// (hub enrolment, and the households it registers: the elder's name and address it entered itself).
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

const PREFIX = "anx_";

export interface Principal {
  id: string;
  name: string;
  role: Role;
}

export interface TokenInfo extends Principal {
  createdAt: number;
  revokedAt: number | null;
}

const hashOf = (token: string) => createHash("sha256").update(token, "utf8").digest("hex");

/** Creates a token and returns it in clear (the only time it exists outside the caller's hands). */
export async function addToken(db: Kysely<LoopDb>, name: string, role: Role, at: number): Promise<{ token: string; id: string }> {
  tokenNameSchema.parse(name);
  const token = `${PREFIX}${randomBytes(32).toString("base64url")}`;
  const id = ulid(at);
  try {
    await db.insertInto("api_tokens").values({ id, name, role, hash: hashOf(token), created_at: at, revoked_at: null }).execute();
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
  const r = await db.selectFrom("api_tokens").select(["id", "name", "role", "hash"]).where("hash", "=", hash).where("revoked_at", "is", null).executeTakeFirst();
  // The lookup is by hash already; the constant-time compare is belt and braces.
  if (!r || !timingSafeEqual(Buffer.from(r.hash, "hex"), Buffer.from(hash, "hex"))) return undefined;
  return { id: r.id, name: r.name, role: r.role as Role };
}

export async function listTokens(db: Kysely<LoopDb>): Promise<TokenInfo[]> {
  const rows = await db.selectFrom("api_tokens").select(["id", "name", "role", "created_at", "revoked_at"]).orderBy("name").execute();
  return rows.map((r) => ({ id: r.id, name: r.name, role: r.role as Role, createdAt: r.created_at, revokedAt: r.revoked_at }));
}

export async function revokeToken(db: Kysely<LoopDb>, name: string, at: number): Promise<boolean> {
  // The name is freed for reuse: the revoked row keeps its history under a suffixed name.
  const r = await db.updateTable("api_tokens").set({ revoked_at: at, name: `${name}~revoked~${at}` }).where("name", "=", name).where("revoked_at", "is", null).executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}
