// Operator alerts that say what to do and for whom, and the dead letters of the outbox in an operator's
// hands. A real relay (SQLite) with a telephony gateway stub that is down and a receiver that refuses
// updates: the telephony_down alert names every call that could not be placed (incident, hub, role,
// contact) and reveals the numbers to dial only through an audited route; dead forwards are listed,
// inspected and resent through the operator API (admin only) and the CLI, each resend audited.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { ulid } from "ulid";
import type { Envelope } from "../../protocol/envelope.js";
import { signEnvelope } from "../../protocol/signing.js";
import { addToken } from "../../relay/src/auth/tokens.js";
import { listAudit } from "../../relay/src/careplans/audit.js";
import type { CarePlanInput } from "../../relay/src/careplans/schema.js";
import { parseCarePlan, setCarePlan } from "../../relay/src/careplans/store.js";
import type { RunningRelay } from "../../relay/src/daemon/run.js";
import { listForwards } from "../../relay/src/forwarders/outbox.js";
import { listIncidents } from "../../relay/src/incidents/repo.js";
import { api, capturingLog, carePlan, contacts, personalData, PHONES, writeGatewaySecret } from "../support/care-plan-fixture.js";
import { startRelayForTest } from "../support/relay-rig.js";
import { startTelephonyStub } from "../support/telephony-stub.js";
import { waitFor } from "../support/wait.js";
import { startWebhookStub } from "../support/webhook-stub.js";

const SECRET = "alerts-test-gateway-secret-0123456789";
const HOOK_SECRET = "alerts-test-district-secret-0123456789";
const N = PHONES;
const CARE: CarePlanInput = carePlan({ contacts: contacts("son", "committee", "firestation") });
const PERSONAL = personalData(CARE);

const cleanups: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

let seq = 0;
function alarm(hub: string, key: Buffer, type: string, ts: number): Envelope {
  return signEnvelope({ v: 1, hub, boot: 1, seq: ++seq, id: ulid(), ts, kind: "alarm", type, severity: "critical", device: `${type}-1` }, key);
}

async function send(relay: RunningRelay, env: Envelope): Promise<void> {
  relay.ingest.handle(env.hub, Buffer.from(JSON.stringify(env)));
  await relay.ingest.flush();
}

