// The district ledger (台账): every household served, by street and community, with its risk level, the kit
// planned against what commissioning found installed, device health now, incidents in the period and the
// upkeep due. The queries gather the facts per household (loadLedgerFacts); ledgerRow turns one household's
// facts into its row without touching the store. Personal data: the elder's name leaves here masked (张**)
// and no address beyond street and community; the audit row is the caller's (route or CLI).
import type { Kysely } from "kysely";
import type { LoopDb } from "../store/closed-loop-schema.js";
import { CHUNK, latestCommissioning, planKind, type Commissioning } from "./ledger-commissioning.js";
import { maskName } from "./mask.js";
import { DEVICE_KINDS, type DeviceKind, type PlanItem, type RiskLevel } from "./schema.js";
import { householdDb } from "./tables.js";
import { upkeepItems, type UpkeepConfig, type UpkeepItem } from "./upkeep.js";

export interface LedgerQuery {
  street?: string;
  /** Only these streets (a street-limited token's scope); absent: every street. */
  streets?: readonly string[];
  community?: string;
  /** Incidents opened at or after `from` and before `to` (ms). */
  from: number;
  to: number;
}

export interface KitCount {
  planned: number;
  installed: number;
}

/** Per device: its latest device event of each type (received at the relay). */
export type DeviceEventTimes = Map<string, Map<string, number>>;

export interface TestArrival {
  device: string | null;
  kind: DeviceKind | null;
  at: number;
}

/** Everything one household's ledger row and upkeep are computed from. */
export interface HouseholdFacts {
  id: string;
  hub: string;
  elderName: string;
  street: string;
  community: string;
  level: RiskLevel | null;
  planStatus: "proposed" | "approved" | null;
  planItems: PlanItem[];
  assessedAt: number | null;
  commissioning: Commissioning | null;
  /** null: the hub has not enrolled (no row in hubs). */
  hubOnline: boolean | null;
  deviceEvents: DeviceEventTimes;
  tests: TestArrival[];
  /** Incidents opened in the period, by type. */
  incidents: Record<string, number>;
}

export interface LedgerRow {
  street: string;
  community: string;
  householdId: string;
  /** Masked: the first character and `**` (张**). */
  elder: string;
  hub: string;
  level: RiskLevel | null;
  planStatus: "proposed" | "approved" | null;
  planApproved: boolean;
  kit: Record<DeviceKind, KitCount>;
  commissionedAt: number | null;
  hubOnline: boolean | null;
  devicesOffline: string[];
  batteryLow: string[];
  faults: string[];
  incidents: Record<string, number>;
  incidentsTotal: number;
  /** The latest self-test arriving per kind (smoke detectors, one-key buttons), null when none has. */
  lastSelfTest: { smoke_detector: number | null; sos_button: number | null };
  upkeep: UpkeepItem[];
  upkeepDue: number;
  upkeepOverdue: number;
  /** The earliest due date among items not yet due (or the earliest of all when every one is). */
  nextDueAt: number | null;
}


/**
 * Whether the device is in that state now: its latest event raising it is later than its latest event
 * clearing it. Ordered by the relay's receipt, so a hub's wrong clock cannot reorder them.
 */
function raised(times: Map<string, number>, on: string, off: string): boolean {
  const a = times.get(on);
  return a !== undefined && a > (times.get(off) ?? -Infinity);
}

export function deviceHealth(events: DeviceEventTimes): { offline: string[]; batteryLow: string[]; faults: string[] } {
  const offline: string[] = [];
  const batteryLow: string[] = [];
  const faults: string[] = [];
  for (const [device, times] of [...events].sort(([a], [b]) => a.localeCompare(b))) {
    if (raised(times, "offline", "online")) offline.push(device);
    if (raised(times, "battery_low", "battery_ok")) batteryLow.push(device);
    if (raised(times, "fault", "fault_cleared")) faults.push(device);
  }
  return { offline, batteryLow, faults };
}

