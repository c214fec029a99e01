// Everything the uplink needs before it connects: the configuration section, the secrets file and its
// permissions, enrolment at the relay (`anxin-hub provision`), and a clear report when any of it is wrong.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { pino } from "pino";
import { configSchema } from "../../gateway/src/config/schema.js";
import { readConfigFile } from "../../gateway/src/config/loader.js";
import { parseSecrets, readSecrets, SecretsError, writeSecrets } from "../../gateway/src/uplink/secrets.js";
import { displayUrl, loadUplinkSettings, secretsPath } from "../../gateway/src/uplink/settings.js";
import { openUplink } from "../../gateway/src/uplink/index.js";
import { provision, ProvisionError } from "../../gateway/src/uplink/provision.js";
import type { EnrolResponse } from "../../protocol/messages.js";

const dirs: string[] = [];
const servers: Server[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  for (const s of servers) s.close();
});

function tempDir(): string {
  const d = mkdtempSync(path.join(tmpdir(), "anxin-uplink-setup-"));
  dirs.push(d);
  return d;
}

const KEY = randomBytes(32).toString("base64");
const PASSWORD = "s3cret-mqtt-password";
const record = (hub: string, over: Partial<EnrolResponse> = {}): EnrolResponse => ({
  hub,
  mqtt: { url: "mqtts://relay.example:8883", username: `hub-${hub}`, password: PASSWORD },
  key: KEY,
  heartbeatS: 60,
  ...over,
});

const silent = pino({ level: "silent" });

// --- configuration -----------------------------------------------------------------------------------

test("config: uplink is optional; an empty section takes the documented defaults", () => {
  const base = { hub: { id: "h1", dataDir: "/tmp/x" } };
  assert.equal(configSchema.parse(base).uplink, undefined);
  const u = configSchema.parse({ ...base, uplink: {} }).uplink;
  assert.deepEqual(u, { window: 256, ackTimeoutMs: 5000, historicalAfterMs: 60000, reconnectMinMs: 1000, reconnectMaxMs: 60000 });
});

test("config: bad uplink values are errors with their key path", () => {
  const base = { hub: { id: "h1", dataDir: "/tmp/x" } };
  const issues = (uplink: unknown) => {
    const r = configSchema.safeParse({ ...base, uplink });
    assert.equal(r.success, false);
    return r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
  };
  assert.match(issues({ window: 1 }).join(), /uplink\.window/);
  assert.match(issues({ url: "http://relay" }).join(), /uplink\.url/);
  assert.match(issues({ reconnectMinMs: 90000, reconnectMaxMs: 2000 }).join(), /uplink\.reconnectMinMs: must not exceed reconnectMaxMs/);
  assert.match(issues({ certFile: "c.pem" }).join(), /uplink\.keyFile: certFile and keyFile go together/);
  assert.match(issues({ passwrd: "x" }).join(), /unrecognized|Unrecognized/);
});

// --- secrets -----------------------------------------------------------------------------------------

test("secrets: written atomically with mode 0600 in a 0700 folder, read back", async () => {
  const dir = tempDir();
  const file = path.join(dir, "state", "secrets.json");
  await writeSecrets(file, record("hub-a"));
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.equal(statSync(path.dirname(file)).mode & 0o777, 0o700);
  assert.deepEqual(readdirSync(path.dirname(file)), ["secrets.json"], "no temporary file left behind");
  const s = await readSecrets(file, "hub-a");
  assert.equal(s.password, PASSWORD);
  assert.equal(s.key.length, 32);
  await writeSecrets(file, record("hub-a", { heartbeatS: 30 }));
  assert.equal((await readSecrets(file, "hub-a")).heartbeatS, 30);
});

test("secrets: a file group or others can read is refused, and the error says why and how to fix it", async () => {
  const dir = tempDir();
  const file = path.join(dir, "secrets.json");
  await writeSecrets(file, record("hub-a"));
  for (const mode of [0o644, 0o640, 0o604, 0o620]) {
    chmodSync(file, mode);
    await assert.rejects(readSecrets(file, "hub-a"), (e: Error) => {
      assert.ok(e instanceof SecretsError);
      assert.match(e.message, new RegExp(`mode is 0${mode.toString(8)}`));
      assert.match(e.message, /other users can read or change/);
      assert.match(e.message, /chmod 600/);
      assert.ok(!e.message.includes(PASSWORD) && !e.message.includes(KEY));
      return true;
    });
  }
  chmodSync(file, 0o400);
  assert.equal((await readSecrets(file, "hub-a")).hub, "hub-a");
});

