// The reports' aggregation (relay/src/console/reports/) against the relay's real schema on SQLite and
// PostgreSQL: the percentile rules on their own; then incidents and timelines written with known times, where
// the database's ranks must give exactly what the same rule gives over the whole list, for every list length
// from 1 to 25; and a relay's worth of incidents (12,000) answered with exact medians, 90th percentiles,
// counts and rates. The time the volume takes is reported, never asserted.
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { Kysely } from "kysely";
import { buildReport } from "../../relay/src/console/reports/report.js";
import { interpolate, percentile, rankIndices } from "../../relay/src/console/reports/percentile.js";
import { relayExtraMigrations } from "../../relay/src/store/relay-migrations.js";
import type { HouseholdsTable } from "../../relay/src/households/tables.js";
import { loopDb, type IncidentsTable, type IncidentTimelineTable, type LoopDb } from "../../relay/src/store/closed-loop-schema.js";
import { openStore, type Store } from "../../relay/src/store/store.js";
import { PG_URL, pgSkipReason, tempPgSchema } from "../support/pg.js";
import { seededRandom } from "../support/prng.js";

const S = 1000;
const T0 = Date.UTC(2026, 0, 5, 8, 0, 0);

test("percentiles: the median of an even count is the mean of the middle two; the 90th interpolates between ranks", () => {
  assert.equal(percentile([60, 180, 300, 600], 5), 240);
  assert.equal(percentile([600, 60, 300, 180], 9), 510);
  assert.equal(percentile([7], 5), 7);
  assert.equal(percentile([7], 9), 7);
  assert.equal(percentile([1, 2, 3], 5), 2);
  assert.equal(percentile([], 5), undefined);
  assert.deepEqual(rankIndices(4, 5), [1, 2]);
  assert.deepEqual(rankIndices(5, 5), [2, 2]);
  assert.deepEqual(rankIndices(4, 9), [2, 3]);
  assert.deepEqual(rankIndices(11, 9), [9, 9]);
  // Only the two ranks are read.
  const read: number[] = [];
  assert.equal(interpolate(10_000, 9, (k) => (read.push(k), (k + 1) * S)), 9_000_100);
  assert.deepEqual(read, [8999, 9000]);
  // The SQL's integer forms of the same ranks: floor/ceil of (n−1)/2 and of 9(n−1)/10.
  for (let n = 1; n <= 200; n++) {
    assert.deepEqual(rankIndices(n, 5), [Math.trunc((n - 1) / 2), Math.trunc(n / 2)], `median ranks for ${n}`);
    assert.deepEqual(rankIndices(n, 9), [Math.trunc((9 * (n - 1)) / 10), Math.trunc((9 * (n - 1) + 9) / 10)], `p90 ranks for ${n}`);
  }
});

type Db = Kysely<LoopDb & { households: HouseholdsTable }>;
type Cleanup = () => Promise<unknown>;

function cleanupsOf(t: TestContext): Cleanup[] {
  const list: Cleanup[] = [];
  t.after(async () => {
    for (const c of list.reverse()) await c().catch(() => undefined);
  });
  return list;
}

type Backend = { name: string; open: (cleanups: Cleanup[]) => Promise<Store> };
const BACKENDS: Backend[] = [
  {
    name: "SQLite",
    open: async (cleanups) => {
      const dir = await mkdtemp(path.join(os.tmpdir(), "anxin-reports-"));
      cleanups.push(() => rm(dir, { recursive: true, force: true }));
      return openStore({ kind: "sqlite", path: "relay.db" }, dir, { migrations: relayExtraMigrations });
    },
  },
  {
    name: "PostgreSQL",
    open: async (cleanups) => {
      const { url, schema } = tempPgSchema("anxin_reports_agg", (f) => cleanups.push(f));
      return openStore({ kind: "postgres", url, schema, poolSize: 4 }, "/nonexistent", { migrations: relayExtraMigrations });
    },
  },
];

/** The store as the report reads it (`loop`) and as this test writes it, households included (`db`). */
async function storeFor(b: Backend, t: TestContext): Promise<{ loop: Kysely<LoopDb>; db: Db } | undefined> {
  if (b.name === "PostgreSQL" && !PG_URL) {
    t.skip(pgSkipReason("the reports' aggregation on PostgreSQL"));
    return undefined;
  }
  const cleanups = cleanupsOf(t);
  const store = await b.open(cleanups);
  cleanups.push(() => store.close());
  const loop = loopDb(store.db);
  return { loop, db: loop as unknown as Db };
}

interface Spec {
  id: string;
  hub: string;
  type: string;
  openedAt: number;
  model?: string | null;
  falseAlarm?: string;
  /** When it was confirmed (or dispatched to: `responding`), if it was. */
  confirmedAt?: number;
  via?: "confirmed" | "responding";
}

