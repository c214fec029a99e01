// The district ledger and the upkeep sweep on SQLite and (with ANXIN_TEST_PG_URL) PostgreSQL, on a clock the
// test sets: homes on two streets with planned vs installed kit, health from device events and incidents in
// the period; the CSV and the workbook read back (Chinese headers, BOM; exceljs); GET /v1/ledger's roles and
// audit; upkeep: a self-test due after 30 days, overdue after the grace, exactly one operator alert, cleared
// by a test arriving; the yearly re-assessment; two sweepers on one PostgreSQL never both claim.
import assert from "node:assert/strict";
import { test } from "node:test";
import ExcelJS from "exceljs";
import { sql, type Kysely } from "kysely";
import pino from "pino";
import { listOperatorAlerts } from "../../relay/src/alerts/operator-alerts.js";
import { serveOperatorApi } from "../support/operator-api.js";
import { operatorRoutes } from "../../relay/src/api/operator/routes.js";
import { addToken, verifyToken } from "../../relay/src/auth/tokens.js";
import { listAudit } from "../../relay/src/careplans/audit.js";
import { relayExtraMigrations } from "../../relay/src/store/relay-migrations.js";
import { ledgerRows } from "../../relay/src/households/ledger.js";
import { ledgerCsv, ledgerHeaders, ledgerPeriod } from "../../relay/src/households/ledger-export.js";
import { loadRiskRules } from "../../relay/src/households/scoring.js";
import { approvePlan, createHousehold, recordAssessment, type Who } from "../../relay/src/households/store.js";
import { DAY_MS, defaultUpkeepConfig } from "../../relay/src/households/upkeep.js";
import { scheduleUpkeep, sweepUpkeep, UpkeepSweeper, UPKEEP_ACTOR } from "../../relay/src/households/upkeep-sweep.js";
import { upkeepDb } from "../../relay/src/households/upkeep-table.js";
import { Registry } from "../../relay/src/registry/registry.js";
import { loopDb, type LoopDb } from "../../relay/src/store/closed-loop-schema.js";
import { openStore, type Store } from "../../relay/src/store/store.js";
import { testOnBothStores } from "../support/loop-store.js";
import { HIGH, LOW, MEDIUM } from "../support/households.js";
import { dropPgSchema, PG_URL, pgSkipReason, uniquePgSchema } from "../support/pg.js";

const T0 = Date.parse("2026-12-06T02:00:00Z");
const STREET_A = "长寿路街道";
const STREET_B = "曹杨新村街道";
const upkeep = defaultUpkeepConfig();

let seq = 0;
const nextId = (prefix: string) => `${prefix}${String(++seq).padStart(6, "0")}`;

async function home(db: Kysely<LoopDb>, hub: string, name: string, street: string, community: string, a: typeof LOW, at: number, approve: boolean): Promise<string> {
  const who: Who = { actor: "admin:ada", purpose: "test", at };
  const h = await createHousehold(db, { hub, elder: { name }, address: "Room 302, No. 17 Lane 1130", street, community }, { ...who, owner: null });
  await recordAssessment(db, h.id, a, await loadRiskRules(), who);
  if (approve) await approvePlan(db, h.id, undefined, who);
  return h.id;
}

async function hubRow(db: Kysely<any>, id: string, online: boolean): Promise<void> {
  await db.insertInto("hubs").values({ id, status: "active", password_hash: null, password_salt: null, key_b64: null, claim_hash: null, claim_salt: null, claim_expires_at: null, claim_used_at: null, created_at: T0 - 100 * DAY_MS, last_seen_at: T0, online: online ? 1 : 0, last_boot: 1, offline_since: null }).execute();
}

async function commission(db: Kysely<any>, hub: string, finishedAt: number, devices: Array<{ id: string; kind: string; result: string }>, state = "commissioned"): Promise<void> {
  const id = nextId("01JCOMM");
  await db.insertInto("commissioning_reports").values({ id, event_id: id, hub, household_id: null, state, finished_at: finishedAt, received_at: finishedAt + 1000, report: JSON.stringify({ devices }) }).execute();
}

