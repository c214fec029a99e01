// The closed loop at the relay, end to end: a real relay (startRelay on a SQLite file, or two instances on
// PostgreSQL) with a clock the test controls, alarms through the real ingest, calls over real HTTP to a
// scripted telephony gateway that posts signed callbacks back, and a duty operator driving the human steps
// through the operator API.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { pino } from "pino";
import { ulid } from "ulid";
import type { Envelope } from "../../protocol/envelope.js";
import { signEnvelope } from "../../protocol/signing.js";
import { addToken, revokeToken } from "../../relay/src/auth/tokens.js";
import { listAudit } from "../../relay/src/careplans/audit.js";
import type { CarePlanInput } from "../../relay/src/careplans/schema.js";
import { parseCarePlan, setCarePlan } from "../../relay/src/careplans/store.js";
import type { RunningRelay } from "../../relay/src/daemon/run.js";
import { listForwards } from "../../relay/src/forwarders/outbox.js";
import { EscalationEngine } from "../../relay/src/escalation/engine.js";
import { loadPolicySet } from "../../relay/src/escalation/policy.js";
import { addTimer, pendingTimers } from "../../relay/src/escalation/timers.js";
import { IncidentForwarding } from "../../relay/src/incidents/forwarding.js";
import { getTimeline, listIncidents } from "../../relay/src/incidents/repo.js";
import { api, capturingLog, carePlan, personalData, PHONES, writeGatewaySecret } from "../support/care-plan-fixture.js";
import { startRelayForTest, freePort, type RelayRig } from "../support/relay-rig.js";
import { startTelephonyStub, type TelephonyStub } from "../support/telephony-stub.js";
import { waitFor } from "../support/hub-rig.js";
import { PG_URL, pgSkipReason, tempPgSchema } from "../support/pg.js";
import { withQueryHook } from "../support/query-hook.js";

const SECRET = "escalation-test-gateway-secret-0123456789";
const N = PHONES;
const CARE: CarePlanInput = carePlan({ devices: { "sos-1": { model: "anxin-sos-button-v2" }, "smoke-1": { model: "acme-smoke-9" } } });
const PERSONAL = personalData(CARE);

const cleanups: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

interface Loop {
  rig: RelayRig;
  relay: RunningRelay;
  gw: TelephonyStub;
  clock: { now: number };
  key: Buffer;
  hub: string;
  logs: string[];
  dir: string;
}

async function startLoop(o: { hub?: string; config?: Record<string, unknown>; dir?: string; clock?: { now: number }; gw?: TelephonyStub; carePlan?: boolean } = {}): Promise<Loop> {
  const clock = o.clock ?? { now: Date.now() };
  const gw = o.gw ?? (await startTelephonyStub({ secret: SECRET, now: () => clock.now }));
  if (!o.gw) cleanups.push(() => gw.close());
  const tmp = await mkdtemp(path.join(os.tmpdir(), "anxin-esc-"));
  cleanups.push(() => rm(tmp, { recursive: true, force: true }));
  const { log, lines } = capturingLog();
  const rig = await startRelayForTest({
    now: () => clock.now,
    log,
    dir: o.dir,
    config: {
      telephony: { kind: "http", url: gw.url, secretFile: await writeGatewaySecret(tmp, SECRET), retries: 0, backoffMs: 0, timeoutMs: 3000 },
      escalation: { pollMs: 50 },
      ...o.config,
    },
  });
  cleanups.push(() => rig.stop());
  const hub = o.hub ?? "hub-esc-1";
  const existing = await rig.relay.store.getHub(hub);
  const key = existing ? Buffer.alloc(0) : Buffer.from((await rig.relay.registry.provisionDirect(hub)).key, "base64");
  if (o.carePlan !== false && !existing) await setCarePlan(rig.relay.db, hub, parseCarePlan(CARE, "test"), { actor: "test", purpose: "setup", at: clock.now });
  return { rig, relay: rig.relay, gw, clock, key, hub, logs: lines, dir: rig.dir };
}

let seq = 0;
function alarm(hub: string, key: Buffer, type: string, ts: number, o: Partial<Envelope> = {}): Envelope {
  return signEnvelope({ v: 1, hub, boot: 1, seq: ++seq, id: ulid(), ts, kind: "alarm", type, severity: "critical", device: type === "sos" ? "sos-1" : "smoke-1", ...o }, key);
}

async function send(relay: RunningRelay, env: Envelope): Promise<void> {
  relay.ingest.handle(env.hub, Buffer.from(JSON.stringify(env)));
  await relay.ingest.flush();
}

/** Moves the clock on and lets every instance run what fell due (and what that made due at once). */
async function advance(loop: { clock: { now: number } }, ms: number, relays: RunningRelay[]): Promise<void> {
  // Let what is under way finish on the old time first (a step schedules its successor from "now").
  await Promise.all(relays.map((r) => r.escalation.runDue()));
  loop.clock.now += ms;
  for (let i = 0; i < 3; i++) await Promise.all(relays.map((r) => r.escalation.runDue()));
}

