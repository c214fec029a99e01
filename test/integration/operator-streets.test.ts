// Per-street access on the incident, care-plan, hub, event and report routes, on a real relay over real HTTP
// (SQLite, and PostgreSQL with ANXIN_TEST_PG_URL): an operator limited to Street A lists only Street A's
// incidents; another street's incident, its timeline, every action on it, its care plan and its hub answer
// exactly as unknown ones (404) and the action does not happen; events and the false-alarm report hold
// Street A's homes only. A hub without a household is for unlimited callers only; a street list that no
// longer reads reaches nothing. Unlimited operators and admins see every home as before, and a limited
// console account gets the same answers through /console/api/v1/….
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { addToken } from "../../relay/src/auth/tokens.js";
import { listAudit } from "../../relay/src/careplans/audit.js";
import { getIncident, getTimeline, type Incident } from "../../relay/src/incidents/repo.js";
import { ConsoleClient } from "../support/console-client.js";
import { addAccount, alarm, CONSOLE_PASSWORD, incidentOf, provisionHub, sendEvent, SILENT_TELEPHONY } from "../support/console-rig.js";
import { PG_URL, pgSkipReason, tempPgSchema } from "../support/pg.js";
import { startRelayForTest, type RelayRig } from "../support/relay-rig.js";

const A = "Street A";
const B = "Street B";
const MISSING_ID = "01JZZZZZZZZZZZZZZZZZZZZZZZ";
const MISSING_HUB = "hub-st-zz";

const cleanups: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
});

type Call = (method: string, path: string, body?: unknown) => Promise<{ status: number; json: any }>;