async function event(db: Kysely<any>, hub: string, at: number, e: { kind: string; type: string; device?: string; test?: boolean; data?: Record<string, unknown> }): Promise<void> {
  const id = nextId("01JEVT");
  const envelope = { v: 1, hub, boot: 1, seq, id, ts: at, kind: e.kind, type: e.type, severity: "info", ...(e.device ? { device: e.device } : {}), ...(e.data ? { data: e.data } : {}), ...(e.test ? { test: true } : {}) };
  await db
    .insertInto("events")
    .values({ id, hub, boot: 1, seq, ts: at, received_at: at, kind: e.kind, type: e.type, severity: "info", device: e.device ?? null, payload: JSON.stringify(envelope), skew_ms: null, historical: 0 })
    .execute();
}

async function incident(db: Kysely<any>, hub: string, type: string, openedAt: number): Promise<void> {
  await db
    .insertInto("incidents")
    .values({
      id: nextId("01JINC"),
      hub,
      type,
      state: "closed",
      open_key: null,
      severity: "critical",
      event_id: null,
      source_ref: null,
      device: null,
      device_model: null,
      policy: "{}",
      policy_name: "default",
      policy_version: 1,
      plan: "{}",
      escalation: "stopped",
      escalation_pass: 0,
      acknowledged_at: null,
      acknowledged_by: null,
      false_alarm_reason: null,
      follow_up_recorded: 0,
      alarms: 1,
      opened_at: openedAt,
      updated_at: openedAt,
      closed_at: openedAt + 3_600_000,
    })
    .execute();
}

/** Three homes, two streets: hub-a1 high risk, commissioned and approved; hub-a2 low, proposed; hub-b1 medium. */
async function district(db: Kysely<LoopDb>) {
  const a1 = await home(db, "hub-a1", "张三丰", STREET_A, "一村", HIGH, T0 - 60 * DAY_MS, true);
  const a2 = await home(db, "hub-a2", "李四", STREET_A, "二村", LOW, T0 - 50 * DAY_MS, false);
  const b1 = await home(db, "hub-b1", "王五", STREET_B, "三村", MEDIUM, T0 - 40 * DAY_MS, true);
  await hubRow(db, "hub-a1", true);
  await hubRow(db, "hub-b1", false);
  // An earlier, blocked report and an older commissioned one: only the latest commissioned counts.
  await commission(db, "hub-a1", T0 - 50 * DAY_MS, [{ id: "sd-old", kind: "smoke_detector", result: "passed" }]);
  await commission(db, "hub-a1", T0 - 20 * DAY_MS, [{ id: "sd-x", kind: "smoke_detector", result: "passed" }], "blocked");
  await commission(db, "hub-a1", T0 - 45 * DAY_MS, [
    { id: "sd1", kind: "smoke_detector", result: "passed" },
    { id: "sd2", kind: "smoke_detector", result: "passed" },
    { id: "sd3", kind: "smoke_detector", result: "failed" },
    { id: "gas1", kind: "gas_detector", result: "passed" },
    { id: "v1", kind: "valve", result: "passed" },
    { id: "sos1", kind: "sos_button", result: "passed" },
    { id: "sos2", kind: "sos_button", result: "missing" },
  ]);
  await commission(db, "hub-b1", T0 - 35 * DAY_MS, [
    { id: "sd9", kind: "smoke_detector", result: "passed" },
    { id: "sos9", kind: "sos_button", result: "passed" },
  ]);
  // Health from the latest device event per device and type.
  await event(db, "hub-a1", T0 - 10 * DAY_MS, { kind: "device", type: "offline", device: "sd1" });
  await event(db, "hub-a1", T0 - 9 * DAY_MS, { kind: "device", type: "online", device: "sd1" });
  await event(db, "hub-a1", T0 - 8 * DAY_MS, { kind: "device", type: "battery_low", device: "sd2" });
  await event(db, "hub-a1", T0 - 7 * DAY_MS, { kind: "device", type: "fault", device: "gas1" });
  await event(db, "hub-a1", T0 - 6 * DAY_MS, { kind: "device", type: "online", device: "sos1" });
  await event(db, "hub-a1", T0 - 5 * DAY_MS, { kind: "device", type: "offline", device: "sos1" });
  await event(db, "hub-b1", T0 - 5 * DAY_MS, { kind: "device", type: "fault", device: "sd9" });
  await event(db, "hub-b1", T0 - 4 * DAY_MS, { kind: "device", type: "fault_cleared", device: "sd9" });
  // Incidents: two in the 30-day period on hub-a1, one before it.
  await incident(db, "hub-a1", "smoke", T0 - 5 * DAY_MS);
  await incident(db, "hub-a1", "smoke", T0 - 3 * DAY_MS);
  await incident(db, "hub-a1", "sos", T0 - 2 * DAY_MS);
  await incident(db, "hub-a1", "gas", T0 - 40 * DAY_MS);
  await incident(db, "hub-b1", "gas", T0 - 1 * DAY_MS);
  return { a1, a2, b1 };
}