test("telephony_down names every call that could not be placed; the numbers come only through an audited route", async () => {
  const clock = { now: Date.now() };
  const gw = await startTelephonyStub({ secret: SECRET, now: () => clock.now });
  cleanups.push(() => gw.close());
  const tmp = await mkdtemp(path.join(os.tmpdir(), "anxin-alerts-"));
  cleanups.push(() => rm(tmp, { recursive: true, force: true }));
  const secretFile = await writeGatewaySecret(tmp, SECRET);
  const { log, lines } = capturingLog();
  const rig = await startRelayForTest({
    now: () => clock.now,
    log,
    config: { telephony: { kind: "http", url: gw.url, secretFile, retries: 0, backoffMs: 0, timeoutMs: 3000 }, escalation: { pollMs: 50 } },
  });
  cleanups.push(() => rig.stop());
  const relay = rig.relay;
  const hubs = ["hub-a1", "hub-a2"];
  const keys = new Map<string, Buffer>();
  for (const hub of hubs) {
    keys.set(hub, Buffer.from((await relay.registry.provisionDirect(hub)).key, "base64"));
    await setCarePlan(relay.db, hub, parseCarePlan(CARE, "test"), { actor: "test", purpose: "setup", at: clock.now });
  }
  await gw.setOutage("503");
  // A fire at one home (the elder and the community responders at once), an SOS at the other (the elder).
  await send(relay, alarm("hub-a1", keys.get("hub-a1")!, "smoke", clock.now));
  await send(relay, alarm("hub-a2", keys.get("hub-a2")!, "sos", clock.now));
  await waitFor("4 calls not placed", async () => (await relay.db.selectFrom("call_attempts").select("id").where("status", "=", "unavailable").execute()).length === 4 || undefined);
  const byHub = new Map((await listIncidents(relay.db, {})).map((i) => [i.hub, i.id]));

  const op = (await addToken(relay.db, "alice", "operator", clock.now)).token;
  const inst = (await addToken(relay.db, "ivan", "installer", clock.now)).token;
  const list = await api(relay, op, "GET", "/v1/alerts");
  assert.equal(list.status, 200);
  const down = list.json.alerts.filter((a: { kind: string }) => a.kind === "telephony_down");
  assert.equal(down.length, 1, "one alert for the outage");
  const alert = down[0];
  assert.equal(alert.count, 4);
  assert.equal(alert.callCount, 4);
  assert.match(alert.detail, /call by hand/);
  assert.match(alert.detail, /\/v1\/alerts\/\{id\}\/calls/, "the detail says where the numbers are");
  // For whom: every call, with its incident, hub, role and care-plan id — and no number.
  const who = alert.calls.map((c: { incidentId: string; hub: string; role: string; target: string; status: string }) => `${c.hub} ${c.incidentId} ${c.role}:${c.target} ${c.status}`).sort();
  assert.deepEqual(
    who,
    [
      `hub-a1 ${byHub.get("hub-a1")} elder:elder unavailable`,
      `hub-a1 ${byHub.get("hub-a1")} neighbourhood_committee:committee unavailable`,
      `hub-a1 ${byHub.get("hub-a1")} property_fire_station:firestation unavailable`,
      `hub-a2 ${byHub.get("hub-a2")} elder:elder unavailable`,
    ].sort(),
  );
  assert.ok(alert.calls.every((c: { incidentState: string; escalation: string }) => c.escalation === "running" && typeof c.incidentState === "string"));
  assert.ok(!PERSONAL.some((p) => JSON.stringify(list.json).includes(p)), "no numbers or names in the alert listing");
  const one = await api(relay, op, "GET", `/v1/alerts/${alert.id}`);
  assert.equal(one.status, 200);
  assert.deepEqual(one.json.calls, alert.calls);
  assert.equal((await api(relay, op, "GET", "/v1/alerts/nope")).status, 404);

  // The numbers: only for staff, and every hub's care plan read is in the audit log.
  assert.equal((await api(relay, inst, "GET", `/v1/alerts/${alert.id}/calls`)).status, 403, "installers see no personal data");
  assert.equal((await api(relay, undefined, "GET", `/v1/alerts/${alert.id}/calls`)).status, 401);
  const before = await Promise.all(hubs.map(async (h) => (await listAudit(relay.db, { subject: h })).length));
  const reveal = await api(relay, op, "GET", `/v1/alerts/${alert.id}/calls`);
  assert.equal(reveal.status, 200);
  const dial = new Map(reveal.json.calls.map((c: { hub: string; target: string; number: string }) => [`${c.hub}/${c.target}`, c.number]));
  assert.deepEqual(Object.fromEntries(dial), {
    "hub-a1/elder": N.elder,
    "hub-a1/committee": N.committee,
    "hub-a1/firestation": N.firestation,
    "hub-a2/elder": N.elder,
  });
  for (const [i, h] of hubs.entries()) {
    const audit = await listAudit(relay.db, { subject: h });
    assert.equal(audit.length, before[i]! + 1, `one audited read of ${h}'s care plan`);
    assert.deepEqual({ ...audit.at(-1)!, at: 0 }, { actor: "operator:alice", action: "careplan.read", subject: h, purpose: `alert ${alert.id}: call by hand`, at: 0 });
  }

  // A closed incident needs no call: no number, and no read of its plan.
  const closing = byHub.get("hub-a2")!;
  assert.equal((await api(relay, op, "POST", `/v1/incidents/${closing}/false-alarm`, { reason: "pressed_by_mistake" })).status, 200);
  assert.equal((await api(relay, op, "POST", `/v1/incidents/${closing}/close`, {})).status, 200);
  const audited = (await listAudit(relay.db, { subject: "hub-a2" })).length;
  const again = await api(relay, op, "GET", `/v1/alerts/${alert.id}/calls`);
  const closed = again.json.calls.find((c: { hub: string }) => c.hub === "hub-a2");
  assert.deepEqual([closed.number, closed.incidentState, closed.note], [null, "closed", "the incident is closed"]);
  assert.equal((await listAudit(relay.db, { subject: "hub-a2" })).length, audited, "no care-plan read for a closed incident");

  // The outage goes on: later calls join the same alert.
  clock.now += 61_000; // the fire policy's first step waits 60 s when the provider is down
  for (let i = 0; i < 3; i++) await relay.escalation.runDue();
  const later = (await api(relay, op, "GET", `/v1/alerts/${alert.id}`)).json;
  assert.ok(later.callCount > 4, `later calls are named too (${later.callCount})`);
  assert.ok(later.calls.some((c: { round: number; step: number; hub: string }) => c.hub === "hub-a1" && (c.step > 0 || c.round > 0)));
  assert.ok(!lines.some((l) => PERSONAL.some((p) => l.includes(p))), "no personal data in the relay's log");
});

