// Per-street access over real HTTP, on SQLite and (with ANXIN_TEST_PG_URL) PostgreSQL: a token limited to a
// street reaches only the homes on it — another street's home, its plan, consent, claim and commissioning
// reports answer 404 exactly as a home that does not exist; listings and the ledger (JSON, CSV, XLSX) hold
// its street only; the owner rule still holds inside the street; unlimited operators and admins see all.
import assert from "node:assert/strict";
import ExcelJS from "exceljs";
import pino from "pino";
import { ulid } from "ulid";
import type { CommissioningReport } from "../../protocol/commissioning.js";
import { serveOperatorApi } from "../support/operator-api.js";
import { operatorRoutes } from "../../relay/src/api/operator/routes.js";
import { addToken, verifyToken } from "../../relay/src/auth/tokens.js";
import { listAudit } from "../../relay/src/careplans/audit.js";
import { commissioningDb } from "../../relay/src/commissioning/tables.js";
import { Registry } from "../../relay/src/registry/registry.js";
import { loopDb } from "../../relay/src/store/closed-loop-schema.js";
import type { Store } from "../../relay/src/store/store.js";
import { testOnBothStores } from "../support/loop-store.js";
import { HIGH, LOW, MEDIUM } from "../support/households.js";

const T0 = Date.parse("2026-12-06T02:00:00Z");
const MINE = "长寿路街道";
const THEIRS = "曹杨新村街道";