const period = (now: number) => {
  const p = ledgerPeriod(undefined, undefined, now);
  assert.ok(!("error" in p));
  return p;
};

testOnBothStores("ledger: rows by street with kit planned vs installed, health from device events, incidents in the period", async (store) => {
  const db = loopDb(store.db);
  const { a1, a2, b1 } = await district(db);

  const all = await ledgerRows(db, period(T0), upkeep, T0);
  assert.deepEqual(
    all.map((r) => [r.street, r.community, r.hub]),
    [
      [STREET_A, "一村", "hub-a1"],
      [STREET_A, "二村", "hub-a2"],
      [STREET_B, "三村", "hub-b1"],
    ].sort((x, y) => (x[0] as string).localeCompare(y[0] as string)),
  );

  const rows = await ledgerRows(db, { street: STREET_A, ...period(T0) }, upkeep, T0);
  assert.deepEqual(rows.map((r) => r.householdId), [a1, a2]);
  const [r1, r2] = rows as [(typeof rows)[0], (typeof rows)[0]];
  assert.equal(r1.elder, "张**", "the name is masked");
  assert.equal(r1.level, "high");
  assert.equal(r1.planApproved, true);
  // HIGH in the flat: smoke in the bedroom, living room and kitchen; gas and valve; sos by the bed and in the bathroom.
  assert.deepEqual(r1.kit.smoke_detector, { planned: 3, installed: 2 }, "the failed detector is not installed");
  assert.deepEqual(r1.kit.gas_detector, { planned: 2, installed: 1 });
  assert.deepEqual(r1.kit.gas_valve, { planned: 1, installed: 1 }, "the hub's `valve` role is the plan's gas_valve");
  assert.deepEqual(r1.kit.sos_button, { planned: 2, installed: 1 });
  assert.equal(r1.commissionedAt, T0 - 45 * DAY_MS, "the latest commissioned report, not the blocked one");
  assert.equal(r1.hubOnline, true);
  assert.deepEqual(r1.devicesOffline, ["sos1"]);
  assert.deepEqual(r1.batteryLow, ["sd2"]);
  assert.deepEqual(r1.faults, ["gas1"]);
  assert.deepEqual(r1.incidents, { smoke: 2, sos: 1 });
  assert.equal(r1.incidentsTotal, 3);

  assert.equal(r2.elder, "李**");
  assert.equal(r2.level, "low");
  assert.equal(r2.planApproved, false);
  assert.equal(r2.commissionedAt, null);
  assert.equal(r2.hubOnline, null, "not enrolled");
  assert.deepEqual(r2.kit.smoke_detector, { planned: 1, installed: 0 });
  assert.deepEqual(r2.upkeep, [], "no upkeep before the plan is approved");

  const [rb] = await ledgerRows(db, { street: STREET_B, community: "三村", ...period(T0) }, upkeep, T0);
  assert.equal(rb?.householdId, b1);
  assert.equal(rb?.hubOnline, false);
  assert.deepEqual(rb?.faults, [], "the fault was cleared");
  assert.deepEqual(rb?.incidents, { gas: 1 });

  // A longer period counts the older incident too.
  const long = ledgerPeriod("2026-10-01", "2026-12-06", T0);
  assert.ok(!("error" in long));
  assert.deepEqual((await ledgerRows(db, { street: STREET_A, ...long }, upkeep, T0))[0]?.incidents, { smoke: 2, sos: 1, gas: 1 });
  assert.match((ledgerPeriod("2026-12-06", "2026-12-01", T0) as { error: string }).error, /from .* must be before to/);
  assert.match((ledgerPeriod("yesterday", undefined, T0) as { error: string }).error, /^from: "yesterday" is not a date/);
});

