// The relay's HTTP API on an ephemeral port: health, metrics, enrolment and its guards.
import { test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { pino } from "pino";
import { enrolResponseSchema, type EnrolResponse } from "../../protocol/messages.js";
import { ApiServer, MAX_BODY_BYTES, type HealthReport } from "../../relay/src/api/server.js";
import { createMetrics } from "../../relay/src/metrics.js";
import { EnrolError } from "../../relay/src/registry/registry.js";

const GOOD_CODE = "K7QX-9MDR-2WPA";

async function withApi(
  fn: (url: string, state: { health: HealthReport; logs: string[] }) => Promise<void>,
  limit = { max: 3, windowMs: 60_000 },
  now?: () => number,
) {
  const logs: string[] = [];
  // A plain pino that keeps its lines, to check that secrets never reach them.
  const captured = pino({ level: "debug" }, { write: (line: string) => void logs.push(line) });
  const state = { health: { ok: true, store: "ok", mqtt: "connected" } as HealthReport, logs };
  const metrics = createMetrics();
  metrics.eventsReceived.inc(3);
  const api = new ApiServer({
    host: "127.0.0.1",
    port: 0,
    log: captured,
    metrics,
    health: () => state.health,
    enrolFailures: limit,
    now,
    enrol: async (hub, code): Promise<EnrolResponse> => {
      if (hub === "hub-gone") throw new EnrolError("revoked", "this hub was revoked");
      if (hub === "hub-old") throw new EnrolError("expired", "the claim code expired");
      if (hub !== "hub-0001") throw new EnrolError("unknown_hub", "no such hub");
      if (code !== GOOD_CODE) throw new EnrolError("bad_code", "wrong claim code");
      return { hub, mqtt: { url: "mqtt://relay:1883", username: hub, password: "s3cret-password-value" }, key: Buffer.alloc(32, 7).toString("base64"), heartbeatS: 60 };
    },
  });
  await api.start();
  try {
    await fn(api.url, state);
  } finally {
    await api.close();
  }
}

const enrol = (url: string, body: string, headers: Record<string, string> = { "content-type": "application/json" }) =>
  fetch(`${url}/v1/enrol`, { method: "POST", headers, body });

test("healthz says 200 when all is up and 503 when the MQTT session or store is down", async () => {
  await withApi(async (url, state) => {
    let res = await fetch(`${url}/healthz`);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { ok: true, store: "ok", mqtt: "connected" });
    state.health = { ok: false, store: "ok", mqtt: "reconnecting" };
    res = await fetch(`${url}/healthz`);
    assert.equal(res.status, 503);
    assert.equal(((await res.json()) as HealthReport).mqtt, "reconnecting");
  });
});

test("metrics is Prometheus text with the relay's metrics", async () => {
  await withApi(async (url) => {
    const res = await fetch(`${url}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^text\/plain/);
    const text = await res.text();
    assert.match(text, /^anxin_relay_events_received_total 3$/m);
    assert.match(text, /# TYPE anxin_relay_mqtt_connected gauge/);
    assert.match(text, /# TYPE anxin_relay_broker_auth_failures_total counter/);
    assert.match(text, /process_cpu_seconds_total/);
  });
});

test("enrolment: a good code gets the credentials; refusals map to 404/403/410", async () => {
  await withApi(
    async (url, { logs }) => {
      let res = await enrol(url, JSON.stringify({ hub: "hub-0001", code: GOOD_CODE }));
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("cache-control"), "no-store");
      const body = enrolResponseSchema.parse(await res.json());
      assert.equal(body.mqtt.password, "s3cret-password-value");

      res = await enrol(url, JSON.stringify({ hub: "hub-0001", code: "WRONG-CODE-1" }));
      assert.equal(res.status, 403);
      assert.deepEqual(await res.json(), { error: "bad_code", message: "wrong claim code" });
      res = await enrol(url, JSON.stringify({ hub: "hub-9999", code: GOOD_CODE }));
      assert.equal(res.status, 404);
      assert.equal(((await res.json()) as { error: string }).error, "unknown_hub");
      res = await enrol(url, JSON.stringify({ hub: "hub-old", code: GOOD_CODE }));
      assert.equal(res.status, 410);
      res = await enrol(url, JSON.stringify({ hub: "hub-gone", code: GOOD_CODE }));
      assert.equal(res.status, 403);
      assert.equal(((await res.json()) as { error: string }).error, "revoked");

      const all = logs.join("");
      assert.match(all, /hub enrolled/);
      assert.doesNotMatch(all, /s3cret-password-value/);
      assert.doesNotMatch(all, new RegExp(GOOD_CODE));
    },
    { max: 100, windowMs: 60_000 },
  );
});

test("enrolment: not JSON, wrong shape, too large, wrong method, unknown path", async () => {
  await withApi(
    async (url) => {
      let res = await enrol(url, "{not json");
      assert.equal(res.status, 400);
      let b = (await res.json()) as { error: string; message: string };
      assert.equal(b.error, "bad_json");

      res = await enrol(url, JSON.stringify({ hub: "bad id!", code: "short", extra: 1 }));
      assert.equal(res.status, 400);
      b = (await res.json()) as { error: string; message: string };
      assert.equal(b.error, "bad_request");
      assert.match(b.message, /hub/);
      assert.match(b.message, /code/);
      assert.match(b.message, /extra/);

      res = await enrol(url, JSON.stringify({ hub: "hub-0001", code: "x".repeat(MAX_BODY_BYTES) }));
      assert.equal(res.status, 413);
      assert.equal(((await res.json()) as { error: string }).error, "too_large");

      // Without a content-length (chunked), the limit is counted as the body arrives.
      const status = await new Promise<number>((resolve, reject) => {
        const u = new URL(`${url}/v1/enrol`);
        const req = http.request({ host: u.hostname, port: u.port, path: u.pathname, method: "POST", headers: { "transfer-encoding": "chunked" } }, (r) => {
          r.resume();
          resolve(r.statusCode ?? 0);
        });
        req.on("error", reject);
        for (let i = 0; i < 8; i++) req.write("y".repeat(1024));
        req.end();
      });
      assert.equal(status, 413);

      res = await fetch(`${url}/v1/enrol`);
      assert.equal(res.status, 405);
      assert.equal(res.headers.get("allow"), "POST");
      res = await fetch(`${url}/v1/nothing`);
      assert.equal(res.status, 404);
      res = await fetch(`${url}/`);
      assert.equal(res.status, 404);
    },
    { max: 100, windowMs: 60_000 },
  );
});

test("enrolment: repeated failures from one address are rate limited, even with the right code", async () => {
  let now = 1_000_000;
  await withApi(
    async (url) => {
      for (let i = 0; i < 3; i++) assert.equal((await enrol(url, JSON.stringify({ hub: "hub-0001", code: `GUESS-${i}-0000` }))).status, 403);
      let res = await enrol(url, JSON.stringify({ hub: "hub-0001", code: GOOD_CODE }));
      assert.equal(res.status, 429);
      assert.equal(res.headers.get("retry-after"), "60");
      assert.equal(((await res.json()) as { error: string }).error, "rate_limited");
      // Health and metrics stay reachable.
      assert.equal((await fetch(`${url}/healthz`)).status, 200);
      // After the window the address may try again.
      now += 60_001;
      res = await enrol(url, JSON.stringify({ hub: "hub-0001", code: GOOD_CODE }));
      assert.equal(res.status, 200);
    },
    { max: 3, windowMs: 60_000 },
    () => now,
  );
});
