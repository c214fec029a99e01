// The relay's configuration loader: every problem with file:line:key, defaults, relative paths.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { z } from "zod";
import { ConfigError, formatConfigProblems, hubMqttUrl, readRelayConfig, readYamlFile, relayPublicUrl } from "../../relay/src/config/loader.js";
import { mosquittoHubAcl, mosquittoRelayAcl } from "../../relay/src/broker/mosquitto.js";

async function withFile<T>(text: string, fn: (file: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "anxin-relay-cfg-"));
  const file = path.join(dir, "relay.yaml");
  await writeFile(file, text);
  try {
    return await fn(file);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function problemsOf(text: string): Promise<ConfigError["problems"]> {
  return withFile(text, async (file) => {
    try {
      await readRelayConfig(file);
      return [];
    } catch (e) {
      assert.ok(e instanceof ConfigError, String(e));
      return e.problems;
    }
  });
}

const base = "relay: { id: r1, dataDir: ./data }\n";

test("the example configuration is valid", async () => {
  const { config } = await readRelayConfig(path.resolve("config/relay.example.yaml"));
  assert.equal(config.broker.kind, "embedded");
  assert.equal(config.relay.dataDir, "/var/lib/anxin-relay");
  assert.equal(hubMqttUrl(config), "mqtts://relay.example.org:8883");
  assert.equal(relayPublicUrl(config), "https://relay.example.org");
});

test("defaults fill in; relative paths resolve against the file (SQLite against dataDir)", async () => {
  await withFile(base + "broker: { kind: external, url: 'mqtt://localhost:1883', caFile: ca.pem }\n", async (file) => {
    const { config } = await readRelayConfig(file);
    const dir = path.dirname(file);
    assert.equal(config.relay.dataDir, path.join(dir, "data"));
    assert.equal(config.store.kind === "sqlite" && config.store.path, path.join(dir, "data", "relay.db"));
    assert.equal(config.broker.kind === "external" && config.broker.caFile, path.join(dir, "ca.pem"));
    assert.equal(config.broker.kind === "external" && config.broker.sharedGroup, "relay");
    assert.equal(config.http.port, 8080);
    assert.equal(config.ingest.maxPayloadBytes, 65536);
  });
  await withFile(base + "broker: { kind: embedded, port: 1883, tls: { certFile: c.pem, keyFile: k.pem } }\nhttp: { publicUrl: 'https://r.example.org/' }\n", async (file) => {
    const { config } = await readRelayConfig(file);
    assert.equal(config.broker.kind === "embedded" && config.broker.tls?.certFile, path.join(path.dirname(file), "c.pem"));
    assert.equal(hubMqttUrl(config), "mqtts://r.example.org:1883");
    assert.equal(relayPublicUrl(config), "https://r.example.org");
  });
});

test("an unknown key is reported with its file, line and path", async () => {
  const p = await problemsOf(base + "ingest:\n  batchMaxEvents: 10\n  maxPayload: 100\n");
  assert.equal(p.length, 1);
  assert.equal(p[0]!.field, "ingest.maxPayload");
  assert.equal(p[0]!.line, 4);
  assert.match(p[0]!.message, /unknown key 'maxPayload'/);
  assert.match(formatConfigProblems(p), /relay\.yaml:4: ingest\.maxPayload: unknown key/);
});

test("wrong types and a missing key are all reported, each where it is", async () => {
  const p = await problemsOf(`relay:
  id: r1
supervision:
  heartbeatIntervalS: often
broker:
  kind: embedded
  port: 70000
`);
  const by = Object.fromEntries(p.map((x) => [x.field, x]));
  assert.deepEqual(Object.keys(by).sort(), ["broker.port", "relay.dataDir", "supervision.heartbeatIntervalS"]);
  assert.equal(by["supervision.heartbeatIntervalS"]!.line, 4);
  assert.equal(by["broker.port"]!.line, 7);
  assert.equal(by["relay.dataDir"]!.line, 2, "a missing key points at its parent's block");
});

test("an unknown broker kind names the field", async () => {
  const p = await problemsOf(base + "broker:\n  kind: mosquitto\n");
  assert.equal(p.length, 1);
  assert.equal(p[0]!.field, "broker.kind");
  assert.equal(p[0]!.line, 3);
});

test("cross-checks: URLs, a random embedded port, a password without a user", async () => {
  const p = await problemsOf(base + "broker: { kind: embedded, port: 0, publicUrl: 'http://x' }\nhttp: { publicUrl: 'not a url' }\n");
  const by = (f: string) => p.filter((x) => x.field === f).map((x) => x.message).join(" | ");
  assert.match(by("broker.port"), /random port/);
  assert.match(by("broker.publicUrl"), /mqtt:\/\/ or mqtts:\/\//);
  assert.match(by("http.publicUrl"), /not a URL/);
  assert.ok(p.every((x) => x.line === 2 || x.line === 3));
  const q = await problemsOf(base + "broker:\n  kind: external\n  url: 'mqtt://b:1883'\n  password: x\n");
  assert.equal(q[0]!.field, "broker.password");
  assert.equal(q[0]!.line, 5);
});

test("YAML syntax errors and duplicate keys give the line; a missing file says so", async () => {
  let p = await problemsOf("relay:\n  id: r1\n  dataDir: [unclosed\n");
  assert.ok(p[0]!.line !== undefined);
  assert.match(p[0]!.message, /^YAML/);
  p = await problemsOf(base + "log: { level: info }\nlog: { level: debug }\n");
  assert.equal(p[0]!.line, 3);
  await assert.rejects(readRelayConfig("/nonexistent/relay.yaml"), (e: ConfigError) => /cannot read/.test(e.message));
});

test("the YAML reader is generic: any zod schema, the same file:line:key reporting", async () => {
  const schema = z.object({ plans: z.array(z.object({ elder: z.string(), contacts: z.number().int() }).strict()) }).strict();
  await withFile("plans:\n  - elder: e1\n    contacts: 2\n  - elder: e2\n    contacts: many\n", async (file) => {
    await assert.rejects(readYamlFile(file, schema), (e: ConfigError) => {
      assert.equal(e.problems[0]!.field, "plans[1].contacts");
      assert.equal(e.problems[0]!.line, 5);
      return true;
    });
  });
});

test("the Mosquitto ACLs: each hub only its own topics; the relay (its own listener) all of them", () => {
  const acl = mosquittoHubAcl();
  for (const line of ["pattern write anxin/v1/%u/evt", "pattern write anxin/v1/%u/state", "pattern read anxin/v1/%u/ack", "pattern read anxin/v1/%u/cmd"])
    assert.ok(acl.split("\n").includes(line), line);
  assert.doesNotMatch(acl, /^(user|topic) /m, "the hubs' ACL grants no one more than their own topics");
  const relay = mosquittoRelayAcl().split("\n");
  assert.deepEqual(relay.slice(relay.indexOf("user anxin-relay"), relay.indexOf("user anxin-relay") + 2), ["user anxin-relay", "topic readwrite anxin/v1/#"]);
});
