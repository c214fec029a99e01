// The audit log: who read or changed personal data, when and through which path (PIPL processing records).
// Rows are written in the same transaction as the read or write they record where one exists.
import type { Kysely } from "kysely";
import { monotonicFactory } from "ulid";
import { pooledRandom } from "../../../lib/ids/pooled-random.js";
import type { LoopDb } from "../store/closed-loop-schema.js";

export interface AuditEntry {
  actor: string;
  action: string;
  subject: string;
  purpose: string;
  at: number;
}

// Rows written in the same millisecond keep their order (read back by (at, id)).
const auditId = monotonicFactory(pooledRandom);

const auditRow = (e: AuditEntry) => ({ id: auditId(e.at), at: e.at, actor: e.actor, action: e.action, subject: e.subject, purpose: e.purpose });

export async function recordAudit(db: Kysely<LoopDb>, e: AuditEntry): Promise<void> {
  await db.insertInto("audit_log").values(auditRow(e)).execute();
}

/** Several rows in one statement, in the order given. */
export async function recordAudits(db: Kysely<LoopDb>, entries: readonly AuditEntry[]): Promise<void> {
  if (entries.length > 0) await db.insertInto("audit_log").values(entries.map(auditRow)).execute();
}

export async function listAudit(db: Kysely<LoopDb>, q: { subject?: string; limit?: number } = {}): Promise<AuditEntry[]> {
  let query = db.selectFrom("audit_log").selectAll();
  if (q.subject !== undefined) query = query.where("subject", "=", q.subject);
  const rows = await query.orderBy("at").orderBy("id").limit(q.limit ?? 1000).execute();
  return rows.map((r) => ({ actor: r.actor, action: r.action, subject: r.subject, purpose: r.purpose, at: r.at }));
}
