// What an operator does with the outbox: list the forwards (the dead letters above all), look at one, and
// send a dead one again once its receiver is fixed. Looking at a payload (an opening carries the elder's
// address) and resending are recorded in the audit log with who, when and through which path; the CLI and
// the operator API both come through here.
import type { Kysely } from "kysely";
import { listAudit, recordAudit, type AuditEntry } from "../careplans/audit.js";
import type { LoopDb, RelayDbHandle } from "../store/closed-loop-schema.js";
import { REQUEUED, type ForwardDb, type ForwardOutboxTable, type ForwardState } from "./table.js";

/** A forward without its payload (safe to list): what it reports is taken from the payload's envelope. */
export interface ForwardSummary {
  id: string;
  destination: string;
  idempotencyKey: string;
  state: ForwardState;
  attempts: number;
  lastError: string | null;
  createdAt: number;
  nextAttemptAt: number;
  deliveredAt: number | null;
  /** For an incident update: the incident, its hub and type, and what the update says (no personal data). */
  incidentId: string | null;
  hub: string | null;
  type: string | null;
  /** e.g. `transition → confirmed`, `dispatch`, `acknowledged`. */
  update: string | null;
}

export interface ForwardDetail extends ForwardSummary {
  /** The body sent on every try, as enqueued (may hold the elder's address: the read is audited). */
  payload: unknown;
  /** Reads and resends of this forward from the audit log, oldest first. */
  history: AuditEntry[];
}

/** The audit log's subject for a forward. */
const subject = (id: string) => `forward:${id}`;

const str = (v: unknown): string | null => (typeof v === "string" ? v : null);

export function forwardSummary(r: ForwardOutboxTable): ForwardSummary {
  let incidentId: string | null = null;
  let hub: string | null = null;
  let type: string | null = null;
  let update: string | null = null;
  try {
    const p = JSON.parse(r.payload) as { incident?: Record<string, unknown>; update?: Record<string, unknown> } | null;
    if (p && typeof p === "object") {
      incidentId = str(p.incident?.id);
      hub = str(p.incident?.hub);
      type = str(p.incident?.type);
      const kind = str(p.update?.kind);
      const to = str(p.update?.to);
      update = kind ? (to ? `${kind} → ${to}` : kind) : null;
    }
  } catch {
    // Not JSON (cannot happen for rows written by enqueueForward): listed without the incident.
  }
  return {
    id: r.id,
    destination: r.destination,
    idempotencyKey: r.idempotency_key,
    state: r.state,
    attempts: r.attempts,
    lastError: r.last_error,
    createdAt: r.created_at,
    nextAttemptAt: r.next_attempt_at,
    deliveredAt: r.delivered_at,
    incidentId,
    hub,
    type,
    update,
  };
}

/** Forwards in one state (dead letters by default), newest first, without payloads. Not audited: nothing personal. */
export async function listForwardSummaries(db: RelayDbHandle, q: { state?: ForwardState; destination?: string; limit?: number } = {}): Promise<ForwardSummary[]> {
  let query = (db as unknown as Kysely<ForwardDb>).selectFrom("forward_outbox").selectAll().where("state", "=", q.state ?? "dead");
  if (q.destination) query = query.where("destination", "=", q.destination);
  const rows = await query.orderBy("id", "desc").limit(q.limit ?? 100).execute();
  return rows.map(forwardSummary);
}

/** One forward with its payload and history; the read is recorded (`forward.read`). Undefined if unknown. */
export async function getForward(db: RelayDbHandle, id: string, by: { actor: string; purpose: string; at: number }): Promise<ForwardDetail | undefined> {
  return (db as unknown as Kysely<LoopDb>).transaction().execute(async (trx) => {
    const row = await (trx as unknown as Kysely<ForwardDb>).selectFrom("forward_outbox").selectAll().where("id", "=", id).executeTakeFirst();
    if (!row) return undefined;
    await recordAudit(trx, { actor: by.actor, action: "forward.read", subject: subject(id), purpose: by.purpose, at: by.at });
    return { ...forwardSummary(row), payload: JSON.parse(row.payload) as unknown, history: await listAudit(trx, { subject: subject(id) }) };
  });
}

export class ResendError extends Error {
  constructor(
    readonly code: "not_found" | "not_dead",
    message: string,
  ) {
    super(message);
    this.name = "ResendError";
  }
}

/**
 * Sends a dead forward again: pending, due at once, tries counted from zero (the receiver sees the same
 * Idempotency-Key), and a `forward.resend` row in the audit log, in one transaction. If it fails again it
 * goes dead again after maxAttempts and raises a new forward_dead alert. Throws ResendError when there is
 * no such forward or it is not dead (pending or delivered: nothing to resend).
 */
export async function resendForward(db: RelayDbHandle, id: string, by: { actor: string; purpose: string; at: number }): Promise<ForwardSummary> {
  return (db as unknown as Kysely<LoopDb>).transaction().execute(async (trx) => {
    const f = trx as unknown as Kysely<ForwardDb>;
    const r = await f.updateTable("forward_outbox").set({ ...REQUEUED, next_attempt_at: by.at }).where("id", "=", id).where("state", "=", "dead").executeTakeFirst();
    if (Number(r.numUpdatedRows) !== 1) {
      const row = await f.selectFrom("forward_outbox").select("state").where("id", "=", id).executeTakeFirst();
      if (!row) throw new ResendError("not_found", `no forward ${id}`);
      throw new ResendError("not_dead", `forward ${id} is ${row.state}, not dead: nothing to resend`);
    }
    await recordAudit(trx, { actor: by.actor, action: "forward.resend", subject: subject(id), purpose: by.purpose, at: by.at });
    return forwardSummary(await f.selectFrom("forward_outbox").selectAll().where("id", "=", id).executeTakeFirstOrThrow());
  });
}
