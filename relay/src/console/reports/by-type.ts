// Incident counts and time to confirmation per incident type over a period. An incident's time to
// confirmation runs from its receipt (opened_at: the relay stored the alarm and recorded it `received`) to
// its first transition into `confirmed`, or into `responding` when help was dispatched first (the lifecycle
// counts a dispatch as the confirmation). An incident confirmed and later found to be a false alarm counts
// as confirmed, at the time it was confirmed. The period is about when incidents were opened: a confirmation
// after the period's end still counts for an incident opened within it.
//
// Aggregated in the database: one grouped count, and for the times a window query that ranks each type's
// confirmation times and returns only the (at most four) ranks the median and 90th percentile need.
import { sql, type Kysely } from "kysely";
import { interpolate } from "./percentile.js";
import { scopedIncidents, type ReportDb, type ReportScope } from "./scope.js";

export const CONFIRMING_STATES = ["confirmed", "responding"] as const;

export interface TypeRow {
  type: string;
  incidents: number;
  falseAlarms: number;
  /** Incidents that reached confirmation (see above). */
  confirmed: number;
  /** ms from receipt to confirmation; null when none was confirmed. */
  medianMs: number | null;
  p90Ms: number | null;
}

export async function incidentsPerType(db: Kysely<ReportDb>, s: ReportScope): Promise<TypeRow[]> {
  const counts = await scopedIncidents(db, s)
    .select([
      "i.type",
      (eb) => eb.fn.countAll<number>().as("n"),
      sql<number>`sum(case when i.false_alarm_reason is not null then 1 else 0 end)`.as("fa"),
    ])
    .groupBy("i.type")
    .execute();

  const delays = scopedIncidents(db, s)
    .innerJoin("incident_timeline as t", "t.incident_id", "i.id")
    .where("t.kind", "=", "transition")
    .where("t.to_state", "in", [...CONFIRMING_STATES])
    .select(["i.type", sql<number>`min(t.at) - i.opened_at`.as("ms")])
    .groupBy(["i.id", "i.type", "i.opened_at"]);
  const ranked = db
    .selectFrom(delays.as("d"))
    .select([
      "d.type",
      "d.ms",
      sql<number>`row_number() over (partition by d.type order by d.ms) - 1`.as("k"),
      sql<number>`count(*) over (partition by d.type)`.as("n"),
    ]);
  // The ranks rankIndices() names, in SQL: floor and ceil of (n−1)/2 and of 9(n−1)/10.
  const needed = await db
    .selectFrom(ranked.as("r"))
    .selectAll()
    .where(sql<boolean>`r.k in ((r.n - 1) / 2, r.n / 2, (9 * (r.n - 1)) / 10, (9 * (r.n - 1) + 9) / 10)`)
    .execute();

  const times = new Map<string, { n: number; at: Map<number, number> }>();
  for (const r of needed) {
    let e = times.get(r.type);
    if (!e) times.set(r.type, (e = { n: Number(r.n), at: new Map() }));
    e.at.set(Number(r.k), Number(r.ms));
  }
  const rows = counts.map((c): TypeRow => {
    const t = times.get(c.type);
    const n = t?.n ?? 0;
    const at = (k: number) => t?.at.get(k);
    return {
      type: c.type,
      incidents: Number(c.n),
      falseAlarms: Number(c.fa ?? 0),
      confirmed: n,
      medianMs: interpolate(n, 5, at) ?? null,
      p90Ms: interpolate(n, 9, at) ?? null,
    };
  });
  return rows.sort((a, b) => b.incidents - a.incidents || (a.type < b.type ? -1 : a.type > b.type ? 1 : 0));
}
