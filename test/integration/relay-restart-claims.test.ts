// A relay that dies holding claims (an escalation step under way, an update being delivered) must not make
// the next call wait out the claim's lease (60 s for a step, a destination's timeout + 60 s for a forward):
// restarted under the same relay.id it takes its earlier run's claims back at once, while another
// instance's claims are left alone until their lease runs out. The real relay, restarted on the same SQLite
// file and on PostgreSQL (when ANXIN_TEST_PG_URL is set), with a clock the test controls; and a real daemon
// process killed with SIGKILL mid-call and started again, timed on the wall clock.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { Kysely } from "kysely";
import mqtt from "mqtt";
import { ulid } from "ulid";
import { stringify } from "yaml";
import type { Envelope } from "../../protocol/envelope.js";
import { signEnvelope } from "../../protocol/signing.js";
import type { CarePlanInput } from "../../relay/src/careplans/schema.js";
import { parseCarePlan, setCarePlan } from "../../relay/src/careplans/store.js";
import { openAdminStore } from "../../relay/src/cli/open-admin.js";
import { claimOwner, isEarlierRun } from "../../relay/src/daemon/claims.js";
import type { RunningRelay } from "../../relay/src/daemon/run.js";
import { relayExtraMigrations } from "../../relay/src/store/relay-migrations.js";
import { enqueueForward, type ForwardDb } from "../../relay/src/forwarders/outbox.js";
import { listIncidents } from "../../relay/src/incidents/repo.js";
import { loopDb } from "../../relay/src/store/closed-loop-schema.js";
import { openStore } from "../../relay/src/store/store.js";
import { PG_URL, pgSkipReason, tempPgSchema } from "../support/pg.js";
import { freePort, startRelayForTest, type RelayRig } from "../support/relay-rig.js";
import { startTelephonyStub, type TelephonyStub } from "../support/telephony-stub.js";
import { waitFor } from "../support/wait.js";
import { startWebhookStub } from "../support/webhook-stub.js";

const SECRET = "restart-test-gateway-secret-0123456789";
const HOOK_SECRET = "restart-test-duty-platform-secret-01234";
const ELDER = "+8613800000000";
const CARE: CarePlanInput = {
  elder: { name: "Wang Lan", phone: ELDER, address: "Room 302, 12 Lane 88, Dinghai Road", riskLevel: "high" },
  contacts: [{ id: "son", name: "Wang Wei", phone: "+8613800000001", role: "emergency_contact" }],
  onsiteTeam: { name: "Platform team B", phone: "+8613800000009" },
  language: "en",
};
/** Another relay instance, alive and busy, sharing the store. */
const OTHER = "relay-b#0badf00d";
const LEASE_MS = 60_000;

const cleanups: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