/** One household's ledger row at `now` (pure). */
export function ledgerRow(f: HouseholdFacts, upkeep: Pick<UpkeepConfig, "selfTestDays" | "reassessDays" | "graceDays" | "batteryDays">, now: number): LedgerRow {
  const kit = Object.fromEntries(DEVICE_KINDS.map((k) => [k, { planned: 0, installed: 0 }])) as Record<DeviceKind, KitCount>;
  for (const i of f.planItems) if (i.retiredAt === undefined) kit[i.kind].planned += i.count;
  for (const d of f.commissioning?.installed ?? []) kit[d.kind].installed++;
  const health = deviceHealth(f.deviceEvents);
  const items = upkeepItems(upkeepFacts(f), upkeep, now);
  const lastOf = (kind: DeviceKind) => f.tests.filter((t) => t.kind === kind).reduce<number | null>((m, t) => (m === null || t.at > m ? t.at : m), null);
  const pending = items.filter((i) => i.status === "ok");
  return {
    street: f.street,
    community: f.community,
    householdId: f.id,
    elder: maskName(f.elderName),
    hub: f.hub,
    level: f.level,
    planStatus: f.planStatus,
    planApproved: f.planStatus === "approved",
    kit,
    commissionedAt: f.commissioning?.finishedAt ?? null,
    hubOnline: f.hubOnline,
    devicesOffline: health.offline,
    batteryLow: health.batteryLow,
    faults: health.faults,
    incidents: f.incidents,
    incidentsTotal: Object.values(f.incidents).reduce((a, b) => a + b, 0),
    lastSelfTest: { smoke_detector: lastOf("smoke_detector"), sos_button: lastOf("sos_button") },
    upkeep: items,
    upkeepDue: items.filter((i) => i.status === "due").length,
    upkeepOverdue: items.filter((i) => i.status === "overdue").length,
    nextDueAt: (pending.length ? pending : items)[0]?.dueAt ?? null,
  };
}

/** The facts upkeep needs, out of a household's ledger facts. */
export function upkeepFacts(f: HouseholdFacts) {
  const lastTests = new Map<string, number>();
  for (const t of f.tests) if (t.device !== null && t.at > (lastTests.get(t.device) ?? -Infinity)) lastTests.set(t.device, t.at);
  return {
    planApproved: f.planStatus === "approved",
    commissionedAt: f.commissioning?.finishedAt ?? null,
    installed: f.commissioning?.installed ?? [],
    lastTests,
    assessedAt: f.assessedAt,
  };
}

/** The alarm types a test of each self-tested kind arrives as. */
const TEST_ALARM_KIND: Record<string, DeviceKind> = { smoke: "smoke_detector", sos: "sos_button" };

/**
 * The facts for every household matching the filters, in ledger order (street, community, id). `period`
 * absent: no incidents are counted (the upkeep sweep needs none).
 */