function incidentRow(s: Spec): IncidentsTable {
  return {
    id: s.id, hub: s.hub, type: s.type, state: s.falseAlarm ? "false_alarm" : s.confirmedAt !== undefined ? (s.via ?? "confirmed") : "received",
    open_key: null, severity: "critical", event_id: null, source_ref: null, device: `${s.type}-1`, device_model: s.model ?? null,
    policy: "{}", policy_name: "test", policy_version: 1, plan: "{}", escalation: "stopped", escalation_pass: 0,
    acknowledged_at: null, acknowledged_by: null, false_alarm_reason: s.falseAlarm ?? null, follow_up_recorded: 0, alarms: 1,
    opened_at: s.openedAt, updated_at: s.openedAt, closed_at: null,
  };
}

/** The timeline a real incident has: received, confirming at the first call, then confirmation (and maybe a later false alarm). */
function timelineRows(s: Spec): IncidentTimelineTable[] {
  const row = (n: number, at: number, from: string | null, to: string, kind = "transition"): IncidentTimelineTable => ({
    id: `${s.id}-${n}`, incident_id: s.id, at, actor: "test", kind, from_state: from, to_state: to, cause: "test", detail: null,
  });
  const out = [row(0, s.openedAt, null, "received"), row(1, s.openedAt + 1, "received", "confirming")];
  if (s.confirmedAt !== undefined) {
    out.push(row(2, s.confirmedAt, "confirming", s.via ?? "confirmed"));
    // Not a change of state: must not count as a second confirmation.
    out.push(row(3, s.confirmedAt + 5 * S, s.via ?? "confirmed", s.via ?? "confirmed", "dispatch"));
    if (s.via === undefined) out.push(row(4, s.confirmedAt + 60 * S, "confirmed", "responding"));
  }
  if (s.falseAlarm) out.push(row(5, (s.confirmedAt ?? s.openedAt) + 90 * S, s.confirmedAt !== undefined ? "confirmed" : "confirming", "false_alarm"));
  return out;
}

async function write(db: Db, specs: Spec[]): Promise<void> {
  for (let i = 0; i < specs.length; i += 500) {
    const part = specs.slice(i, i + 500);
    await db.insertInto("incidents").values(part.map(incidentRow)).execute();
    await db.insertInto("incident_timeline").values(part.flatMap(timelineRows)).execute();
  }
}

async function homes(db: Db, list: Array<{ hub: string; address: string; street: string }>): Promise<void> {
  await db
    .insertInto("households")
    .values(list.map((h) => ({ id: `hh-${h.hub}`, hub: h.hub, elder_name: "Wang Lan", address: h.address, street: h.street, community: "C1", owner: null, created_at: T0, created_by: "test", updated_at: T0 })))
    .execute();
}