test("claim owners: <relay.id>#<boot>; an earlier run is the same relay.id with another boot, never another relay", () => {
  const me = claimOwner("relay-a");
  assert.match(me, /^relay-a#[0-9a-f]{8}$/);
  assert.notEqual(claimOwner("relay-a"), me, "a new boot token at every start");
  const earlier = isEarlierRun("relay-a", me);
  assert.equal(earlier(me), false, "never this run's own claims");
  assert.equal(earlier("relay-a#0123abcd"), true);
  assert.equal(earlier("relay-a-0123abcd"), true, "the owner names relays used before (relay.id-<8 hex>)");
  assert.equal(earlier("relay-b#0123abcd"), false);
  assert.equal(earlier("relay-a.2#0123abcd"), false, "a relay.id that only starts the same is another relay");
  assert.equal(earlier("relay-ab-0123abcd"), false);
  assert.equal(earlier("relay-a-1-0123abcd"), false);
  assert.equal(isEarlierRun("relay.1", claimOwner("relay.1"))("relayx1-0123abcd"), false, "relay.id is matched literally");
});

let seq = 0;
function alarm(hub: string, key: Buffer, ts: number): Envelope {
  return signEnvelope({ v: 1, hub, boot: 1, seq: ++seq, id: ulid(), ts, kind: "alarm", type: "sos", severity: "critical", device: "sos-1" }, key);
}

async function send(relay: RunningRelay, env: Envelope): Promise<void> {
  relay.ingest.handle(env.hub, Buffer.from(JSON.stringify(env)));
  await relay.ingest.flush();
}

for (const backend of ["sqlite", "postgres"] as const) {
  test(`${backend}: restarted after dying mid-step, a relay runs the step within 5 s; another instance's claims wait out their lease`, async (t) => {
    if (backend === "postgres" && !PG_URL) return t.skip(pgSkipReason("the restart test on PostgreSQL"));
    const clock = { now: Date.now() };
    const gw = await startTelephonyStub({ secret: SECRET, now: () => clock.now, defaultStep: { status: "no_answer", silent: true } });
    const hook = await startWebhookStub({ secret: HOOK_SECRET, now: () => clock.now });
    const dir = await mkdtemp(path.join(os.tmpdir(), "anxin-restart-"));
    const pg = backend === "postgres" ? tempPgSchema("anxin_restart", (f) => cleanups.push(f)) : undefined;
    cleanups.push(
      () => gw.close(),
      () => hook.close(),
      () => rm(dir, { recursive: true, force: true }),
    );
    const secretFile = path.join(dir, "gateway.secret");
    await writeFile(secretFile, SECRET, { mode: 0o600 });
    const httpPort = await freePort();
    const store = pg ? { kind: "postgres", url: pg.url, schema: pg.schema, poolSize: 4 } : { kind: "sqlite", path: "relay.db" };
    const config = {
      relay: { id: "relay-a" },
      store,
      http: { port: httpPort, publicUrl: `http://127.0.0.1:${httpPort}` },
      telephony: { kind: "http", url: gw.url, secretFile, retries: 0, backoffMs: 0, timeoutMs: 3000 },
      escalation: { pollMs: 50 },
      forwarders: { pollMs: 50, leaseMarginMs: 5000, destinations: [{ name: "duty_platform", url: hook.url, secret: HOOK_SECRET, timeoutMs: 2000 }] },
    };
    const start = async (): Promise<RelayRig> => {
      const rig = await startRelayForTest({ dir, now: () => clock.now, config });
      cleanups.push(() => rig.stop());
      return rig;
    };

    // Two homes, each with an SOS under way: the elder was called (round 1) and did not answer.
    const A = await start();
    const keys = new Map<string, Buffer>();
    for (const hub of ["hub-r1", "hub-r2"]) {
      keys.set(hub, Buffer.from((await A.relay.registry.provisionDirect(hub)).key, "base64"));
      await setCarePlan(A.relay.db, hub, parseCarePlan(CARE, "test"), { actor: "test", purpose: "setup", at: clock.now });
      await send(A.relay, alarm(hub, keys.get(hub)!, clock.now));
    }
    await gw.waitForCalls(2);
    await hook.waitFor(2); // the openings reached the duty platform
    const byHub = new Map((await listIncidents(A.relay.db, {})).map((i) => [i.hub, i.id]));
    const mine = byHub.get("hub-r1")!;
    const others = byHub.get("hub-r2")!;
    const aOwner = A.relay.instanceId;
    assert.match(aOwner, /^relay-a#[0-9a-f]{8}$/, "claims are named <relay.id>#<boot>");
    await A.stop();

    // 45 s later the second round is due for both. Relay A claims hub-r1's, asks the provider to call the
    // elder — and dies before the answer is recorded. Relay B, alive elsewhere, is in the middle of hub-r2's.
    // Each also holds an update for the duty platform.
    clock.now += 45_000;
    const claimedAt = clock.now;
    const crashed = await openStore(store as never, path.join(dir, "data"), { migrations: relayExtraMigrations });
    const db = loopDb(crashed.db);
    const claim = (id: string, owner: string) =>
      db.updateTable("escalation_timers").set({ claimed_by: owner, claimed_until: claimedAt + LEASE_MS }).where("id", "=", id).where("done_at", "is", null).executeTakeFirstOrThrow();
    assert.equal(Number((await claim(`${mine}:0:1`, aOwner)).numUpdatedRows), 1);
    assert.equal(Number((await claim(`${others}:0:1`, OTHER)).numUpdatedRows), 1);
    await db
      .insertInto("call_attempts")
      .values({ id: `${mine}:0:1:elder`, incident_id: mine, step: 0, round: 1, role: "elder", target: "elder", channel: "voice", status: "requested", digits: null, provider_ref: null, requested_at: claimedAt, placed_at: null, outcome_at: null, detail: null })
      .execute();
    for (const [key, owner] of [["fwd-of-a", aOwner], ["fwd-of-b", OTHER]] as const) {
      await enqueueForward(db, { destination: "duty_platform", idempotencyKey: key, payload: { k: key }, at: claimedAt });
      await (crashed.db as unknown as Kysely<ForwardDb>)
        .updateTable("forward_outbox")
        .set({ claimed_by: owner, claimed_until: claimedAt + 2000 + 60_000 })
        .where("idempotency_key", "=", key)
        .execute();
    }
    await crashed.close();

    // Relay A starts again (same relay.id, same store).
    const wallStart = Date.now();
    const B = await start();
    assert.notEqual(B.relay.instanceId, aOwner, "a new boot");
    assert.ok(B.relay.instanceId.startsWith("relay-a#"));
    const called = (attempt: string) => gw.calls.some((c) => c.attemptId === attempt);
    // Within 5 s (of the relay's clock, moved on half a second at a time, and of the wall clock): the step A
    // held is run — the elder is called again under the same attempt id — and A's update is delivered.
    await waitFor(
      "the step and the update the earlier run held",
      async () => {
        if (called(`${mine}:0:1:elder`) && hook.deliveriesByKey().get("fwd-of-a") === 1) return true;
        if (clock.now - claimedAt < 5000) {
          clock.now += 500;
          await B.relay.escalation.runDue();
          await B.relay.forwarder.runDue();
        }
        return false;
      },
      8000,
    );
    assert.ok(clock.now - claimedAt <= 5000, `taken over after ${clock.now - claimedAt} ms of the relay's clock`);
    assert.ok(Date.now() - wallStart < 5000, `taken over ${Date.now() - wallStart} ms after the restart began`);
    // The call goes out before the step's pass records its result: wait for that record, briefly.
    const timer = await waitFor(
      "the step recorded as run",
      async () => {
        const t = await B.relay.db.selectFrom("escalation_timers").selectAll().where("id", "=", `${mine}:0:1`).executeTakeFirstOrThrow();
        return t.result !== null && t;
      },
      3000,
    );
    assert.deepEqual([timer.claimed_by, timer.result], [B.relay.instanceId, "ran"]);
    const attempt = await B.relay.db.selectFrom("call_attempts").select(["status", "provider_ref"]).where("id", "=", `${mine}:0:1:elder`).executeTakeFirstOrThrow();
    assert.equal(attempt.status, "placed", "the call A had requested is placed now");

    // B's step and update are B's until its lease runs out, restart or not.
    assert.equal(called(`${others}:0:1:elder`), false, "another live instance's step is not taken");
    const held = await B.relay.db.selectFrom("escalation_timers").selectAll().where("id", "=", `${others}:0:1`).executeTakeFirstOrThrow();
    assert.deepEqual([held.claimed_by, held.claimed_until, held.done_at], [OTHER, claimedAt + LEASE_MS, null]);
    assert.equal(hook.deliveriesByKey().get("fwd-of-b"), undefined, "nor its update");
    clock.now = claimedAt + LEASE_MS - 1;
    await B.relay.escalation.runDue();
    assert.equal(called(`${others}:0:1:elder`), false, "not a millisecond before its lease ends");
    // B died too, it turns out: once its lease is over the step and the update are taken over.
    clock.now = claimedAt + 62_001;
    await B.relay.escalation.runDue();
    await B.relay.forwarder.runDue();
    await gw.waitForCalls(4);
    assert.ok(called(`${others}:0:1:elder`));
    await waitFor("B's update delivered after its lease", () => hook.deliveriesByKey().get("fwd-of-b") === 1);
    assert.equal(gw.duplicates, 0, "no call requested twice");
    assert.deepEqual([...hook.deliveriesByKey().values()].filter((n) => n !== 1), [], "no update delivered twice");
  });
}

test("forwarders.leaseMarginMs sets how long a claimed update stays an instance's", async () => {
  const clock = { now: 1_800_000_000_000 };
  const hook = await startWebhookStub({ secret: HOOK_SECRET, now: () => clock.now });
  hook.setDelay(300);
  cleanups.push(() => hook.close());
  const rig = await startRelayForTest({
    now: () => clock.now,
    config: { forwarders: { pollMs: 60_000, leaseMarginMs: 7000, destinations: [{ name: "duty_platform", url: hook.url, secret: HOOK_SECRET, timeoutMs: 1500 }] } },
  });
  cleanups.push(() => rig.stop());
  await enqueueForward(rig.relay.db, { destination: "duty_platform", idempotencyKey: "lease-probe", payload: {}, at: clock.now });
  const run = rig.relay.forwarder.runDue();
  const row = await waitFor("the row claimed", async () => {
    const r = await (rig.relay.db as unknown as Kysely<ForwardDb>)
      .selectFrom("forward_outbox")
      .select(["claimed_by", "claimed_until"])
      .where("idempotency_key", "=", "lease-probe")
      .executeTakeFirstOrThrow();
    return r.claimed_by !== null && r;
  });
  assert.deepEqual(row, { claimed_by: rig.relay.instanceId, claimed_until: clock.now + 1500 + 7000 });
  await run;
});

// ---- a real daemon process, killed with SIGKILL while the provider has its call request ----

function startDaemon(configFile: string): ChildProcess & { out: string[] } {
  const child = spawn(process.execPath, ["--import", "tsx", path.resolve("relay/src/cli/main.ts"), "run", "--config", configFile], { stdio: ["ignore", "pipe", "pipe"] }) as ChildProcess & { out: string[] };
  child.out = [];
  child.stdout!.on("data", (b: Buffer) => child.out.push(b.toString()));
  child.stderr!.on("data", (b: Buffer) => child.out.push(b.toString()));
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGKILL");
      await new Promise((r) => child.once("exit", r));
    }
  });
  return child;
}

