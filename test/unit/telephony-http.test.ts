// The generic HTTP gateway adapter against the telephony stub over real HTTP: the request and its
// signature, callbacks parsed into outcomes, forged and stale callbacks refused with nothing recorded,
// retries then TelephonyUnavailable when the gateway is down, timeouts, and secrets read from owner-only files.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { pino } from "pino";
import { HttpGatewayTelephony } from "../../relay/src/telephony/http-gateway.js";
import { createTelephony, SecretSourceError, telephonyConfigSchema, TelephonyRejected, TelephonyUnavailable, type CallbackRoute, type CallOutcome } from "../../relay/src/telephony/index.js";
import { anxinSignature } from "../../relay/src/telephony/signature.js";
import { callbackRelay } from "../support/callback-relay.js";
import { startTelephonyStub, type TelephonyStub } from "../support/telephony-stub.js";

const SECRET = "gateway-shared-secret-0123456789";
const ELDER = "+8613800000001";
const CONTACT = "+8613800000002";

interface Relay {
  url: string;
  outcomes: CallOutcome[];
  logs: string[];
  close(): Promise<void>;
}

/** An HTTP server standing in for the relay's API: the adapter's route, 404 otherwise. */
async function relayServer(route: () => CallbackRoute, outcomes: CallOutcome[]): Promise<Relay> {
  const relay = await callbackRelay(["/v1/telephony/callback"], route);
  return { url: relay.url, outcomes, logs: [], close: () => relay.close() };
}

interface Ctx {
  gw: TelephonyStub;
  relay: Relay;
  adapter: HttpGatewayTelephony;
  outcomes: CallOutcome[];
  logs: string[];
  sleeps: number[];
}

async function setup(t: { after(fn: () => unknown): void }, o: { secret?: string; timeoutMs?: number; retries?: number; onOutcome?: (o: CallOutcome) => Promise<void> } = {}): Promise<Ctx> {
  const gw = await startTelephonyStub({ secret: SECRET });
  const outcomes: CallOutcome[] = [];
  const logs: string[] = [];
  const sleeps: number[] = [];
  // The route is looked up per request, so the adapter made next (it needs the relay's URL) is there by then.
  const relay = await relayServer(() => adapter.callbackRoute, outcomes);
  const adapter = new HttpGatewayTelephony({
    url: gw.url,
    secret: o.secret ?? SECRET,
    publicUrl: relay.url,
    callbackPath: "/v1/telephony/callback",
    callbackWindowMs: 300_000,
    gatherTimeoutS: 10,
    timeoutMs: o.timeoutMs ?? 5000,
    retries: o.retries ?? 2,
    backoffMs: 100,
    // Backoff delays are recorded, not waited for.
    sleep: async (ms) => void sleeps.push(ms),
    log: pino({ level: "debug" }, { write: (l: string) => void logs.push(l) }),
    onOutcome: o.onOutcome ?? (async (x) => void outcomes.push(x)),
  });
  t.after(async () => {
    await gw.close();
    await relay.close();
  });
  return { gw, relay, adapter, outcomes, logs, sleeps };
}

test("a voice call: the signed request as the contract says, then the answered callback with the key pressed", async (t) => {
  const c = await setup(t);
  c.gw.script(ELDER, { status: "answered", digits: "1" });
  const { providerRef } = await c.adapter.place({ attemptId: "inc1:s0:t0:r0", to: ELDER, channel: "voice", message: "燃气报警，请按1确认", gatherDigits: ["1", "2"] });
  assert.equal(providerRef, "stub-1");
  const call = c.gw.calls[0];
  assert.ok(call);
  assert.deepEqual(
    { attemptId: call.attemptId, to: call.to, channel: call.channel, message: call.message, gather: call.gather, callbackUrl: call.callbackUrl },
    { attemptId: "inc1:s0:t0:r0", to: ELDER, channel: "voice", message: "燃气报警，请按1确认", gather: { digits: ["1", "2"], timeoutS: 10 }, callbackUrl: `${c.relay.url}/v1/telephony/callback` },
  );
  assert.equal(call.headers["idempotency-key"], "inc1:s0:t0:r0");
  assert.match(String(call.headers["x-anxin-signature"]), /^sha256=[0-9a-f]{64}$/);
  assert.equal(c.gw.refused.length, 0, "the stub verified the signature");

  await c.gw.waitForCallbacks(1);
  assert.equal(c.gw.callbacks[0]?.status, 200);
  assert.equal(c.outcomes.length, 1);
  const out = c.outcomes[0];
  assert.equal(out?.attemptId, "inc1:s0:t0:r0");
  assert.equal(out?.status, "answered");
  assert.equal(out?.digits, "1");
  assert.equal(out?.providerRef, "stub-1");
  assert.equal(typeof out?.at, "number");
  // Neither the number nor the message reached the log.
  const all = c.logs.join("\n");
  assert.ok(!all.includes(ELDER) && !all.includes("燃气报警"), all);
});

