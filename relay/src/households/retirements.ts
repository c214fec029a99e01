// Which of the hub's devices a consent withdrawal retires, recorded in the consent's own transaction, and the
// retirements a household's record shows. The hub's device ids come from its latest commissioning report (the
// hub's signed statement of what it has): without one the relay knows no id, and says so (`no_device`) rather
// than guess. Delivery is retirement-sender.ts; the hub's answer is retirement-outcomes.ts.
import type { Kysely, Transaction } from "kysely";
import { monotonicFactory } from "ulid";
import { commissioningReportSchema, type CommissioningReport } from "../../../protocol/commissioning.js";
import { recordAudit } from "../careplans/audit.js";
import { commissioningDb } from "../commissioning/tables.js";
import type { LoopDb } from "../store/closed-loop-schema.js";
import { planKind } from "./ledger-commissioning.js";
import { retirementDb, type HouseholdRetirementsTable, type RetirementState } from "./retirement-table.js";
import type { ConsentDevice, PlanItem } from "./schema.js";
import type { HouseholdDb } from "./tables.js";

/** The sensitive kinds the hub drives. A camera has no hub driver: nothing to ask the hub for it. */
export const HUB_RETIRED_KINDS: readonly ConsentDevice[] = ["vital_radar"];

/** A retirement as the household's record shows it. */
export interface Retirement {
  /** The hub's device id; null: the relay knows of none (state `no_device`). */
  device: string | null;
  kind: string;
  room: string;
  state: RetirementState;
  requestedAt: number;
  doneAt?: number;
  reason?: string;
  /** Commands sent so far (each with a fresh id), and the last one's time. */
  commands: number;
  lastSentAt?: number;
}

type Db = Kysely<LoopDb> | Transaction<HouseholdDb>;
const asLoop = (db: Db) => db as unknown as Kysely<LoopDb>;
const newId = monotonicFactory();

export function toRetirement(r: HouseholdRetirementsTable): Retirement {
  return {
    device: r.device,
    kind: r.kind,
    room: r.room,
    state: r.state,
    requestedAt: Number(r.requested_at),
    ...(r.done_at === null ? {} : { doneAt: Number(r.done_at) }),
    ...(r.reason === null ? {} : { reason: r.reason }),
    commands: Number(r.sends),
    ...(r.last_sent_at === null ? {} : { lastSentAt: Number(r.last_sent_at) }),
  };
}

/** The rooms whose `kind` this change retired: active in `before`, retired (and none active) in `after`. */
export function retiredRooms(before: readonly PlanItem[], after: readonly PlanItem[], kind: ConsentDevice): string[] {
  const activeIn = (items: readonly PlanItem[]) => new Set(items.filter((i) => i.kind === kind && i.retiredAt === undefined).map((i) => i.room));
  const was = activeIn(before);
  const still = activeIn(after);
  return [...new Set(after.filter((i) => i.kind === kind && i.retiredAt !== undefined && was.has(i.room) && !still.has(i.room)).map((i) => i.room))];
}

/** A stored report that is not JSON (a row edited by hand) is no report: it must not fail the consent's record. */
function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** The hub's latest commissioning report for this home (blocked ones too: their device ids are the hub's all the same). */
async function latestReport(db: Kysely<LoopDb>, hub: string, householdId: string): Promise<{ id: string; report: CommissioningReport } | undefined> {
  const rows = await commissioningDb(db)
    .selectFrom("commissioning_reports")
    .select(["id", "household_id", "report"])
    .where("hub", "=", hub)
    .orderBy("finished_at", "desc")
    .orderBy("received_at", "desc")
    .orderBy("id", "desc")
    .limit(20)
    .execute();
  for (const r of rows) {
    // A report naming another home is not this home's kit (a hub moved between homes).
    if (r.household_id !== null && r.household_id !== householdId) continue;
    const parsed = commissioningReportSchema.safeParse(parseJson(r.report));
    if (parsed.success) return { id: r.id, report: parsed.data };
  }
  return undefined;
}

/**
 * Records what a consent withdrawal asks of the hub: for each room where the change (plan items `before` →
 * `after`) retired a kind the hub drives, every device of that kind the latest commissioning report places
 * there (a device reported without a room counts: it cannot be shown to be elsewhere) as `pending`, or one
 * `no_device` row saying why none is known. A device already pending is not asked twice. Writes one audit
 * row; returns the rows written.
 */
export async function recordRetirements(
  db0: Db,
  o: { householdId: string; hub: string; kind: ConsentDevice; before: readonly PlanItem[]; after: readonly PlanItem[]; who: { actor: string; purpose: string; at: number } },
): Promise<Retirement[]> {
  const rooms = retiredRooms(o.before, o.after, o.kind);
  if (!HUB_RETIRED_KINDS.includes(o.kind) || rooms.length === 0) return [];
  const db = asLoop(db0);
  const rdb = retirementDb(db);
  const found = await latestReport(db, o.hub, o.householdId);
  const pending = new Set(
    (await rdb.selectFrom("household_retirements").select("device").where("hub", "=", o.hub).where("state", "=", "pending").where("device", "is not", null).execute()).map((r) => r.device as string),
  );
  const at = o.who.at;
  const rows: HouseholdRetirementsTable[] = [];
  const row = (room: string, device: string | null, state: RetirementState, reason: string | null): HouseholdRetirementsTable => ({
    id: newId(at),
    household_id: o.householdId,
    hub: o.hub,
    kind: o.kind,
    room,
    device,
    state,
    requested_at: at,
    done_at: null,
    reason,
    report_id: found?.id ?? null,
    sends: 0,
    last_sent_at: null,
    command_id: null,
    outcome_event: null,
  });
  const notes: string[] = [];
  // Consent is given per kind, so its withdrawal retires every device of that kind the hub reported, whatever
  // room the report puts it in (a radar moved to another room is still one the elder said no to).
  const reported = (found?.report.devices ?? []).filter((d) => d.id !== null && planKind(d.kind) === o.kind);
  if (reported.length === 0) {
    const why = found ? `the hub's latest commissioning report lists no ${o.kind}` : "no commissioning report from the hub: its device ids are not known";
    for (const room of rooms) {
      rows.push(row(room, null, "no_device", why));
      notes.push(`${o.kind} in ${room}: no hub device (${why})`);
    }
  }
  for (const d of reported) {
    const room = d.room ?? rooms[0]!;
    const device = d.id as string;
    if (pending.has(device)) {
      notes.push(`${o.kind} ${device} in ${room}: already pending`);
      continue;
    }
    pending.add(device);
    rows.push(row(room, device, "pending", null));
    notes.push(`${o.kind} ${device} in ${room}: retire_device pending`);
  }
  if (rows.length) await rdb.insertInto("household_retirements").values(rows).execute();
  // Device and room ids only: no personal data in the audit row's purpose.
  await recordAudit(db, { actor: o.who.actor, action: "household.retire_device", subject: o.hub, purpose: `${o.who.purpose}; household ${o.householdId}; ${notes.join("; ")}`, at });
  return rows.map(toRetirement);
}

/** A household's retirements, oldest first. */
export async function retirementsOf(db: Db, householdId: string): Promise<Retirement[]> {
  const rows = await retirementDb(asLoop(db)).selectFrom("household_retirements").selectAll().where("household_id", "=", householdId).orderBy("requested_at").orderBy("id").execute();
  return rows.map(toRetirement);
}
