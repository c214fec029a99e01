// False alarms per home and per device model over a period, with the same rules as the operator API's
// report (incidents/report.ts): maintenance incidents (hub_offline) are no alarms and are left out, the rate
// is false alarms over alarm incidents, rounded to 0.001. Unlike that report, a home is shown by its masked
// address (never a name), a period has an end, and a street-limited account counts only its streets' homes.
import type { Kysely } from "kysely";
import { maskAddress } from "../../households/mask.js";
import { scopedIncidents, type ReportDb, type ReportScope } from "./scope.js";

export interface RateCounts {
  incidents: number;
  falseAlarms: number;
  rate: number;
  /** False alarms by the reason given. */
  reasons: Record<string, number>;
}

export interface HomeRow extends RateCounts {
  hub: string;
  /** The household's address masked (road and building), or the hub id when the hub has no household. */
  home: string;
}

export interface ModelRow extends RateCounts {
  /** null: the incident's device had no model in the care plan. */
  model: string | null;
}

const MAINTENANCE = "hub_offline";

interface Counted {
  reason: string | null;
  n: number | string | bigint;
}

/** Folds rows of (group, reason, count) into one RateCounts per group. */
function fold<K>(rows: Array<Counted & { key: K }>): Map<K, RateCounts> {
  const by = new Map<K, RateCounts>();
  for (const r of rows) {
    let e = by.get(r.key);
    if (!e) by.set(r.key, (e = { incidents: 0, falseAlarms: 0, rate: 0, reasons: {} }));
    const n = Number(r.n);
    e.incidents += n;
    if (r.reason !== null) {
      e.falseAlarms += n;
      e.reasons[r.reason] = (e.reasons[r.reason] ?? 0) + n;
    }
  }
  for (const e of by.values()) e.rate = e.incidents ? Math.round((e.falseAlarms / e.incidents) * 1000) / 1000 : 0;
  return by;
}

/** Most false alarms first, then the highest rate, then the most incidents. */
const byFalseAlarms = (a: RateCounts, b: RateCounts) => b.falseAlarms - a.falseAlarms || b.rate - a.rate || b.incidents - a.incidents;

export async function falseAlarmsPerHome(db: Kysely<ReportDb>, s: ReportScope): Promise<HomeRow[]> {
  const rows = await scopedIncidents(db, s)
    .where("i.type", "<>", MAINTENANCE)
    .select(["i.hub", "h.address", "i.false_alarm_reason as reason", (eb) => eb.fn.countAll<number>().as("n")])
    .groupBy(["i.hub", "h.address", "i.false_alarm_reason"])
    .execute();
  const addresses = new Map(rows.map((r) => [r.hub, r.address]));
  const counts = fold(rows.map((r) => ({ key: r.hub, reason: r.reason, n: r.n })));
  const out = [...counts].map(([hub, c]): HomeRow => {
    const address = addresses.get(hub);
    return { hub, home: address ? maskAddress(address) : hub, ...c };
  });
  return out.sort((a, b) => byFalseAlarms(a, b) || (a.hub < b.hub ? -1 : a.hub > b.hub ? 1 : 0));
}

export async function falseAlarmsPerModel(db: Kysely<ReportDb>, s: ReportScope): Promise<ModelRow[]> {
  const rows = await scopedIncidents(db, s)
    .where("i.type", "<>", MAINTENANCE)
    .select(["i.device_model as model", "i.false_alarm_reason as reason", (eb) => eb.fn.countAll<number>().as("n")])
    .groupBy(["i.device_model", "i.false_alarm_reason"])
    .execute();
  const counts = fold(rows.map((r) => ({ key: r.model, reason: r.reason, n: r.n })));
  const out = [...counts].map(([model, c]): ModelRow => ({ model, ...c }));
  // A model first, "not recorded" after the named ones at equal counts.
  return out.sort((a, b) => byFalseAlarms(a, b) || (a.model ?? "\uffff").localeCompare(b.model ?? "\uffff"));
}