const calledNumbers = (gw: TelephonyStub) => gw.calls.map((c) => c.to);

async function onlyIncident(relay: RunningRelay) {
  const all = await listIncidents(relay.db, {});
  assert.equal(all.length, 1, "one incident");
  return all[0]!;
}

test("SOS: the elder answers and presses 1 — acknowledged, confirmed, nobody else is called", async () => {
  const L = await startLoop();
  L.gw.script(N.elder, { status: "answered", digits: "1" });
  await send(L.relay, alarm(L.hub, L.key, "sos", L.clock.now));
  await L.gw.waitForCallbacks(1);
  const inc = await waitFor("acknowledged", async () => {
    const i = await onlyIncident(L.relay);
    return i.escalation === "acknowledged" && i;
  });
  assert.equal(inc.state, "confirmed");
  assert.equal(inc.acknowledgedBy, "elder");
  assert.equal(inc.policyName, "person");
  assert.equal(inc.deviceModel, "anxin-sos-button-v2");
  const call = L.gw.calls[0]!;
  assert.equal(call.to, N.elder);
  assert.equal(call.channel, "voice");
  assert.deepEqual(call.gather?.digits, ["1", "2"]);
  assert.match(call.message, /Press 1 if you need help/);
  // Hours later nothing more happens: the tree stopped.
  await advance(L, 3600_000, [L.relay]);
  assert.deepEqual(calledNumbers(L.gw), [N.elder]);
  const tl = await getTimeline(L.relay.db, inc.id);
  const kinds = tl.map((e) => `${e.kind}:${e.to ?? e.cause}`);
  assert.equal(kinds[0], "transition:received");
  assert.ok(kinds.indexOf("transition:confirming") < kinds.indexOf("acknowledged:help_needed"), "confirming once the first call went out");
  assert.ok(kinds.includes("acknowledged:help_needed"));
  assert.ok(tl.some((e) => e.kind === "transition" && e.to === "confirmed" && e.actor === "elder"));
  assert.ok(tl.every((e) => e.at >= inc.openedAt && e.actor.length > 0));
  assert.ok(!L.logs.some((l) => PERSONAL.some((p) => l.includes(p))), "no personal data in the relay's log");
});

test("SOS: nobody answers until the third emergency contact, who will go to the door", async () => {
  const L = await startLoop();
  L.gw.script(N.elder, { status: "no_answer", silent: true }); // rings out, the gateway never reports
  L.gw.script(N.son, { status: "no_answer" });
  L.gw.script(N.daughter, { status: "busy" });
  L.gw.script(N.niece, { status: "answered", digits: "1" });
  await send(L.relay, alarm(L.hub, L.key, "sos", L.clock.now));
  await L.gw.waitForCalls(1);
  // The elder is called twice, 45 s apart, with no outcome: only the wait moves the tree on.
  await advance(L, 45_000, [L.relay]);
  await L.gw.waitForCalls(2);
  assert.deepEqual(calledNumbers(L.gw), [N.elder, N.elder]);
  await advance(L, 45_000, [L.relay]);
  // Son: no answer, daughter: busy — each reported at once, so the next contact is called without waiting.
  await L.gw.waitForCalls(5);
  await L.gw.waitForCallbacks(3);
  const inc = await waitFor("acknowledged by the niece", async () => {
    const i = await onlyIncident(L.relay);
    return i.escalation === "acknowledged" && i;
  });
  assert.equal(inc.acknowledgedBy, "emergency_contact:niece");
  assert.equal(inc.state, "confirming", "a contact going to the door does not confirm the emergency by itself");
  await advance(L, 3600_000, [L.relay]);
  // The only call after that is the policy's arrival check to the niece (she confirms with 1 again).
  assert.deepEqual(calledNumbers(L.gw), [N.elder, N.elder, N.son, N.daughter, N.niece, N.niece]);
  assert.equal(new Set(L.gw.calls.map((c) => c.attemptId)).size, 6, "every attempt has its own id");
  assert.match(L.gw.calls[4]!.message, /Room 302, 12 Lane 88/, "the contact hears the address");
  assert.match(L.gw.calls[5]!.message, /Press 1 if you are with the elder/);
  await L.gw.waitForCallbacks(4);
  await waitFor("the arrival recorded", async () => (await getTimeline(L.relay.db, inc.id)).some((e) => e.kind === "arrival"));
  const tl = await getTimeline(L.relay.db, inc.id);
  assert.ok(tl.some((e) => e.kind === "acknowledged" && e.cause === "going_to_door" && e.actor === "emergency_contact:niece"));
  assert.deepEqual(
    tl.filter((e) => e.kind === "outcome").map((e) => (e.detail as { status: string }).status),
    ["no_answer", "busy", "answered", "answered"],
  );
});

