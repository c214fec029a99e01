// The radars' behaviour alarms at the relay: fall, vital_absent, vital_abnormal and inactivity through the
// real daemon (startRelay: ingest, incident opening inside its commit, the escalation engine, the operator
// API) on the store testOnBothStores opens — SQLite, and PostgreSQL when ANXIN_TEST_PG_URL is set — with a
// scripted telephony gateway over HTTP that never calls back, so only the test's clock moves a call tree.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { ulid } from "ulid";
import type { Envelope } from "../../protocol/envelope.js";
import { signEnvelope } from "../../protocol/signing.js";
import { addToken } from "../../relay/src/auth/tokens.js";
import type { CarePlanInput } from "../../relay/src/careplans/schema.js";
import { parseCarePlan, setCarePlan } from "../../relay/src/careplans/store.js";
import type { RunningRelay } from "../../relay/src/daemon/run.js";
import { DEFAULT_POLICIES, loadPolicySet, policyFor, type PolicySetInput } from "../../relay/src/escalation/policy.js";
import { pendingTimers } from "../../relay/src/escalation/timers.js";
import { JOINABLE_STATES } from "../../relay/src/incidents/lifecycle.js";
import { getTimeline, listIncidents, type Incident } from "../../relay/src/incidents/repo.js";
import { Ingest } from "../../relay/src/ingest/ingest.js";
import type { Store } from "../../relay/src/store/store.js";
import { api, carePlan, contacts, PHONES, writeGatewaySecret } from "../support/care-plan-fixture.js";
import { testOnBothStores } from "../support/loop-store.js";
import { startRelayForTest } from "../support/relay-rig.js";
import { startTelephonyStub, type TelephonyStub } from "../support/telephony-stub.js";

const SECRET = "behaviour-alarms-gateway-secret-0123456789";
const N = PHONES;
const CARE: CarePlanInput = carePlan({
  contacts: contacts("son", "daughter", "committee", "upstairs"),
  // Deliberately another model than the bedroom radar reports: the report must follow the alarm's data.model.
  devices: { "radar-bed": { model: "careplan-radar-x" } },
});

type RadarType = "fall" | "vital_absent" | "vital_abnormal" | "inactivity";
const TYPES: readonly RadarType[] = ["fall", "vital_absent", "vital_abnormal", "inactivity"];
const FALL_MODEL = "anxin-mmw-fall-60";
const SLEEP_MODEL = "anxin-mmw-sleep-24";
/** What each alarm looks like on the wire, and what the relay must make of it. */
const RADAR: Record<RadarType, { severity: Envelope["severity"]; device: string; room: string; model: string; trigger: string; policy: string }> = {
  fall: { severity: "critical", device: "radar-bath", room: "bathroom", model: FALL_MODEL, trigger: "fall_report", policy: "person" },
  vital_absent: { severity: "critical", device: "radar-bed", room: "bedroom", model: SLEEP_MODEL, trigger: "no_vital_signs", policy: "person" },
  vital_abnormal: { severity: "high", device: "radar-bed", room: "bedroom", model: SLEEP_MODEL, trigger: "heart_rate_high", policy: "person" },
  inactivity: { severity: "warning", device: "radar-living", room: "living_room", model: FALL_MODEL, trigger: "no_movement", policy: "welfare" },
};

interface Loop {
  relay: RunningRelay;
  gw: TelephonyStub;
  clock: { now: number };
  hub: string;
  key: Buffer;
  /** Every id the relay acknowledged to the hub, in order. */
  acked: string[];
  stop(): Promise<void>;
}

const HUB = "hub-radar-1";

/**
 * The daemon on `store` (which testOnBothStores owns and closes: the relay's stop leaves it open, so a second
 * relay can start on it). Acks are recorded on their way out through the real Ingest.
 */