function bearer(rig: RelayRig, token: string): Call {
  return async (method, path, body) => {
    const res = await fetch(`${rig.httpUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, json: text ? JSON.parse(text) : undefined };
  };
}

async function consoleCaller(rig: RelayRig, username: string): Promise<Call> {
  const c = new ConsoleClient(rig.httpUrl);
  assert.equal((await c.signIn(username, CONSOLE_PASSWORD)).status, 200);
  return async (method, path, body) => {
    const r = await c.request(method, `/console/api${path}`, body === undefined ? {} : { body });
    return { status: r.status, json: r.body };
  };
}

/** Every action route with a body it accepts. */
const ACTIONS: ReadonlyArray<readonly [string, unknown]> = [
  ["acknowledge", { note: "on it" }],
  ["confirm", {}],
  ["false-alarm", { reason: "cooking_smoke" }],
  ["dispatches", { service: "fire_119" }],
  ["tickets", { centre: "street", ref: "T-1" }],
  ["resolve", { summary: "over" }],
  ["follow-up", { visitedBy: "volunteer", outcome: "well" }],
  ["close", {}],
];

/** The fields an action would change. */
const stateOf = (i: Incident | undefined) => i && { state: i.state, escalation: i.escalation, acknowledgedBy: i.acknowledgedBy, falseAlarmReason: i.falseAlarmReason, followUpRecorded: i.followUpRecorded, closedAt: i.closedAt };

/** A 404 with the shape of an unknown id's, the ids put aside. */
function assertSameAsMissing(hidden: { status: number; json: any }, absent: { status: number; json: any }, hiddenId: string, missingId: string, what: string): void {
  assert.equal(hidden.status, 404, `${what}: ${JSON.stringify(hidden.json)}`);
  assert.equal(absent.status, 404, `${what} (unknown): ${JSON.stringify(absent.json)}`);
  assert.deepEqual({ ...hidden.json, message: hidden.json.message.replace(hiddenId, "ID") }, { ...absent.json, message: absent.json.message.replace(missingId, "ID") }, what);
}

async function check(rig: RelayRig): Promise<void> {
  const { relay } = rig;
  const db = relay.db;
  const hubA = await provisionHub(relay, "hub-st-a1", { address: "1 Road A", street: A });
  const hubB = await provisionHub(relay, "hub-st-b1", { address: "2 Road B", street: B });
  const hubN = await provisionHub(relay, "hub-st-n1"); // a care plan, no household: on no street
  await alarm(relay, hubA, "smoke", "critical");
  await alarm(relay, hubB, "smoke", "critical");
  await alarm(relay, hubN, "smoke", "critical");
  // More of Street A's events than one page holds, to walk the keyset pages.
  for (let i = 0; i < 3; i++) await sendEvent(relay, hubA, { kind: "heartbeat", type: "heartbeat", severity: "info", device: undefined });
  await sendEvent(relay, hubB, { kind: "heartbeat", type: "heartbeat", severity: "info", device: undefined });
  const incA = await incidentOf(relay, hubA.hub);
  const incB = await incidentOf(relay, hubB.hub);
  const incN = await incidentOf(relay, hubN.hub);

  const now = Date.now();
  const olga = bearer(rig, (await addToken(db, "olga", "operator", now, { streets: [A] })).token);
  const oscar = bearer(rig, (await addToken(db, "oscar", "operator", now)).token);
  const ada = bearer(rig, (await addToken(db, "ada", "admin", now)).token);
  // A stored street list that no longer reads limits the token to nothing, never to everything.
  const odd = bearer(rig, (await addToken(db, "odd", "operator", now, { streets: [A] })).token);
  await db.updateTable("api_tokens").set({ streets: "not a list" }).where("name", "=", "odd").execute();
  await addAccount(relay, "lin", "Lin", "operator", [A]);
  await addAccount(relay, "wei", "Wei", "operator");
  const lin = await consoleCaller(rig, "lin");
  const wei = await consoleCaller(rig, "wei");

  const ids = async (call: Call, q = "") => {
    const r = await call("GET", `/v1/incidents${q}`);
    assert.equal(r.status, 200, JSON.stringify(r.json));
    return (r.json.incidents as Array<{ id: string }>).map((i) => i.id).sort();
  };
  const eventHubs = async (call: Call, q = "") => {
    const r = await call("GET", `/v1/events${q}`);
    assert.equal(r.status, 200, JSON.stringify(r.json));
    return [...new Set((r.json.events as Array<{ hub: string }>).map((e) => e.hub))].sort();
  };
  const reportHomes = async (call: Call) => {
    const r = await call("GET", "/v1/reports/false-alarms");
    assert.equal(r.status, 200, JSON.stringify(r.json));
    return r.json as { perHome: Array<{ key: string; incidents: number }>; perDeviceModel: Array<{ incidents: number }> };
  };
  const all = [incA.id, incB.id, incN.id].sort();

  for (const [who, limited, unlimited] of [
    ["token", olga, oscar],
    ["console", lin, wei],
  ] as const) {
    // Listings: the limited caller's street only, even when it names another hub; the unlimited every home.
    assert.deepEqual(await ids(limited), [incA.id], who);
    assert.deepEqual(await ids(limited, "?state=all"), [incA.id], who);
    assert.deepEqual(await ids(limited, `?hub=${hubB.hub}`), [], who);
    assert.deepEqual(await ids(limited, `?hub=${hubN.hub}`), [], `${who}: a hub without a household is on no street`);
    assert.deepEqual(await ids(unlimited), all, who);

    // Another street's incident, and a hub without a household, answer exactly as an unknown one.
    for (const inc of [incB, incN]) {
      for (const p of ["", "/timeline"]) {
        assertSameAsMissing(await limited("GET", `/v1/incidents/${inc.id}${p}`), await limited("GET", `/v1/incidents/${MISSING_ID}${p}`), inc.id, MISSING_ID, `${who} GET ${p}`);
      }
      const before = stateOf(await getIncident(db, inc.id));
      for (const [action, body] of ACTIONS) {
        const hidden = await limited("POST", `/v1/incidents/${inc.id}/${action}`, body);
        const absent = await limited("POST", `/v1/incidents/${MISSING_ID}/${action}`, body);
        assertSameAsMissing(hidden, absent, inc.id, MISSING_ID, `${who} POST ${action}`);
      }
      // Nothing happened: the same state, and no entry by the refused caller in the timeline.
      assert.deepEqual(stateOf(await getIncident(db, inc.id)), before, who);
      assert.deepEqual((await getTimeline(db, inc.id)).filter((e) => e.actor === "operator:olga" || e.actor === "user:lin"), [], who);
    }
    assert.equal((await limited("GET", `/v1/incidents/${incA.id}`)).status, 200, who);
    assert.equal((await limited("GET", `/v1/incidents/${incA.id}/timeline`)).status, 200, who);
    assert.equal((await unlimited("GET", `/v1/incidents/${incB.id}`)).status, 200, who);
    assert.equal((await unlimited("GET", `/v1/incidents/${incN.id}/timeline`)).status, 200, who);

    // Care plans and hub status: another street's, or a hub on none, as an unknown hub.
    for (const hub of [hubB.hub, hubN.hub]) {
      assertSameAsMissing(await limited("GET", `/v1/careplans/${hub}`), await limited("GET", `/v1/careplans/${MISSING_HUB}`), hub, MISSING_HUB, `${who} care plan`);
      assertSameAsMissing(await limited("GET", `/v1/hubs/${hub}`), await limited("GET", `/v1/hubs/${MISSING_HUB}`), hub, MISSING_HUB, `${who} hub`);
      assert.equal((await unlimited("GET", `/v1/careplans/${hub}`)).status, 200, who);
      assert.equal((await unlimited("GET", `/v1/hubs/${hub}`)).status, 200, who);
    }
    assert.equal((await limited("GET", `/v1/careplans/${hubA.hub}`)).status, 200, who);
    assert.equal((await limited("GET", `/v1/hubs/${hubA.hub}`)).status, 200, who);

    // Events: Street A's hubs only; hub= another street's hub answers as an unknown hub does, an empty page.
    assert.deepEqual(await eventHubs(limited), [hubA.hub], who);
    assert.deepEqual(await eventHubs(limited, `?hub=${hubA.hub}`), [hubA.hub], who);
    for (const hub of [hubB.hub, hubN.hub]) {
      const hidden = await limited("GET", `/v1/events?hub=${hub}`);
      assert.equal(hidden.status, 200, who);
      assert.deepEqual(hidden.json, (await limited("GET", `/v1/events?hub=${MISSING_HUB}`)).json, who);
      assert.deepEqual(hidden.json, { events: [], nextCursor: null }, who);
    }
    assert.deepEqual(await eventHubs(unlimited), [hubA.hub, hubB.hub, hubN.hub], who);
    // Keyset pages of one event each still walk Street A's events only, and all of them.
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const r: { status: number; json: any } = await limited("GET", `/v1/events?limit=1${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
      assert.equal(r.status, 200, JSON.stringify(r.json));
      for (const e of r.json.events as Array<{ hub: string; id: string }>) {
        assert.equal(e.hub, hubA.hub, who);
        seen.push(e.id);
      }
      cursor = r.json.nextCursor;
    } while (cursor);
    const ownEvents = (await limited("GET", `/v1/events?hub=${hubA.hub}&limit=500`)).json.events as Array<{ id: string }>;
    assert.equal(ownEvents.length, 4, "the alarm and three heartbeats");
    assert.deepEqual(seen, ownEvents.map((e) => e.id), who);
  }

  // The false-alarm report counts Street A's homes only for the limited callers; the unlimited every home.
  assert.equal((await ada("POST", `/v1/incidents/${incB.id}/false-alarm`, { reason: "cooking_smoke" })).status, 200, "an admin acts on every street");
  for (const limited of [olga, lin]) {
    const r = await reportHomes(limited);
    assert.deepEqual(r.perHome.map((h) => h.key), [hubA.hub]);
    assert.equal(r.perDeviceModel.reduce((n, m) => n + m.incidents, 0), 1, "device models: Street A's one alarm");
  }
  for (const unlimited of [oscar, ada, wei]) {
    const r = await reportHomes(unlimited);
    assert.deepEqual(r.perHome.map((h) => h.key).sort(), [hubA.hub, hubB.hub, hubN.hub]);
    assert.equal(r.perHome[0]?.key, hubB.hub, "the false alarm first");
  }

  // Inside its street the limited operator acts as before.
  const ack = await olga("POST", `/v1/incidents/${incA.id}/acknowledge`, { note: "calling her" });
  assert.equal(ack.status, 200, JSON.stringify(ack.json));
  assert.equal((await getIncident(db, incA.id))?.acknowledgedBy, "operator:olga");
  assert.equal((await lin("POST", `/v1/incidents/${incA.id}/confirm`, {})).status, 200);

  // An unreadable street list reaches nothing.
  assert.deepEqual(await ids(odd), []);
  assert.equal((await odd("GET", `/v1/incidents/${incA.id}`)).status, 404);
  assert.equal((await odd("GET", `/v1/careplans/${hubA.hub}`)).status, 404);
  assert.deepEqual(await eventHubs(odd), []);
  assert.deepEqual((await reportHomes(odd)).perHome, []);

  // The admin and the unlimited operator see every home as before.
  assert.deepEqual(await ids(ada, "?state=all"), all);
  assert.deepEqual(await eventHubs(ada), [hubA.hub, hubB.hub, hubN.hub]);
  for (const hub of [hubA.hub, hubB.hub, hubN.hub]) assert.equal((await ada("GET", `/v1/careplans/${hub}`)).status, 200);

  // Refused reads of audited records are audited as refusals (the fact, never the streets), never as reads.
  const audit = await listAudit(db, { subject: hubB.hub });
  const byLimited = audit.filter((e) => e.actor === "operator:olga" || e.actor === "user:lin");
  assert.ok(byLimited.some((e) => e.action === "careplan.refused" && e.actor === "operator:olga" && /outside the token's streets/.test(e.purpose)));
  assert.ok(byLimited.some((e) => e.action === "careplan.refused" && e.actor === "user:lin"));
  assert.ok(byLimited.some((e) => e.action === "events.read_refused"));
  assert.ok(byLimited.some((e) => e.action === "incident.refused" && e.purpose.includes(`confirm incident ${incB.id}`)));
  assert.deepEqual(
    byLimited.filter((e) => e.action === "careplan.read" || e.action === "events.read"),
    [],
    "nothing of Street B was read by a limited caller",
  );
  for (const e of byLimited) assert.doesNotMatch(e.purpose, /Street/, "the audit row names no street");
}

test("street-limited callers: incidents, care plans, hubs, events and the false-alarm report of their streets only (SQLite)", async () => {
  const rig = await startRelayForTest({ config: { telephony: SILENT_TELEPHONY } });
  cleanups.push(() => rig.stop());
  await check(rig);
});

test("street-limited callers: the same on PostgreSQL", { skip: PG_URL ? false : pgSkipReason("operator street scope on PostgreSQL") }, async () => {
  const { url, schema } = tempPgSchema("opstreets", (fn) => cleanups.unshift(fn));
  const rig = await startRelayForTest({ config: { telephony: SILENT_TELEPHONY, store: { kind: "postgres", url, schema, poolSize: 4 } } });
  cleanups.push(() => rig.stop());
  await check(rig);
});

test("operator alerts: a street-limited caller sees the alert but only its streets' calls, and only their numbers are read", async () => {
  const rig = await startRelayForTest({ config: { telephony: SILENT_TELEPHONY } });
  cleanups.push(() => rig.stop());
  const { relay } = rig;
  const db = relay.db;
  const now = Date.now();
  const ha = await provisionHub(relay, "hub-st-alert-a", { address: "1 Alert Road", street: A });
  const hb = await provisionHub(relay, "hub-st-alert-b", { address: "2 Alert Road", street: B });
  await alarm(relay, ha, "smoke", "critical");
  await alarm(relay, hb, "smoke", "critical");
  const ia = await incidentOf(relay, ha.hub);
  const ib = await incidentOf(relay, hb.hub);
  const attemptsOf = async (incident: string) => (await db.selectFrom("call_attempts").select("id").where("incident_id", "=", incident).execute()).map((r) => r.id);
  const [aa, ab] = await Promise.all([waitForAttempts(() => attemptsOf(ia.id)), waitForAttempts(() => attemptsOf(ib.id))]);
  await relay.alerts.raise(db, { kind: "telephony_down", key: "streets-test", detail: "calls not placed", at: Date.now(), attempts: [...aa, ...ab] });
  const { id } = await db.selectFrom("operator_alerts").select("id").where("kind", "=", "telephony_down").where("detail", "=", "calls not placed").executeTakeFirstOrThrow();

  const olga = bearer(rig, (await addToken(db, "olga-alerts", "operator", now, { streets: [A] })).token);
  const oscar = bearer(rig, (await addToken(db, "oscar-alerts", "operator", now)).token);
  const hubsIn = (calls: Array<{ hub: string | null }>) => [...new Set(calls.map((c) => c.hub))].sort();

  const listed = (await olga("GET", "/v1/alerts")).json.alerts.find((a: { id: string }) => a.id === id);
  assert.deepEqual(hubsIn(listed.calls), [ha.hub]);
  assert.equal(listed.callCount, aa.length);
  assert.deepEqual(hubsIn((await oscar("GET", `/v1/alerts/${id}`)).json.calls), [ha.hub, hb.hub].sort(), "unlimited: every call");
  assert.deepEqual(hubsIn((await olga("GET", `/v1/alerts/${id}`)).json.calls), [ha.hub]);

  const revealed = await olga("GET", `/v1/alerts/${id}/calls`);
  assert.equal(revealed.status, 200);
  assert.deepEqual(hubsIn(revealed.json.calls), [ha.hub]);
  assert.ok(revealed.json.calls.some((c: { number: string | null }) => c.number !== null), "Street A's numbers are there to dial");
  const reads = (await listAudit(db, { limit: 10_000 })).filter((e) => e.action === "careplan.read" && e.actor === "operator:olga-alerts");
  assert.deepEqual([...new Set(reads.map((e) => e.subject))], [ha.hub], "no other street's care plan was read");
});

async function waitForAttempts(read: () => Promise<string[]>): Promise<string[]> {
  for (let i = 0; i < 200; i++) {
    const ids = await read();
    if (ids.length) return ids;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error("no call attempts");
}
