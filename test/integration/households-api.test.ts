// The household routes over real HTTP, on SQLite and (with ANXIN_TEST_PG_URL) PostgreSQL: an installer
// registers a home, records the assessment, gets the derived plan and the hub's claim code; a plan below the
// district's minimums needs a reason; consent withdrawn retires the camera; only an admin approves; an
// installer reaches only its own homes; every step is in the audit log and no personal data in the log.
import assert from "node:assert/strict";
import pino from "pino";
import { serveOperatorApi } from "../support/operator-api.js";
import { operatorRoutes } from "../../relay/src/api/operator/routes.js";
import { addToken, verifyToken } from "../../relay/src/auth/tokens.js";
import { listAudit } from "../../relay/src/careplans/audit.js";
import { Registry } from "../../relay/src/registry/registry.js";
import { loopDb } from "../../relay/src/store/closed-loop-schema.js";
import type { Store } from "../../relay/src/store/store.js";
import { testOnBothStores } from "../support/loop-store.js";
import { HIGH, LOW } from "../support/households.js";

const T0 = Date.parse("2026-12-06T02:00:00Z");
const ELDER = "Wang Xiuying";
const ADDRESS = "Room 302, No. 17 Lane 1130, Test Road";

async function serve(store: Store) {
  const db = loopDb(store.db);
  const logs: string[] = [];
  const log = pino({ level: "info" }, { write: (l: string) => void logs.push(l) });
  let t = T0;
  const now = () => (t += 1000);
  const registry = new Registry(store, { claimCodeTtlS: 3600, heartbeatS: 60, mqttUrl: "mqtt://relay:1883", now });
  const unused = new Proxy({}, { get: () => () => Promise.reject(new Error("not in this test")) });
  const routes = operatorRoutes({ db, store, incidents: unused as never, registry, now, openapi: () => ({}) });
  const server = await serveOperatorApi(routes, { verify: (tok) => verifyToken(db, tok), log });
  const base = server.base;
  const call = async (method: string, p: string, token: string, body?: unknown) => {
    const res = await fetch(`${base}${p}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, json: text ? JSON.parse(text) : undefined };
  };
  return { db, logs, call, close: () => server.close() };
}

testOnBothStores("households API: assess, plan, minimums, consent, approval, claim, roles and audit", async (store) => {
  const api = await serve(store);
  try {
    const { db, call } = api;
    const inst = (await addToken(db, "ivan", "installer", T0)).token;
    const other = (await addToken(db, "olga-installs", "installer", T0)).token;
    const op = (await addToken(db, "oscar", "operator", T0)).token;
    const adm = (await addToken(db, "ada", "admin", T0)).token;

    // An installer registers the home; an operator may not.
    const input = { hub: "hub-hh-1", elder: { name: ELDER }, address: ADDRESS, street: "Changshou", community: "Lane 1130" };
    assert.equal((await call("POST", "/v1/households", op, input)).status, 403);
    let r = await call("POST", "/v1/households", inst, input);
    assert.equal(r.status, 201, JSON.stringify(r.json));
    const id = r.json.id as string;
    assert.equal(r.json.elder.name, ELDER);
    assert.equal((await call("POST", "/v1/households", inst, input)).status, 409, "one household per hub");
    r = await call("POST", "/v1/households", inst, { ...input, hub: "hub-hh-2", elder: { name: "X", phone: "+8613800000000" } });
    assert.equal(r.status, 400);
    assert.match(r.json.message, /elder: Unrecognized key: "phone"/);

    // No plan before the assessment: no claim code either.
    assert.equal((await call("GET", `/v1/households/${id}/plan`, inst)).status, 404);
    assert.equal((await call("POST", `/v1/households/${id}/claim`, inst, {})).json.error, "no_plan");

    // The assessment is scored by the shipped rules and the plan derived from it.
    r = await call("PUT", `/v1/households/${id}/assessment`, inst, HIGH);
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.equal(r.json.assessment.level, "high");
    assert.equal(r.json.assessment.rulesVersion, "district-default-2026.1");
    assert.equal(r.json.plan.status, "proposed");
    assert.deepEqual(r.json.plan.withheld, [{ kind: "camera", room: "living", reason: "no consent recorded" }], "no camera without consent");
    r = await call("PUT", `/v1/households/${id}/assessment`, inst, { ...HIGH, age: 200 });
    assert.equal(r.status, 400);
    assert.match(r.json.message, /^age: /);

    // Consent for the camera (who and when recorded): the camera joins the plan.
    r = await call("POST", `/v1/households/${id}/consents`, inst, { device: "camera", granted: true, givenBy: "elder" });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.deepEqual(r.json.consent, { camera: true, vital_radar: false });
    assert.deepEqual(r.json.plan.items.filter((i: { kind: string }) => i.kind === "camera").map((i: { room: string }) => i.room), ["living"]);

    // A plan below the minimums (no shut-off valve): refused without a reason, accepted with one.
    const plan = (await call("GET", `/v1/households/${id}/plan`, inst)).json;
    const noValve = plan.items.filter((i: { kind: string }) => i.kind !== "gas_valve").map(({ kind, room, count }: { kind: string; room: string; count: number }) => ({ kind, room, count }));
    r = await call("PUT", `/v1/households/${id}/plan`, inst, { items: noValve });
    assert.equal(r.status, 422);
    assert.equal(r.json.error, "below_minimum");
    assert.match(r.json.message, /gas_valve 0 of 1/);
    r = await call("PUT", `/v1/households/${id}/plan`, inst, { items: noValve, reason: "the building's own valve shuts the supply; landlord refuses a second" });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.equal(r.json.basis, "custom");
    assert.deepEqual(r.json.shortfalls, [{ kind: "gas_valve", required: 1, planned: 0 }]);
    assert.match(r.json.reason, /landlord refuses/);
    // A sensitive device without consent is refused outright.
    r = await call("PUT", `/v1/households/${id}/plan`, inst, { items: [...noValve, { kind: "vital_radar", room: "bedroom", count: 1 }], reason: "x" });
    assert.equal(r.status, 422);
    assert.equal(r.json.error, "consent_required");

    // Only an admin approves; an approved plan stays approved when consent is withdrawn, the camera retired.
    assert.equal((await call("POST", `/v1/households/${id}/approve`, inst, {})).status, 403, "installer cannot approve");
    assert.equal((await call("POST", `/v1/households/${id}/approve`, op, {})).status, 403);
    const v = (await call("GET", `/v1/households/${id}/plan`, adm)).json.version as number;
    assert.equal((await call("POST", `/v1/households/${id}/approve`, adm, { version: v - 1 })).status, 409, "not the version reviewed");
    r = await call("POST", `/v1/households/${id}/approve`, adm, { version: v });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.equal(r.json.status, "approved");
    assert.equal(r.json.approvedBy, "admin:ada");
    r = await call("POST", `/v1/households/${id}/consents`, inst, { device: "camera", granted: false, givenBy: "guardian" });
    assert.equal(r.status, 200);
    assert.deepEqual(r.json.consent, { camera: false, vital_radar: false });
    const cams = r.json.plan.items.filter((i: { kind: string }) => i.kind === "camera");
    assert.equal(cams.length, 1);
    assert.equal(cams[0].retiredReason, "consent withdrawn by the guardian");
    assert.equal(typeof cams[0].retiredAt, "number");
    assert.equal(r.json.plan.status, "approved");

    // The record: consents with who and when; the care plan by version only.
    r = await call("GET", `/v1/households/${id}`, op);
    assert.equal(r.status, 200);
    assert.deepEqual(
      r.json.consents.map((c: { device: string; granted: boolean; givenBy: string; recordedBy: string; recordedByToken: string }) => [c.device, c.granted, c.givenBy, c.recordedBy]),
      [
        ["camera", true, "elder", "installer:ivan"],
        ["camera", false, "guardian", "installer:ivan"],
      ],
    );
    assert.ok(r.json.consents.every((c: { recordedByToken: string; at: number }) => c.recordedByToken && c.at > T0));
    assert.equal(r.json.carePlanVersion, null);

    // Another installer reaches nothing of this home; its ledger is empty; an admin's ledger lists it by street.
    for (const [m, p, b] of [
      ["GET", `/v1/households/${id}`, undefined],
      ["PUT", `/v1/households/${id}/assessment`, LOW],
      ["POST", `/v1/households/${id}/consents`, { device: "camera", granted: true, givenBy: "elder" }],
      ["POST", `/v1/households/${id}/claim`, {}],
    ] as const) {
      r = await call(m, p, other, b);
      assert.equal(r.status, 403, `${m} ${p}`);
    }
    assert.deepEqual((await call("GET", "/v1/households", other)).json.households, []);
    r = await call("GET", "/v1/households?street=Changshou", adm);
    assert.deepEqual(
      r.json.households.map((h: { id: string; level: string; planStatus: string }) => [h.id, h.level, h.planStatus]),
      [[id, "high", "approved"]],
    );
    assert.deepEqual((await call("GET", "/v1/households?street=Elsewhere", adm)).json.households, []);

    // The claim code for the home's hub, by the registry's own rules: the installer's, again until it enrols.
    r = await call("POST", `/v1/households/${id}/claim`, inst, {});
    assert.equal(r.status, 201, JSON.stringify(r.json));
    assert.equal(r.json.hub, "hub-hh-1");
    assert.match(r.json.code, /\S{6,}/);
    assert.equal((await call("POST", `/v1/households/${id}/claim`, inst, { rotate: true })).status, 403, "installers never rotate");

    // An admin's home is no installer's.
    const adminHome = (await call("POST", "/v1/households", adm, { ...input, hub: "hub-hh-3" })).json.id as string;
    assert.equal((await call("PUT", `/v1/households/${adminHome}/assessment`, inst, LOW)).status, 403);
    r = await call("PUT", `/v1/households/${adminHome}/assessment`, adm, LOW);
    assert.equal(r.json.assessment.level, "low");

    // Every change and read is audited under the hub; the refusals too.
    const actions = (await listAudit(db, { subject: "hub-hh-1" })).map((a) => `${a.actor} ${a.action}`);
    for (const want of [
      "installer:ivan household.create",
      "installer:ivan household.assess",
      "installer:ivan household.consent_granted",
      "installer:ivan household.plan_write",
      "admin:ada household.approve",
      "installer:ivan household.consent_withdrawn",
      "operator:oscar household.read",
      "installer:olga-installs household.refused",
      "installer:ivan hub.claim",
      "installer:ivan hub.claim_refused:forbidden",
    ]) {
      assert.ok(actions.includes(want), `${want} in ${actions.join(" | ")}`);
    }
    const waived = (await listAudit(db, { subject: "hub-hh-1" })).find((a) => a.action === "household.plan_write");
    assert.match(waived!.purpose, /below minimum: gas_valve 0 of 1 \(reason recorded\)/);
    assert.ok((await listAudit(db, { subject: "*" })).some((a) => a.action === "household.list" && a.actor === "admin:ada"));

    // No personal data in the log: neither the name, the address nor the claim code.
    const all = api.logs.join("");
    assert.match(all, /operator API/);
    assert.doesNotMatch(all, new RegExp(ELDER));
    assert.doesNotMatch(all, /Lane 1130, Test Road/);
    assert.doesNotMatch(all, /landlord/);
  } finally {
    await api.close();
  }
});