test("nobody answers at all: the platform's on-site team is called, then the operator is alerted", async () => {
  const L = await startLoop();
  await send(L.relay, alarm(L.hub, L.key, "sos", L.clock.now));
  // Every number reports no answer at once: the tree runs through without waiting.
  await waitFor("the tree exhausted", async () => (await onlyIncident(L.relay)).escalation === "exhausted" || (await advance(L, 1000, [L.relay]), false), 20_000);
  const nums = calledNumbers(L.gw);
  assert.deepEqual(nums.slice(0, 5), [N.elder, N.elder, N.son, N.daughter, N.niece]);
  assert.deepEqual(nums.slice(-3), [N.onsite, N.onsite, N.onsite], "the on-site team, three rounds");
  assert.ok(nums.includes(N.committee) && nums.includes(N.firestation) && nums.includes(N.upstairs));
  const tok = await addToken(L.relay.db, "alice", "operator", L.clock.now);
  const alerts = await api(L.relay, tok.token, "GET", "/v1/alerts");
  assert.equal(alerts.status, 200);
  const nobody = alerts.json.alerts.find((a: { kind: string }) => a.kind === "nobody_reached");
  assert.ok(nobody, "nobody_reached alert");
  assert.equal(nobody.incidentId, (await onlyIncident(L.relay)).id);
  assert.equal((await api(L.relay, tok.token, "POST", `/v1/alerts/${nobody.id}/ack`)).status, 200);
  assert.equal((await api(L.relay, tok.token, "GET", "/v1/alerts")).json.alerts.length, 0);
});

test("a provider outage raises an operator alert and the tree moves on to the next step", async () => {
  const L = await startLoop();
  await L.gw.setOutage("503");
  await send(L.relay, alarm(L.hub, L.key, "sos", L.clock.now));
  const alert = await waitFor("telephony_down alert", async () =>
    (await L.relay.db.selectFrom("operator_alerts").selectAll().where("kind", "=", "telephony_down").executeTakeFirst()) ?? false,
  );
  assert.match(alert.detail, /http-gateway/);
  const first = await L.relay.db.selectFrom("call_attempts").selectAll().execute();
  assert.deepEqual(first.map((a) => [a.target, a.status]), [["elder", "unavailable"]]);
  // The provider recovers; the tree did not stall on the failed step.
  await L.gw.setOutage("off");
  L.gw.script(N.elder, { status: "answered", digits: "2" });
  await advance(L, 45_000, [L.relay]);
  await L.gw.waitForCallbacks(1);
  const inc = await waitFor("acknowledged", async () => {
    const i = await onlyIncident(L.relay);
    return i.escalation === "acknowledged" && i;
  });
  assert.equal(inc.state, "confirming", "'I am fine' stops the calls; the operator decides the rest");
  assert.deepEqual(calledNumbers(L.gw), [N.elder], "the second round reached the elder");
  const attempts = await L.relay.db.selectFrom("call_attempts").select(["round", "status"]).orderBy("round").execute();
  assert.deepEqual(attempts, [{ round: 0, status: "unavailable" }, { round: 1, status: "answered" }]);
  // Repeats of the same outage fold into one alert with a count.
  const alerts = await L.relay.db.selectFrom("operator_alerts").selectAll().where("kind", "=", "telephony_down").execute();
  assert.equal(alerts.length, 1);
});

test("a repeated alarm joins the open incident; a replayed one is ignored; another type opens its own", async () => {
  const L = await startLoop();
  L.gw.script(N.elder, { status: "no_answer", silent: true });
  const first = alarm(L.hub, L.key, "sos", L.clock.now);
  await send(L.relay, first);
  await L.gw.waitForCalls(1);
  await send(L.relay, alarm(L.hub, L.key, "sos", L.clock.now + 5));
  await send(L.relay, { ...first, historical: true }); // the same event again (a resend): deduplicated by id
  await advance(L, 1000, [L.relay]);
  const [inc] = await listIncidents(L.relay.db, {});
  assert.equal(inc!.alarms, 2);
  assert.equal(L.gw.calls.length, 1, "no second call tree");
  const tl = await getTimeline(L.relay.db, inc!.id);
  assert.equal(tl.filter((e) => e.kind === "joined").length, 1);
  await send(L.relay, alarm(L.hub, L.key, "smoke", L.clock.now));
  await advance(L, 0, [L.relay]);
  const all = await listIncidents(L.relay.db, {});
  assert.deepEqual(all.map((i) => i.type).sort(), ["smoke", "sos"]);
  // The fire policy calls the elder and the community responders at once.
  await L.gw.waitForCalls(4);
  assert.deepEqual(calledNumbers(L.gw).slice(1).sort(), [N.elder, N.committee, N.firestation].sort());
  // Once marked a false alarm, a new alarm opens a new incident (a real fire after burnt toast).
  const tok = await addToken(L.relay.db, "op", "operator", L.clock.now);
  const smoke = all.find((i) => i.type === "smoke")!;
  assert.equal((await api(L.relay, tok.token, "POST", `/v1/incidents/${smoke.id}/false-alarm`, { reason: "cooking_smoke" })).status, 200);
  await send(L.relay, alarm(L.hub, L.key, "smoke", L.clock.now + 10));
  assert.equal((await listIncidents(L.relay.db, {})).filter((i) => i.type === "smoke").length, 2);
});

