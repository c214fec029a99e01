// New evidence after "I am fine" (design invariant 10) and the arrival check after "I will go to the door",
// through the real daemon (startRelay: ingest, incidents opened and joined inside its commit, the escalation
// engine and its timers in the store, the operator API) on the store testOnBothStores opens — SQLite, and
// PostgreSQL when ANXIN_TEST_PG_URL is set — with a scripted telephony gateway over real HTTP that posts
// signed callbacks, and a clock the test moves.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { ulid } from "ulid";
import type { Envelope } from "../../protocol/envelope.js";
import { signEnvelope } from "../../protocol/signing.js";
import { addToken } from "../../relay/src/auth/tokens.js";
import type { CarePlanInput } from "../../relay/src/careplans/schema.js";
import { parseCarePlan, setCarePlan } from "../../relay/src/careplans/store.js";
import type { RunningRelay } from "../../relay/src/daemon/run.js";
import { pendingTimers } from "../../relay/src/escalation/timers.js";
import { listForwards } from "../../relay/src/forwarders/outbox.js";
import { getTimeline, listIncidents, type Incident, type TimelineEntry } from "../../relay/src/incidents/repo.js";
import type { Store } from "../../relay/src/store/store.js";
import { api, carePlan, PHONES, writeGatewaySecret } from "../support/care-plan-fixture.js";
import { waitFor } from "../support/hub-rig.js";
import { testOnBothStores } from "../support/loop-store.js";
import { startRelayForTest } from "../support/relay-rig.js";
import { startTelephonyStub, type TelephonyStub } from "../support/telephony-stub.js";

const SECRET = "evidence-test-gateway-secret-0123456789";
const HUB = "hub-evidence-1";
const N = PHONES;
const CARE: CarePlanInput = carePlan({
  devices: { "sos-1": { model: "anxin-sos-button-v2" }, "smoke-1": { model: "acme-smoke-9" }, "smoke-2": { model: "acme-smoke-9" } },
});
// The person policy with this care plan: 0 the elder (2 rounds), 1 son, 2 daughter, 3 niece, 4 committee, …
const PERSON_ARRIVAL = { checkAfterMs: 900_000, giveUpAfterMs: 300_000 };

interface Loop {
  relay: RunningRelay;
  gw: TelephonyStub;
  clock: { now: number };
  key: Buffer;
  stop(): Promise<void>;
}

/** The daemon on `store` (testOnBothStores owns it; a second relay may start on it after this one stops). */
async function startLoop(store: Store, o: { clock: { now: number }; gw: TelephonyStub; key?: Buffer }): Promise<Loop> {
  const tmp = await mkdtemp(path.join(os.tmpdir(), "anxin-evidence-"));
  const secretFile = await writeGatewaySecret(tmp, SECRET);
  const shared = Object.create(store) as Store;
  shared.close = async () => {};
  const never = "http://127.0.0.1:9/never"; // delivery is the forwarders' concern; here only the outbox rows matter
  const rig = await startRelayForTest({
    now: () => o.clock.now,
    config: {
      telephony: { kind: "http", url: o.gw.url, secretFile, retries: 0, backoffMs: 0, timeoutMs: 3000 },
      escalation: { pollMs: 50 },
      forwarders: { pollMs: 60_000, destinations: [{ name: "duty_platform", url: never, secret: "0123456789abcdef0123" }] },
    },
    parts: { openStore: async () => shared },
  });
  const key = o.key ?? Buffer.from((await rig.relay.registry.provisionDirect(HUB)).key, "base64");
  if (!o.key) await setCarePlan(rig.relay.db, HUB, parseCarePlan(CARE, "test"), { actor: "test", purpose: "setup", at: o.clock.now });
  return {
    relay: rig.relay,
    gw: o.gw,
    clock: o.clock,
    key,
    stop: async () => {
      await rig.stop();
      await rm(tmp, { recursive: true, force: true });
    },
  };
}

/** Runs `f` with a gateway and a loop on `store`, stopping both whatever happens. */
async function withLoop(store: Store, f: (L: Loop, restart: () => Promise<Loop>) => Promise<void>): Promise<void> {
  const clock = { now: Date.now() };
  const gw = await startTelephonyStub({ secret: SECRET, now: () => clock.now, defaultStep: { status: "no_answer", silent: true } });
  let L = await startLoop(store, { clock, gw });
  try {
    await f(L, async () => {
      await L.stop();
      L = await startLoop(store, { clock, gw, key: L.key });
      return L;
    });
  } finally {
    await L.stop();
    await gw.close();
  }
}

