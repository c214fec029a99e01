// What commissioning found installed, read from the `commissioning_reports` table (written by the relay when a
// hub's commissioning report arrives; that module owns the table and its migration). Only the few columns the
// ledger and upkeep need are typed here: the latest report with state `commissioned` per hub, its finish time,
// and its devices that passed.
import type { Kysely } from "kysely";
import type { LoopDb } from "../store/closed-loop-schema.js";
import { DEVICE_KINDS, type DeviceKind } from "./schema.js";
import type { InstalledDevice } from "./upkeep.js";

export interface CommissioningReportsRow {
  id: string;
  event_id: string;
  hub: string;
  household_id: string | null;
  state: string;
  finished_at: number;
  received_at: number;
  /** JSON: `{ devices: [{ id, kind, result: passed|failed|missing|waived, ... }], ... }`. */
  report: string;
}
interface CommissioningDb {
  commissioning_reports: CommissioningReportsRow;
}

export interface Commissioning {
  finishedAt: number;
  installed: InstalledDevice[];
}

/**
 * The hub's device roles as the plan's kinds. The hub names some devices by what they do (`valve`,
 * `fall_detector`, `breathing_monitor`); the plan by what is bought. Roles with no plan kind (a siren, a
 * presence sensor) are not counted as kit.
 */
const KIND_ALIASES: Record<string, DeviceKind> = {
  smoke: "smoke_detector",
  gas: "gas_detector",
  co: "co_detector",
  valve: "gas_valve",
  sos: "sos_button",
  fall_detector: "fall_radar",
  breathing_monitor: "vital_radar",
};

export function planKind(kind: unknown): DeviceKind | undefined {
  if (typeof kind !== "string") return undefined;
  if ((DEVICE_KINDS as readonly string[]).includes(kind)) return kind as DeviceKind;
  return KIND_ALIASES[kind];
}

/** The devices a report says passed, in plan kinds; a report that is not the expected JSON yields none. */
export function passedDevices(report: string): InstalledDevice[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(report);
  } catch {
    return [];
  }
  const devices = (parsed as { devices?: unknown })?.devices;
  if (!Array.isArray(devices)) return [];
  const out: InstalledDevice[] = [];
  for (const d of devices as Array<{ id?: unknown; kind?: unknown; result?: unknown }>) {
    const kind = planKind(d?.kind);
    if (d?.result === "passed" && typeof d.id === "string" && kind) out.push({ id: d.id, kind });
  }
  return out;
}

/** The latest commissioned report per hub (by finish time), for the hubs given. */
export async function latestCommissioning(db0: Kysely<LoopDb>, hubs: readonly string[]): Promise<Map<string, Commissioning>> {
  const db = db0 as unknown as Kysely<CommissioningDb>;
  const out = new Map<string, Commissioning & { receivedAt: number }>();
  for (let i = 0; i < hubs.length; i += CHUNK) {
    const rows = await db
      .selectFrom("commissioning_reports")
      .select(["hub", "finished_at", "received_at", "report"])
      .where("state", "=", "commissioned")
      .where("hub", "in", hubs.slice(i, i + CHUNK))
      .execute();
    for (const r of rows) {
      const finishedAt = Number(r.finished_at);
      const receivedAt = Number(r.received_at);
      const have = out.get(r.hub);
      if (have && (have.finishedAt > finishedAt || (have.finishedAt === finishedAt && have.receivedAt >= receivedAt))) continue;
      out.set(r.hub, { finishedAt, receivedAt, installed: passedDevices(r.report) });
    }
  }
  return new Map([...out].map(([hub, c]) => [hub, { finishedAt: c.finishedAt, installed: c.installed }]));
}

/** Hubs per `IN (…)` list: well under either database's bound-parameter limit. */
export const CHUNK = 500;