test("a relay restart in the middle of an escalation resumes it where it stood", async () => {
  const clock = { now: Date.now() };
  const gw = await startTelephonyStub({ secret: SECRET, now: () => clock.now });
  cleanups.push(() => gw.close());
  gw.script(N.elder, { status: "no_answer", silent: true });
  const dir = await mkdtemp(path.join(os.tmpdir(), "anxin-esc-restart-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const httpPort = await freePort();
  const http = { port: httpPort, publicUrl: `http://127.0.0.1:${httpPort}` };
  const A = await startLoop({ clock, gw, dir, config: { http } });
  await send(A.relay, alarm(A.hub, A.key, "sos", clock.now));
  await gw.waitForCalls(1);
  const before = await onlyIncident(A.relay);
  await A.rig.stop();

  clock.now += 60_000; // the relay was down past the step's wait
  const B = await startLoop({ clock, gw, dir, config: { http } });
  await advance(B, 0, [B.relay]);
  await gw.waitForCalls(2);
  const after = await onlyIncident(B.relay);
  assert.equal(after.id, before.id);
  assert.equal(after.escalation, "running");
  assert.deepEqual(gw.calls.map((c) => c.attemptId), [`${before.id}:0:0:elder`, `${before.id}:0:1:elder`], "the second round, not the first again");
  assert.equal(gw.duplicates, 0);
  // And on it goes after the restart, to the first emergency contact.
  gw.script(N.son, { status: "answered", digits: "1" });
  await advance(B, 45_000, [B.relay]);
  await waitFor("acknowledged by the son", async () => (await onlyIncident(B.relay)).acknowledgedBy === "emergency_contact:son");
});

test("the operator walks an incident through the API to closed; forwards go out at each step", async () => {
  const hookUrl = "http://127.0.0.1:9/never"; // delivery is EB's concern; here only the outbox rows matter
  const L = await startLoop({
    config: { forwarders: { pollMs: 60_000, destinations: [{ name: "duty_platform", url: hookUrl, secret: "0123456789abcdef0123" }, { name: "district_centre", url: hookUrl, secret: "0123456789abcdef0123" }] } },
  });
  L.gw.script(N.elder, { status: "no_answer", silent: true });
  await send(L.relay, alarm(L.hub, L.key, "smoke", L.clock.now));
  await L.gw.waitForCalls(1);
  const tok = (await addToken(L.relay.db, "alice", "operator", L.clock.now)).token;
  const list = await api(L.relay, tok, "GET", "/v1/incidents");
  assert.equal(list.status, 200);
  assert.equal(list.json.incidents.length, 1);
  const id: string = list.json.incidents[0].id;
  const post = (p: string, body: unknown = {}) => api(L.relay, tok, "POST", `/v1/incidents/${id}/${p}`, body);

  let r = await post("acknowledge", { note: "calling the elder by hand" });
  assert.equal(r.status, 200);
  assert.equal(r.json.incident.escalation, "acknowledged");
  await advance(L, 3600_000, [L.relay]);
  assert.equal(L.gw.calls.filter((c) => c.to === N.elder).length, 1, "acknowledged: no further calls");
  assert.equal((await post("resolve", { summary: "too early" })).status, 409, "resolve before confirmation is refused");
  assert.equal((await post("confirm")).json.incident.state, "confirmed");
  r = await post("dispatches", { service: "fire_119", ref: "119-7781" });
  assert.equal(r.json.incident.state, "responding");
  r = await post("dispatches", { service: "door", by: "committee" });
  assert.equal(r.json.entry.kind, "dispatch");
  assert.equal((await post("dispatches", { service: "spaceship" })).status, 400);
  r = await post("tickets", { centre: "district", ref: "QX-2026-001" });
  assert.equal(r.json.incident.state, "coordinated");
  await post("tickets", { centre: "street", ref: "JD-88" });
  r = await post("resolve", { summary: "kitchen fire put out by the micro fire station; elder unhurt" });
  assert.equal(r.json.incident.state, "resolved");
  r = await post("close");
  assert.equal(r.status, 409);
  assert.match(r.json.message, /follow-up/);
  // A day later the return visit falls due (a timer in the store) and the operator is told.
  await advance(L, 86_400_000, [L.relay]);
  const due = await api(L.relay, tok, "GET", `/v1/incidents/${id}`);
  assert.equal(due.json.incident.state, "follow_up_due");
  assert.ok((await api(L.relay, tok, "GET", "/v1/alerts")).json.alerts.some((a: { kind: string }) => a.kind === "follow_up_due"));
  r = await post("follow-up", { visitedBy: "community worker Liu", outcome: "well" });
  assert.equal(r.status, 200);
  r = await post("close", { note: "loop closed" });
  assert.equal(r.json.incident.state, "closed");
  assert.equal((await post("confirm")).status, 409, "nothing moves a closed incident");
  assert.equal((await api(L.relay, tok, "GET", "/v1/incidents")).json.incidents.length, 0, "no open incidents left");

  const detail = await api(L.relay, tok, "GET", `/v1/incidents/${id}`);
  const tl = detail.json.timeline as Array<{ kind: string; actor: string; to: string | null; at: number; detail: Record<string, unknown> | null }>;
  const states = tl.filter((e) => e.kind === "transition").map((e) => e.to);
  assert.deepEqual(states, ["received", "confirming", "confirmed", "responding", "coordinated", "resolved", "follow_up_due", "closed"]);
  assert.ok(tl.filter((e) => e.actor === "operator:alice").length >= 9);
  assert.ok(tl.some((e) => e.kind === "ticket" && e.detail?.ref === "JD-88"));
  assert.ok(tl.some((e) => e.kind === "dispatch" && e.detail?.service === "door" && e.detail?.by === "committee"));
  assert.ok(tl.some((e) => e.kind === "follow_up" && e.detail?.visitedBy === "community worker Liu"));
  assert.equal(detail.json.calls.find((c: { target: string }) => c.target === "elder")?.status, "placed", "every call attempt is listed with its status");
  assert.equal(detail.json.calls.length, 3, "the elder and both community responders, at once");
  assert.deepEqual(
    tl.map((e) => e.at),
    [...tl.map((e) => e.at)].sort((a, b) => a - b),
    "timestamped in order",
  );

  const fwd = await listForwards(L.relay.db, { limit: 1000 });
  const platform = fwd.filter((f) => f.destination === "duty_platform");
  const district = fwd.filter((f) => f.destination === "district_centre");
  assert.ok(platform.length >= 9, `forwards to the duty platform: ${platform.length}`);
  assert.equal(district.length, platform.length);
  assert.equal(new Set(fwd.map((f) => f.idempotencyKey)).size, fwd.length);
  const opened = platform.find((f) => (f.payload as { update: { to: string } }).update.to === "received")!.payload as Record<string, any>;
  assert.equal(opened.incident.id, id);
  assert.equal(opened.location.address, CARE.elder.address, "the responders get the address with the opening");
  assert.ok(!JSON.stringify(fwd.map((f) => f.payload)).includes(N.elder), "no phone numbers forwarded");

  // The false-alarm report, per home and per device model.
  await send(L.relay, alarm(L.hub, L.key, "smoke", L.clock.now));
  const second = (await listIncidents(L.relay.db, { openOnly: true }))[0]!;
  assert.equal((await api(L.relay, tok, "POST", `/v1/incidents/${second.id}/false-alarm`, { reason: "cooking_smoke" })).status, 200);
  assert.equal((await api(L.relay, tok, "POST", `/v1/incidents/${second.id}/close`, {})).json.incident.state, "closed");
  const rep = await api(L.relay, tok, "GET", "/v1/reports/false-alarms");
  assert.deepEqual(rep.json.perHome, [{ key: L.hub, incidents: 2, falseAlarms: 1, rate: 0.5, reasons: { cooking_smoke: 1 } }]);
  assert.deepEqual(rep.json.perDeviceModel.map((x: { key: string; rate: number }) => [x.key, x.rate]), [["acme-smoke-9", 0.5]]);
});

test("token roles are enforced; care-plan reads are audited; the OpenAPI description is public", async () => {
  const L = await startLoop();
  const op = (await addToken(L.relay.db, "alice", "operator", L.clock.now)).token;
  const inst = (await addToken(L.relay.db, "ivan", "installer", L.clock.now)).token;
  const adm = (await addToken(L.relay.db, "root", "admin", L.clock.now)).token;
  await assert.rejects(addToken(L.relay.db, "alice", "admin", L.clock.now), /exists already/);

  assert.equal((await api(L.relay, undefined, "GET", "/v1/incidents")).status, 401);
  assert.equal((await api(L.relay, "anx_forged", "GET", "/v1/incidents")).status, 401);
  assert.equal((await api(L.relay, inst, "GET", "/v1/incidents")).status, 403);
  assert.equal((await api(L.relay, inst, "GET", `/v1/careplans/${L.hub}`)).status, 403, "installers see no personal data");
  assert.equal((await api(L.relay, inst, "POST", `/v1/incidents/x/confirm`, {})).status, 403);
  const hubStatus = await api(L.relay, inst, "GET", `/v1/hubs/${L.hub}`);
  assert.equal(hubStatus.status, 200);
  assert.equal(hubStatus.json.enrolled, true);
  const claim = await api(L.relay, inst, "POST", "/v1/hubs/hub-new-7/claim", {});
  assert.equal(claim.status, 201);
  assert.match(claim.json.code, /\S{8,}/);
  assert.equal((await api(L.relay, inst, "POST", `/v1/hubs/${L.hub}/claim`, {})).status, 409, "an enrolled hub needs rotate");
  assert.equal((await api(L.relay, op, "POST", "/v1/hubs/hub-new-8/claim", {})).status, 403, "operators do not enrol hubs");
  assert.equal((await api(L.relay, adm, "GET", "/v1/incidents")).status, 200);
  assert.equal((await api(L.relay, op, "DELETE", "/v1/incidents")).status, 405);
  assert.equal((await api(L.relay, op, "GET", "/v1/incidents/nope")).status, 404);
  assert.equal((await api(L.relay, op, "GET", "/v1/incidents/%E0%A4%A")).status, 400, "a malformed path escape is the client's mistake, not a 500");

  const audited = (await listAudit(L.relay.db, { subject: L.hub })).length;
  const plan = await api(L.relay, op, "GET", `/v1/careplans/${L.hub}`);
  assert.equal(plan.status, 200);
  assert.equal(plan.json.plan.elder.phone, N.elder);
  const audit = await listAudit(L.relay.db, { subject: L.hub });
  assert.equal(audit.length, audited + 1);
  assert.deepEqual({ ...audit.at(-1)!, at: 0 }, { actor: "operator:alice", action: "careplan.read", subject: L.hub, purpose: "api", at: 0 });
  assert.equal((await api(L.relay, adm, "GET", "/v1/careplans/hub-nobody")).status, 404);
  assert.equal((await listAudit(L.relay.db, { subject: "hub-nobody" }))[0]?.action, "careplan.read_missing", "a miss is recorded too");

  await revokeToken(L.relay.db, "alice", L.clock.now);
  assert.equal((await api(L.relay, op, "GET", "/v1/incidents")).status, 401, "a revoked token stops working at once");

  const doc = await api(L.relay, undefined, "GET", "/v1/openapi.json");
  assert.equal(doc.status, 200);
  assert.equal(doc.json.openapi, "3.1.0");
  assert.ok(doc.json.paths["/v1/incidents/{id}/false-alarm"].post.requestBody);
  assert.deepEqual(doc.json.paths["/v1/incidents/{id}/false-alarm"].post.requestBody.content["application/json"].schema.properties.reason.enum, [
    "cooking_smoke",
    "device_test",
    "device_fault",
    "pressed_by_mistake",
    "lying_down_to_rest",
    "out_of_radar_range",
    "visitor",
    "pet",
    "other",
  ]);
  const saved = JSON.parse(await readFile(path.resolve("docs/openapi.json"), "utf8")) as unknown;
  assert.deepEqual(doc.json, saved, "docs/openapi.json is current (anxin-relay openapi --out docs/openapi.json)");
  assert.ok(!L.logs.some((l) => l.includes(op) || l.includes(inst) || PERSONAL.some((p) => l.includes(p))), "no tokens or personal data in the log");
});

test("hub_offline from supervision opens a maintenance incident that closes itself when the hub returns", async () => {
  const L = await startLoop();
  L.gw.script(N.elder, { status: "no_answer", silent: true });
  await L.relay.store.applyTransitions([{ op: "online", hub: L.hub, at: L.clock.now, boot: 1 }]);
  await L.relay.store.applyTransitions([{ op: "offline", hub: L.hub, at: L.clock.now, reason: "will: connection lost" }]);
  L.relay.escalation.syncSoon();
  await advance(L, 0, [L.relay]);
  const inc = await onlyIncident(L.relay);
  assert.equal(inc.type, "hub_offline");
  assert.equal(inc.policyName, "maintenance");
  assert.equal(L.gw.calls.length, 0, "a grace period first: the hub may come back by itself");
  await advance(L, 900_000, [L.relay]);
  await L.gw.waitForCalls(1);
  assert.match(L.gw.calls[0]!.message, /hub is offline/);
  await L.relay.store.recordSeen([[L.hub, L.clock.now + 1]]);
  L.relay.escalation.syncSoon();
  await advance(L, 10, [L.relay]);
  const done = await onlyIncident(L.relay);
  assert.equal(done.state, "closed");
  assert.equal(done.escalation, "stopped");
  await advance(L, 7200_000, [L.relay]);
  assert.equal(L.gw.calls.length, 1, "no calls after the hub came back");
});

test("two relay instances on one PostgreSQL never run a step twice", async (t) => {
  if (!PG_URL) return t.skip(pgSkipReason("the two-instance escalation test"));
  // Pushed first, so it runs last (cleanups run in reverse): after both relays let go of the schema.
  const { url, schema } = tempPgSchema("anxin_esc", (f) => cleanups.push(f));
  const clock = { now: Date.now() };
  const gw = await startTelephonyStub({ secret: SECRET, now: () => clock.now, defaultStep: { status: "no_answer", silent: true } });
  cleanups.push(() => gw.close());
  const store = { kind: "postgres", url, schema, poolSize: 4 };
  const A = await startLoop({ clock, gw, hub: "hub-pg-0", config: { store } });
  const B = await startLoop({ clock, gw, hub: "hub-pg-0", config: { store } });
  const relays = [A.relay, B.relay];
  const hubs: Array<{ hub: string; key: Buffer }> = [{ hub: A.hub, key: A.key }];
  for (let i = 1; i < 8; i++) {
    const hub = `hub-pg-${i}`;
    hubs.push({ hub, key: Buffer.from((await A.relay.registry.provisionDirect(hub)).key, "base64") });
    await setCarePlan(A.relay.db, hub, parseCarePlan(CARE, "test"), { actor: "test", purpose: "setup", at: clock.now });
  }
  // Each alarm reaches both instances (a redelivery after a broker failover): one incident each, still.
  for (const h of hubs) {
    const e = alarm(h.hub, h.key, "sos", clock.now);
    await Promise.all([send(A.relay, e), send(B.relay, e)]);
  }
  // Run the whole tree with both instances racing for every timer.
  for (let i = 0; i < 40; i++) await advance({ clock }, 30_000, [...relays, ...relays]);
  const incidents = await listIncidents(A.relay.db, {});
  assert.equal(incidents.length, hubs.length);
  assert.ok(incidents.every((i) => i.escalation === "exhausted"));
  const ids = gw.calls.map((c) => c.attemptId);
  assert.equal(new Set(ids).size, ids.length, "no attempt placed twice");
  assert.equal(gw.duplicates, 0);
  const perIncident = 2 + 3 + 1 + 1 + 1 + 3; // elder ×2, three contacts in turn, committee, fire station, upstairs, on-site ×3
  assert.equal(ids.length, hubs.length * perIncident);
  const ran = await A.relay.db.selectFrom("escalation_timers").select(["id", "result"]).execute();
  assert.ok(ran.every((r) => r.result === "ran"), "every timer ran exactly once (none skipped by a lost claim)");
  const claimers = new Set((await A.relay.db.selectFrom("escalation_timers").select("claimed_by").execute()).map((r) => r.claimed_by));
  assert.equal(claimers.size, 2, "both instances carried steps");
});

/** An engine of its own on the loop's store (seen through `db`), beside the relay's (which the test turns off). */
function engineUnderTest(L: Loop, db: RunningRelay["db"], batch?: number): EscalationEngine {
  return new EscalationEngine({
    db,
    telephony: L.relay.telephony,
    incidents: L.relay.incidents,
    forwarding: new IncidentForwarding(undefined, []),
    alerts: L.relay.alerts,
    policies: loadPolicySet(),
    log: pino({ level: "silent" }),
    instanceId: "engine-under-test",
    now: () => L.clock.now,
    ...(batch ? { batch } : {}),
  });
}

test("a pass asked for just before stop() never runs after it (its calls would outlive the stop)", async () => {
  // The relay's own loop is off, so the only engine on this store is the one under test.
  const L = await startLoop({ config: { escalation: { enabled: false } } });
  await addTimer(L.relay.db, { id: "inc-x:0:0", incidentId: "inc-x", kind: "step", step: 0, round: 0, dueAt: L.clock.now - 1 });
  // Records every statement the engine sends (kysely compiles a statement when it is executed).
  const statements: string[] = [];
  const db = withQueryHook(L.relay.db, (kind) => statements.push(kind));
  const engine = engineUnderTest(L, db);
  engine.start(3_600_000);
  engine.kick(); // a commit's nudge, arriving just before shutdown
  await engine.stop();
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  assert.deepEqual(statements, [], "no pass started after stop()");
  assert.deepEqual((await pendingTimers(L.relay.db)).map((t) => [t.id, t.claimed_by]), [["inc-x:0:0", null]], "the due timer is left for the next start");
});

test("a stop during a pass ends the claiming: after a storm the due timers it did not reach stay for the next start", async () => {
  const L = await startLoop({ config: { escalation: { enabled: false } } });
  for (let i = 0; i < 120; i++) await addTimer(L.relay.db, { id: `inc-s${i}:0:0`, incidentId: `inc-s${i}`, kind: "step", step: 0, round: 0, dueAt: L.clock.now - 1 });
  let claims = 0;
  let stopping: Promise<void> | undefined;
  // The engine's claims are updates of escalation_timers; the stop comes right after the first one.
  const db = withQueryHook(L.relay.db, (kind) => {
    if (kind === "UpdateQueryNode" && ++claims === 1)
      queueMicrotask(() => {
        stopping = engine.stop();
      });
  });
  const engine = engineUnderTest(L, db, 5);
  engine.start(3_600_000);
  while (!stopping) await new Promise((r) => setTimeout(r, 5));
  await stopping;
  const left = (await pendingTimers(L.relay.db)).filter((t) => t.id.startsWith("inc-s") && t.claimed_by === null);
  assert.ok(left.length >= 100, `most timers left unclaimed for the next start: ${left.length} of 120`);
});

test("a relay started without escalation leaves alarms alone (escalation.enabled: false)", async () => {
  const L = await startLoop({ config: { escalation: { enabled: false } } });
  await send(L.relay, alarm(L.hub, L.key, "sos", L.clock.now));
  assert.equal((await listIncidents(L.relay.db, {})).length, 0);
});




test("the CLI: careplan set / show / audit and token add work on a store the daemon migrated; reads are audited", async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), "anxin-esc-cli-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const L = await startLoop({ hub: "hub-cli-1", carePlan: false, dir });
  await L.rig.stop(); // the daemon ran (and migrated) first; the CLI opens the same file
  const { spawnSync } = await import("node:child_process");
  const tsx = path.resolve("node_modules/tsx/dist/esm/index.mjs");
  const cli = (...args: string[]) => spawnSync(process.execPath, ["--import", tsx, path.resolve("relay/src/cli/main.ts"), ...args, "--config", L.rig.configFile], { encoding: "utf8", timeout: 60_000 });
  const planFile = path.join(L.dir, "plan.json");
  await writeFile(planFile, JSON.stringify(CARE));
  let r = cli("careplan", "set", "hub-cli-1", planFile);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /version 1, 6 contact/);
  r = cli("careplan", "show", "hub-cli-1", "--purpose", "welfare review");
  assert.equal(r.status, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).plan.elder.phone, N.elder);
  r = cli("careplan", "audit", "hub-cli-1");
  assert.match(r.stdout, /cli:\S+\s+careplan\.write/);
  assert.match(r.stdout, /cli:\S+\s+careplan\.read\s+\(welfare review\)/);
  await writeFile(planFile, JSON.stringify({ ...CARE, elder: { ...CARE.elder, phone: "12345" } }));
  r = cli("careplan", "set", "hub-cli-1", planFile);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /elder\.phone/);
  assert.ok(!r.stderr.includes("12345"), "the refused value is not echoed");
  r = cli("token", "add", "--role", "installer", "--name", "ivan");
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout.trim(), /^anx_[A-Za-z0-9_-]{40,}$/);
  assert.equal(cli("hubs", "list").status, 0, "the hub commands open the migrated store too");
  // The printed provision line is complete: pasted on the hub it needs nothing added.
  r = cli("hubs", "add", "hub-cli-2", "--hub-config", "/srv/anxin hub/hub.yaml");
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^ {2}anxin-hub provision --relay \S+ --hub hub-cli-2 --code \S+ --config '\/srv\/anxin hub\/hub\.yaml'$/m);
  r = cli("hubs", "add", "hub-cli-3", "--hub-config", "/etc/anxin-hub/hub.yaml");
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^ {2}anxin-hub provision --relay \S+ --hub hub-cli-3 --code \S+$/m, "the default config path is not repeated");
});