let seq = 0;
function event(L: Loop, e: Omit<Envelope, "v" | "hub" | "boot" | "seq" | "id" | "ts">): Envelope {
  return signEnvelope({ v: 1, hub: HUB, boot: 1, seq: ++seq, id: ulid(), ts: L.clock.now, ...e }, L.key);
}
const alarm = (L: Loop, type: string, device: string) => event(L, { kind: "alarm", type, severity: "critical", device, data: { trigger: "test" } });

async function send(L: Loop, ...envs: Envelope[]): Promise<void> {
  for (const e of envs) L.relay.ingest.handle(e.hub, Buffer.from(JSON.stringify(e)));
  await L.relay.ingest.flush();
}

/** Moves the clock on and lets the relay run what fell due (and what that made due at once). */
async function advance(L: Loop, ms: number): Promise<void> {
  await L.relay.escalation.runDue();
  L.clock.now += ms;
  for (let i = 0; i < 3; i++) await L.relay.escalation.runDue();
}

async function onlyIncident(relay: RunningRelay): Promise<Incident> {
  const all = await listIncidents(relay.db, {});
  assert.equal(all.length, 1, "one incident");
  return all[0]!;
}

const until = (L: Loop, what: string, test: (i: Incident) => boolean) =>
  waitFor(what, async () => {
    const i = await onlyIncident(L.relay);
    return test(i) && i;
  });

const attemptsOf = (gw: TelephonyStub, from = 0) => gw.calls.slice(from).map((c) => [c.to, c.attemptId]);
const alertsOf = (L: Loop, kind: string) => L.relay.db.selectFrom("operator_alerts").selectAll().where("kind", "=", kind).execute();
const entries = async (L: Loop, id: string, kind: string): Promise<TimelineEntry[]> => (await getTimeline(L.relay.db, id)).filter((e) => e.kind === kind);
const token = async (L: Loop) => (await addToken(L.relay.db, `op-${ulid()}`, "operator", L.clock.now)).token;

testOnBothStores("smoke, the elder presses 2 ('I am fine'), a second detector fires: the elder is called again from the policy's step, the operator alerted, the update forwarded", (store) =>
  withLoop(store, async (L) => {
    L.gw.script(N.elder, [{ status: "answered", digits: "2" }, { status: "no_answer", silent: true }]);
    await send(L, alarm(L, "smoke", "smoke-1"));
    await advance(L, 0);
    await L.gw.waitForCallbacks(1);
    let inc = await until(L, "acknowledged by the elder", (i) => i.escalation === "acknowledged");
    assert.equal(inc.acknowledgedBy, "elder");
    assert.equal(inc.state, "confirming");
    await advance(L, 600_000);
    assert.equal(L.gw.calls.length, 3, "the elder and the community responders, then the calls stopped");

    const second = alarm(L, "smoke", "smoke-2");
    await send(L, second);
    await advance(L, 0);
    await L.gw.waitForCalls(6);
    // fire_gas restarts at its first step: the elder and the community responders at once, as a new pass.
    assert.deepEqual(
      attemptsOf(L.gw, 3).sort(),
      [
        [N.elder, `${inc.id}:p1:0:0:elder`],
        [N.committee, `${inc.id}:p1:0:0:committee`],
        [N.firestation, `${inc.id}:p1:0:0:firestation`],
      ].sort(),
    );
    assert.match(L.gw.calls.find((c) => c.attemptId === `${inc.id}:p1:0:0:elder`)!.message, /Press 1 if you need help/);
    inc = await onlyIncident(L.relay);
    assert.deepEqual([inc.escalation, inc.acknowledgedBy, inc.alarms, inc.state], ["running", null, 2, "confirming"], "the confirmation is open again");

    const [ev] = await entries(L, inc.id, "new_evidence");
    assert.ok(ev, "a new_evidence timeline entry");
    assert.equal(ev.actor, `hub:${HUB}`);
    assert.deepEqual(ev.detail, { eventId: second.id, device: "smoke-2", severity: "critical", why: ["another_device", "new_episode"], escalation: "acknowledged", restartAtStep: 1 });
    assert.ok((await entries(L, inc.id, "escalation")).some((e) => /^restarted at step 1/.test(e.cause ?? "")));

    const [alert] = await alertsOf(L, "new_evidence");
    assert.ok(alert, "a new_evidence operator alert");
    assert.equal(alert.incident_id, inc.id);
    assert.match(alert.detail, /smoke alarm from device smoke-2/);
    assert.match(alert.detail, /acknowledged by elder/);
    assert.match(alert.detail, /restarts at step 1/);
    assert.ok(!alert.detail.includes(CARE.elder.address) && !alert.detail.includes(N.elder), "no personal data in the alert");

    const fwd = (await listForwards(L.relay.db, { limit: 1000 })).map((f) => f.payload as { incident: { id: string }; update: { id: string; kind: string; detail: Record<string, unknown> } });
    const forwarded = fwd.find((p) => p.update.kind === "new_evidence");
    assert.ok(forwarded, "the update is in the forwarders' outbox");
    assert.equal(forwarded.incident.id, inc.id);
    assert.equal(forwarded.update.id, ev.id);
    assert.equal(forwarded.update.detail.device, "smoke-2");

    // The new pass runs on like the first: after the step's wait, the emergency contacts.
    await advance(L, 60_000);
    await L.gw.waitForCalls(7);
    assert.deepEqual(attemptsOf(L.gw, 6), [[N.son, `${inc.id}:p1:1:0:son`]]);
  }),
);