async function serve(store: Store) {
  const db = loopDb(store.db);
  let t = T0;
  const now = () => (t += 1000);
  const registry = new Registry(store, { claimCodeTtlS: 3600, heartbeatS: 60, mqttUrl: "mqtt://relay:1883", now });
  const unused = new Proxy({}, { get: () => () => Promise.reject(new Error("not in this test")) });
  const routes = operatorRoutes({ db, store, incidents: unused as never, registry, now, openapi: () => ({}) });
  const server = await serveOperatorApi(routes, { verify: (tok) => verifyToken(db, tok), log: pino({ level: "silent" }) });
  const base = server.base;
  const call = async (method: string, p: string, token: string, body?: unknown) => {
    const res = await fetch(`${base}${p}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const data = Buffer.from(await res.arrayBuffer());
    const json = res.headers.get("content-type")?.startsWith("application/json") && data.length ? JSON.parse(data.toString("utf8")) : undefined;
    return { status: res.status, json, data };
  };
  return { db, call, close: () => server.close() };
}

/** A commissioning report as a hub sends it (valid against the protocol's schema). */
function report(hub: string, household: string): CommissioningReport {
  return {
    v: 1,
    hub,
    household,
    plan: { version: 1, level: "low", items: [{ kind: "smoke_detector", count: 1, rooms: ["bedroom"] }] },
    installer: "ivan-li",
    startedAt: T0,
    finishedAt: T0 + 40 * 60_000,
    state: "commissioned",
    devices: [{ id: "smoke-bedroom", kind: "smoke_detector", model: "HS1SA-Z", address: "0x00124b0012345678", room: "bedroom", signal: 168, battery: 97, result: "passed", testedAt: T0 + 5 * 60_000 }],
  };
}

testOnBothStores("street-limited tokens: another street's homes are not found; listings and the ledger hold their streets only", async (store) => {
  const api = await serve(store);
  try {
    const { db, call } = api;
    const ivan = (await addToken(db, "ivan", "installer", T0, { streets: [MINE] })).token;
    const olga = (await addToken(db, "olga", "operator", T0, { streets: [MINE] })).token;
    const oscar = (await addToken(db, "oscar", "operator", T0)).token;
    const ada = (await addToken(db, "ada", "admin", T0)).token;
    await assert.rejects(addToken(db, "root", "admin", T0, { streets: [MINE] }), /admin token is not limited to streets/);

    // An admin registers one home on each street; the installer one on its own street, none on another.
    const home = (hub: string, street: string, token = ada) => call("POST", "/v1/households", token, { hub, elder: { name: "王秀英" }, address: "长寿路12弄3号302室", street, community: "一村" });
    const mineAdmin = (await home("hub-s-a1", MINE)).json.id as string;
    const theirs = (await home("hub-s-b1", THEIRS)).json.id as string;
    let r = await home("hub-s-a2", MINE, ivan);
    assert.equal(r.status, 201, JSON.stringify(r.json));
    const mineOwn = r.json.id as string;
    r = await home("hub-s-b2", THEIRS, ivan);
    assert.equal(r.status, 403, "an installer registers homes on its own streets only");
    assert.equal((await call("GET", "/v1/households?street=" + encodeURIComponent(THEIRS), ada)).json.households.length, 1, "nothing was registered");
    assert.equal((await call("PUT", `/v1/households/${mineAdmin}/assessment`, ada, HIGH)).status, 200);
    assert.equal((await call("PUT", `/v1/households/${theirs}/assessment`, ada, MEDIUM)).status, 200);
    assert.equal((await call("PUT", `/v1/households/${mineOwn}/assessment`, ivan, LOW)).status, 200, "its own home on its street");

    // Another street's home is answered exactly as one that does not exist, for every route.
    const missing = "01JZZZZZZZZZZZZZZZZZZZZZZZ";
    for (const [m, p, b] of [
      ["GET", "", undefined],
      ["GET", "/plan", undefined],
      ["PUT", "/assessment", LOW],
      ["PUT", "/plan", { items: [{ kind: "smoke_detector", room: "bedroom", count: 1 }], reason: "x" }],
      ["POST", "/consents", { device: "camera", granted: true, givenBy: "elder" }],
      ["POST", "/claim", {}],
    ] as const) {
      for (const token of [ivan, olga]) {
        const hidden = await call(m, `/v1/households/${theirs}${p}`, token, b);
        const absent = await call(m, `/v1/households/${missing}${p}`, token, b);
        if (m !== "GET" && token === olga) {
          // Operators may not change households at all: the role is refused before any household is looked at.
          assert.equal(hidden.status, 403, `${m} ${p}`);
          assert.deepEqual(hidden.json, absent.json);
          continue;
        }
        assert.equal(hidden.status, 404, `${m} ${p}: ${JSON.stringify(hidden.json)}`);
        assert.deepEqual({ ...hidden.json, message: hidden.json.message.replace(theirs, "ID") }, { ...absent.json, message: absent.json.message.replace(missing, "ID") }, `${m} ${p}`);
      }
    }
    // Inside its street the owner rule still holds: an admin's home is no installer's (403, as before).
    assert.equal((await call("PUT", `/v1/households/${mineAdmin}/assessment`, ivan, LOW)).status, 403);
    // The street-limited operator reads its street's homes; the unlimited operator and the admin every home.
    assert.equal((await call("GET", `/v1/households/${mineAdmin}`, olga)).status, 200);
    assert.equal((await call("GET", `/v1/households/${theirs}`, oscar)).status, 200);
    assert.equal((await call("GET", `/v1/households/${theirs}/plan`, ada)).status, 200);

    // Listings: the street-limited tokens see their street only, even when asking for another.
    const ids = async (token: string, q = "") => ((await call("GET", `/v1/households${q}`, token)).json.households as Array<{ id: string }>).map((x) => x.id).sort();
    assert.deepEqual(await ids(ivan), [mineOwn], "an installer: its own homes on its street");
    assert.deepEqual(await ids(olga), [mineAdmin, mineOwn].sort());
    assert.deepEqual(await ids(olga, `?street=${encodeURIComponent(THEIRS)}`), []);
    assert.deepEqual(await ids(oscar), [mineAdmin, mineOwn, theirs].sort());
    assert.deepEqual(await ids(ada), [mineAdmin, mineOwn, theirs].sort());

    // The ledger: JSON, CSV and XLSX hold the street-limited operator's street only; an admin's every home.
    const hubs = async (token: string, q = "") => ((await call("GET", `/v1/ledger${q}`, token)).json.rows as Array<{ hub: string; street: string }>).map((x) => x.hub).sort();
    assert.deepEqual(await hubs(olga), ["hub-s-a1", "hub-s-a2"]);
    assert.deepEqual(await hubs(olga, `?street=${encodeURIComponent(THEIRS)}`), []);
    assert.deepEqual(await hubs(oscar), ["hub-s-a1", "hub-s-a2", "hub-s-b1"]);
    assert.deepEqual(await hubs(ada), ["hub-s-a1", "hub-s-a2", "hub-s-b1"]);
    r = await call("GET", "/v1/ledger?format=csv&lang=en", olga);
    assert.equal(r.status, 200);
    const csv = r.data.toString("utf8");
    assert.match(csv, /hub-s-a1/);
    assert.match(csv, /hub-s-a2/);
    assert.doesNotMatch(csv, /hub-s-b1|曹杨/);
    r = await call("GET", "/v1/ledger?format=xlsx", olga);
    assert.equal(r.status, 200);
    const wb = new ExcelJS.Workbook();
    await wb.xlsx.load(r.data as unknown as ArrayBuffer);
    const cells: string[] = [];
    wb.getWorksheet("台账")!.eachRow((row, n) => n > 1 && cells.push(row.getCell(1).text));
    assert.deepEqual(cells, [MINE, MINE], "two homes, both on its street");
    r = await call("GET", "/v1/ledger?format=csv", ada);
    assert.match(r.data.toString("utf8"), /hub-s-b1/);
    assert.equal((await call("GET", "/v1/ledger", ivan)).status, 403, "installers never get the ledger, limited or not");

    // A stored street list that no longer reads limits the token to nothing, never to everything.
    const odd = (await addToken(db, "odd", "operator", T0, { streets: [MINE] })).token;
    await db.updateTable("api_tokens").set({ streets: "not a list" }).where("name", "=", "odd").execute();
    assert.deepEqual(await ids(odd), []);
    assert.deepEqual(await hubs(odd), []);
    assert.equal((await call("GET", `/v1/households/${mineAdmin}`, odd)).status, 404);

    // Commissioning reports: another street's hub, and a hub with no household, are not found for olga.
    const cdb = commissioningDb(db);
    for (const [hub, household] of [["hub-s-a1", mineAdmin], ["hub-s-b1", theirs], ["hub-s-x9", "none"]] as const) {
      const id = ulid(T0);
      await cdb.insertInto("commissioning_reports").values({ id, event_id: id, hub, household_id: household, state: "commissioned", finished_at: T0, received_at: T0 + 1000, report: JSON.stringify(report(hub, household)) }).execute();
    }
    const reportIds = async (hub: string, token: string) => {
      const res = await call("GET", `/v1/hubs/${hub}/commissioning-reports`, token);
      return { status: res.status, ids: (res.json?.reports as Array<{ id: string }> | undefined)?.map((x) => x.id) ?? [] };
    };
    assert.equal((await reportIds("hub-s-a1", olga)).ids.length, 1);
    assert.equal((await reportIds("hub-s-b1", olga)).status, 404);
    assert.equal((await reportIds("hub-s-x9", olga)).status, 404);
    assert.equal((await reportIds("hub-s-nothing", olga)).status, 404, "nothing tells a hidden hub from an unknown one");
    const theirReport = (await reportIds("hub-s-b1", oscar)).ids[0] as string;
    assert.ok(theirReport);
    r = await call("GET", `/v1/commissioning-reports/${theirReport}`, olga);
    assert.equal(r.status, 404);
    assert.deepEqual(r.json, { error: "not_found", message: `no commissioning report ${theirReport}` });
    assert.equal((await call("GET", `/v1/commissioning-reports/${theirReport}`, ada)).status, 200);

    // Every hidden access is in the audit log (not in the answer).
    const refused = (await listAudit(db, { subject: "hub-s-b1" })).filter((a) => a.action.endsWith(".refused"));
    assert.ok(refused.some((a) => a.actor === "installer:ivan" && /outside the token's streets/.test(a.purpose)));
    assert.ok(refused.some((a) => a.actor === "operator:olga" && a.action === "commissioning_report.refused"));
  } finally {
    await api.close();
  }
});