async function startLoop(store: Store, o: { clock?: { now: number }; gw?: TelephonyStub; policies?: PolicySetInput; key?: Buffer } = {}): Promise<Loop> {
  const clock = o.clock ?? { now: Date.now() };
  const gw = o.gw ?? (await startTelephonyStub({ secret: SECRET, now: () => clock.now, defaultStep: { status: "no_answer", silent: true } }));
  const tmp = await mkdtemp(path.join(os.tmpdir(), "anxin-radar-"));
  const secretFile = await writeGatewaySecret(tmp, SECRET);
  let policiesFile: string | undefined;
  if (o.policies) await writeFile((policiesFile = path.join(tmp, "policies.json")), JSON.stringify(o.policies));
  const shared = Object.create(store) as Store;
  shared.close = async () => {};
  const acked: string[] = [];
  const rig = await startRelayForTest({
    now: () => clock.now,
    config: {
      telephony: { kind: "http", url: gw.url, secretFile, retries: 0, backoffMs: 0, timeoutMs: 3000 },
      escalation: { pollMs: 50, ...(policiesFile ? { policiesFile } : {}) },
    },
    parts: {
      openStore: async () => shared,
      ingest: (io) =>
        new Ingest({
          ...io,
          onAck: (hub, ids, at) => {
            acked.push(...ids);
            io.onAck(hub, ids, at);
          },
        }),
    },
  });
  // A restart on the same store keeps the hub (and its key) and the care plan from the first run.
  const key = o.key ?? Buffer.from((await rig.relay.registry.provisionDirect(HUB)).key, "base64");
  if (!o.key) await setCarePlan(rig.relay.db, HUB, parseCarePlan(CARE, "test"), { actor: "test", purpose: "setup", at: clock.now });
  return {
    relay: rig.relay,
    gw,
    clock,
    hub: HUB,
    key,
    acked,
    stop: async () => {
      await rig.stop();
      if (!o.gw) await gw.close();
      await rm(tmp, { recursive: true, force: true });
    },
  };
}

/** Runs `f` with a loop on `store`, stopping it (and its gateway) whatever happens. */
async function withLoop(store: Store, f: (L: Loop) => Promise<void>): Promise<void> {
  const L = await startLoop(store);
  try {
    await f(L);
  } finally {
    await L.stop();
  }
}

let seq = 0;
function event(L: Pick<Loop, "hub" | "key" | "clock">, e: Omit<Envelope, "v" | "hub" | "boot" | "seq" | "id" | "ts">): Envelope {
  return signEnvelope({ v: 1, hub: L.hub, boot: 1, seq: ++seq, id: ulid(), ts: L.clock.now, ...e }, L.key);
}

/** A radar alarm as the hub raises it: evidence and the device model in `data`. */
function radarAlarm(L: Pick<Loop, "hub" | "key" | "clock">, type: RadarType): Envelope {
  const r = RADAR[type];
  const evidence = { trigger: r.trigger, readings: { presence: true, motion: "none" }, windows: { stillS: 600 } };
  return event(L, { kind: "alarm", type, severity: r.severity, device: r.device, room: r.room, data: { ...(type === "fall" ? { trigger: r.trigger } : {}), evidence, model: r.model } });
}

async function send(L: Loop, ...envs: Envelope[]): Promise<void> {
  for (const e of envs) L.relay.ingest.handle(e.hub, Buffer.from(JSON.stringify(e)));
  await L.relay.ingest.flush();
}

/** Moves the clock on and lets the relay run what fell due (and what that made due at once). */
async function advance(L: Loop, ms: number): Promise<void> {
  await L.relay.escalation.runDue(); // what is under way finishes on the old time first
  L.clock.now += ms;
  for (let i = 0; i < 3; i++) await L.relay.escalation.runDue();
}

/** Advances in `stepMs` steps to `totalMs`, so each timer runs exactly when it falls due. */
async function advanceBy(L: Loop, totalMs: number, stepMs = 15_000): Promise<void> {
  for (let t = 0; t < totalMs; t += stepMs) await advance(L, stepMs);
}

/** The incidents a new alarm would join (not yet a false alarm, resolved or closed), by type. */
async function byType(relay: RunningRelay): Promise<Map<string, Incident>> {
  const all = (await listIncidents(relay.db, {})).filter((i) => JOINABLE_STATES.has(i.state));
  const m = new Map(all.map((i) => [i.type, i]));
  assert.equal(m.size, all.length, "one open incident per type");
  return m;
}

/** The incident's call attempts as [target, seconds after it opened], in the order they were asked for. */
async function callsOf(relay: RunningRelay, inc: Incident): Promise<Array<[string, number]>> {
  const rows = await relay.db.selectFrom("call_attempts").select(["target", "requested_at", "step", "round"]).where("incident_id", "=", inc.id).orderBy("requested_at").orderBy("step").orderBy("round").execute();
  return rows.map((r) => [r.target, (Number(r.requested_at) - inc.openedAt) / 1000]);
}