testOnBothStores("the same detector raising again while its calls are still running, a resend and readings restart nothing", (store) =>
  withLoop(store, async (L) => {
    const first = alarm(L, "smoke", "smoke-1");
    await send(L, first);
    await advance(L, 0);
    await L.gw.waitForCalls(3);
    await advance(L, 10_000);
    await send(
      L,
      { ...first, historical: true }, // the hub's resend: the same event id
      alarm(L, "smoke", "smoke-1"), // the same detector raising again, same emergency
      event(L, { kind: "reading", type: "detector_level", severity: "info", device: "smoke-1", data: { value: 12 } }),
      event(L, { kind: "reading", type: "smoke_spread", severity: "high", device: "smoke-1", data: {} }), // not another device
    );
    await advance(L, 0);
    const inc = await onlyIncident(L.relay);
    assert.equal(L.gw.calls.length, 3, "no new calls");
    assert.deepEqual([inc.alarms, inc.escalation], [2, "running"]);
    assert.equal((await entries(L, inc.id, "joined")).length, 1, "the repeat joined");
    assert.deepEqual(await entries(L, inc.id, "new_evidence"), []);
    assert.deepEqual(await alertsOf(L, "new_evidence"), []);
    assert.deepEqual((await pendingTimers(L.relay.db, inc.id)).map((t) => t.id), [`${inc.id}:1:0`], "the tree's own next step, nothing else");
    // And the tree goes on at its own pace.
    await advance(L, 60_000);
    await L.gw.waitForCalls(4);
    assert.deepEqual(attemptsOf(L.gw, 3), [[N.son, `${inc.id}:1:0:son`]]);
  }),
);

testOnBothStores("smoke reaching another detector (the hub's smoke_spread reading) after 'I am fine' restarts the calls too", (store) =>
  withLoop(store, async (L) => {
    L.gw.script(N.elder, [{ status: "answered", digits: "2" }, { status: "no_answer", silent: true }]);
    await send(L, alarm(L, "smoke", "smoke-1"));
    await advance(L, 0);
    await L.gw.waitForCallbacks(1);
    const inc = await until(L, "acknowledged by the elder", (i) => i.escalation === "acknowledged");
    await send(L, event(L, { kind: "reading", type: "smoke_spread", severity: "high", device: "smoke-2", data: { alarmSince: L.clock.now } }));
    await advance(L, 0);
    await L.gw.waitForCalls(6);
    assert.ok(L.gw.calls.some((c) => c.attemptId === `${inc.id}:p1:0:0:elder`), "the elder is called again");
    const [ev] = await entries(L, inc.id, "new_evidence");
    assert.deepEqual(ev?.detail?.why, ["another_device"]);
    assert.match((await alertsOf(L, "new_evidence"))[0]?.detail ?? "", /smoke reported by another device \(smoke-2\)/);
    assert.equal((await onlyIncident(L.relay)).alarms, 1, "a reading is not counted as an alarm");
  }),
);