test("secrets: missing file, wrong hub, broken JSON and a bad record each get a clear error without secret values", async () => {
  const dir = tempDir();
  const file = path.join(dir, "secrets.json");
  await assert.rejects(readSecrets(file, "hub-a"), /no secrets file at .*anxin-hub provision --relay/);
  await writeSecrets(file, record("hub-b"));
  await assert.rejects(readSecrets(file, "hub-a"), /belongs to hub 'hub-b', but this configuration is hub 'hub-a'/);
  assert.throws(() => parseSecrets("{", file, "hub-a"), /not valid JSON/);
  const bad = JSON.stringify({ ...record("hub-a"), key: "short" });
  assert.throws(() => parseSecrets(bad, file, "hub-a"), (e: Error) => /key:/.test(e.message) && !e.message.includes(PASSWORD));
  const noPw = JSON.stringify({ ...record("hub-a"), mqtt: { url: "mqtt://x", username: "u" } });
  assert.throws(() => parseSecrets(noPw, file, "hub-a"), /mqtt\.password/);
});

test("settings: default secrets path, url override, URL shown without credentials; a failed uplink reports why", async () => {
  const dir = tempDir();
  const config = configSchema.parse({ hub: { id: "hub-a", dataDir: path.join(dir, "data") }, uplink: { url: "mqtts://broker.local:8883", heartbeatS: 20 } });
  assert.equal(secretsPath(config, dir), path.join(dir, "data", "secrets.json"));
  assert.equal(secretsPath({ ...config, uplink: { ...config.uplink!, secretsFile: "s/x.json" } }, dir), path.join(dir, "s", "x.json"));
  await writeSecrets(path.join(dir, "data", "secrets.json"), record("hub-a"));
  const s = await loadUplinkSettings(config, dir);
  assert.equal(s.url, "mqtts://broker.local:8883");
  assert.equal(s.heartbeatS, 20);
  assert.equal(displayUrl("mqtts://user:pw@relay.example:8883"), "mqtts://relay.example:8883");

  chmodSync(path.join(dir, "data", "secrets.json"), 0o644);
  const failed = await openUplink({ config, configDir: dir, boot: 1, version: "t", journal: null as never, append: async () => {}, log: silent });
  assert.equal(failed?.status().state, "failed");
  assert.match(failed?.status().error ?? "", /refusing to use .*chmod 600/);
  assert.equal(await openUplink({ config: { ...config, uplink: undefined }, configDir: dir, boot: 1, version: "t", journal: null as never, append: async () => {}, log: silent }), null);
});

// --- provisioning ------------------------------------------------------------------------------------

type Handler = (body: unknown, req: IncomingMessage, res: ServerResponse) => void;