test("no answer, busy and failed arrive as outcomes; an SMS has no gathering and reports delivery", async (t) => {
  const c = await setup(t);
  c.gw.script(ELDER, [{ status: "no_answer" }, { status: "busy" }, { status: "failed" }]);
  c.gw.script(CONTACT, { status: "delivered" });
  for (let i = 0; i < 3; i++) await c.adapter.place({ attemptId: `a${i}`, to: ELDER, channel: "voice", message: "m", gatherDigits: ["1"] });
  await c.adapter.place({ attemptId: "sms1", to: CONTACT, channel: "sms", message: "text", gatherDigits: ["1"] });
  await c.gw.waitForCallbacks(4);
  const byId = new Map(c.outcomes.map((o) => [o.attemptId, o.status]));
  assert.deepEqual(Object.fromEntries(byId), { a0: "no_answer", a1: "busy", a2: "failed", sms1: "delivered" });
  assert.equal(c.gw.calls.find((x) => x.attemptId === "sms1")?.gather, null);
  assert.equal(c.outcomes.find((o) => o.attemptId === "a0")?.digits, undefined);
});

test("the same attempt placed twice is one call at the gateway (idempotency by attemptId)", async (t) => {
  const c = await setup(t);
  c.gw.script(ELDER, { status: "answered", digits: "1" });
  const a = await c.adapter.place({ attemptId: "same", to: ELDER, channel: "voice", message: "m", gatherDigits: ["1"] });
  const b = await c.adapter.place({ attemptId: "same", to: ELDER, channel: "voice", message: "m", gatherDigits: ["1"] });
  assert.equal(a.providerRef, b.providerRef);
  assert.equal(c.gw.calls.length, 1);
  assert.equal(c.gw.duplicates, 1);
});

test("forged, tampered, unsigned and stale callbacks get 403 and record nothing", async (t) => {
  const c = await setup(t);
  const url = `${c.relay.url}/v1/telephony/callback`;
  const body = { attemptId: "inc1:s0:t0:r0", status: "answered", digits: "1", providerRef: "stub-9" };
  for (const how of ["wrong-secret", "stale", "unsigned", "tampered"] as const) {
    assert.equal(await c.gw.postForged(url, body, how), 403, how);
  }
  assert.equal(c.outcomes.length, 0);
  assert.equal(c.adapter.counters.callbacksRefused, 4);
  // A replay of a genuine callback with its signature but an old timestamp is stale, too.
  const text = JSON.stringify(body);
  const old = Date.now() - 301_000;
  const res = await fetch(url, { method: "POST", body: text, headers: { "content-type": "application/json", "x-anxin-timestamp": String(old), "x-anxin-signature": anxinSignature(SECRET, old, text) } });
  assert.equal(res.status, 403);
  // The same one signed now is accepted.
  assert.equal(await c.gw.postCallback(url, body), 200);
  assert.equal(c.outcomes.length, 1);
});

test("a signed callback with a bad body is 400; a failing onOutcome answers 500 so the gateway retries", async (t) => {
  let fail = true;
  const seen: CallOutcome[] = [];
  const c = await setup(t, {
    onOutcome: async (o) => {
      if (fail) throw new Error("db down");
      seen.push(o);
    },
  });
  const url = `${c.relay.url}/v1/telephony/callback`;
  assert.equal(await c.gw.postCallback(url, { attemptId: "x", status: "picked_up", providerRef: "p" }), 400);
  assert.equal(await c.gw.postCallback(url, { attemptId: "x", status: "answered", providerRef: "p" }), 500);
  fail = false;
  assert.equal(await c.gw.postCallback(url, { attemptId: "x", status: "answered", providerRef: "p" }), 200);
  assert.equal(seen.length, 1);
  // Other paths are not this route.
  const other = await fetch(`${c.relay.url}/v1/other`, { method: "POST", body: "{}" });
  assert.equal(other.status, 404);
});

test("gateway answering 503: retries with doubling backoff, then TelephonyUnavailable; works again after", async (t) => {
  const c = await setup(t, { retries: 2 });
  await c.gw.setOutage("503");
  await assert.rejects(c.adapter.place({ attemptId: "o1", to: ELDER, channel: "voice", message: "m" }), (e: unknown) => e instanceof TelephonyUnavailable && /HTTP 503/.test(e.message));
  assert.equal(c.gw.requestsSeen, 3, "one try and two retries");
  assert.deepEqual(c.sleeps, [100, 200]);
  assert.equal(c.adapter.counters.failed, 1);
  await c.gw.setOutage("off");
  assert.equal((await c.adapter.place({ attemptId: "o2", to: ELDER, channel: "voice", message: "m" })).providerRef, "stub-1");
});