testOnBothStores("an SOS pressed again after the elder said 'I am fine' calls the elder back again", (store) =>
  withLoop(store, async (L) => {
    L.gw.script(N.elder, [{ status: "answered", digits: "2" }, { status: "no_answer", silent: true }]);
    await send(L, alarm(L, "sos", "sos-1"));
    await advance(L, 0);
    await L.gw.waitForCallbacks(1);
    const inc = await until(L, "acknowledged by the elder", (i) => i.escalation === "acknowledged");
    await advance(L, 300_000);
    assert.equal(L.gw.calls.length, 1);
    await send(L, alarm(L, "sos", "sos-1"));
    await advance(L, 0);
    await L.gw.waitForCalls(2);
    assert.deepEqual(attemptsOf(L.gw, 1), [[N.elder, `${inc.id}:p1:0:0:elder`]], "the person policy's first step: the elder");
    const [ev] = await entries(L, inc.id, "new_evidence");
    assert.deepEqual(ev?.detail?.why, ["new_episode"]);
    assert.equal((await alertsOf(L, "new_evidence")).length, 1);
    assert.equal((await onlyIncident(L.relay)).escalation, "running");
  }),
);

/** SOS; the elder does not answer (twice); the son answers and presses 1: "I will go to the door". */
async function sonGoesToTheDoor(L: Loop, sonScript: Parameters<TelephonyStub["script"]>[1]): Promise<Incident> {
  L.gw.script(N.elder, { status: "no_answer" });
  L.gw.script(N.son, sonScript);
  await send(L, alarm(L, "sos", "sos-1"));
  await advance(L, 0);
  await L.gw.waitForCallbacks(3);
  const inc = await until(L, "acknowledged by the son", (i) => i.acknowledgedBy === "emergency_contact:son");
  assert.deepEqual(L.gw.calls.map((c) => c.to), [N.elder, N.elder, N.son]);
  return inc;
}

testOnBothStores("arrival confirmed: the son is asked 15 minutes later, presses 1, the timeline records it and the tree stays stopped — across a relay restart", (store) =>
  withLoop(store, async (L0, restart) => {
    const inc = await sonGoesToTheDoor(L0, [{ status: "answered", digits: "1" }, { status: "answered", digits: "1" }]);
    const ack = (await entries(L0, inc.id, "acknowledged"))[0]!;
    const check = (await pendingTimers(L0.relay.db, inc.id)).find((t) => t.kind === "arrival");
    assert.equal(check?.due_at, ack.at + PERSON_ARRIVAL.checkAfterMs, "the check is a timer in the store");
    assert.equal(ack.detail?.arrivalCheckAt, check?.due_at);
    const L = await restart(); // the timer survives the relay
    await advance(L, PERSON_ARRIVAL.checkAfterMs - 1000);
    assert.equal(L.gw.calls.length, 3, "not before its time");
    await advance(L, 1000);
    await L.gw.waitForCalls(4);
    const call = L.gw.calls[3]!;
    assert.equal(call.to, N.son);
    assert.equal(call.attemptId, `${inc.id}:arrival:1:0:son`);
    assert.match(call.message, /you said you would go to the door at Room 302, 12 Lane 88.*Press 1 if you are with the elder now, 2 if you could not get there/);
    await L.gw.waitForCallbacks(4);
    const [arrived] = await waitFor("the arrival on the timeline", async () => {
      const e = await entries(L, inc.id, "arrival");
      return e.length > 0 && e;
    });
    assert.equal(arrived!.actor, "emergency_contact:son");
    assert.equal(arrived!.cause, "with the elder");
    assert.ok((await listForwards(L.relay.db, { limit: 1000 })).some((f) => (f.payload as { update: { id: string } }).update.id === arrived!.id), "forwarded");
    await advance(L, 3_600_000);
    assert.equal(L.gw.calls.length, 4, "the tree stays stopped");
    const after = await onlyIncident(L.relay);
    assert.deepEqual([after.escalation, after.acknowledgedBy], ["acknowledged", "emergency_contact:son"]);
    assert.deepEqual(await alertsOf(L, "arrival_unconfirmed"), []);
    assert.deepEqual(await pendingTimers(L.relay.db, inc.id), []);
  }),
);