test("dead forwards: listed, inspected and resent through the operator API (admin) and the CLI; every resend audited", async () => {
  const clock = { now: Date.now() };
  const district = await startWebhookStub({ secret: HOOK_SECRET, now: () => clock.now });
  cleanups.push(() => district.close());
  district.setStatus(404); // the operations centre's URL is wrong: retrying will not help
  const dir = await mkdtemp(path.join(os.tmpdir(), "anxin-dead-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const { log, lines } = capturingLog();
  const rig = await startRelayForTest({
    dir,
    now: () => clock.now,
    log,
    config: { escalation: { enabled: true, pollMs: 60_000 }, forwarders: { pollMs: 50, destinations: [{ name: "district_centre", url: district.url, secret: HOOK_SECRET }] } },
  });
  cleanups.push(() => rig.stop());
  const relay = rig.relay;
  const key = Buffer.from((await relay.registry.provisionDirect("hub-d1")).key, "base64");
  await setCarePlan(relay.db, "hub-d1", parseCarePlan(CARE, "test"), { actor: "test", purpose: "setup", at: clock.now });
  await send(relay, alarm("hub-d1", key, "gas", clock.now));
  // The opening and the first call's move to confirming are both refused: two dead forwards, one alert.
  await waitFor("two dead forwards", async () => (await listForwards(relay.db, { state: "dead" })).length === 2);
  const alert = await waitFor("forward_dead alert", async () => (await relay.db.selectFrom("operator_alerts").selectAll().where("kind", "=", "forward_dead").where("count", "=", 2).executeTakeFirst()) ?? false);
  const both = await listForwards(relay.db, { state: "dead" });
  const dead = both.find((f) => (f.payload as { update: { to: string } }).update.to === "received"); // the opening
  const confirming = both.find((f) => f !== dead);
  assert.ok(dead && confirming);
  assert.match(alert.detail, new RegExp(`latest: forward (${dead.id}|${confirming.id})`));
  assert.match(alert.detail, /anxin-relay forwards dead/);
  assert.match(alert.detail, /POST \/v1\/forwards\/\{id\}\/resend/);
  const incident = (await listIncidents(relay.db, {}))[0]!;

  const op = (await addToken(relay.db, "alice", "operator", clock.now)).token;
  const adm = (await addToken(relay.db, "root", "admin", clock.now)).token;
  for (const [m, p] of [["GET", "/v1/forwards"], ["GET", `/v1/forwards/${dead.id}`], ["POST", `/v1/forwards/${dead.id}/resend`]] as const)
    assert.equal((await api(relay, op, m, p, m === "POST" ? {} : undefined)).status, 403, `${m} ${p} is for admins`);

  const list = await api(relay, adm, "GET", "/v1/forwards");
  assert.equal(list.status, 200);
  assert.deepEqual(list.json.forwards.map((f: { update: string }) => f.update).sort(), ["transition → confirming", "transition → received"]);
  const row = list.json.forwards.find((f: { id: string }) => f.id === dead.id);
  assert.deepEqual(
    [row.id, row.destination, row.state, row.attempts, row.lastError, row.incidentId, row.hub, row.type, row.update],
    [dead.id, "district_centre", "dead", 1, "HTTP 404", incident.id, "hub-d1", "gas", "transition → received"],
  );
  assert.equal("payload" in row, false, "a listing carries no payload");
  assert.equal((await api(relay, adm, "GET", "/v1/forwards?state=delivered")).json.forwards.length, 0);
  assert.equal((await api(relay, adm, "GET", "/v1/forwards?state=nope")).status, 400);

  const shown = await api(relay, adm, "GET", `/v1/forwards/${dead.id}`);
  assert.equal(shown.status, 200);
  assert.equal(shown.json.payload.location.address, CARE.elder.address, "the opening's payload, as it is sent");
  assert.deepEqual(
    shown.json.history.map((h: { actor: string; action: string; purpose: string }) => [h.actor, h.action, h.purpose]),
    [["admin:root", "forward.read", "api"]],
    "looking at a payload is audited",
  );
  assert.equal((await api(relay, adm, "GET", "/v1/forwards/nope")).status, 404);

  // The receiver is fixed; the admin sends it again.
  district.setStatus(null);
  clock.now += 1000;
  const resent = await api(relay, adm, "POST", `/v1/forwards/${dead.id}/resend`, { reason: "district URL corrected" });
  assert.equal(resent.status, 200);
  assert.deepEqual([resent.json.forward.state, resent.json.forward.attempts, resent.json.forward.nextAttemptAt], ["pending", 0, clock.now], "pending, due now, tries from zero");
  const audit = (await listAudit(relay.db, { subject: `forward:${dead.id}` })).map((e) => [e.actor, e.action, e.purpose, e.at]);
  assert.deepEqual(audit.at(-1), ["admin:root", "forward.resend", "district URL corrected", clock.now], "who, when and why");
  await district.waitFor(1);
  assert.equal(district.delivered[0]!.idempotencyKey, dead.idempotencyKey, "the same message, the same Idempotency-Key");
  await waitFor("delivered", async () => (await listForwards(relay.db, {})).find((f) => f.id === dead.id)?.state === "delivered");
  const twice = await api(relay, adm, "POST", `/v1/forwards/${dead.id}/resend`, {});
  assert.deepEqual([twice.status, twice.json.error], [409, "not_dead"]);
  assert.equal((await api(relay, adm, "POST", "/v1/forwards/nope/resend", {})).status, 404);
  assert.equal((await api(relay, adm, "POST", `/v1/forwards/${dead.id}/resend`, { extra: 1 })).status, 400);

  // The CLI, on the same store (the daemon stopped; the commands open the store directly).
  district.setStatus(410);
  const tok = await api(relay, op, "POST", `/v1/incidents/${incident.id}/acknowledge`, { note: "on it" });
  assert.equal(tok.status, 200);
  const second = await waitFor("the acknowledgement's forward dead", async () => (await listForwards(relay.db, { state: "dead" })).find((f) => f.id !== confirming.id));
  await rig.stop();
  const tsx = path.resolve("node_modules/tsx/dist/esm/index.mjs");
  const cli = (...args: string[]) => spawnSync(process.execPath, ["--import", tsx, path.resolve("relay/src/cli/main.ts"), ...args, "--config", rig.configFile], { encoding: "utf8", timeout: 60_000 });
  let r = cli("forwards", "dead");
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`${second.id}\\s+district_centre\\s+1\\s+.*${incident.id} \\(hub-d1 gas\\)\\s+acknowledged\\s+HTTP 410`));
  assert.match(r.stdout, new RegExp(`${confirming.id}\\s+district_centre\\s+1\\s+.*transition → confirming\\s+HTTP 404`));
  assert.doesNotMatch(r.stdout, new RegExp(dead.id), "the resent and delivered one is no longer dead");
  assert.ok(!PERSONAL.some((p) => r.stdout.includes(p)), "the listing holds no personal data");
  r = cli("forwards", "dead", "--json");
  assert.deepEqual(JSON.parse(r.stdout).map((f: { id: string }) => f.id).sort(), [second.id, confirming.id].sort());
  r = cli("forwards", "show", second.id, "--purpose", "checking the receiver");
  assert.equal(r.status, 0, r.stderr);
  const detail = JSON.parse(r.stdout);
  assert.equal(detail.payload.update.kind, "acknowledged");
  r = cli("forwards", "resend", second.id);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`forward ${second.id} to district_centre queued again \\(it died with: HTTP 410\\)`));
  r = cli("forwards", "resend", second.id);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /is pending, not dead/);
  assert.equal(cli("forwards", "resend", "nope").status, 1);
  assert.equal(cli("forwards", "dead", "--state", "nope").status, 2);
  r = cli("forwards", "show", second.id);
  const history = JSON.parse(r.stdout).history.map((h: { actor: string; action: string; purpose: string }) => `${h.action} ${h.actor} (${h.purpose})`);
  assert.equal(history.length, 3);
  assert.match(history[0], /^forward\.read cli:\S+ \(checking the receiver\)$/);
  assert.match(history[1], /^forward\.resend cli:\S+ \(cli\)$/);
  // The daemon, started again with the receiver fixed, delivers what the CLI queued.
  district.setStatus(null);
  clock.now = Date.now(); // the CLI queued it on the wall clock
  const again = await startRelayForTest({ dir, now: () => clock.now, log, config: { escalation: { pollMs: 60_000 }, forwarders: { pollMs: 50, destinations: [{ name: "district_centre", url: district.url, secret: HOOK_SECRET }] } } });
  cleanups.push(() => again.stop());
  await waitFor("the CLI's resend delivered", async () => (await listForwards(again.relay.db, {})).find((f) => f.id === second.id)?.state === "delivered");
  assert.equal(district.deliveriesByKey().get(second.idempotencyKey), 1);
  assert.ok(!lines.some((l) => PERSONAL.some((p) => l.includes(p))), "no personal data in the relay's log");
});
