// The relay's HTTP listener behind a reverse proxy and beside a monitoring network: the enrolment rate limit
// counts the client a trusted proxy names (and nobody else's X-Forwarded-For), /metrics can have a listener
// of its own, and a control character in the URL is a 400.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { pino } from "pino";
import Fastify from "fastify";
import { clientKey, parseCidr, trustProxyOption } from "../../relay/src/api/client-address.js";
import { ApiServer, urlHasControlChars } from "../../relay/src/api/server.js";
import { readRelayConfig } from "../../relay/src/config/loader.js";
import { createMetrics } from "../../relay/src/metrics.js";
import { EnrolError } from "../../relay/src/registry/registry.js";
import { freePort, startRelayForTest } from "../support/relay-rig.js";

const GOOD = "K7QX-9MDR-2WPA";

async function withApi(o: { trustedProxies?: string[]; metricsListener?: { host: string; port: number } }, fn: (api: ApiServer) => Promise<void>) {
  const api = new ApiServer({
    host: "127.0.0.1",
    port: 0,
    log: pino({ level: "silent" }),
    metrics: createMetrics(),
    health: () => ({ ok: true }),
    enrolFailures: { max: 3, windowMs: 60_000 },
    enrol: async (hub, code) => {
      if (code !== GOOD) throw new EnrolError("bad_code", "wrong claim code");
      return { hub, mqtt: { url: "mqtt://relay:1883", username: hub, password: "p".repeat(32) }, key: Buffer.alloc(32).toString("base64"), heartbeatS: 60 };
    },
    ...o,
  });
  await api.start();
  try {
    await fn(api);
  } finally {
    await api.close();
  }
}

const enrol = (url: string, code: string, xff?: string) =>
  fetch(`${url}/v1/enrol`, { method: "POST", headers: { "content-type": "application/json", ...(xff !== undefined ? { "x-forwarded-for": xff } : {}) }, body: JSON.stringify({ hub: "hub-0001", code }) }).then(async (r) => {
    await r.arrayBuffer();
    return r.status;
  });

test("behind a trusted proxy, one client's failures lock out that client only", async () => {
  await withApi({ trustedProxies: ["127.0.0.0/8"] }, async (api) => {
    for (let i = 0; i < 3; i++) assert.equal(await enrol(api.url, `GUESS-${i}-00000`, "203.0.113.5"), 403);
    assert.equal(await enrol(api.url, GOOD, "203.0.113.5"), 429, "the guessing client is limited");
    assert.equal(await enrol(api.url, GOOD, "203.0.113.6"), 200, "everyone else behind the same proxy is not");
    // The proxy appends; what the client wrote itself (left of it) is never believed.
    assert.equal(await enrol(api.url, GOOD, "198.51.100.77, 203.0.113.5"), 429, "a spoofed entry does not change who the proxy saw");
    assert.equal(await enrol(api.url, GOOD, "203.0.113.5, 127.0.0.1"), 429, "a chain of trusted proxies is walked back to the client");
    assert.equal(await enrol(api.url, GOOD, "::ffff:203.0.113.5"), 429, "one client, one key, however the address is written");
    // No header from a trusted proxy: the proxy itself is the client.
    assert.equal(await enrol(api.url, GOOD), 200);
  });
});

test("without trusted proxies, X-Forwarded-For is ignored: a client cannot dodge the limit with it", async () => {
  await withApi({}, async (api) => {
    for (let i = 0; i < 3; i++) assert.equal(await enrol(api.url, `GUESS-${i}-00000`, `203.0.113.${i}`), 403);
    assert.equal(await enrol(api.url, GOOD, "203.0.113.99"), 429);
  });
});

test("clientKey under trustProxy: the rightmost untrusted hop; malformed hops fall back to the last trusted one", async () => {
  const keyOf = async (trusted: string[] | undefined, peer: string, xff?: string) => {
    const app = Fastify({ trustProxy: trustProxyOption(trusted) });
    app.get("/", async (request) => clientKey(request));
    const r = await app.inject({ url: "/", remoteAddress: peer, headers: xff === undefined ? {} : { "x-forwarded-for": xff } });
    await app.close();
    return r.body;
  };
  const trusted = ["10.0.0.0/8", "fd00::/8"];
  assert.equal(await keyOf(trusted, "10.1.1.1", "192.0.2.1, 198.51.100.2"), "198.51.100.2");
  assert.equal(await keyOf(trusted, "10.1.1.1", "192.0.2.1, 198.51.100.2, 10.2.2.2"), "198.51.100.2");
  assert.equal(await keyOf(trusted, "::ffff:10.1.1.1", "2001:db8::5"), "2001:db8::5");
  assert.equal(await keyOf(trusted, "fd00::1", "10.3.3.3"), "10.3.3.3", "all hops trusted: the leftmost");
  assert.equal(await keyOf(trusted, "10.1.1.1", "198.51.100.2, garbage"), "10.1.1.1");
  assert.equal(await keyOf(trusted, "10.1.1.1", "192.0.2.1, 198.51.100.3"), "198.51.100.3", "repeated headers arrive joined");
  assert.equal(await keyOf(trusted, "192.0.2.50", "198.51.100.2"), "192.0.2.50", "an untrusted peer's header is ignored");
  assert.equal(await keyOf(undefined, "10.1.1.1", "198.51.100.2"), "10.1.1.1");
  assert.throws(() => trustProxyOption(["10.0.0.0/33"]), /http\.trustedProxies: not an address or CIDR range/);
  assert.deepEqual(parseCidr("10.0.0.0/8"), { address: "10.0.0.0", prefix: 8, family: "ipv4" });
  assert.deepEqual(parseCidr("2001:db8::1"), { address: "2001:db8::1", prefix: 128, family: "ipv6" });
  for (const bad of ["10.0.0.0/33", "fd00::/129", "relay.example", "10.0.0.0/8/1", "10.0.0.0/x", ""]) assert.equal(parseCidr(bad), undefined, bad);
});