testOnBothStores("radar alarms: each type opens an incident with its policy frozen into it, inactivity (a warning) too, and the elder is called first", (store) =>
  withLoop(store, async (L) => {
    const alarms = TYPES.map((t) => radarAlarm(L, t));
    await send(L, ...alarms);
    await advance(L, 0);
    const incidents = await byType(L.relay);
    assert.deepEqual([...incidents.keys()].sort(), [...TYPES].sort(), "an incident for every radar alarm");
    const defaults = loadPolicySet();
    for (const [i, type] of TYPES.entries()) {
      const inc = incidents.get(type)!;
      const r = RADAR[type];
      assert.equal(inc.policyName, r.policy, `${type}: policy`);
      assert.equal(inc.policyVersion, policyFor(defaults, type).version, `${type}: policy version`);
      assert.equal(inc.severity, r.severity, `${type}: severity kept`);
      assert.equal(inc.eventId, alarms[i]!.id, `${type}: opened by its alarm`);
      assert.equal(inc.deviceModel, r.model, `${type}: the model the alarm reported`);
      assert.equal(inc.escalation, "running", `${type}: calls under way`);
      const row = await L.relay.db.selectFrom("incidents").select(["policy", "plan"]).where("id", "=", inc.id).executeTakeFirstOrThrow();
      assert.deepEqual(JSON.parse(row.policy), policyFor(defaults, type), `${type}: the policy is copied into the incident`);
      assert.deepEqual(JSON.parse(row.plan).steps[0].targets.map((t: { ref: string }) => t.ref), ["elder"], `${type}: the frozen plan starts with the elder`);
      // Only the elder at the start: nobody else is rung while the elder's phone is ringing.
      assert.deepEqual(await callsOf(L.relay, inc), [["elder", 0]], `${type}: the first call goes to the elder alone`);
      const call = L.gw.calls.find((c) => c.attemptId === `${inc.id}:0:0:elder`);
      assert.equal(call?.to, N.elder, `${type}: placed to the elder's number`);
    }
    assert.equal(L.gw.calls.length, TYPES.length, "one call per incident so far");
    assert.deepEqual(new Set(L.acked), new Set(alarms.map((a) => a.id)), "every alarm acknowledged to the hub");
  }),
);

testOnBothStores("radar alarms: the welfare check (inactivity) waits minutes where fall and vital signs wait 45 s", (store) =>
  withLoop(store, async (L) => {
    await send(L, ...TYPES.map((t) => radarAlarm(L, t)));
    await advance(L, 0);
    await advanceBy(L, 360_000);
    const incidents = await byType(L.relay);
    // Nobody answers (the gateway never reports), so only each step's wait moves the tree on.
    const person: Array<[string, number]> = [["elder", 0], ["elder", 45], ["son", 90], ["daughter", 135], ["committee", 180], ["upstairs", 240], ["onsite_team", 300]];
    for (const type of ["fall", "vital_absent", "vital_abnormal"] as const) assert.deepEqual(await callsOf(L.relay, incidents.get(type)!), person, `${type}: the person policy's pace`);
    assert.deepEqual(await callsOf(L.relay, incidents.get("inactivity")!), [["elder", 0], ["elder", 120], ["son", 240], ["daughter", 360]], "inactivity: the welfare policy's longer waits");
  }),
);

