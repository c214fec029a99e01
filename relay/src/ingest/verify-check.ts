// The per-message checks that need no shared state: JSON, the envelope schema, the hub named by the topic,
// and the signature. Used inline by Ingest and inside the verify workers, so both give the same verdicts.
import { envelopeSchema, type Envelope } from "../../../protocol/envelope.js";
import { CanonicalDepthError, verifyEnvelope } from "../../../protocol/signing.js";
import { fastEnvelope } from "./envelope-fast-check.js";

export type CheckReject = "not_json" | "schema" | "hub_mismatch" | "unknown_hub" | "bad_signature";

/** What a rejection carries to the log: never the envelope's data (it may be personal data). */
export interface Rejected {
  ok: false;
  reason: CheckReject;
  id?: string;
  extra?: Record<string, unknown>;
}

export type Parsed = { ok: true; env: Envelope } | Rejected;

/** JSON, schema and hub check. */
export function parseEnvelope(hubFromTopic: string, text: string): Parsed {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { ok: false, reason: "not_json" };
  }
  // Nearly every envelope passes the hand-written check; zod decides (and explains) the rest.
  const fast = fastEnvelope(raw);
  if (fast !== undefined) return hubChecked(hubFromTopic, fast);
  const parsed = envelopeSchema.safeParse(raw);
  if (!parsed.success) {
    // Paths and codes only: values may be personal data.
    const issues = parsed.error.issues.slice(0, 5).map((i) => `${i.path.join(".")}: ${i.code}`);
    const id = idOf(raw);
    return { ok: false, reason: "schema", ...(id ? { id } : {}), extra: { issues } };
  }
  return hubChecked(hubFromTopic, parsed.data);
}

function hubChecked(hubFromTopic: string, env: Envelope): Parsed {
  // The broker's ACL already keeps a hub to its own topics; this is defence in depth.
  if (env.hub !== hubFromTopic) return { ok: false, reason: "hub_mismatch", id: env.id, extra: { envelopeHub: env.hub } };
  return { ok: true, env };
}

/** The signature check once the key is known (null: unknown or revoked hub). */
export function checkSignature(env: Envelope, key: Buffer | null): Rejected | null {
  if (!key) return { ok: false, reason: "unknown_hub", id: env.id };
  try {
    if (!verifyEnvelope(env, key)) return { ok: false, reason: "bad_signature", id: env.id };
  } catch (e) {
    // The schema bounds `data`'s depth first; this is the backstop, so a hostile event is a counted
    // rejection like any other bad one, never a crashed check (or a verify worker taking its chunk along).
    if (e instanceof CanonicalDepthError || e instanceof RangeError) return { ok: false, reason: "schema", id: env.id, extra: { issues: [`(envelope): ${e.message}`] } };
    throw e;
  }
  return null;
}

/** An id worth logging from an unvalidated message (short and plain, or nothing). */
export function idOf(raw: unknown): string | undefined {
  if (raw === null || typeof raw !== "object") return undefined;
  const id = (raw as { id?: unknown }).id;
  return typeof id === "string" && /^[A-Za-z0-9_-]{1,40}$/.test(id) ? id : undefined;
}