export async function loadLedgerFacts(db0: Kysely<LoopDb>, q: { street?: string; streets?: readonly string[]; community?: string; period?: { from: number; to: number } }): Promise<HouseholdFacts[]> {
  const db = householdDb(db0);
  let query = db.selectFrom("households as h").leftJoin("household_plans as p", "p.household_id", "h.id").select(["h.id", "h.hub", "h.elder_name", "h.street", "h.community", "p.level", "p.status", "p.items"]);
  if (q.street !== undefined) query = query.where("h.street", "=", q.street);
  const streets = q.streets;
  if (streets !== undefined) query = query.where((eb) => (streets.length ? eb("h.street", "in", streets) : eb.lit(false)));
  if (q.community !== undefined) query = query.where("h.community", "=", q.community);
  const homes = await query.orderBy("h.street").orderBy("h.community").orderBy("h.id").execute();
  const hubs = homes.map((h) => h.hub);
  const ids = homes.map((h) => h.id);

  const assessed = new Map<string, number>();
  const online = new Map<string, boolean>();
  const devices = new Map<string, DeviceEventTimes>();
  const tests = new Map<string, TestArrival[]>();
  const incidents = new Map<string, Record<string, number>>();
  const commissioning = await latestCommissioning(db0, hubs);

  for (let i = 0; i < ids.length; i += CHUNK) {
    const rows = await db.selectFrom("household_assessments").select(["household_id"]).select((eb) => eb.fn.max("at").as("at")).where("household_id", "in", ids.slice(i, i + CHUNK)).groupBy("household_id").execute();
    for (const r of rows) assessed.set(r.household_id, Number(r.at));
  }
  for (let i = 0; i < hubs.length; i += CHUNK) {
    const chunk = hubs.slice(i, i + CHUNK);
    for (const r of await db.selectFrom("hubs").select(["id", "online"]).where("id", "in", chunk).execute()) online.set(r.id, Number(r.online) === 1);

    // The latest device event of each type per device: enough to tell what holds now.
    const dev = await db
      .selectFrom("events")
      .select(["hub", "device", "type"])
      .select((eb) => eb.fn.max("received_at").as("at"))
      .where("kind", "=", "device")
      .where("hub", "in", chunk)
      .where("device", "is not", null)
      .groupBy(["hub", "device", "type"])
      .execute();
    for (const r of dev) {
      const perHub = devices.get(r.hub) ?? new Map<string, Map<string, number>>();
      devices.set(r.hub, perHub);
      const times = perHub.get(r.device as string) ?? new Map<string, number>();
      perHub.set(r.device as string, times);
      times.set(r.type, Number(r.at));
    }

    // Self-tests arriving: a test alarm (`test: true`, never an incident) or the hub's self_test audit event.
    // The payload filter only narrows the scan; the envelope is parsed to be sure.
    const t = await db
      .selectFrom("events")
      .select(["hub", "device", "kind", "type", "payload", "received_at"])
      .where("hub", "in", chunk)
      .where((eb) => eb.or([eb.and([eb("kind", "=", "alarm"), eb("payload", "like", '%"test"%')]), eb.and([eb("kind", "=", "audit"), eb("type", "=", "self_test")])]))
      .execute();
    for (const r of t) {
      if (r.kind === "alarm" && !isTest(r.payload)) continue;
      const installed = commissioning.get(r.hub)?.installed.find((d) => d.id === r.device)?.kind;
      const kind = installed ?? TEST_ALARM_KIND[r.type] ?? (r.kind === "audit" ? dataKind(r.payload) : undefined) ?? null;
      const list = tests.get(r.hub) ?? [];
      tests.set(r.hub, list);
      list.push({ device: r.device, kind, at: Number(r.received_at) });
    }

    if (q.period) {
      const inc = await db
        .selectFrom("incidents")
        .select(["hub", "type"])
        .select((eb) => eb.fn.countAll().as("n"))
        .where("hub", "in", chunk)
        .where("opened_at", ">=", q.period.from)
        .where("opened_at", "<", q.period.to)
        .groupBy(["hub", "type"])
        .execute();
      for (const r of inc) {
        const m = incidents.get(r.hub) ?? {};
        incidents.set(r.hub, m);
        m[r.type] = Number(r.n);
      }
    }
  }

  return homes.map((h) => ({
    id: h.id,
    hub: h.hub,
    elderName: h.elder_name,
    street: h.street,
    community: h.community,
    level: (h.level as RiskLevel | null) ?? null,
    planStatus: h.status ?? null,
    planItems: h.items ? (JSON.parse(h.items) as PlanItem[]) : [],
    assessedAt: assessed.get(h.id) ?? null,
    commissioning: commissioning.get(h.hub) ?? null,
    hubOnline: online.has(h.hub) ? (online.get(h.hub) as boolean) : null,
    deviceEvents: devices.get(h.hub) ?? new Map(),
    tests: tests.get(h.hub) ?? [],
    incidents: incidents.get(h.hub) ?? {},
  }));
}

function isTest(payload: string): boolean {
  try {
    return (JSON.parse(payload) as { test?: unknown }).test === true;
  } catch {
    return false;
  }
}

/** A self_test audit event without a known device may say which kind it tested (`data.kind`). */
function dataKind(payload: string): DeviceKind | undefined {
  try {
    return planKind((JSON.parse(payload) as { data?: { kind?: unknown } }).data?.kind);
  } catch {
    return undefined;
  }
}

/** The ledger: one row per household matching the filters, at `now`. */
export async function ledgerRows(db: Kysely<LoopDb>, q: LedgerQuery, upkeep: UpkeepConfig, now: number): Promise<LedgerRow[]> {
  const facts = await loadLedgerFacts(db, { street: q.street, streets: q.streets, community: q.community, period: { from: q.from, to: q.to } });
  return facts.map((f) => ledgerRow(f, upkeep, now));
}