test("gateway refusing or resetting connections: TelephonyUnavailable naming the network error", async (t) => {
  const c = await setup(t, { retries: 1 });
  await c.gw.setOutage("refuse");
  await assert.rejects(c.adapter.place({ attemptId: "r1", to: ELDER, channel: "voice", message: "m" }), (e: unknown) => e instanceof TelephonyUnavailable && /ECONNREFUSED/.test(e.message));
  await c.gw.setOutage("reset");
  await assert.rejects(c.adapter.place({ attemptId: "r2", to: ELDER, channel: "voice", message: "m" }), (e: unknown) => e instanceof TelephonyUnavailable && /network/.test(e.message));
  await c.gw.setOutage("off");
  await c.adapter.place({ attemptId: "r3", to: ELDER, channel: "voice", message: "m" });
  assert.equal(c.gw.calls.length, 1);
});

test("a gateway that does not answer in time: each try times out, then TelephonyUnavailable", async (t) => {
  const c = await setup(t, { timeoutMs: 200, retries: 1 });
  c.gw.setResponseDelay(3000);
  await assert.rejects(c.adapter.place({ attemptId: "slow", to: ELDER, channel: "voice", message: "m" }), (e: unknown) => e instanceof TelephonyUnavailable && /timeout after 200 ms/.test(e.message));
  c.gw.setResponseDelay(0);
});

test("a request the gateway refuses (wrong secret → 401) is TelephonyRejected at once, without retries", async (t) => {
  const c = await setup(t, { secret: "not-the-gateway-secret-xxxxxxxx", retries: 3 });
  await assert.rejects(c.adapter.place({ attemptId: "w", to: ELDER, channel: "voice", message: "m" }), (e: unknown) => e instanceof TelephonyRejected && e.status === 401);
  assert.equal(c.gw.requestsSeen, 1);
  assert.equal(c.gw.refused[0]?.reason, "mismatch");
});

test("createTelephony reads the secret from an owner-only file and refuses one others can read", async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), "anxin-tel-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, "gateway.secret");
  await writeFile(file, `${SECRET}\n`, { mode: 0o644 });
  const gw = await startTelephonyStub({ secret: SECRET });
  t.after(() => gw.close());
  const cfg = telephonyConfigSchema.parse({ kind: "http", url: gw.url, secretFile: "gateway.secret" });
  const deps = { log: pino({ level: "silent" }), onOutcome: async () => {}, publicUrl: "http://127.0.0.1:1", baseDir: dir };
  assert.throws(() => createTelephony(cfg, deps), (e: unknown) => e instanceof SecretSourceError && /mode 644/.test(e.message));
  const { chmod } = await import("node:fs/promises");
  await chmod(file, 0o600);
  const h = createTelephony(cfg, deps);
  assert.equal(h.telephony.name, "http-gateway");
  await h.telephony.place({ attemptId: "f1", to: ELDER, channel: "sms", message: "m" });
  assert.equal(gw.calls.length, 1);
  await h.close();
  // From the environment instead.
  const viaEnv = createTelephony(telephonyConfigSchema.parse({ kind: "http", url: gw.url, secretEnv: "ANXIN_GW_SECRET" }), { ...deps, env: { ANXIN_GW_SECRET: SECRET } });
  await viaEnv.telephony.place({ attemptId: "f2", to: ELDER, channel: "sms", message: "m" });
  assert.equal(gw.calls.length, 2);
  assert.throws(() => createTelephony(telephonyConfigSchema.parse({ kind: "http", url: gw.url, secretEnv: "ANXIN_GW_SECRET" }), { ...deps, env: {} }), /ANXIN_GW_SECRET is not set/);
});

test("the telephony config schema: one kind at a time, secrets exactly once, clear errors", () => {
  assert.equal(telephonyConfigSchema.parse({ kind: "console" }).kind, "console");
  const noSecret = telephonyConfigSchema.safeParse({ kind: "http", url: "https://gw.example/v1/calls" });
  assert.equal(noSecret.success, false);
  assert.match(JSON.stringify(noSecret.error?.issues), /exactly one of secretFile or secretEnv/);
  const badSid = telephonyConfigSchema.safeParse({ kind: "twilio", accountSid: "xx", authTokenEnv: "T", from: "+15005550006" });
  assert.equal(badSid.success, false);
  const unknownKey = telephonyConfigSchema.safeParse({ kind: "console", scripts: [] });
  assert.equal(unknownKey.success, false);
});