testOnBothStores("arrival not confirmed in time: the tree resumes at the step after the son's and the operator is alerted", (store) =>
  withLoop(store, async (L) => {
    const inc = await sonGoesToTheDoor(L, [{ status: "answered", digits: "1" }, { status: "no_answer", silent: true }]);
    await advance(L, PERSON_ARRIVAL.checkAfterMs);
    await L.gw.waitForCalls(4);
    assert.equal(L.gw.calls[3]!.attemptId, `${inc.id}:arrival:1:0:son`);
    await advance(L, PERSON_ARRIVAL.giveUpAfterMs - 1000);
    assert.equal(L.gw.calls.length, 4, "the son still has time to answer");
    await advance(L, 1000);
    await L.gw.waitForCalls(5);
    assert.deepEqual(attemptsOf(L.gw, 4), [[N.daughter, `${inc.id}:p1:2:0:daughter`]], "the next emergency contact");
    const now = await onlyIncident(L.relay);
    assert.deepEqual([now.escalation, now.acknowledgedBy], ["running", null]);
    const [alert] = await alertsOf(L, "arrival_unconfirmed");
    assert.ok(alert, "an arrival_unconfirmed alert");
    assert.equal(alert.incident_id, inc.id);
    assert.match(alert.detail, /emergency_contact son said they would go to the door and has not confirmed arriving \(no answer to the check in time\); the call tree resumes at step 3/);
    const [entry] = await entries(L, inc.id, "arrival_unconfirmed");
    assert.equal(entry?.detail?.resumeAtStep, 3);
    assert.ok((await listForwards(L.relay.db, { limit: 1000 })).some((f) => (f.payload as { update: { id: string } }).update.id === entry.id), "forwarded");
    // The resumed tree runs on at its pace: the niece after the daughter's wait.
    await advance(L, 45_000);
    await L.gw.waitForCalls(6);
    assert.deepEqual(attemptsOf(L.gw, 5), [[N.niece, `${inc.id}:p1:3:0:niece`]]);
  }),
);

testOnBothStores("arrival check answered with 2 ('I could not get there'): the tree resumes at once", (store) =>
  withLoop(store, async (L) => {
    const inc = await sonGoesToTheDoor(L, [{ status: "answered", digits: "1" }, { status: "answered", digits: "2" }]);
    await advance(L, PERSON_ARRIVAL.checkAfterMs);
    await L.gw.waitForCallbacks(4);
    await waitFor("the daughter called", async () => L.gw.calls.length >= 5 || (await L.relay.escalation.runDue(), false));
    assert.deepEqual(attemptsOf(L.gw, 4), [[N.daughter, `${inc.id}:p1:2:0:daughter`]]);
    assert.match((await alertsOf(L, "arrival_unconfirmed"))[0]?.detail ?? "", /could not get there/);
  }),
);

testOnBothStores("an operator resolving the incident cancels the arrival check", (store) =>
  withLoop(store, async (L) => {
    const inc = await sonGoesToTheDoor(L, [{ status: "answered", digits: "1" }, { status: "answered", digits: "1" }]);
    assert.ok((await pendingTimers(L.relay.db, inc.id)).some((t) => t.kind === "arrival"));
    const tok = await token(L);
    assert.equal((await api(L.relay, tok, "POST", `/v1/incidents/${inc.id}/confirm`, {})).status, 200);
    assert.equal((await api(L.relay, tok, "POST", `/v1/incidents/${inc.id}/resolve`, { summary: "the son is with her; she is well" })).json.incident.state, "resolved");
    assert.deepEqual((await pendingTimers(L.relay.db, inc.id)).map((t) => t.kind), ["follow_up"], "only the return visit is left");
    await advance(L, PERSON_ARRIVAL.checkAfterMs + PERSON_ARRIVAL.giveUpAfterMs);
    assert.equal(L.gw.calls.length, 3, "nobody is asked about arriving");
    assert.deepEqual(await alertsOf(L, "arrival_unconfirmed"), []);
  }),
);
