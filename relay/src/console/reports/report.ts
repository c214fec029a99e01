// The console's reports page in one answer: the period, whose homes it counts, false alarms per home and per
// device model, and incident counts with time to confirmation per type.
import type { Kysely } from "kysely";
import { z } from "zod";
import type { LoopDb } from "../../store/closed-loop-schema.js";
import { incidentsPerType } from "./by-type.js";
import { falseAlarmsPerHome, falseAlarmsPerModel } from "./false-alarms.js";
import type { ReportDb, ReportScope } from "./scope.js";

export const DAY_MS = 86_400_000;
/** Without a `since`: the 30 days before `until`. */
export const DEFAULT_DAYS = 30;

const ms = z.number().int().describe("ms since epoch");
const count = z.number().int().min(0);
const rates = {
  incidents: count.describe("alarm incidents opened in the period (hub_offline excluded)"),
  falseAlarms: count,
  rate: z.number().describe("falseAlarms / incidents, rounded to 0.001"),
  reasons: z.record(z.string(), count).describe("false alarms by reason"),
};

export const reportQuery = z
  .object({
    since: z.coerce.number().int().min(0).optional().describe("period start, ms, inclusive (default: 30 days before until)"),
    until: z.coerce.number().int().min(1).optional().describe("period end, ms, exclusive (default: now)"),
  })
  .strict();

export const reportSchema = z.object({
  since: ms,
  until: ms,
  streets: z.array(z.string()).nullable().describe("the streets counted for a street-limited account; null: every home"),
  falseAlarms: z.object({
    perHome: z.array(z.object({ hub: z.string(), home: z.string().describe("masked address, or the hub id without a household"), ...rates })),
    perDeviceModel: z.array(z.object({ model: z.string().nullable().describe("null: no model recorded"), ...rates })),
  }),
  byType: z.array(
    z.object({
      type: z.string(),
      incidents: count,
      falseAlarms: count,
      confirmed: count.describe("incidents that reached confirmed (or responding: a dispatch confirms)"),
      medianMs: z.number().int().nullable().describe("median ms from receipt to confirmation"),
      p90Ms: z.number().int().nullable().describe("90th percentile of the same"),
    }),
  ),
});

export type Report = z.infer<typeof reportSchema>;

export async function buildReport(db0: Kysely<LoopDb>, s: ReportScope): Promise<Report> {
  const db = db0 as unknown as Kysely<ReportDb>;
  const [perHome, perDeviceModel, byType] = await Promise.all([falseAlarmsPerHome(db, s), falseAlarmsPerModel(db, s), incidentsPerType(db, s)]);
  return { since: s.since, until: s.until, streets: s.streets ? [...s.streets] : null, falseAlarms: { perHome, perDeviceModel }, byType };
}
