// The Twilio adapter against a local stand-in for Twilio's REST API that checks each request as Twilio
// documents it (resource paths, Basic auth with the Account SID and Auth Token, form-encoded parameters,
// TwiML with a one-key <Gather>), and its callbacks signed the way Twilio signs them (X-Twilio-Signature),
// computed here independently of the adapter.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { pino } from "pino";
import { TwilioTelephony, twilioSignature, verifyTwilioSignature } from "../../relay/src/telephony/twilio.js";
import { callbackRelay } from "../support/callback-relay.js";
import { createTelephony, telephonyConfigSchema, TelephonyRejected, TelephonyUnavailable, type CallOutcome } from "../../relay/src/telephony/index.js";

const SID = `AC${"0123456789abcdef".repeat(2)}`;
const TOKEN = "twilio-auth-token-for-tests-0001";
const FROM = "+15005550006";
const ELDER = "+8613800000001";

/** Twilio's signing rule, written out again here so the test does not check the adapter against itself. */
function sign(url: string, form: Record<string, string>): string {
  const data = url + Object.keys(form).sort().map((k) => k + form[k]).join("");
  return createHmac("sha1", TOKEN).update(data).digest("base64");
}

interface FakeTwilio {
  url: string;
  requests: { path: string; auth: string | undefined; contentType: string | undefined; form: URLSearchParams }[];
  status: number;
  errorBody?: unknown;
  close(): Promise<void>;
}