async function fakeRelay(handler: Handler): Promise<{ url: string; requests: unknown[] }> {
  const requests: unknown[] = [];
  const server = createServer((req, res) => {
    let raw = "";
    req.on("data", (c: Buffer) => (raw += c.toString()));
    req.on("end", () => {
      if (req.method !== "POST" || req.url !== "/v1/enrol") {
        res.writeHead(404).end();
        return;
      }
      const body = JSON.parse(raw) as unknown;
      requests.push(body);
      handler(body, req, res);
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests };
}

const json = (res: ServerResponse, status: number, body: unknown) => res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));

test("provision: the relay's answer is stored 0600; the result carries no password or key", async () => {
  const relay = await fakeRelay((b, _req, res) => json(res, 200, record((b as { hub: string }).hub)));
  const dir = tempDir();
  const dataDir = path.join(dir, "data");
  const secretsFile = path.join(dataDir, "secrets.json");
  const r = await provision({ relay: `${relay.url}/`, hub: "hub-a", code: "CLAIM-1234", secretsFile, dataDir });
  assert.deepEqual(relay.requests, [{ hub: "hub-a", code: "CLAIM-1234" }]);
  assert.equal(r.replaced, false);
  assert.equal(r.mqttUrl, "mqtts://relay.example:8883");
  assert.ok(!JSON.stringify(r).includes(PASSWORD) && !JSON.stringify(r).includes(KEY));
  assert.equal(statSync(secretsFile).mode & 0o777, 0o600);
  assert.equal(statSync(dataDir).mode & 0o777, 0o700);
  assert.equal((await readSecrets(secretsFile, "hub-a")).password, PASSWORD);
  assert.equal((await provision({ relay: relay.url, hub: "hub-a", code: "CLAIM-5678", secretsFile, dataDir })).replaced, true);
});

test("provision: a refusal shows the relay's error; bad JSON, a wrong hub and no relay write nothing", async () => {
  const dir = tempDir();
  const dataDir = path.join(dir, "data");
  const secretsFile = path.join(dataDir, "secrets.json");
  const go = (relay: string, hub = "hub-a") => provision({ relay, hub, code: "CLAIM-1234", secretsFile, dataDir, timeoutMs: 3000 });

  const refusing = await fakeRelay((_b, _req, res) => json(res, 403, { error: "code_used", message: "this claim code was already used" }));
  await assert.rejects(go(refusing.url), (e: Error) => {
    assert.ok(e instanceof ProvisionError);
    assert.match(e.message, /HTTP 403.*code_used: this claim code was already used/);
    return true;
  });
  const garbled = await fakeRelay((_b, _req, res) => res.writeHead(200, { "content-type": "application/json" }).end("{not json"));
  await assert.rejects(go(garbled.url), /not JSON \(HTTP 200, application\/json\); nothing was written/);
  const incomplete = await fakeRelay((_b, _req, res) => json(res, 200, { hub: "hub-a", key: KEY }));
  await assert.rejects(go(incomplete.url), /not a valid enrolment \(mqtt: .*\)/);
  const other = await fakeRelay((_b, _req, res) => json(res, 200, record("hub-z")));
  await assert.rejects(go(other.url), /enrolled hub 'hub-z', not 'hub-a'/);
  const gone = await fakeRelay(() => {});
  const port = new URL(gone.url).port;
  await new Promise<void>((r) => servers.pop()!.close(() => r()));
  await assert.rejects(go(`http://127.0.0.1:${port}`), /cannot reach the relay at .*ECONNREFUSED/);
  await assert.rejects(go("ftp://relay"), (e: ProvisionError) => e.exitCode === 2 && /http:\/\/ or https:\/\//.test(e.message));
  await assert.rejects(go(refusing.url, "bad id!"), (e: ProvisionError) => e.exitCode === 2 && /--hub/.test(e.message));
  assert.equal(existsSync(secretsFile), false);
});

test("anxin-hub provision: writes where the configuration says, prints no secret, checks the hub id", async () => {
  const relay = await fakeRelay((b, _req, res) => json(res, 200, record((b as { hub: string }).hub)));
  const dir = tempDir();
  const config = path.join(dir, "hub.yaml");
  writeFileSync(config, "hub: { id: hub-cli, dataDir: ./data }\nuplink: { secretsFile: ./keys/uplink.json }\n");
  // Asynchronous: the fake relay lives in this process and must keep answering.
  const cli = (args: string[]) =>
    new Promise<{ code: number; out: string; err: string }>((resolve) =>
      execFile(process.execPath, ["--import", "tsx", path.resolve("gateway/src/cli/main.ts"), "provision", ...args], { encoding: "utf8", timeout: 30_000 }, (e, out, err) =>
        resolve({ code: e ? Number((e as { code?: unknown }).code ?? 1) : 0, out, err }),
      ),
    );
  const ok = await cli(["--relay", relay.url, "--hub", "hub-cli", "--code", "CLAIM-1234", "--config", config]);
  assert.equal(ok.code, 0, ok.err);
  assert.match(ok.out, /enrolled hub hub-cli/);
  assert.match(ok.out, /keys\/uplink\.json \(mode 0600\)/);
  assert.ok(!ok.out.includes(PASSWORD) && !ok.err.includes(PASSWORD) && !ok.out.includes(KEY) && !ok.err.includes(KEY));
  assert.match(ok.err, /plain http/);
  const secretsFile = path.join(dir, "keys", "uplink.json");
  assert.equal(statSync(secretsFile).mode & 0o777, 0o600);
  assert.equal(JSON.parse(readFileSync(secretsFile, "utf8")).hub, "hub-cli");
  assert.equal(statSync(path.join(dir, "data")).mode & 0o777, 0o700);
  // The configuration it wrote for is the one the daemon reads.
  const loaded = await readConfigFile(config);
  assert.equal(secretsPath(loaded.config, dir), secretsFile);

  const wrong = await cli(["--relay", relay.url, "--hub", "hub-other", "--code", "CLAIM-1234", "--config", config]);
  assert.equal(wrong.code, 2);
  assert.match(wrong.err, /configuration of hub 'hub-cli', not 'hub-other'/);
  const refused = await fakeRelay((_b, _req, res) => json(res, 403, { error: "forbidden", message: "unknown claim code" }));
  const no = await cli(["--relay", refused.url, "--hub", "hub-cli", "--code", "CLAIM-9999", "--config", config]);
  assert.equal(no.code, 1);
  assert.match(no.err, /HTTP 403.*forbidden: unknown claim code/);
});
