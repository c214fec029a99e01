// The upkeep an approved plan implies, as due dates: a monthly self-test per installed smoke detector and
// one-key button, battery replacement per battery-powered device, and a yearly re-assessment of the elder.
// Pure: the facts (what is installed, when each device was last tested, when the elder was last assessed) go
// in, the items with their due dates and status at `now` come out. The ledger shows them; the upkeep sweep
// (upkeep-sweep.ts) stores them and raises an operator alert for each one that goes overdue.
import { z } from "zod";
import type { DeviceKind } from "./schema.js";

export const DAY_MS = 86_400_000;

export const UPKEEP_WHATS = ["self_test", "battery", "reassessment"] as const;
export type UpkeepWhat = (typeof UPKEEP_WHATS)[number];
export type UpkeepStatus = "ok" | "due" | "overdue";

/** Devices the district plan asks to be tested every month (the resident presses the test button). */
export const SELF_TESTED: readonly DeviceKind[] = ["smoke_detector", "sos_button"];

/**
 * Assumed battery lifetimes in days (docs/households.md, "Upkeep"); null: mains-powered, nothing to replace.
 * Smoke detectors: a replaceable 9 V / AA battery, yearly (a district fitting sealed 10-year models sets 3650).
 * One-key buttons: a CR2032 coin cell, about two years at a few presses a month. CO detectors: yearly.
 */
export const BATTERY_DAYS_DEFAULT: Record<DeviceKind, number | null> = {
  smoke_detector: 365,
  gas_detector: null,
  gas_valve: null,
  co_detector: 365,
  sos_button: 730,
  camera: null,
  fall_radar: null,
  vital_radar: null,
};

const days = (max: number) => z.number().int().min(1).max(max);
const batteryDays = z.number().int().min(30).max(3650).nullable();

export const upkeepConfigSchema = z
  .object({
    enabled: z.boolean().default(true).describe("run the upkeep sweep (due dates, overdue alerts); the ledger shows due dates either way"),
    selfTestDays: days(366).default(30).describe("a smoke detector or one-key button is due for its self-test this many days after its last test (or commissioning)"),
    reassessDays: days(3660).default(365).describe("the elder is due for a new risk assessment this many days after the latest one"),
    graceDays: z.number().int().min(0).max(90).default(7).describe("days after the due date before an item is overdue and raises an operator alert"),
    batteryDays: z
      .object(Object.fromEntries(Object.entries(BATTERY_DAYS_DEFAULT).map(([k, v]) => [k, batteryDays.default(v)])) as Record<DeviceKind, z.ZodDefault<typeof batteryDays>>)
      .strict()
      .prefault({})
      .describe("battery lifetime per device kind, from commissioning, in days; null for mains-powered devices (assumed values: docs/households.md)"),
    everyS: z.number().int().min(60).max(86_400).default(3600).describe("from the end of one upkeep sweep to the next, across all instances"),
    leaseS: z.number().int().min(30).max(86_400).default(300).describe("how long a sweep's claim lasts; after that another instance may take it over"),
  })
  .strict();
export type UpkeepConfig = z.infer<typeof upkeepConfigSchema>;

export function defaultUpkeepConfig(): UpkeepConfig {
  return upkeepConfigSchema.parse({});
}

/** A device the latest commissioning report says passed: its hub-side id and its kind in plan terms. */
export interface InstalledDevice {
  id: string;
  kind: DeviceKind;
}

/** What upkeep is computed from, per household. */
export interface UpkeepFacts {
  planApproved: boolean;
  /** When the latest commissioned report finished; null: not commissioned yet. */
  commissionedAt: number | null;
  installed: InstalledDevice[];
  /** The latest test arriving per device id (received at the relay). */
  lastTests: ReadonlyMap<string, number>;
  /** When the latest assessment was recorded; null: none. */
  assessedAt: number | null;
}

export interface UpkeepItem {
  /** Unique within the household: `self_test:<device>`, `battery:<device>`, `reassessment`. */
  key: string;
  what: UpkeepWhat;
  device: string | null;
  kind: DeviceKind | null;
  /** What the due date counts from (the last test, commissioning, the assessment). */
  since: number;
  dueAt: number;
  overdueAt: number;
  status: UpkeepStatus;
}

export function statusAt(dueAt: number, overdueAt: number, now: number): UpkeepStatus {
  return now >= overdueAt ? "overdue" : now >= dueAt ? "due" : "ok";
}

/**
 * The household's upkeep at `now`. Nothing before the plan is approved (the kit is not settled); device items
 * only for what commissioning found installed (nothing to test before it is there).
 */
export function upkeepItems(f: UpkeepFacts, c: Pick<UpkeepConfig, "selfTestDays" | "reassessDays" | "graceDays" | "batteryDays">, now: number): UpkeepItem[] {
  if (!f.planApproved) return [];
  const out: UpkeepItem[] = [];
  const grace = c.graceDays * DAY_MS;
  const item = (key: string, what: UpkeepWhat, d: InstalledDevice | null, since: number, periodDays: number) => {
    const dueAt = since + periodDays * DAY_MS;
    out.push({ key, what, device: d?.id ?? null, kind: d?.kind ?? null, since, dueAt, overdueAt: dueAt + grace, status: statusAt(dueAt, dueAt + grace, now) });
  };
  if (f.commissionedAt !== null) {
    for (const d of f.installed) {
      if (SELF_TESTED.includes(d.kind)) {
        // A test before commissioning (the installer's own) does not move the first due date back.
        const last = Math.max(f.commissionedAt, f.lastTests.get(d.id) ?? 0);
        item(`self_test:${d.id}`, "self_test", d, last, c.selfTestDays);
      }
      const life = c.batteryDays[d.kind];
      // Replacing a battery is recorded by commissioning the home again: a new report resets the date.
      if (life !== null && life !== undefined) item(`battery:${d.id}`, "battery", d, f.commissionedAt, life);
    }
  }
  if (f.assessedAt !== null) item("reassessment", "reassessment", null, f.assessedAt, c.reassessDays);
  return out.sort((a, b) => a.dueAt - b.dueAt || a.key.localeCompare(b.key));
}

/** One line for an operator: what is due, for which device, since when (no personal data). */
export function describeUpkeep(i: UpkeepItem): string {
  const day = new Date(i.dueAt).toISOString().slice(0, 10);
  if (i.what === "reassessment") return `yearly re-assessment due ${day}`;
  if (i.what === "self_test") return `monthly self-test of ${i.kind} ${i.device} due ${day}`;
  return `battery replacement of ${i.kind} ${i.device} due ${day}`;
}
