// The queue's rows: every incident before closed, read with its household (masked), the first event's
// receipt, the call-tree step and the current taker. One reader for the listing, the stream and the
// change feed, so what a console shows never depends on how it learnt of the change.
import type { Kysely } from "kysely";
import { z } from "zod";
import type { EscalationPlan } from "../../escalation/plan.js";
import { maskAddress } from "../../households/mask.js";
import type { HouseholdTables } from "../../households/tables.js";
import { INCIDENT_STATES, type IncidentState } from "../../incidents/lifecycle.js";
import type { LoopDb } from "../../store/closed-loop-schema.js";
import { currentStep } from "./step.js";
import type { QueueDb } from "./table.js";

export const OPEN_STATES: readonly IncidentState[] = INCIDENT_STATES.filter((s) => s !== "closed");
export const QUEUE_SEVERITIES = ["critical", "warning", "info"] as const;
export type QueueSeverity = (typeof QUEUE_SEVERITIES)[number];

const ms = z.number().int().describe("ms since epoch");

export const queueRowSchema = z
  .object({
    id: z.string(),
    type: z.string(),
    severity: z.enum(QUEUE_SEVERITIES),
    hub: z.string(),
    homeMasked: z.string().describe("the household's address masked (road and building), or the hub id when the hub has no household"),
    receivedAt: ms.describe("when the relay stored the incident's first event"),
    state: z.enum(INCIDENT_STATES),
    step: z
      .object({ label: z.string(), index: z.number().int().describe("1-based"), of: z.number().int(), nextAt: ms.optional() })
      .nullable()
      .describe("the call-tree step in progress; null when the tree is not running"),
    takenBy: z.object({ username: z.string(), displayName: z.string(), at: ms }).nullable(),
  })
  .describe("an open incident in the duty console's queue");

export type QueueRow = z.infer<typeof queueRowSchema>;

/** A row with the household's street, which decides who may see it (never sent). */
export interface ScopedRow {
  row: QueueRow;
  street: string | undefined;
}

/** The protocol's `high` ranks with critical: a queue of three levels must never put it below a warning. */
export function queueSeverity(s: string): QueueSeverity {
  if (s === "critical" || s === "high") return "critical";
  return s === "warning" ? "warning" : "info";
}

const RANK: Record<QueueSeverity, number> = { critical: 0, warning: 1, info: 2 };

/** Critical first, then the oldest first (the id breaks ties so the order is stable). */
export function compareRows(a: QueueRow, b: QueueRow): number {
  return RANK[a.severity] - RANK[b.severity] || a.receivedAt - b.receivedAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

type RowsDb = QueueDb & HouseholdTables;

/** The open incidents' rows (all of them, or those of `ids` that are still open), unsorted. */
export async function loadRows(db0: Kysely<LoopDb>, ids?: readonly string[]): Promise<ScopedRow[]> {
  if (ids?.length === 0) return [];
  const db = db0 as unknown as Kysely<RowsDb>;
  let q = db
    .selectFrom("incidents as i")
    .leftJoin("households as h", "h.hub", "i.hub")
    .leftJoin("events as e", "e.id", "i.event_id")
    .leftJoin("console_incident_takes as k", "k.current_key", "i.id")
    .select([
      "i.id", "i.hub", "i.type", "i.severity", "i.state", "i.opened_at", "i.escalation", "i.escalation_pass", "i.plan",
      "h.address", "h.street", "e.received_at", "k.username", "k.display_name", "k.taken_at",
    ])
    .where("i.state", "in", OPEN_STATES);
  if (ids) q = q.where("i.id", "in", ids);
  const incidents = await q.execute();
  const running = incidents.filter((i) => i.escalation === "running").map((i) => i.id);
  const timers = running.length
    ? await db
        .selectFrom("escalation_timers")
        .select(["id", "incident_id", "kind", "step", "round", "due_at", "claimed_by", "done_at", "result"])
        .where("incident_id", "in", running)
        .where("kind", "in", ["step", "end"])
        .execute()
    : [];
  const byIncident = new Map<string, typeof timers>();
  for (const t of timers) {
    const list = byIncident.get(t.incident_id);
    if (list) list.push(t);
    else byIncident.set(t.incident_id, [t]);
  }
  return incidents.map((i) => ({
    street: i.street ?? undefined,
    row: {
      id: i.id,
      type: i.type,
      severity: queueSeverity(i.severity),
      hub: i.hub,
      homeMasked: i.address ? maskAddress(i.address) : i.hub,
      receivedAt: Number(i.received_at ?? i.opened_at),
      state: i.state as IncidentState,
      step: i.escalation === "running" ? currentStep({ ...i, plan: JSON.parse(i.plan) as EscalationPlan }, byIncident.get(i.id) ?? []) : null,
      takenBy: i.username !== null && i.display_name !== null && i.taken_at !== null ? { username: i.username, displayName: i.display_name, at: Number(i.taken_at) } : null,
    },
  }));
}
