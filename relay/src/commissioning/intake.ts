// Taking in commissioning reports, inside ingest's batch transaction: a committed `audit/commissioning_report`
// event whose data is a valid report gets its row in commissioning_reports in the same commit, so a report is
// in the table exactly when its event is (a crash between the two cannot split them).
//
// The event itself is never refused here: an invalid report is still a signed event the hub sent (kept in
// `events`, acknowledged), only logged and counted, so nothing captured is lost. A failure of the insert is
// kept to its own savepoint for the same reason: one bad row must not hold up every hub's events.
import { sql, type Kysely } from "kysely";
import type { Logger } from "pino";
import { Counter, type Registry } from "prom-client";
import type { z } from "zod";
import { COMMISSIONING_REPORT_TYPE, commissioningReportSchema } from "../../../protocol/commissioning.js";
import type { Envelope } from "../../../protocol/envelope.js";
import type { LoopDb } from "../store/closed-loop-schema.js";
import { commissioningDb } from "./tables.js";

export type ReportIntake = (trx: Kysely<LoopDb>, inserted: Envelope[]) => Promise<void>;

export function isCommissioningReport(env: Pick<Envelope, "kind" | "type">): boolean {
  return env.kind === "audit" && env.type === COMMISSIONING_REPORT_TYPE;
}

/** Where and why a report is invalid: field paths and messages only, never the values (they may be free text). */
export function describeIssues(e: z.ZodError): string {
  return e.issues
    .slice(0, 5)
    .map((i) => `${i.path.map(String).join(".") || "(report)"}: ${i.message}`)
    .join("; ");
}

export function commissioningIntake(o: { log: Logger; registry?: Registry; now: () => number }): ReportIntake {
  const counted = new Counter({
    name: "anxin_relay_commissioning_reports_total",
    help: "commissioning report events committed, by what became of the report (stored, invalid: kept as an event only, error)",
    labelNames: ["result"] as const,
    registers: o.registry ? [o.registry] : [],
  });
  return async (trx, inserted) => {
    let n = 0;
    for (const env of inserted) {
      if (!isCommissioningReport(env)) continue;
      const parsed = commissioningReportSchema.safeParse(env.data);
      if (!parsed.success) {
        o.log.warn({ hub: env.hub, id: env.id, issues: describeIssues(parsed.error) }, "commissioning report invalid: kept as an event, not stored as a report");
        counted.inc({ result: "invalid" });
        continue;
      }
      const r = parsed.data;
      if (r.hub !== env.hub) {
        // A hub speaks only for itself: a report naming another hub is not taken as that hub's.
        o.log.warn({ hub: env.hub, id: env.id, issues: "hub: names another hub than the one that signed it" }, "commissioning report invalid: kept as an event, not stored as a report");
        counted.inc({ result: "invalid" });
        continue;
      }
      const sp = sql.raw(`anxin_report_${n++}`);
      await sql`SAVEPOINT ${sp}`.execute(trx);
      try {
        await commissioningDb(trx)
          .insertInto("commissioning_reports")
          .values({ id: env.id, event_id: env.id, hub: env.hub, household_id: r.household ?? null, state: r.state, finished_at: r.finishedAt, received_at: o.now(), report: JSON.stringify(r) })
          .onConflict((oc) => oc.column("id").doNothing())
          .execute();
        await sql`RELEASE SAVEPOINT ${sp}`.execute(trx);
        counted.inc({ result: "stored" });
      } catch (err) {
        await sql`ROLLBACK TO SAVEPOINT ${sp}`.execute(trx);
        await sql`RELEASE SAVEPOINT ${sp}`.execute(trx);
        o.log.error({ hub: env.hub, id: env.id, err: (err instanceof Error ? err.message : String(err)).slice(0, 200) }, "commissioning report could not be stored; the event is kept");
        counted.inc({ result: "error" });
      }
    }
  };
}