test("http.trustedProxies and http.metrics in the configuration: checked, with safe defaults", async () => {
  const dir = mkdtempSync(path.join(tmpdir(), "anxin-relay-cfg-"));
  try {
    const file = path.join(dir, "relay.yaml");
    writeFileSync(file, "relay: { dataDir: ./data }\nbroker: { kind: embedded, host: 127.0.0.1 }\n");
    const plain = (await readRelayConfig(file)).config;
    assert.deepEqual(plain.http.trustedProxies, []);
    assert.equal(plain.http.metrics, undefined);
    writeFileSync(file, "relay: { dataDir: ./data }\nbroker: { kind: embedded, host: 127.0.0.1 }\nhttp: { trustedProxies: [10.0.0.0/8, '::1', 'fd00::/8'], metrics: { port: 9464 } }\n");
    const set = (await readRelayConfig(file)).config;
    assert.deepEqual(set.http.trustedProxies, ["10.0.0.0/8", "::1", "fd00::/8"]);
    assert.deepEqual(set.http.metrics, { host: "127.0.0.1", port: 9464 });
    writeFileSync(file, "relay: { dataDir: ./data }\nbroker: { kind: embedded, host: 127.0.0.1 }\nhttp: { trustedProxies: [10.0.0.0/33, proxy.example], metrics: { port: 9464, path: /m } }\n");
    await assert.rejects(readRelayConfig(file), (e: Error) => {
      assert.match(e.message, /http\.trustedProxies\[0\]: expected an IP address or a CIDR range/);
      assert.match(e.message, /http\.trustedProxies\[1\]: expected an IP address or a CIDR range/);
      assert.match(e.message, /http\.metrics.*path/);
      return true;
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a separate metrics listener: /metrics only there, 404 on the public listener", async () => {
  await withApi({ metricsListener: { host: "127.0.0.1", port: 0 } }, async (api) => {
    assert.notEqual(api.metricsUrl, api.url);
    const m = await fetch(`${api.metricsUrl}/metrics`);
    assert.equal(m.status, 200);
    assert.match(await m.text(), /process_cpu_seconds_total/);
    assert.equal((await fetch(`${api.metricsUrl}/healthz`)).status, 200);
    assert.equal((await fetch(`${api.metricsUrl}/v1/enrol`, { method: "POST", body: "{}" })).status, 404, "no enrolment on the metrics listener");
    const pub = await fetch(`${api.url}/metrics`);
    assert.equal(pub.status, 404);
    assert.equal(((await pub.json()) as { error: string }).error, "not_found");
    assert.equal((await fetch(`${api.url}/healthz`)).status, 200);
    assert.equal(await enrol(api.url, GOOD), 200);
  });
  // Without it, /metrics stays on the one listener (the default).
  await withApi({}, async (api) => {
    assert.equal(api.metricsUrl, api.url);
    assert.equal((await fetch(`${api.url}/metrics`)).status, 200);
  });
});

test("the relay daemon serves /metrics on http.metrics when configured", async () => {
  const port = await freePort();
  const rig = await startRelayForTest({ config: { http: { metrics: { host: "127.0.0.1", port } } } });
  try {
    const m = await fetch(`http://127.0.0.1:${port}/metrics`);
    assert.equal(m.status, 200);
    assert.match(await m.text(), /anxin_relay_events_received_total/);
    assert.equal((await fetch(`${rig.httpUrl}/metrics`)).status, 404);
    assert.equal((await fetch(`${rig.httpUrl}/healthz`)).status, 200);
  } finally {
    await rig.stop();
  }
});

test("a control character anywhere in the path or query is a 400 at the listener", async () => {
  for (const [u, bad] of [
    ["/v1/incidents/%00", true],
    ["/v1/incidents/a%0Ab", true],
    ["/v1/x?hub=%00", true],
    ["/v1/x?%7F=1", true],
    ["/v1/x/%C2%85", true],
    ["/v1/incidents/%E0%A4%A", false],
    ["/v1/incidents/%2500", false],
    ["/v1/incidents/hub-1?state=all", false],
  ] as const)
    assert.equal(urlHasControlChars(new URL(u, "http://relay")), bad, u);
  await withApi({}, async (api) => {
    for (const p of ["/v1/enrol%00", "/healthz?x=%00", "/v1/incidents/%00"]) {
      const r = await fetch(`${api.url}${p}`);
      assert.equal(r.status, 400, p);
      assert.equal(((await r.json()) as { error: string }).error, "bad_path");
    }
  });
});
