// TLS by default outside this machine, on both daemons: the relay's embedded broker refuses to listen
// without TLS on anything but loopback, and a hub refuses an unencrypted broker URL to another machine,
// unless each is told so explicitly (broker.allowPlaintext, uplink.allowPlaintext), which then logs a
// warning at every start. Loopback needs no opt-in (the demo, the tests).
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { pino, type Logger } from "pino";
import { configSchema } from "../../gateway/src/config/schema.js";
import { openUplink } from "../../gateway/src/uplink/index.js";
import { provision } from "../../gateway/src/uplink/provision.js";
import { writeSecrets } from "../../gateway/src/uplink/secrets.js";
import { loadUplinkSettings, UplinkSetupError } from "../../gateway/src/uplink/settings.js";
import { EmbeddedBroker } from "../../relay/src/broker/embedded.js";
import { isLoopbackHost } from "../../relay/src/broker/plaintext.js";
import { ConfigError, readRelayConfig } from "../../relay/src/config/loader.js";
import { createMetrics } from "../../relay/src/metrics.js";
import { startRelayForTest } from "../support/relay-rig.js";

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const d = mkdtempSync(path.join(tmpdir(), "anxin-plaintext-"));
  dirs.push(d);
  return d;
}

function captureLog(): { log: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level: "info" }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  return { log, lines };
}
const WARN = 40;

// --- relay -------------------------------------------------------------------------------------------

async function relayProblems(yaml: string): Promise<ConfigError["problems"]> {
  const file = path.join(tempDir(), "relay.yaml");
  writeFileSync(file, `relay: { id: r1, dataDir: ./data }\n${yaml}`);
  try {
    await readRelayConfig(file);
    return [];
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    return e.problems;
  }
}

test("relay: an embedded broker without TLS on a non-loopback host is a configuration error naming the keys", async () => {
  for (const yaml of [
    "broker: { kind: embedded, host: 0.0.0.0, port: 1883 }\n",
    "broker: { kind: embedded, host: '::', port: 1883 }\n",
    "broker: { kind: embedded, host: 192.0.2.7, port: 1883 }\n",
    "broker: { kind: embedded, host: relay.example.org, port: 1883 }\n",
    "broker: { kind: embedded, port: 1883 }\n", // the default host, 0.0.0.0
    "", // no broker section at all: the embedded broker on 0.0.0.0
  ]) {
    const p = await relayProblems(yaml);
    assert.equal(p.length, 1, `${yaml}: ${JSON.stringify(p)}`);
    assert.equal(p[0]!.field, "broker.host", yaml);
    assert.match(p[0]!.message, /without TLS/, yaml);
    assert.match(p[0]!.message, /broker\.tls/, yaml);
    assert.match(p[0]!.message, /broker\.allowPlaintext: true/, yaml);
  }
  // The line is the host's when it is written.
  const p = await relayProblems("broker:\n  kind: embedded\n  host: 0.0.0.0\n  port: 1883\n");
  assert.equal(p[0]!.line, 4);
});

test("relay: loopback needs no TLS; TLS or an explicit broker.allowPlaintext lets it listen anywhere", async () => {
  for (const yaml of [
    "broker: { kind: embedded, host: 127.0.0.1, port: 1883 }\n",
    "broker: { kind: embedded, host: 127.0.0.53, port: 1883 }\n",
    "broker: { kind: embedded, host: '::1', port: 1883 }\n",
    "broker: { kind: embedded, host: localhost, port: 1883 }\n",
    "broker: { kind: embedded, host: 0.0.0.0, port: 8883, tls: { certFile: c.pem, keyFile: k.pem } }\n",
    "broker: { kind: embedded, host: 0.0.0.0, port: 1883, allowPlaintext: true }\n",
    "broker: { kind: external, url: 'mqtt://127.0.0.1:1883' }\n",
  ])
    assert.deepEqual(await relayProblems(yaml), [], yaml);
  assert.match((await relayProblems("broker: { kind: embedded, host: 0.0.0.0, allowPlaintext: yes please }\n"))[0]!.field, /broker/);
  for (const h of ["127.0.0.1", "127.255.0.9", "::1", "[::1]", "::ffff:127.0.0.1", "localhost", "LOCALHOST"]) assert.equal(isLoopbackHost(h), true, h);
  for (const h of ["0.0.0.0", "::", "", "10.0.0.1", "::ffff:10.0.0.1", "128.0.0.1", "relay.example.org", "localhost.example.org"]) assert.equal(isLoopbackHost(h), false, h);
});

test("relay: the broker itself refuses such a listener; allowed plaintext is warned about at start", async () => {
  const base = { port: 0, verifyCredentials: async () => null, metrics: createMetrics(), maxPacketBytes: 8192 };
  await assert.rejects(EmbeddedBroker.start({ ...base, host: "0.0.0.0", log: pino({ level: "silent" }) }), /refusing to start: .*without TLS/);

  const loop = captureLog();
  const local = await EmbeddedBroker.start({ ...base, host: "127.0.0.1", log: loop.log });
  await local.close();
  assert.equal(loop.lines.filter((l) => l.level === WARN).length, 0, "loopback: no warning");

  // The daemon: refused before anything starts, unless allowed; allowed, it says so at start.
  await assert.rejects(startRelayForTest({ config: { broker: { host: "0.0.0.0" } } }), (e: Error) => {
    assert.ok(e instanceof ConfigError);
    assert.match(e.message, /broker\.host: the embedded broker would listen on 0\.0\.0\.0 without TLS/);
    return true;
  });
  const { log, lines } = captureLog();
  const rig = await startRelayForTest({ config: { broker: { host: "0.0.0.0", allowPlaintext: true } }, log });
  try {
    const warned = lines.filter((l) => l.level === WARN && /WITHOUT TLS/.test(String(l.msg)));
    assert.equal(warned.length, 1, JSON.stringify(lines.filter((l) => l.level === WARN)));
    assert.equal(warned[0]!.host, "0.0.0.0");
  } finally {
    await rig.stop();
  }
});