testOnBothStores("radar alarms: alarm_cleared is noted but never stops the calls; an operator acknowledging does", (store) =>
  withLoop(store, async (L) => {
    await send(L, ...TYPES.map((t) => radarAlarm(L, t)));
    await advance(L, 0);
    const opened = await byType(L.relay);
    // The radar stops flagging each of them (the fall flag drops, vital signs are read again, she moves).
    await send(L, ...TYPES.map((type) => event(L, { kind: "alarm_cleared", type, severity: "info", device: RADAR[type].device, data: { model: RADAR[type].model } })));
    await advance(L, 0);
    for (const type of TYPES) {
      const inc = (await byType(L.relay)).get(type);
      assert.ok(inc, `${type}: still open after alarm_cleared`);
      assert.equal(inc.id, opened.get(type)!.id);
      assert.equal(inc.escalation, "running", `${type}: the call tree runs on`);
      assert.equal(inc.state, "confirming", `${type}: state unchanged`);
      assert.ok((await pendingTimers(L.relay.db, inc.id)).length > 0, `${type}: its next step is still due`);
      const cleared = (await getTimeline(L.relay.db, inc.id)).filter((e) => e.kind === "alarm_cleared");
      assert.deepEqual(cleared.map((e) => e.actor), [`hub:${L.hub}`], `${type}: the clear is on the timeline`);
    }
    // The next steps still come: the elder again, then the family.
    await advanceBy(L, 120_000);
    const fall = opened.get("fall")!;
    assert.deepEqual(await callsOf(L.relay, fall), [["elder", 0], ["elder", 45], ["son", 90]], "fall: calls go on after the radar cleared");
    assert.deepEqual((await callsOf(L.relay, opened.get("inactivity")!)).map(([t]) => t), ["elder", "elder"], "inactivity: the welfare check goes on too");
    // Still the same incident: another fall report joins it rather than starting a second tree.
    await send(L, radarAlarm(L, "fall"));
    const joined = (await byType(L.relay)).get("fall")!;
    assert.equal(joined.id, fall.id);
    assert.equal(joined.alarms, 2);
    // A person taking it in hand is what stops the calls.
    const tok = (await addToken(L.relay.db, "alice", "operator", L.clock.now)).token;
    const ack = await api(L.relay, tok, "POST", `/v1/incidents/${fall.id}/acknowledge`, { note: "spoke to her neighbour" });
    assert.equal(ack.status, 200);
    assert.equal(ack.json.incident.escalation, "acknowledged");
    const before = (await callsOf(L.relay, fall)).length;
    await advanceBy(L, 600_000, 60_000);
    assert.equal((await callsOf(L.relay, fall)).length, before, "no calls for the fall once acknowledged");
    assert.ok((await callsOf(L.relay, opened.get("vital_absent")!)).length > before, "the other incidents' trees went on meanwhile");
  }),
);

testOnBothStores("radar alarms: each new false-alarm reason is accepted and counted per home and per device model (the alarm's data.model)", (store) =>
  withLoop(store, async (L) => {
    await send(L, ...TYPES.map((t) => radarAlarm(L, t)));
    await advance(L, 0);
    const incidents = await byType(L.relay);
    const tok = (await addToken(L.relay.db, "alice", "operator", L.clock.now)).token;
    const reasons: Record<RadarType, string> = { fall: "lying_down_to_rest", vital_absent: "out_of_radar_range", vital_abnormal: "visitor", inactivity: "pet" };
    const fall = incidents.get("fall")!;
    assert.equal((await api(L.relay, tok, "POST", `/v1/incidents/${fall.id}/false-alarm`, { reason: "sleepwalking" })).status, 400, "an unknown reason is refused");
    for (const type of TYPES) {
      const r = await api(L.relay, tok, "POST", `/v1/incidents/${incidents.get(type)!.id}/false-alarm`, { reason: reasons[type], note: "checked by phone" });
      assert.equal(r.status, 200, `${type}: ${JSON.stringify(r.json)}`);
      assert.equal(r.json.incident.state, "false_alarm");
      assert.equal(r.json.incident.falseAlarmReason, reasons[type]);
      assert.equal(r.json.incident.escalation, "stopped", `${type}: the calls stop`);
      assert.equal(r.json.entry.detail.reason, reasons[type]);
    }
    // A later real fall opens a new incident (the false alarm freed the slot) and counts as one not false.
    await send(L, radarAlarm(L, "fall"));
    const again = (await byType(L.relay)).get("fall");
    assert.ok(again && again.id !== fall.id, "a new fall incident");
    assert.equal(again.falseAlarmReason, null);

    const rep = await api(L.relay, tok, "GET", "/v1/reports/false-alarms");
    assert.equal(rep.status, 200);
    assert.deepEqual(rep.json.perHome, [{ key: L.hub, incidents: 5, falseAlarms: 4, rate: 0.8, reasons: { lying_down_to_rest: 1, out_of_radar_range: 1, visitor: 1, pet: 1 } }]);
    assert.deepEqual(rep.json.perDeviceModel, [
      { key: SLEEP_MODEL, incidents: 2, falseAlarms: 2, rate: 1, reasons: { out_of_radar_range: 1, visitor: 1 } },
      { key: FALL_MODEL, incidents: 3, falseAlarms: 2, rate: 0.667, reasons: { lying_down_to_rest: 1, pet: 1 } },
    ]);
  }),
);