test("forwards reach the duty platform signed; one a receiver refuses for good becomes a forward_dead operator alert", async () => {
  const { startWebhookStub } = await import("../support/webhook-stub.js");
  const hookSecret = "duty-platform-secret-0123456789";
  const clock = { now: Date.now() };
  const platform = await startWebhookStub({ secret: hookSecret, now: () => clock.now });
  const district = await startWebhookStub({ secret: hookSecret, now: () => clock.now });
  cleanups.push(() => platform.close(), () => district.close());
  district.setStatus(404); // a wrong URL at the operations centre: retrying will not help
  const L = await startLoop({
    clock,
    config: {
      forwarders: {
        pollMs: 50,
        destinations: [
          { name: "duty_platform", url: platform.url, secret: hookSecret },
          { name: "district_centre", url: district.url, secret: hookSecret },
        ],
      },
    },
  });
  L.gw.script(N.elder, { status: "no_answer", silent: true });
  await send(L.relay, alarm(L.hub, L.key, "gas", clock.now));
  await platform.waitFor(1);
  const first = platform.delivered[0]!;
  assert.equal(first.signatureOk, true);
  const body = first.json as { kind: string; incident: { type: string; hub: string }; update: { to: string } };
  assert.equal(body.kind, "anxin.incident");
  assert.deepEqual([body.incident.type, body.incident.hub, body.update.to], ["gas", L.hub, "received"]);
  const alert = await waitFor("forward_dead alert", async () =>
    (await L.relay.db.selectFrom("operator_alerts").selectAll().where("kind", "=", "forward_dead").executeTakeFirst()) ?? false,
  );
  assert.match(alert.detail, /district_centre/);
  assert.ok(!alert.detail.includes(CARE.elder.address), "the alert does not repeat the payload");
  assert.ok(!L.logs.some((l) => PERSONAL.some((p) => l.includes(p))), "no personal data in the relay's log");
});

test("a stored care plan that no longer validates never holds up ingest: the incident opens and the operator is told", async () => {
  const L = await startLoop();
  await L.relay.db.updateTable("care_plans").set({ plan: JSON.stringify({ elder: { name: "x" } }) }).where("hub", "=", L.hub).execute();
  const e = alarm(L.hub, L.key, "sos", L.clock.now);
  await send(L.relay, e);
  assert.ok(await L.relay.store.getEvent(e.id), "the alarm is committed");
  await advance(L, 0, [L.relay]);
  const inc = await onlyIncident(L.relay);
  assert.equal(inc.escalation, "running");
  const alerts = await L.relay.db.selectFrom("operator_alerts").select(["kind", "detail"]).where("kind", "=", "no_care_plan").execute();
  assert.ok(alerts.some((a) => /no longer valid/.test(a.detail)));
  const tok = (await addToken(L.relay.db, "alice", "operator", L.clock.now)).token;
  assert.equal((await api(L.relay, tok, "GET", `/v1/careplans/${L.hub}`)).status, 409);
});
