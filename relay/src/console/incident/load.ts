// What the incident page's routes read from the store: the incident with its household's street (which
// decides who may see it) and masked address, its current taker, its step timers and call attempts, and the
// hub's care plan reduced to masked values before it leaves this module.
import type { Kysely } from "kysely";
import { carePlanSchema } from "../../careplans/schema.js";
import { maskAddress } from "../../households/mask.js";
import type { HouseholdTables } from "../../households/tables.js";
import type { IncidentsTable, LoopDb } from "../../store/closed-loop-schema.js";
import type { StepTimer } from "../queue/step.js";
import type { QueueDb } from "../queue/table.js";
import type { AttemptRow } from "./call-tree.js";
import { maskCarePlan, maskedTarget, type MaskedCarePlan } from "./mask.js";

type PageDb = QueueDb & HouseholdTables;

export interface IncidentFacts {
  row: IncidentsTable;
  /** The household's street; undefined when the hub has no household. */
  street: string | undefined;
  homeMasked: string;
  takenBy: { username: string; displayName: string; at: number } | null;
}

export async function loadIncidentFacts(db0: Kysely<LoopDb>, id: string): Promise<IncidentFacts | undefined> {
  const db = db0 as unknown as Kysely<PageDb>;
  const row = await db.selectFrom("incidents").selectAll().where("id", "=", id).executeTakeFirst();
  if (!row) return undefined;
  const home = await db.selectFrom("households").select(["address", "street"]).where("hub", "=", row.hub).executeTakeFirst();
  const take = await db.selectFrom("console_incident_takes").select(["username", "display_name", "taken_at"]).where("current_key", "=", id).executeTakeFirst();
  return {
    row,
    street: home?.street ?? undefined,
    homeMasked: home?.address ? maskAddress(home.address) : row.hub,
    takenBy: take ? { username: take.username, displayName: take.display_name, at: Number(take.taken_at) } : null,
  };
}

export async function loadTreeRows(db: Kysely<LoopDb>, id: string): Promise<{ timers: StepTimer[]; attempts: AttemptRow[] }> {
  const timers = await db
    .selectFrom("escalation_timers")
    .select(["id", "kind", "step", "round", "due_at", "claimed_by", "done_at", "result"])
    .where("incident_id", "=", id)
    .where("kind", "in", ["step", "end"])
    .execute();
  const attempts = await db
    .selectFrom("call_attempts")
    .select(["id", "step", "round", "role", "target", "channel", "status", "digits", "requested_at", "placed_at", "outcome_at"])
    .where("incident_id", "=", id)
    .orderBy("requested_at")
    .orderBy("id")
    .execute();
  return { timers: timers.map((t) => ({ ...t, due_at: Number(t.due_at), done_at: t.done_at === null ? null : Number(t.done_at) })), attempts };
}

export type MaskedPlanRead =
  | { state: "none" }
  | { state: "invalid" }
  | { state: "ok"; version: number; updatedAt: number; plan: MaskedCarePlan; who: (ref: string) => { name: string; phone: string } | undefined };

/**
 * The hub's care plan, masked. Not audited: nothing in the answer names or reaches a person (the queue's masked
 * address is shown the same way); the full plan leaves only through readCarePlan, which records the read.
 */
export async function readMaskedCarePlan(db: Kysely<LoopDb>, hub: string): Promise<MaskedPlanRead> {
  const r = await db.selectFrom("care_plans").select(["plan", "version", "updated_at"]).where("hub", "=", hub).executeTakeFirst();
  if (!r) return { state: "none" };
  const parsed = carePlanSchema.safeParse(JSON.parse(r.plan));
  if (!parsed.success) return { state: "invalid" };
  const full = parsed.data;
  return { state: "ok", version: Number(r.version), updatedAt: Number(r.updated_at), plan: maskCarePlan(full), who: (ref) => maskedTarget(full, ref) };
}