// --- hub ---------------------------------------------------------------------------------------------

const KEY = randomBytes(32).toString("base64");

async function hubConfig(uplink: Record<string, unknown>, secretsUrl = "mqtts://relay.example:8883") {
  const dir = tempDir();
  const config = configSchema.parse({ hub: { id: "hub-a", dataDir: path.join(dir, "data") }, uplink });
  await writeSecrets(path.join(dir, "data", "secrets.json"), { hub: "hub-a", mqtt: { url: secretsUrl, username: "hub-a", password: "s3cret-mqtt-password" }, key: KEY, heartbeatS: 60 });
  return { config, dir };
}

test("hub: an unencrypted broker URL to another machine is refused with an error naming the key", async () => {
  for (const url of ["mqtt://relay.example:1883", "mqtt://192.0.2.7:1883", "ws://relay.example/mqtt", "mqtt://[2001:db8::1]:1883", "mqtt://0.0.0.0:1883"]) {
    const { config, dir } = await hubConfig({ url });
    await assert.rejects(loadUplinkSettings(config, dir), (e: Error) => {
      assert.ok(e instanceof UplinkSetupError, String(e));
      assert.match(e.message, /refusing uplink\.url/);
      assert.match(e.message, /is not encrypted/);
      assert.match(e.message, /uplink\.allowPlaintext: true/);
      assert.ok(!e.message.includes("s3cret"), "no password in the message");
      return true;
    }, url);
  }
  // The same from the secrets file (the URL the relay gave at enrolment).
  const { config, dir } = await hubConfig({}, "mqtt://relay.example:1883");
  await assert.rejects(loadUplinkSettings(config, dir), /refusing the broker url in the secrets file .*uplink\.allowPlaintext: true/);
  // The daemon's uplink reports it and does not start (the hub keeps guarding locally).
  const { log, lines } = captureLog();
  const failed = await openUplink({ config, configDir: dir, boot: 1, version: "t", journal: null as never, append: async () => {}, log });
  assert.equal(failed?.status().state, "failed");
  assert.match(failed?.status().error ?? "", /uplink\.allowPlaintext/);
  assert.ok(lines.some((l) => l.level === 50 && /not started/.test(String(l.msg))));
});

test("hub: loopback and TLS need nothing; uplink.allowPlaintext lets it through with a warning at start", async () => {
  for (const url of ["mqtt://127.0.0.1:1883", "mqtt://localhost:1883", "mqtt://[::1]:1883", "ws://127.0.0.1:8080/mqtt", "mqtts://relay.example:8883", "wss://relay.example/mqtt"]) {
    const { config, dir } = await hubConfig({ url });
    const s = await loadUplinkSettings(config, dir);
    assert.equal(s.url, url);
    assert.equal(s.plaintextWarning, undefined, url);
  }
  const { config, dir } = await hubConfig({ url: "mqtt://relay.example:1883", allowPlaintext: true });
  const s = await loadUplinkSettings(config, dir);
  assert.match(s.plaintextWarning ?? "", /not encrypted \(uplink\.allowPlaintext: true\)/);
  const { log, lines } = captureLog();
  const up = await openUplink({ config, configDir: dir, boot: 1, version: "t", journal: null as never, append: async () => {}, log });
  assert.notEqual(up?.status().state, "failed");
  const warned = lines.filter((l) => l.level === WARN && /not encrypted/.test(String(l.msg)));
  assert.equal(warned.length, 1);
  assert.equal(warned[0]!.url, "mqtt://relay.example:1883");
  // A loopback hub is not warned about.
  const local = await hubConfig({ url: "mqtt://127.0.0.1:1883" });
  const quiet = captureLog();
  await openUplink({ config: local.config, configDir: local.dir, boot: 1, version: "t", journal: null as never, append: async () => {}, log: quiet.log });
  assert.equal(quiet.lines.filter((l) => l.level === WARN).length, 0);
});

test("hub: provision warns when the relay hands out an unencrypted broker URL the uplink will refuse", async () => {
  let brokerUrl = "mqtt://relay.example:1883";
  const server = createServer((req, res) => {
    let raw = "";
    req.on("data", (c: Buffer) => (raw += c.toString()));
    req.on("end", () => {
      const { hub } = JSON.parse(raw) as { hub: string };
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ hub, mqtt: { url: brokerUrl, username: hub, password: "s3cret-mqtt-password" }, key: KEY, heartbeatS: 60 }));
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  after(() => server.close());
  const relay = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const run = async () => {
    const dir = tempDir();
    const warnings: string[] = [];
    await provision({ relay, hub: "hub-a", code: "CLAIM-1234", dataDir: path.join(dir, "data"), secretsFile: path.join(dir, "data", "secrets.json"), warn: (m) => warnings.push(m) });
    return warnings.filter((w) => !/plain http \(this machine\)/.test(w));
  };
  const w = await run();
  assert.equal(w.length, 1);
  assert.match(w[0]!, /broker mqtt:\/\/relay\.example:1883 is not encrypted: the uplink will not connect to it unless uplink\.allowPlaintext: true/);
  for (const url of ["mqtts://relay.example:8883", "mqtt://127.0.0.1:1883"]) {
    brokerUrl = url;
    assert.deepEqual(await run(), [], url);
  }
});