const ready = (c: ChildProcess & { out: string[] }) => waitFor("anxin-relay ready", () => c.out.join("").includes('"msg":"anxin-relay ready"'), 30_000);

test("kill -9 in the middle of a call: the restarted daemon places it within 5 s", async () => {
  const gw: TelephonyStub = await startTelephonyStub({ secret: SECRET, defaultStep: { status: "no_answer", silent: true } });
  cleanups.push(() => gw.close());
  const dir = await mkdtemp(path.join(os.tmpdir(), "anxin-kill-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  await writeFile(path.join(dir, "gateway.secret"), SECRET, { mode: 0o600 });
  const [mqttPort, httpPort] = [await freePort(), await freePort()];
  const configFile = path.join(dir, "relay.yaml");
  await writeFile(
    configFile,
    stringify({
      relay: { id: "relay-k", dataDir: "./data" },
      log: { level: "info" },
      broker: { kind: "embedded", host: "127.0.0.1", port: mqttPort },
      http: { host: "127.0.0.1", port: httpPort, publicUrl: `http://127.0.0.1:${httpPort}` },
      // The provider takes its time: the call request is still open when the relay is killed.
      telephony: { kind: "http", url: gw.url, secretFile: "gateway.secret", retries: 0, backoffMs: 0, timeoutMs: 30_000 },
      escalation: { pollMs: 200 },
    }),
  );
  const hub = "hub-k1";
  const a = await openAdminStore(configFile);
  const enrol = await a.registry.provisionDirect(hub);
  await setCarePlan(a.db, hub, parseCarePlan(CARE, "test"), { actor: "test", purpose: "setup", at: Date.now() });
  await a.close();

  gw.setResponseDelay(60_000);
  const first = startDaemon(configFile);
  await ready(first);
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, { clientId: hub, username: enrol.mqtt.username, password: enrol.mqtt.password, reconnectPeriod: 0 });
  await client.publishAsync(`anxin/v1/${hub}/evt`, JSON.stringify(alarm(hub, Buffer.from(enrol.key, "base64"), Date.now())), { qos: 1 });
  await gw.waitForCalls(1, 20_000);
  const attemptId = gw.calls[0]!.attemptId;
  await client.endAsync(true);
  first.kill("SIGKILL");
  await new Promise((r) => first.once("exit", r));

  gw.setResponseDelay(0);
  const restart = Date.now();
  const second = startDaemon(configFile);
  await ready(second);
  const readyAfter = Date.now() - restart;
  // The gateway sees the same attempt id again (and, as the contract asks, places no second call).
  await waitFor("the call requested again", () => gw.duplicates >= 1, 10_000).catch(() => undefined);
  const took = Date.now() - restart;
  second.kill("SIGTERM");
  await new Promise((r) => second.once("exit", r));
  assert.ok(gw.duplicates >= 1, `the call in flight when the relay was killed was not requested again within 10 s of the restart`);
  assert.ok(took - readyAfter < 5000, `requested again ${took - readyAfter} ms after the restarted relay was ready (${took} ms after it was started)`);
  assert.deepEqual(new Set(gw.calls.map((c) => c.attemptId)), new Set([attemptId]), "the same attempt, not a new one");
  assert.match(second.out.join(""), /took over the claims an earlier run of this relay left behind/);
});