async function fakeTwilio(): Promise<FakeTwilio> {
  const state: FakeTwilio = { url: "", requests: [], status: 201, close: async () => {} };
  let n = 0;
  const server = http.createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on("data", (c: Buffer) => parts.push(c));
    req.on("end", () => {
      const form = new URLSearchParams(Buffer.concat(parts).toString("utf8"));
      state.requests.push({ path: req.url ?? "", auth: req.headers.authorization, contentType: req.headers["content-type"], form });
      const json = (status: number, body: unknown) => {
        res.writeHead(status, { "content-type": "application/json" });
        res.end(JSON.stringify(body));
      };
      if (state.status !== 201) return json(state.status, state.errorBody ?? { code: 20500, message: "Internal Server Error", status: state.status });
      if (req.method !== "POST") return json(405, { code: 20004, message: "Method not allowed", status: 405 });
      if (req.headers.authorization !== `Basic ${Buffer.from(`${SID}:${TOKEN}`).toString("base64")}`) return json(401, { code: 20003, message: "Authenticate", status: 401 });
      if (req.url === `/2010-04-01/Accounts/${SID}/Calls.json`) {
        if (!form.get("To") || !form.get("From") || !(form.get("Twiml") || form.get("Url"))) return json(400, { code: 21205, message: "missing parameter", status: 400 });
        return json(201, { sid: `CA${String(++n).padStart(32, "0")}`, status: "queued", to: form.get("To"), from: form.get("From") });
      }
      if (req.url === `/2010-04-01/Accounts/${SID}/Messages.json`) {
        if (!form.get("To") || !form.get("From") || !form.get("Body")) return json(400, { code: 21602, message: "Message body is required.", status: 400 });
        return json(201, { sid: `SM${String(++n).padStart(32, "0")}`, status: "queued" });
      }
      json(404, { code: 20404, message: "not found", status: 404 });
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  state.close = () =>
    new Promise<void>((r) => {
      server.close(() => r());
      server.closeAllConnections();
    });
  return state;
}

interface Ctx {
  twilio: FakeTwilio;
  adapter: TwilioTelephony;
  relayUrl: string;
  outcomes: CallOutcome[];
  sleeps: number[];
}

async function setup(t: { after(fn: () => unknown): void }, token = TOKEN): Promise<Ctx> {
  const twilio = await fakeTwilio();
  const outcomes: CallOutcome[] = [];
  const sleeps: number[] = [];
  // Requests come only once the adapter made below (it needs the relay's URL) exists.
  const relay = await callbackRelay(["gather", "status", "sms-status"].map((k) => `/v1/telephony/twilio/${k}`), () => adapter.callbackRoute);
  const relayUrl = relay.url;
  const adapter = new TwilioTelephony({
    accountSid: SID,
    authToken: token,
    from: FROM,
    baseUrl: twilio.url,
    publicUrl: relayUrl,
    callbackPath: "/v1/telephony/twilio",
    gatherTimeoutS: 8,
    sayLanguage: "cmn-CN",
    timeoutMs: 2000,
    retries: 2,
    backoffMs: 50,
    sleep: async (ms) => void sleeps.push(ms),
    log: pino({ level: "silent" }),
    onOutcome: async (o) => void outcomes.push(o),
  });
  t.after(async () => {
    await twilio.close();
    await relay.close();
  });
  return { twilio, adapter, relayUrl, outcomes, sleeps };
}

async function postForm(url: string, form: Record<string, string>, signature: string | undefined): Promise<{ status: number; body: string }> {
  const res = await fetch(url, {
    method: "POST",
    body: new URLSearchParams(form).toString(),
    headers: { "content-type": "application/x-www-form-urlencoded", ...(signature !== undefined ? { "x-twilio-signature": signature } : {}) },
  });
  return { status: res.status, body: await res.text() };
}

test("the signature matches the example in Twilio's request-validation documentation", () => {
  // Twilio's documented example: Auth Token 12345, this URL and these POST parameters.
  const url = "https://mycompany.com/myapp.php?foo=1&bar=2";
  const params: [string, string][] = [
    ["CallSid", "CA1234567890ABCDE"],
    ["Caller", "+12349013030"],
    ["Digits", "1234"],
    ["From", "+12349013030"],
    ["To", "+18005551212"],
  ];
  assert.equal(twilioSignature("12345", url, params), "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
  // Order of the parameters as received does not matter; the URL (query included) does.
  assert.ok(verifyTwilioSignature("12345", "0/KCTR6DLpKmkAf8muzZqo1nDgQ=", url, [...params].reverse()));
  assert.ok(!verifyTwilioSignature("12345", "0/KCTR6DLpKmkAf8muzZqo1nDgQ=", "https://mycompany.com/myapp.php?foo=1&bar=3", params));
  assert.ok(!verifyTwilioSignature("12345", undefined, url, params));
});

test("a voice call is POSTed to Calls.json as Twilio documents it, with the message inside a one-key Gather", async (t) => {
  const c = await setup(t);
  const { providerRef } = await c.adapter.place({ attemptId: "inc7:s1:t0:r0", to: ELDER, channel: "voice", message: "燃气报警 <厨房> & 请按 1", gatherDigits: ["1", "2"] });
  assert.match(providerRef, /^CA\d{32}$/);
  const r = c.twilio.requests[0];
  assert.ok(r);
  assert.equal(r.path, `/2010-04-01/Accounts/${SID}/Calls.json`);
  assert.equal(r.auth, `Basic ${Buffer.from(`${SID}:${TOKEN}`).toString("base64")}`);
  assert.match(String(r.contentType), /^application\/x-www-form-urlencoded/);
  assert.equal(r.form.get("To"), ELDER);
  assert.equal(r.form.get("From"), FROM);
  assert.equal(r.form.get("StatusCallback"), `${c.relayUrl}/v1/telephony/twilio/status?attemptId=inc7%3As1%3At0%3Ar0`);
  assert.equal(r.form.get("StatusCallbackMethod"), "POST");
  assert.deepEqual(r.form.getAll("StatusCallbackEvent"), ["completed"]);
  const twiml = r.form.get("Twiml") ?? "";
  assert.match(twiml, /^<\?xml version="1.0" encoding="UTF-8"\?><Response><Gather /);
  assert.match(twiml, /numDigits="1"/);
  assert.match(twiml, /input="dtmf"/);
  assert.match(twiml, /timeout="8"/);
  assert.ok(twiml.includes(`action="${c.relayUrl}/v1/telephony/twilio/gather?attemptId=inc7%3As1%3At0%3Ar0"`), twiml);
  // The message is XML-escaped inside <Say>.
  assert.ok(twiml.includes('<Say language="cmn-CN">燃气报警 &lt;厨房&gt; &amp; 请按 1</Say>'), twiml);
});

test("an SMS is POSTed to Messages.json with To, From, Body and a status callback", async (t) => {
  const c = await setup(t);
  const { providerRef } = await c.adapter.place({ attemptId: "sms-1", to: ELDER, channel: "sms", message: "请回电" });
  assert.match(providerRef, /^SM/);
  const r = c.twilio.requests[0];
  assert.equal(r?.path, `/2010-04-01/Accounts/${SID}/Messages.json`);
  assert.equal(r?.form.get("Body"), "请回电");
  assert.equal(r?.form.get("StatusCallback"), `${c.relayUrl}/v1/telephony/twilio/sms-status?attemptId=sms-1`);
  assert.equal(r?.form.get("Twiml"), null);
});

test("Gather action with Digits → answered with the key; the TwiML reply hangs up", async (t) => {
  const c = await setup(t);
  await c.adapter.place({ attemptId: "inc7:s1:t0:r0", to: ELDER, channel: "voice", message: "m", gatherDigits: ["1"] });
  const twiml = c.twilio.requests[0]?.form.get("Twiml") ?? "";
  const action = /action="([^"]+)"/.exec(twiml)?.[1]?.replace(/&amp;/g, "&") as string;
  const form = { AccountSid: SID, CallSid: "CA00000000000000000000000000000001", CallStatus: "in-progress", Digits: "1", From: FROM, To: ELDER, FinishedOnKey: "" };
  const res = await postForm(action, form, sign(action, form));
  assert.equal(res.status, 200);
  assert.match(res.body, /<Hangup\/>/);
  assert.deepEqual(
    c.outcomes.map(({ attemptId, status, digits, providerRef }) => ({ attemptId, status, digits, providerRef })),
    [{ attemptId: "inc7:s1:t0:r0", status: "answered", digits: "1", providerRef: "CA00000000000000000000000000000001" }],
  );
});

test("status callbacks: CallStatus maps to outcomes; non-final statuses record nothing", async (t) => {
  const c = await setup(t);
  const cases: [string, string | undefined][] = [
    ["no-answer", "no_answer"],
    ["busy", "busy"],
    ["failed", "failed"],
    ["canceled", "failed"],
    ["completed", "answered"],
    ["in-progress", undefined],
    ["ringing", undefined],
  ];
  for (const [i, [callStatus]] of cases.entries()) {
    const url = `${c.relayUrl}/v1/telephony/twilio/status?attemptId=a${i}`;
    const form = { AccountSid: SID, CallSid: `CA${String(i).padStart(32, "0")}`, CallStatus: callStatus, To: ELDER, From: FROM };
    assert.equal((await postForm(url, form, sign(url, form))).status, 200, callStatus);
  }
  assert.deepEqual(
    c.outcomes.map((o) => [o.attemptId, o.status, o.detail]),
    cases.flatMap(([s, mapped], i) => (mapped ? [[`a${i}`, mapped, `CallStatus=${s}`]] : [])),
  );
  // Completed without a key press is answered without digits: the engine does not count it as a confirmation.
  assert.equal(c.outcomes.find((o) => o.attemptId === "a4")?.digits, undefined);
});

test("SMS status callbacks: delivered, undelivered, failed; sent is not final", async (t) => {
  const c = await setup(t);
  for (const [i, s] of ["sent", "delivered", "undelivered", "failed"].entries()) {
    const url = `${c.relayUrl}/v1/telephony/twilio/sms-status?attemptId=m${i}`;
    const form = { AccountSid: SID, MessageSid: `SM${i}`, MessageStatus: s, ...(s === "undelivered" ? { ErrorCode: "30003" } : {}) };
    assert.equal((await postForm(url, form, sign(url, form))).status, 200);
  }
  assert.deepEqual(c.outcomes.map((o) => [o.attemptId, o.status, o.providerRef]), [["m1", "delivered", "SM1"], ["m2", "undelivered", "SM2"], ["m3", "failed", "SM3"]]);
  assert.equal(c.outcomes[1]?.detail, "MessageStatus=undelivered ErrorCode=30003");
});

test("forged Twilio callbacks are 403 and record nothing: wrong token, no header, another attempt's URL, altered digits", async (t) => {
  const c = await setup(t);
  const url = `${c.relayUrl}/v1/telephony/twilio/gather?attemptId=victim`;
  const form = { CallSid: "CA1", Digits: "1" };
  const wrong = createHmac("sha1", "not-the-token").update(url + "CallSidCA1Digits1").digest("base64");
  assert.equal((await postForm(url, form, wrong)).status, 403);
  assert.equal((await postForm(url, form, undefined)).status, 403);
  // A genuine signature for another attempt, replayed against this one.
  const other = `${c.relayUrl}/v1/telephony/twilio/gather?attemptId=other`;
  assert.equal((await postForm(url, form, sign(other, form))).status, 403);
  // Digits changed after signing.
  assert.equal((await postForm(url, { ...form, Digits: "2" }, sign(url, form))).status, 403);
  assert.equal(c.outcomes.length, 0);
  assert.equal(c.adapter.counters.callbacksRefused, 4);
  // Paths that are not the adapter's fall through.
  assert.equal((await postForm(`${c.relayUrl}/v1/telephony/twilio/other`, form, sign(url, form))).status, 404);
});

test("Twilio refusing a request (400, 401) is TelephonyRejected without retries; the message keeps the number out", async (t) => {
  const c = await setup(t);
  c.twilio.status = 400;
  c.twilio.errorBody = { code: 21211, message: `The 'To' number ${ELDER} is not a valid phone number.`, status: 400 };
  await assert.rejects(c.adapter.place({ attemptId: "x", to: ELDER, channel: "voice", message: "m" }), (e: unknown) => {
    assert.ok(e instanceof TelephonyRejected);
    assert.match(e.message, /HTTP 400, code 21211/);
    assert.ok(!e.message.includes(ELDER));
    return true;
  });
  assert.equal(c.twilio.requests.length, 1);
});

test("Twilio answering 503: retried with backoff, then TelephonyUnavailable", async (t) => {
  const c = await setup(t);
  c.twilio.status = 503;
  await assert.rejects(c.adapter.place({ attemptId: "y", to: ELDER, channel: "voice", message: "m" }), TelephonyUnavailable);
  assert.equal(c.twilio.requests.length, 3);
  assert.deepEqual(c.sleeps, [50, 100]);
  c.twilio.status = 201;
  await c.adapter.place({ attemptId: "y", to: ELDER, channel: "voice", message: "m" });
});

test("a wrong Auth Token is refused by Twilio (401): TelephonyRejected", async (t) => {
  const c = await setup(t, "wrong-token");
  await assert.rejects(c.adapter.place({ attemptId: "z", to: ELDER, channel: "sms", message: "m" }), (e: unknown) => e instanceof TelephonyRejected && e.status === 401);
});

test("createTelephony builds the Twilio adapter from configuration with the token from the environment", async (t) => {
  const twilio = await fakeTwilio();
  t.after(() => twilio.close());
  const cfg = telephonyConfigSchema.parse({ kind: "twilio", accountSid: SID, authTokenEnv: "TWILIO_TOKEN", from: FROM, baseUrl: twilio.url });
  const h = createTelephony(cfg, { log: pino({ level: "silent" }), onOutcome: async () => {}, publicUrl: "https://relay.example", env: { TWILIO_TOKEN: TOKEN } });
  assert.equal(h.telephony.name, "twilio");
  await h.telephony.place({ attemptId: "cfg", to: ELDER, channel: "voice", message: "m", gatherDigits: ["1"] });
  assert.equal(twilio.requests[0]?.form.get("StatusCallback"), "https://relay.example/v1/telephony/twilio/status?attemptId=cfg");
  await h.close();
});
