// Reading the stored commissioning reports, and finding the household a report is about (the id the hub
// named, else the home registered for that hub). Reads here are not audited: the routes audit each one.
import type { Kysely } from "kysely";
import { commissioningReportSchema, type CommissioningReport } from "../../../protocol/commissioning.js";
import { findHousehold, type Household } from "../households/store.js";
import { householdDb } from "../households/tables.js";
import type { LoopDb } from "../store/closed-loop-schema.js";
import { commissioningDb, type CommissioningReportsTable } from "./tables.js";

export interface StoredReport {
  id: string;
  eventId: string;
  hub: string;
  householdId: string | null;
  state: CommissioningReport["state"];
  finishedAt: number;
  receivedAt: number;
  report: CommissioningReport;
}

function toStored(r: CommissioningReportsTable): StoredReport {
  // Validated when it came in; checked again so a row edited by hand is never rendered as the hub's.
  const report = commissioningReportSchema.parse(JSON.parse(r.report));
  return { id: r.id, eventId: r.event_id, hub: r.hub, householdId: r.household_id, state: r.state, finishedAt: Number(r.finished_at), receivedAt: Number(r.received_at), report };
}

export async function listReports(db: Kysely<LoopDb>, hub: string, limit: number): Promise<StoredReport[]> {
  const rows = await commissioningDb(db).selectFrom("commissioning_reports").selectAll().where("hub", "=", hub).orderBy("finished_at", "desc").orderBy("id", "desc").limit(limit).execute();
  return rows.map(toStored);
}

export async function getReport(db: Kysely<LoopDb>, id: string): Promise<StoredReport | undefined> {
  const row = await commissioningDb(db).selectFrom("commissioning_reports").selectAll().where("id", "=", id).executeTakeFirst();
  return row && toStored(row);
}

/** The household a report (or a hub) belongs to: the id the hub named if the relay knows it, else the hub's home. */
export async function householdOf(db: Kysely<LoopDb>, o: { householdId?: string | null; hub: string }): Promise<Household | undefined> {
  if (o.householdId) {
    const h = await findHousehold(db, o.householdId);
    // A household id naming another hub's home is not taken: a hub speaks only for its own home.
    if (h && h.hub === o.hub) return h;
  }
  const row = await householdDb(db).selectFrom("households").select("id").where("hub", "=", o.hub).executeTakeFirst();
  return row ? findHousehold(db, row.id) : undefined;
}
