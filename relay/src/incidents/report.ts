// False-alarm rates per home and per device model: how many alarm incidents ended as false alarms, and why.
// Maintenance incidents (hub_offline) are not alarms and are left out.
import { sql, type Kysely } from "kysely";
import { hubsOnStreets } from "../households/street-scope.js";
import type { LoopDb } from "../store/closed-loop-schema.js";

export interface FalseAlarmRow {
  key: string;
  incidents: number;
  falseAlarms: number;
  rate: number;
  reasons: Record<string, number>;
}

export interface FalseAlarmReport {
  since: number | null;
  perHome: FalseAlarmRow[];
  perDeviceModel: FalseAlarmRow[];
}

/** `streets`: count only the homes on these (a street-limited caller, households/street-scope.ts); absent: every home. */
export async function falseAlarmReport(db: Kysely<LoopDb>, q: { since?: number; streets?: readonly string[] } = {}): Promise<FalseAlarmReport> {
  const group = async (col: "hub" | "device_model"): Promise<FalseAlarmRow[]> => {
    let query = db
      .selectFrom("incidents")
      .select([
        sql<string>`coalesce(${sql.ref(col)}, 'unknown')`.as("k"),
        "false_alarm_reason",
        (eb) => eb.fn.countAll<number>().as("n"),
      ])
      .where("type", "<>", "hub_offline");
    if (q.since !== undefined) query = query.where("opened_at", ">=", q.since);
    if (q.streets !== undefined) query = query.where("hub", "in", hubsOnStreets(db, q.streets));
    const rows = await query.groupBy([sql`coalesce(${sql.ref(col)}, 'unknown')`, "false_alarm_reason"]).execute();
    const by = new Map<string, FalseAlarmRow>();
    for (const r of rows) {
      let e = by.get(r.k);
      if (!e) by.set(r.k, (e = { key: r.k, incidents: 0, falseAlarms: 0, rate: 0, reasons: {} }));
      const n = Number(r.n);
      e.incidents += n;
      if (r.false_alarm_reason) {
        e.falseAlarms += n;
        e.reasons[r.false_alarm_reason] = (e.reasons[r.false_alarm_reason] ?? 0) + n;
      }
    }
    const out = [...by.values()].map((e) => ({ ...e, rate: e.incidents ? Math.round((e.falseAlarms / e.incidents) * 1000) / 1000 : 0 }));
    return out.sort((a, b) => b.rate - a.rate || b.incidents - a.incidents || (a.key < b.key ? -1 : 1));
  };
  return { since: q.since ?? null, perHome: await group("hub"), perDeviceModel: await group("device_model") };
}