/** RFC 4180, enough for the ledger: quoted cells with "" and commas. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") {
      row.push(cell);
      cell = "";
    } else if (c === "\r" && text[i + 1] === "\n") {
      row.push(cell);
      rows.push(row);
      row = [];
      cell = "";
      i++;
    } else cell += c;
  }
  if (cell || row.length) {
    row.push(cell);
    rows.push(row);
  }
  return rows;
}

async function serve(store: Store, clock: { t: number }) {
  const db = loopDb(store.db);
  const logs: string[] = [];
  const log = pino({ level: "info" }, { write: (l: string) => void logs.push(l) });
  const now = () => clock.t;
  const registry = new Registry(store, { claimCodeTtlS: 3600, heartbeatS: 60, mqttUrl: "mqtt://relay:1883", now });
  const unused = new Proxy({}, { get: () => () => Promise.reject(new Error("not in this test")) });
  const routes = operatorRoutes({ db, store, incidents: unused as never, registry, now, openapi: () => ({}), upkeep });
  const server = await serveOperatorApi(routes, { verify: (tok) => verifyToken(db, tok), log });
  const base = server.base;
  const get = (p: string, token: string) => fetch(`${base}${p}`, { headers: { authorization: `Bearer ${token}` } });
  return { logs, get, close: () => server.close() };
}

testOnBothStores("ledger export: CSV (BOM, Chinese headers) and XLSX read back with exceljs; operators and admins only, audited", async (store) => {
  const db = loopDb(store.db);
  const { a1 } = await district(db);
  const clock = { t: T0 };
  const api = await serve(store, clock);
  try {
    const op = (await addToken(db, "oscar", "operator", T0)).token;
    const inst = (await addToken(db, "ivan", "installer", T0)).token;
    const street = encodeURIComponent(STREET_A);

    let res = await api.get(`/v1/ledger?street=${street}&format=csv`, inst);
    assert.equal(res.status, 403, "an installer may not export the district's ledger");

    res = await api.get(`/v1/ledger?street=${street}&format=csv`, op);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "text/csv; charset=utf-8");
    const bytes = Buffer.from(await res.arrayBuffer());
    assert.deepEqual([...bytes.subarray(0, 3)], [0xef, 0xbb, 0xbf], "UTF-8 byte-order mark");
    const csv = parseCsv(bytes.subarray(3).toString("utf8"));
    const head = csv[0] as string[];
    assert.deepEqual(head, ledgerHeaders("zh"));
    for (const h of ["街道", "社区", "老人姓名", "风险等级", "烟感(计划)", "烟感(已装)", "调试完成日期", "离线设备", "期间事件数", "维护逾期数"]) assert.ok(head.includes(h), `header ${h}`);
    assert.equal(csv.length, 3, "header and the street's two homes");
    const cell = (row: string[], h: string) => row[head.indexOf(h)];
    const c1 = csv[1] as string[];
    assert.equal(cell(c1, "街道"), STREET_A);
    assert.equal(cell(c1, "户编号"), a1);
    assert.equal(cell(c1, "老人姓名"), "张**");
    assert.equal(cell(c1, "风险等级"), "高");
    assert.equal(cell(c1, "烟感(计划)"), "3");
    assert.equal(cell(c1, "烟感(已装)"), "2");
    assert.equal(cell(c1, "调试完成日期"), "2026-10-22");
    assert.equal(cell(c1, "离线设备"), "sos1");
    assert.equal(cell(c1, "期间事件数"), "3");
    assert.ok(!bytes.includes(Buffer.from("张三丰")), "no full name in the file");
    assert.ok(!bytes.includes(Buffer.from("Lane 1130")), "no address in the file");

    res = await api.get(`/v1/ledger?street=${street}&format=xlsx&from=2026-10-01&to=2026-12-06`, op);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet");
    const wb = new ExcelJS.Workbook();
    await wb.xlsx.load(await res.arrayBuffer());
    const ws = wb.getWorksheet("台账");
    assert.ok(ws, "the ledger sheet");
    const xhead = (ws.getRow(1).values as unknown[]).slice(1);
    assert.deepEqual(xhead, ledgerHeaders("zh"));
    assert.equal(ws.rowCount, 3);
    const x = (row: number, h: string) => ws.getRow(row).getCell(xhead.indexOf(h) + 1).value;
    assert.equal(x(2, "社区"), "一村");
    assert.equal(x(2, "老人姓名"), "张**");
    assert.equal(x(2, "烟感(已装)"), 2, "counts are numbers in the workbook");
    assert.equal(x(2, "燃气切断阀(计划)"), 1);
    assert.equal(x(2, "期间事件数"), 4, "the longer period includes the older gas incident");
    assert.equal(x(2, "期间事件(按类型)"), "gas:1 smoke:2 sos:1");
    assert.equal(x(2, "低电量设备"), "sd2");
    assert.equal(x(2, "故障设备"), "gas1");
    assert.equal(x(3, "老人姓名"), "李**");
    assert.equal(x(3, "方案已批准"), "否");
    assert.equal(wb.getWorksheet("说明")?.getRow(2).getCell(2).value, "2026-10-01");

    // English headers on request; JSON by default.
    res = await api.get(`/v1/ledger?format=csv&lang=en`, op);
    const en = parseCsv((await res.text()).replace(/^\uFEFF/, ""));
    assert.deepEqual(en[0], ledgerHeaders("en"));
    assert.equal(en.length, 4);
    res = await api.get(`/v1/ledger?community=${encodeURIComponent("三村")}`, op);
    const json = (await res.json()) as { rows: Array<{ hub: string; elder: string }> };
    assert.deepEqual(json.rows.map((r) => [r.hub, r.elder]), [["hub-b1", "王**"]]);
    res = await api.get(`/v1/ledger?from=someday`, op);
    assert.equal(res.status, 400);
    assert.match(((await res.json()) as { message: string }).message, /^from: "someday" is not a date/);

    const audit = (await listAudit(db, { subject: "*" })).filter((a) => a.action === "ledger.export");
    assert.deepEqual(
      audit.map((a) => [a.actor, a.purpose]),
      [
        ["operator:oscar", "api; 2 household(s) as csv by street"],
        ["operator:oscar", "api; 2 household(s) as xlsx by street"],
        ["operator:oscar", "api; 3 household(s) as csv"],
        ["operator:oscar", "api; 1 household(s) as json by community"],
      ],
    );
    assert.ok(!api.logs.join("").includes("张"), "no name in the log");
  } finally {
    await api.close();
  }
  // The CSV writer neutralises a cell a spreadsheet would run as a formula.
  const csv = ledgerCsv([{ ...(await ledgerRows(db, period(T0), upkeep, T0))[0]!, community: "=HYPERLINK(1)" }], "en").toString("utf8");
  assert.ok(csv.includes(",'=HYPERLINK(1),"));
});

testOnBothStores("upkeep: self-test due after 30 days, overdue after the grace with exactly one alert, cleared by a test arriving; yearly re-assessment", async (store) => {
  const db = loopDb(store.db);
  const C = T0;
  const assessedAt = C - 5 * DAY_MS;
  const id = await home(db, "hub-u1", "赵六", STREET_A, "一村", LOW, assessedAt, true);
  await hubRow(db, "hub-u1", true);
  await commission(db, "hub-u1", C, [
    { id: "sd1", kind: "smoke_detector", result: "passed" },
    { id: "sos1", kind: "sos_button", result: "passed" },
    { id: "gas1", kind: "gas_detector", result: "passed" },
  ]);
  // The installer's own test during commissioning does not move the first due date back.
  await event(db, "hub-u1", C - 3_600_000, { kind: "alarm", type: "smoke", device: "sd1", test: true });
  const alerts = async () => (await listOperatorAlerts(db)).filter((a) => a.kind === "upkeep_overdue");
  const itemOf = async (key: string, now: number) => (await ledgerRows(db, { ...period(now) }, upkeep, now))[0]?.upkeep.find((i) => i.key === key);

  let r = await sweepUpkeep(upkeepDb(db), upkeep, C + 29 * DAY_MS);
  assert.deepEqual(r, { items: 5, overdue: 0, alerts: 0, cleared: 0 }, "self-tests for sd1 and sos1, their batteries, the re-assessment; none for the mains gas detector");
  assert.equal((await itemOf("self_test:sd1", C + 29 * DAY_MS))?.status, "ok");

  r = await sweepUpkeep(upkeepDb(db), upkeep, C + 30 * DAY_MS);
  assert.equal(r.alerts, 0, "due is a reminder, not an alert");
  const due = await itemOf("self_test:sd1", C + 30 * DAY_MS);
  assert.equal(due?.status, "due");
  assert.equal(due?.dueAt, C + 30 * DAY_MS);
  assert.equal((await ledgerRows(db, { ...period(C + 30 * DAY_MS) }, upkeep, C + 30 * DAY_MS))[0]?.upkeepDue, 2);

  r = await sweepUpkeep(upkeepDb(db), upkeep, C + 37 * DAY_MS);
  assert.deepEqual([r.overdue, r.alerts], [2, 2], "sd1 and sos1 overdue: one alert each");
  r = await sweepUpkeep(upkeepDb(db), upkeep, C + 38 * DAY_MS);
  assert.deepEqual([r.overdue, r.alerts], [2, 0], "no second alert for the same overdue item");
  let open = await alerts();
  assert.equal(open.length, 2);
  assert.ok(open.every((a) => a.count === 1 && a.ackedAt === null));
  const sdAlert = open.find((a) => a.detail.includes("smoke_detector sd1"));
  assert.ok(sdAlert);
  assert.match(sdAlert.detail, new RegExp(`^household ${id} \\(hub hub-u1\\): monthly self-test of smoke_detector sd1 due 2027-01-05, overdue since 2027-01-12`));
  assert.ok(!sdAlert.detail.includes("赵"), "no name in the alert");
  const row = (await ledgerRows(db, { ...period(C + 38 * DAY_MS) }, upkeep, C + 38 * DAY_MS))[0];
  assert.equal(row?.upkeepOverdue, 2);

  // A test arriving clears it: the smoke detector's test alarm, and the button's self_test audit event.
  await event(db, "hub-u1", C + 38 * DAY_MS + 60_000, { kind: "alarm", type: "smoke", device: "sd1", test: true });
  await event(db, "hub-u1", C + 38 * DAY_MS + 90_000, { kind: "alarm", type: "smoke", device: "sd1" });
  r = await sweepUpkeep(upkeepDb(db), upkeep, C + 39 * DAY_MS);
  assert.deepEqual([r.overdue, r.alerts, r.cleared], [1, 0, 1]);
  const cleared = await itemOf("self_test:sd1", C + 39 * DAY_MS);
  assert.equal(cleared?.status, "ok");
  assert.equal(cleared?.dueAt, C + 68 * DAY_MS + 60_000, "30 days after the test arrived (a real alarm is not a test)");
  open = await alerts();
  assert.equal(open.find((a) => a.id === sdAlert.id)?.ackedBy, UPKEEP_ACTOR);
  assert.equal(open.filter((a) => a.ackedAt === null).length, 1, "the button is still overdue");
  const ledger = (await ledgerRows(db, { ...period(C + 39 * DAY_MS) }, upkeep, C + 39 * DAY_MS))[0];
  assert.equal(ledger?.lastSelfTest.smoke_detector, C + 38 * DAY_MS + 60_000);
  assert.equal(ledger?.lastSelfTest.sos_button, null);

  await event(db, "hub-u1", C + 39 * DAY_MS + 1000, { kind: "audit", type: "self_test", device: "sos1" });
  r = await sweepUpkeep(upkeepDb(db), upkeep, C + 40 * DAY_MS);
  assert.deepEqual([r.overdue, r.alerts, r.cleared], [0, 0, 1]);
  assert.equal((await alerts()).filter((a) => a.ackedAt === null).length, 0);

  // Overdue again a cycle later (both, untested since): a new alert each (a new due date), one each.
  r = await sweepUpkeep(upkeepDb(db), upkeep, C + 39 * DAY_MS + 1000 + 37 * DAY_MS);
  assert.equal(r.alerts, 2);
  r = await sweepUpkeep(upkeepDb(db), upkeep, C + 39 * DAY_MS + 1000 + 38 * DAY_MS);
  assert.equal(r.alerts, 0);
  const again2 = (await alerts()).filter((a) => a.ackedAt === null);
  assert.equal(again2.length, 2);
  assert.ok(again2.every((a) => a.count === 1 && a.id !== sdAlert.id));

  // Yearly re-assessment: due 365 days after the assessment; a new assessment (approved again) resets it.
  const yr = assessedAt + 365 * DAY_MS;
  assert.equal((await itemOf("reassessment", yr))?.status, "due");
  assert.equal((await itemOf("reassessment", yr + 7 * DAY_MS))?.status, "overdue");
  const who: Who = { actor: "admin:ada", purpose: "test", at: yr + 8 * DAY_MS };
  await recordAssessment(db, id, LOW, await loadRiskRules(), who);
  assert.equal((await itemOf("reassessment", yr + 8 * DAY_MS)), undefined, "a plan proposed again has no upkeep until approved");
  await approvePlan(db, id, undefined, who);
  const again = await itemOf("reassessment", yr + 8 * DAY_MS);
  assert.equal(again?.status, "ok");
  assert.equal(again?.dueAt, yr + 8 * DAY_MS + 365 * DAY_MS);
});

testOnBothStores("upkeep sweep: a database timer, claimed by one sweeper at a time, next one scheduled", async (store) => {
  const db = loopDb(store.db);
  const clock = { t: T0 };
  const log = pino({ level: "silent" });
  const a = new UpkeepSweeper({ db, config: upkeep, owner: "relay-a#00000001", log, now: () => clock.t });
  const b = new UpkeepSweeper({ db, config: upkeep, owner: "relay-b#00000002", log, now: () => clock.t });
  await a.prepare();
  await b.prepare();
  assert.equal(await a.runDue(), undefined, "not due yet");
  clock.t += 61_000;
  const first = await a.runDue();
  assert.equal(first?.result, "done");
  assert.equal(await b.runDue(), undefined, "the next sweep is an hour away");
  const runs = await upkeepDb(db).selectFrom("upkeep_runs").selectAll().orderBy("id").execute();
  assert.equal(runs.length, 2);
  assert.equal(runs[0]?.claimed_by, "relay-a#00000001");
  assert.equal(Number(runs[1]?.due_at), clock.t + 3600_000);
  clock.t += 3600_000;
  assert.equal((await b.runDue())?.result, "done");
});

test("PostgreSQL: two upkeep sweepers on one database never both claim, and raise one alert per overdue item", { skip: PG_URL ? false : pgSkipReason("upkeep sweepers on PostgreSQL") }, async () => {
  const schema = uniquePgSchema("anxin_upkeep");
  const open = () => openStore({ kind: "postgres", url: PG_URL!, schema, poolSize: 4 }, "/nonexistent", { migrations: relayExtraMigrations });
  const s1 = await open();
  const s2 = await open();
  try {
    const db1 = loopDb(s1.db);
    const db2 = loopDb(s2.db);
    await home(db1, "hub-pg1", "钱七", STREET_B, "三村", LOW, T0, true);
    await commission(db1, "hub-pg1", T0, [
      { id: "sd1", kind: "smoke_detector", result: "passed" },
      { id: "sos1", kind: "sos_button", result: "passed" },
    ]);
    const clock = { t: T0 + 40 * DAY_MS };
    const log = pino({ level: "silent" });
    const a = new UpkeepSweeper({ db: db1, config: upkeep, owner: "relay-a#0000000a", log, now: () => clock.t });
    const b = new UpkeepSweeper({ db: db2, config: upkeep, owner: "relay-b#0000000b", log, now: () => clock.t });
    await scheduleUpkeep(upkeepDb(db1), clock.t);
    for (let round = 0; round < 8; round++) {
      const got = await Promise.all([a.runDue(), b.runDue()]);
      assert.equal(got.filter((x) => x !== undefined).length, 1, `round ${round}: exactly one sweeper claimed`);
      clock.t += 3600_000;
    }
    // Even two sweeps racing outside the timer (a lease that ran out) raise one alert per item.
    clock.t += DAY_MS;
    await Promise.all([sweepUpkeep(upkeepDb(db1), upkeep, clock.t), sweepUpkeep(upkeepDb(db2), upkeep, clock.t), sweepUpkeep(upkeepDb(db1), upkeep, clock.t)]);
    const alerts = (await listOperatorAlerts(db1)).filter((x) => x.kind === "upkeep_overdue");
    assert.equal(alerts.length, 2);
    assert.ok(alerts.every((x) => x.count === 1));
    const done = await sql<{ n: string }>`select count(*) as n from upkeep_runs where result = 'done'`.execute(db1);
    assert.equal(Number(done.rows[0]?.n), 8);
  } finally {
    await s1.close();
    await s2.close();
    await dropPgSchema(PG_URL!, schema);
  }
});