for (const b of BACKENDS) {
  test(`the database's ranks give the same median and 90th percentile as the whole list, for 1 to 25 incidents a type [${b.name}]`, async (t) => {
    const opened = await storeFor(b, t);
    if (!opened) return;
    const { loop, db } = opened;
    const rnd = seededRandom(42);
    const specs: Spec[] = [];
    const expected = new Map<string, number[]>();
    for (let n = 1; n <= 25; n++) {
      const type = `type_${String(n).padStart(2, "0")}`;
      const delays: number[] = [];
      for (let i = 0; i < n; i++) {
        const openedAt = T0 + specs.length * S;
        const delay = Math.floor(rnd() * 3600) * S + (i % 3) * 7; // ties and odd milliseconds included
        delays.push(delay);
        specs.push({ id: `${type}-${i}`, hub: "hub-x", type, openedAt, confirmedAt: openedAt + delay, ...(i % 4 === 3 ? { via: "responding" as const } : {}) });
      }
      // One never confirmed: counted, but no time.
      specs.push({ id: `${type}-open`, hub: "hub-x", type, openedAt: T0 + specs.length * S });
      expected.set(type, delays);
    }
    await write(db, specs);
    const report = await buildReport(loop, { since: T0, until: T0 + 86_400_000, streets: undefined });
    assert.equal(report.byType.length, 25);
    for (const row of report.byType) {
      const delays = expected.get(row.type) ?? [];
      assert.equal(row.incidents, delays.length + 1, row.type);
      assert.equal(row.confirmed, delays.length, row.type);
      assert.equal(row.medianMs, percentile(delays, 5), `median of ${row.type}`);
      assert.equal(row.p90Ms, percentile(delays, 9), `p90 of ${row.type}`);
    }
  });

  test(`12,000 incidents: exact counts, medians and 90th percentiles, rates per home and model, streets [${b.name}]`, async (t) => {
    const opened = await storeFor(b, t);
    if (!opened) return;
    const { loop, db } = opened;
    await homes(db, [
      { hub: "hub-a", address: "幸福路12弄3号401室", street: "Street A" },
      { hub: "hub-b", address: "长寿路88号5号楼202室", street: "Street B" },
    ]);
    const specs: Spec[] = [];
    // 10,000 falls, confirmed after 1 s, 2 s, … 10,000 s; alternately at two homes.
    for (let i = 0; i < 10_000; i++) {
      const openedAt = T0 + i * S;
      specs.push({ id: `fall-${String(i).padStart(5, "0")}`, hub: i % 2 ? "hub-b" : "hub-a", type: "fall", model: "R60A", openedAt, confirmedAt: openedAt + (i + 1) * S });
    }
    // 2,000 smoke alarms at a third hub (no household), every other one false; the false ones never confirmed.
    for (let i = 0; i < 2000; i++) {
      const openedAt = T0 + i * S;
      const fa = i % 2 === 0;
      specs.push({ id: `smoke-${String(i).padStart(5, "0")}`, hub: "hub-c", type: "smoke", model: i < 1000 ? "JTY-GD-G3" : null, openedAt, ...(fa ? { falseAlarm: i % 4 === 0 ? "cooking_smoke" : "device_test" } : { confirmedAt: openedAt + 30 * S }) });
    }
    // Maintenance: counted per type, never in the false-alarm rates.
    specs.push({ id: "offline-1", hub: "hub-a", type: "hub_offline", openedAt: T0 });
    // Outside the period on either side.
    specs.push({ id: "before", hub: "hub-a", type: "fall", openedAt: T0 - 1, confirmedAt: T0 + 1 });
    specs.push({ id: "after", hub: "hub-a", type: "fall", openedAt: T0 + 30 * 86_400_000, confirmedAt: T0 + 30 * 86_400_000 + S });
    await write(db, specs);

    const period = { since: T0, until: T0 + 30 * 86_400_000 };
    const started = process.hrtime.bigint();
    const report = await buildReport(loop, { ...period, streets: undefined });
    t.diagnostic(`${b.name}: report over ${specs.length} incidents in ${Number(process.hrtime.bigint() - started) / 1e6} ms`);

    assert.deepEqual(report.byType, [
      // Ranks 4999 and 5000 (5,000 s and 5,001 s) for the median; 8,999 and 9,000 for the 90th percentile, 0.1 of the way.
      { type: "fall", incidents: 10_000, falseAlarms: 0, confirmed: 10_000, medianMs: 5_000_500, p90Ms: 9_000_100 },
      { type: "smoke", incidents: 2000, falseAlarms: 1000, confirmed: 1000, medianMs: 30 * S, p90Ms: 30 * S },
      { type: "hub_offline", incidents: 1, falseAlarms: 0, confirmed: 0, medianMs: null, p90Ms: null },
    ]);
    assert.deepEqual(report.falseAlarms.perHome, [
      { hub: "hub-c", home: "hub-c", incidents: 2000, falseAlarms: 1000, rate: 0.5, reasons: { cooking_smoke: 500, device_test: 500 } },
      { hub: "hub-a", home: "幸福路12弄*号***室", incidents: 5000, falseAlarms: 0, rate: 0, reasons: {} },
      { hub: "hub-b", home: "长寿路88号*号楼***室", incidents: 5000, falseAlarms: 0, rate: 0, reasons: {} },
    ]);
    assert.deepEqual(report.falseAlarms.perDeviceModel, [
      { model: "JTY-GD-G3", incidents: 1000, falseAlarms: 500, rate: 0.5, reasons: { cooking_smoke: 250, device_test: 250 } },
      { model: null, incidents: 1000, falseAlarms: 500, rate: 0.5, reasons: { cooking_smoke: 250, device_test: 250 } },
      { model: "R60A", incidents: 10_000, falseAlarms: 0, rate: 0, reasons: {} },
    ]);

    // Street B's account: only hub-b's falls (the odd ones: 2 s, 4 s, … 10,000 s).
    const limited = await buildReport(loop, { ...period, streets: ["Street B"] });
    const evens = Array.from({ length: 5000 }, (_, i) => (2 * i + 2) * S);
    assert.deepEqual(limited.byType, [{ type: "fall", incidents: 5000, falseAlarms: 0, confirmed: 5000, medianMs: percentile(evens, 5), p90Ms: percentile(evens, 9) }]);
    assert.equal(limited.byType[0]?.medianMs, 5_001_000);
    assert.deepEqual(limited.falseAlarms.perHome.map((r) => r.hub), ["hub-b"]);
    assert.deepEqual(limited.streets, ["Street B"]);
    // No streets at all reaches nothing, never everything.
    const none = await buildReport(loop, { ...period, streets: [] });
    assert.deepEqual([none.byType, none.falseAlarms.perHome, none.falseAlarms.perDeviceModel], [[], [], []]);
  });
}