testOnBothStores("vitals_trend readings are stored as sent and acknowledged, one row each, and never open an incident", (store) =>
  withLoop(store, async (L) => {
    const trends: Envelope[] = [];
    for (let m = 0; m < 3; m++) {
      const to = L.clock.now;
      const data = { from: to - 60_000, to, heartRate: { n: 58, mean: 66.5 + m, min: 61, max: 72 }, breathing: { n: 58, mean: 15.2, min: 13, max: 18 }, inBed: true, model: SLEEP_MODEL };
      trends.push(event(L, { kind: "reading", type: "vitals_trend", severity: "info", device: "radar-bed", room: "bedroom", data }));
      L.clock.now += 60_000;
    }
    await send(L, ...trends);
    await advance(L, 0);
    assert.deepEqual(L.acked, trends.map((e) => e.id), "acknowledged once each, in order");
    assert.equal(await L.relay.store.countEvents(L.hub), trends.length, "one row per trend event, nothing expanded");
    for (const e of trends) {
      const row = await L.relay.store.getEvent(e.id);
      assert.equal(row?.kind, "reading");
      assert.equal(row?.type, "vitals_trend");
      assert.deepEqual(JSON.parse(row.payload), e, "kept as the hub sent it");
    }
    assert.equal((await listIncidents(L.relay.db, {})).length, 0, "no incident");
    assert.equal((await L.relay.db.selectFrom("escalation_timers").select("id").execute()).length, 0, "no timer");
    assert.equal((await L.relay.db.selectFrom("operator_alerts").select("id").execute()).length, 0, "no alert");
    assert.equal(L.gw.calls.length, 0, "nobody called");
    // Sent again (the hub missed the ack): acknowledged again, stored once.
    await send(L, trends[0]!);
    assert.equal(L.acked.at(-1), trends[0]!.id);
    assert.equal(await L.relay.store.countEvents(L.hub), trends.length);
  }),
);

testOnBothStores("radar alarms: a policy changed between relay runs leaves a fall in flight on the policy it started with", async (store) => {
  const clock = { now: Date.now() };
  const gw = await startTelephonyStub({ secret: SECRET, now: () => clock.now, defaultStep: { status: "no_answer", silent: true } });
  try {
    const A = await startLoop(store, { clock, gw });
    let fallId: string;
    try {
      await send(A, radarAlarm(A, "fall"));
      await advance(A, 0);
      fallId = (await byType(A.relay)).get("fall")!.id;
    } finally {
      await A.stop();
    }
    // The next person version calls the family before the elder; fall keeps its own (elder twice, then the family).
    const was = policyFor(loadPolicySet(), "fall").version;
    const v2: PolicySetInput = {
      ...DEFAULT_POLICIES,
      policies: DEFAULT_POLICIES.policies.map((p) => (p.name === "person" ? { ...p, version: was + 1, steps: [{ name: "family first", targets: [{ who: "role", role: "emergency_contact" }], waitS: 30 }, ...p.steps] } : p)),
    };
    const B = await startLoop(store, { clock, gw, policies: v2, key: A.key });
    try {
      await send(B, radarAlarm(B, "vital_absent"));
      await advance(B, 0);
      await advanceBy(B, 45_000);
      const incidents = await byType(B.relay);
      const fall = incidents.get("fall")!;
      const vital = incidents.get("vital_absent")!;
      assert.equal(fall.id, fallId);
      assert.deepEqual([fall.policyName, fall.policyVersion], ["person", was], "the fall keeps the policy it opened with");
      assert.deepEqual(await callsOf(B.relay, fall), [["elder", 0], ["elder", 45]], "and runs its steps after the restart");
      assert.deepEqual([vital.policyName, vital.policyVersion], ["person", was + 1], "a new incident takes the policy now in force");
      assert.deepEqual((await callsOf(B.relay, vital)).slice(0, 2).map(([t]) => t).sort(), ["daughter", "son"], "its first step is the new one");
    } finally {
      await B.stop();
    }
  } finally {
    await gw.close();
  }
});
