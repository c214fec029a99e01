// The board's facts for every enrolled hub in four queries, whatever the number of homes: the hubs with
// their households, the latest event of each relevant type per device (one grouped read on the events'
// (kind, received_at) index; it also tells which hubs test their second path at all), the battery level of
// the devices whose battery is low now, and the latest text and latest successful path test per hub (read
// on the partial index of rows that came by SMS). Nothing here
// leaves the relay unmasked: the address is masked by the caller, the elder's name is never read.
import { sql, type Kysely } from "kysely";
import { CHUNK } from "../../households/ledger-commissioning.js";
import { householdDb } from "../../households/tables.js";
import type { LoopDb } from "../../store/closed-loop-schema.js";
import { cameBy, SECOND_PATH_TEST } from "../../store/store.js";
import type { HubFacts } from "./problems.js";

/** The device events that say what holds now (raise / clear pairs, and the verified valve close). */
const DEVICE_TYPES = ["offline", "online", "battery_low", "battery_ok", "fault", "fault_cleared", "valve_closed"];
/** Hub audits that change a valve's latch or take a device away. */
const AUDIT_TYPES = ["valve_reopen", "valve_opened_on_site", "device_retired"];

export interface HubHome {
  facts: HubFacts;
  lastSeenAt: number | null;
  /** null: a hub without a household (shown only to callers not limited to streets). */
  home: { address: string; street: string; community: string } | null;
}

const num = (v: unknown): number => Number(v);

export async function loadBoardFacts(db0: Kysely<LoopDb>): Promise<HubHome[]> {
  const db = householdDb(db0);
  // Only enrolled hubs: a pending one is being installed, a revoked one serves nobody.
  const hubs = await db
    .selectFrom("hubs as b")
    .leftJoin("households as h", "h.hub", "b.id")
    .select(["b.id", "b.online", "b.offline_since", "b.last_seen_at", "h.address", "h.street", "h.community"])
    .where("b.status", "=", "active")
    .execute();

  const latest = await db
    .selectFrom("events")
    .select(["hub", "device", "kind", "type"])
    .select((eb) => eb.fn.max("received_at").as("at"))
    .where((eb) =>
      eb.or([
        eb.and([eb("kind", "=", "device"), eb("type", "in", [...DEVICE_TYPES, SECOND_PATH_TEST])]),
        eb.and([eb("kind", "in", ["alarm", "alarm_cleared"]), eb("type", "=", "valve_fault")]),
        eb.and([eb("kind", "=", "audit"), eb("type", "in", AUDIT_TYPES)]),
      ]),
    )
    .groupBy(["hub", "device", "kind", "type"])
    .execute();

  const facts = new Map<string, HubFacts>();
  for (const h of hubs)
    facts.set(h.id, {
      hub: h.id,
      online: num(h.online) === 1,
      offlineSince: h.offline_since === null ? null : num(h.offline_since),
      deviceEvents: new Map(),
      valveFaults: new Map(),
      openedOnSite: new Map(),
      reopenedAt: null,
      retiredAt: new Map(),
      batteryLevels: new Map(),
      lastSeenAt: h.last_seen_at === null ? null : num(h.last_seen_at),
    });

  const lowBattery: Array<{ hub: string; device: string; at: number }> = [];
  for (const r of latest) {
    const f = facts.get(r.hub);
    if (!f) continue;
    const at = num(r.at);
    const device = r.device;
    if (r.kind === "audit" && r.type === "valve_reopen") f.reopenedAt = Math.max(f.reopenedAt ?? -Infinity, at);
    // By either path: a test whose text never arrived still comes over MQTT later (the hub tests, and this one failed).
    if (r.kind === "device" && r.type === SECOND_PATH_TEST) {
      f.secondPathTest ??= { lastOkAt: null, ever: true };
      continue;
    }
    if (device === null) continue;
    if (r.kind === "device") {
      const times = f.deviceEvents.get(device) ?? new Map<string, number>();
      f.deviceEvents.set(device, times);
      times.set(r.type, at);
    } else if (r.kind === "audit") {
      if (r.type === "valve_opened_on_site") f.openedOnSite.set(device, at);
      else if (r.type === "device_retired") f.retiredAt.set(device, at);
    } else {
      const v = f.valveFaults.get(device) ?? {};
      f.valveFaults.set(device, r.kind === "alarm" ? { ...v, raised: at } : { ...v, cleared: at });
    }
  }
  for (const f of facts.values())
    for (const [device, times] of f.deviceEvents) {
      const low = times.get("battery_low");
      if (low !== undefined && low > (times.get("battery_ok") ?? -Infinity)) lowBattery.push({ hub: f.hub, device, at: low });
    }
  await loadBatteryLevels(db0, lowBattery, facts);
  await loadSecondPath(db0, facts);

  return hubs.map((h) => ({
    facts: facts.get(h.id) as HubFacts,
    lastSeenAt: h.last_seen_at === null ? null : num(h.last_seen_at),
    home: h.address !== null && h.street !== null && h.community !== null ? { address: h.address, street: h.street, community: h.community } : null,
  }));
}

/** Per hub: its latest text, its latest path test that came by SMS, and whether it ever sent a path test. */
async function loadSecondPath(db: Kysely<LoopDb>, facts: Map<string, HubFacts>): Promise<void> {
  const bySms = await db
    .selectFrom("events")
    .select("hub")
    .select((eb) => eb.fn.max("received_at").as("at"))
    .select(sql<number | string | null>`max(case when kind = 'device' and type = ${SECOND_PATH_TEST} then received_at end)`.as("tested"))
    .where(cameBy("sms"))
    .groupBy("hub")
    .execute();
  for (const r of bySms) {
    const f = facts.get(r.hub);
    if (!f) continue;
    f.smsLastAt = num(r.at);
    if (r.tested !== null) f.secondPathTest = { lastOkAt: num(r.tested), ever: true };
  }
}

/** The `data.battery` (%) of each device's latest battery_low event, read by its receipt time. */
async function loadBatteryLevels(db: Kysely<LoopDb>, low: Array<{ hub: string; device: string; at: number }>, facts: Map<string, HubFacts>): Promise<void> {
  const wanted = new Set(low.map((l) => `${l.hub}\n${l.device}\n${l.at}`));
  const times = [...new Set(low.map((l) => l.at))];
  for (let i = 0; i < times.length; i += CHUNK) {
    const rows = await db
      .selectFrom("events")
      .select(["hub", "device", "received_at", "payload"])
      .where("kind", "=", "device")
      .where("type", "=", "battery_low")
      .where("received_at", "in", times.slice(i, i + CHUNK))
      .execute();
    for (const r of rows) {
      if (r.device === null || !wanted.has(`${r.hub}\n${r.device}\n${num(r.received_at)}`)) continue;
      const level = batteryOf(r.payload);
      if (level !== undefined) facts.get(r.hub)?.batteryLevels.set(r.device, level);
    }
  }
}

function batteryOf(payload: string): number | undefined {
  try {
    const b = (JSON.parse(payload) as { data?: { battery?: unknown } }).data?.battery;
    return typeof b === "number" && Number.isFinite(b) && b >= 0 && b <= 100 ? Math.round(b) : undefined;
  } catch {
    return undefined;
  }
}
