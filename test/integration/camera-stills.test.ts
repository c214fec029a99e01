// Camera stills end to end: a real relay (its HTTP side behind a TLS front, the hub pinned to that certificate),
// two real hub daemons with gas detectors on the built-in simulator, and digest-protected camera stand-ins.
// Nothing reads a camera before an alarm; a gas alarm makes the consenting home's hub read three stills with
// digest authentication and upload them signed over HTTPS; the relay links them to the incident; the operator
// who took it lists and views them, each view audited, and nobody else on duty may; forged, unsigned, stale,
// replayed, oversized and non-JPEG uploads and a plain-http one are refused; the home without consent is never
// read and its uploads are refused; after the retention (the relay's clock moved on) the stills are gone; and
// the incident page shows the images in Chromium.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { readFile, writeFile, mkdir } from "node:fs/promises";
import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { promisify } from "node:util";
import pino from "pino";
import { ulid } from "ulid";
import { signStill, stillHeaders, STILL_MAX_BYTES, STILLS_UPLOAD_PATH, type StillClaim } from "../../protocol/stills.js";
import { startHub, type RunningHub } from "../../gateway/src/daemon/run.js";
import type { SimLelDetector } from "../../gateway/src/sim/devices.js";
import { writeSecrets } from "../../gateway/src/uplink/secrets.js";
import { listAudit } from "../../relay/src/careplans/audit.js";
import { parseCarePlan, setCarePlan } from "../../relay/src/careplans/store.js";
import { createHousehold, recordConsent } from "../../relay/src/households/store.js";
import { listIncidents } from "../../relay/src/incidents/repo.js";
import { stillsDb } from "../../relay/src/stills/table.js";
import { browserSkipReason, launchBrowser, screenshot } from "../support/browser.js";
import { startCameraStandin, STANDIN_JPEG, type CameraStandin } from "../support/camera-standin.js";
import { carePlan } from "../support/care-plan-fixture.js";
import { ConsoleClient } from "../support/console-client.js";
import { addAccount, CONSOLE_PASSWORD, signInPage, startConsoleRelay } from "../support/console-rig.js";
import { sleep, waitFor } from "../support/wait.js";

const run = promisify(execFile);
const cleanups: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
});

/** A self-signed certificate for 127.0.0.1, made with the openssl CLI: the relay's TLS front and the hub's pinned CA. */
async function makeCert(dir: string): Promise<{ cert: Buffer; key: Buffer; certFile: string }> {
  const certFile = path.join(dir, "relay-ca.pem");
  const keyFile = path.join(dir, "relay-key.pem");
  await run("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", keyFile, "-out", certFile, "-days", "1", "-subj", "/CN=anxin-test-relay", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"]);
  return { cert: await readFile(certFile), key: await readFile(keyFile), certFile };
}

/** TLS in front of the relay's HTTP listener, as a reverse proxy does it: X-Forwarded-Proto https (the relay trusts 127.0.0.1). */
async function tlsFront(target: string, tls: { cert: Buffer; key: Buffer }): Promise<{ url: string; close(): Promise<void> }> {
  const t = new URL(target);
  const server = https.createServer(tls, (req, res) => {
    const p = http.request({ host: t.hostname, port: t.port, method: req.method, path: req.url, headers: { ...req.headers, "x-forwarded-proto": "https", "x-forwarded-for": req.socket.remoteAddress ?? "" } }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    p.on("error", () => res.writeHead(502).end());
    req.pipe(p);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => new Promise<void>((r) => server.close(() => r())) };
}

interface Answer {
  status: number;
  body: any;
}

/** One upload as a hub (or someone pretending) would send it. */
function post(base: string, headers: Record<string, string>, body: Buffer, ca?: Buffer): Promise<Answer> {
  const u = new URL(`${base}${STILLS_UPLOAD_PATH}`);
  return new Promise((resolve, reject) => {
    const onAnswer = (res: http.IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        let parsed: unknown = text;
        try {
          parsed = JSON.parse(text);
        } catch {
          // kept as text
        }
        resolve({ status: res.statusCode ?? 0, body: parsed });
      });
    };
    const opts = { method: "POST", headers: { "content-length": String(body.length), ...headers } };
    const req = u.protocol === "https:" ? https.request(u, { ...opts, ca }, onAnswer) : http.request(u, opts, onAnswer);
    req.on("error", reject);
    req.end(body);
  });
}

function signedHeaders(c: Omit<StillClaim, "sha256" | "bytes">, body: Buffer, key: Buffer, over: Partial<StillClaim> = {}): Record<string, string> {
  const claim: StillClaim = { ...c, sha256: createHash("sha256").update(body).digest("hex"), bytes: body.length, ...over };
  return { ...stillHeaders(claim, signStill(claim, key)), "content-type": "image/jpeg" };
}

interface Home {
  hub: RunningHub;
  id: string;
  key: Buffer;
  camera: CameraStandin;
  logs: string[];
}

test("camera stills: read only on an alarm, with digest, uploaded signed over HTTPS, shown to the incident's operator, audited, refused otherwise, deleted after retention", { timeout: 180_000 }, async (t) => {
  let skewMs = 0;
  const rig = await startConsoleRelay({ now: () => Date.now() + skewMs, config: { http: { trustedProxies: ["127.0.0.1"] }, stills: { retentionHours: 72, sweepEveryS: 1 } } });
  cleanups.push(() => rig.stop());
  const { relay } = rig;
  const dir = path.join(rig.dir, "homes");
  await mkdir(dir, { recursive: true });
  const tls = await makeCert(dir);
  const front = await tlsFront(rig.httpUrl, tls);
  cleanups.push(() => front.close());

  const who = { actor: "test", purpose: "setup", at: Date.now() };
  /** A hub enrolled at the relay, its household (camera consent or not), its camera stand-in, its daemon. */
  async function home(id: string, consentAtRelay: boolean, consentInHubYaml: boolean): Promise<Home> {
    const record = await relay.registry.provisionDirect(id);
    const hubDir = path.join(dir, id);
    await mkdir(path.join(hubDir, "data"), { recursive: true, mode: 0o700 });
    await writeSecrets(path.join(hubDir, "data", "secrets.json"), record);
    await setCarePlan(relay.db, id, parseCarePlan(carePlan(), "test"), who);
    const household = await createHousehold(relay.db, { hub: id, elder: { name: "Wang Lan" }, address: "1 Test Road", street: "Street 1", community: "Community 1" }, { ...who, owner: null });
    if (consentAtRelay) await recordConsent(relay.db, household.id, { device: "camera", granted: true, givenBy: "elder" }, who);
    const camera = await startCameraStandin({ username: "anxin", password: "cam-secret-7Q" });
    cleanups.push(() => camera.close());
    await writeFile(path.join(hubDir, "camera-password"), "cam-secret-7Q\n", { mode: 0o600 });
    await writeFile(path.join(hubDir, "relay-ca.pem"), tls.cert);
    const file = path.join(hubDir, "hub.yaml");
    await writeFile(
      file,
      `hub: { id: ${id}, dataDir: ./data }
buses:
  - { name: line1, path: sim }
devices:
  - { id: kitchen-gas, profile: pemtech-pt495-lel, bus: line1, unit: 2, room: kitchen, pollMs: 200 }
  - { id: gas-valve, profile: rotork-iq-modbus, bus: line1, unit: 3, room: kitchen, pollMs: 300, ratedCloseMs: 4000 }
uplink: { url: ${rig.mqttUrl}, reconnectMaxMs: 2000 }
camera:
  snapshotUrl: "${camera.snapshotUrl}"
  username: anxin
  passwordFile: ./camera-password
  consent: { recorded: ${consentInHubYaml}, reference: "household ${household.id}" }
  stills: 3
  intervalMs: 400
  upload: { url: "${front.url}", caFile: ./relay-ca.pem, retryMs: 300 }
`,
    );
    const logs: string[] = [];
    const log = pino({ level: "info" }, { write: (line: string) => void logs.push(line) });
    const hub = await startHub(file, { log });
    cleanups.push(() => hub.stop());
    await waitFor(`${id}'s uplink`, () => hub.uplink?.status().state === "connected", 15_000);
    await waitFor(`${id}'s detector`, () => hub.hub.health("kitchen-gas")?.status === "online", 10_000);
    return { hub, id, key: Buffer.from(record.key, "base64"), camera, logs };
  }
  const withConsent = await home("hub-cam-1", true, true);
  const without = await home("hub-cam-2", false, false);

  // Running, connected, polling: no camera has been asked anything.
  await sleep(1500);
  assert.equal(withConsent.camera.requests, 0, "no camera request before an alarm");
  assert.equal(without.camera.requests, 0);

  // The gas leak in both homes.
  const leakAt = Date.now();
  for (const h of [withConsent, without]) (h.hub.sim.get("line1")!.devices.get(2) as SimLelDetector).setLel(40);
  const incident = await waitFor("the incident", async () => (await listIncidents(relay.db, { hub: withConsent.id }))[0], 15_000);
  const alarm = (await relay.store.listEvents({ hub: withConsent.id, limit: 100 })).find((e) => e.type === "gas" && e.kind === "alarm")!;
  const rows = () => stillsDb(relay.db).selectFrom("anxin_stills").selectAll().where("incident_id", "=", incident.id).orderBy("idx").execute();
  await waitFor("three stills at the relay", async () => (await rows()).length === 3, 20_000);
  const stored = await rows();
  assert.deepEqual(stored.map((r) => r.idx), [1, 2, 3]);
  for (const r of stored) {
    assert.equal(r.event_id, alarm.id, "linked to the alarm event");
    assert.equal(r.hub, withConsent.id);
    assert.ok(Buffer.from(r.data).equals(STANDIN_JPEG), "the camera's bytes, unchanged");
  }
  assert.ok(stored[0]!.taken_at >= leakAt, "read after the alarm, not before");
  const cam = withConsent.camera;
  assert.equal(cam.served, 3, "three stills read");
  assert.equal(cam.badDigests, 0, "every digest verified by the camera");
  assert.deepEqual(cam.algorithms, ["SHA-256", "SHA-256", "SHA-256"], "SHA-256 chosen over MD5");
  assert.equal(cam.requests, 4, "one challenge, then the nonce reused with a rising count");
  // The safety action came first: the valve was commanded closed before the camera was read.
  const valve = withConsent.hub.hub.rulesState().gas.valves["gas-valve"];
  assert.ok(valve?.commandedAt != null && valve.commandedAt <= Number(stored[0]!.taken_at), "the valve close went out before the first still was read");

  // The home without consent: its alarm opened an incident, but its camera was never read; the hub said why once.
  await waitFor("the second incident", async () => (await listIncidents(relay.db, { hub: without.id }))[0], 15_000);
  await sleep(1500);
  assert.equal(without.camera.requests, 0, "no consent: the camera is never read");
  const consentLines = without.logs.filter((l) => l.includes("no recorded consent"));
  assert.equal(consentLines.length, 1, "said once");
  assert.ok(!without.logs.join("").includes("cam-secret-7Q") && !withConsent.logs.join("").includes("cam-secret-7Q"), "no password in any log line");
  assert.ok(!withConsent.logs.join("").includes(cam.snapshotUrl), "no camera address in the log");

  // The console: Wang takes the incident and sees the stills; Li, on duty too, has not taken it and may not.
  await addAccount(relay, "wang", "王芳", "operator");
  await addAccount(relay, "li", "李明", "operator");
  await addAccount(relay, "boss", "管理员", "admin");
  const wang = new ConsoleClient(rig.httpUrl);
  const li = new ConsoleClient(rig.httpUrl);
  const boss = new ConsoleClient(rig.httpUrl);
  for (const [c, u] of [[wang, "wang"], [li, "li"], [boss, "boss"]] as const) assert.equal((await c.signIn(u, CONSOLE_PASSWORD)).status, 200);
  const listPath = `/console/api/incidents/${incident.id}/stills`;
  assert.equal((await wang.request("GET", listPath)).body.error, "not_taken", "not before taking it");
  assert.equal((await wang.request("POST", `/console/api/incidents/${incident.id}/take`, { body: {} })).status, 200);
  const list = await wang.request("GET", listPath);
  assert.equal(list.status, 200);
  assert.equal(list.headers.get("cache-control"), "no-store");
  assert.equal(list.body.stills.length, 3);
  assert.equal(list.body.retentionHours, 72);
  for (const s of list.body.stills) {
    const img = await fetch(new URL(`${listPath}/${s.id}`, rig.httpUrl), { headers: { cookie: [...wang.jar].map(([k, v]) => `${k}=${v}`).join("; ") } });
    assert.equal(img.status, 200);
    assert.equal(img.headers.get("content-type"), "image/jpeg");
    assert.equal(img.headers.get("cache-control"), "no-store");
    assert.ok(Buffer.from(await img.arrayBuffer()).equals(STANDIN_JPEG));
  }
  const views = async (actor: string) => (await listAudit(relay.db, { subject: incident.id })).filter((a) => a.action === "stills.view" && a.actor === actor).length;
  assert.equal(await views("user:wang"), 3, "every view audited under the viewer's name");
  assert.ok((await listAudit(relay.db, { subject: incident.id })).some((a) => a.action === "stills.list" && a.actor === "user:wang"));
  const liList = await li.request("GET", listPath);
  assert.equal(liList.status, 403);
  assert.equal(liList.body.error, "not_taken");
  assert.equal((await li.request("GET", `${listPath}/${list.body.stills[0].id}`)).status, 403, "nor one image");
  assert.equal(await views("user:li"), 0);
  assert.equal((await boss.request("GET", listPath)).status, 200, "an admin may");
  assert.equal((await new ConsoleClient(rig.httpUrl).request("GET", listPath)).status, 401, "nobody signed in may not");
  assert.equal((await wang.request("GET", `/console/api/incidents/NOPE0000000000000000000000/stills`)).status, 404);

  // Refused uploads, each with its code (through the TLS front, as a hub would reach the relay).
  const key = withConsent.key;
  const base = { hub: withConsent.id, event: alarm.id, index: 9, takenAt: Date.now() };
  const jpeg = STANDIN_JPEG;
  const send = (h: Record<string, string>, body: Buffer = jpeg) => post(front.url, h, body, tls.cert);
  const fresh = () => ({ ...base, still: ulid(), ts: Date.now() + skewMs });
  const unsigned = signedHeaders(fresh(), jpeg, key);
  delete unsigned["x-anxin-signature"];
  assert.equal((await send(unsigned)).body.error, "bad_signature", "unsigned");
  assert.equal((await send(signedHeaders(fresh(), jpeg, Buffer.alloc(32, 7)))).body.error, "bad_signature", "signed with another key");
  const tampered = signedHeaders(fresh(), jpeg, key);
  tampered["x-anxin-still-index"] = "8";
  assert.equal((await send(tampered)).body.error, "bad_signature", "a header changed after signing");
  const stale = await send(signedHeaders({ ...fresh(), ts: Date.now() - 3_600_000 }, jpeg, key));
  assert.equal(stale.status, 401);
  assert.equal(stale.body.error, "stale");
  assert.equal(typeof stale.body.now, "number", "with the relay's clock to sign again with");
  const png = Buffer.from("89504e470d0a1a0a0000000d49484452", "hex");
  const notJpeg = await send({ ...signedHeaders(fresh(), png, key), "content-type": "image/png" }, png);
  assert.deepEqual([notJpeg.status, notJpeg.body.error], [415, "not_jpeg"]);
  const big = Buffer.concat([jpeg, Buffer.alloc(STILL_MAX_BYTES)]);
  // Straight to the relay's loopback listener: the relay answers 413 from the length alone and closes, which
  // this test's small TLS front does not relay gracefully.
  const tooBig = await post(rig.httpUrl, signedHeaders(fresh(), big, key), big);
  assert.deepEqual([tooBig.status, tooBig.body.error], [413, "too_large"]);
  const other = Buffer.concat([jpeg, Buffer.from("x")]);
  assert.equal((await send(signedHeaders(fresh(), jpeg, key), other)).body.error, "bad_signature", "other bytes than signed (length differs)");
  const replayed = signedHeaders(fresh(), jpeg, key);
  assert.equal((await send(replayed)).status, 201, "a good upload");
  const again = await send(replayed);
  assert.deepEqual([again.status, again.body.error], [409, "replay"], "the same upload again");
  // Plain http to the relay, addressed by its public name: refused before anything else is looked at.
  const plain = await post(rig.httpUrl, { ...signedHeaders(fresh(), jpeg, key), host: "relay.example.cn" }, jpeg);
  assert.deepEqual([plain.status, plain.body.error], [403, "https_required"]);
  // The home without consent: even a good signature and a real alarm are refused.
  const theirAlarm = (await relay.store.listEvents({ hub: without.id, limit: 100 })).find((e) => e.type === "gas" && e.kind === "alarm")!;
  const noConsent = await send(signedHeaders({ hub: without.id, event: theirAlarm.id, still: ulid(), index: 1, takenAt: Date.now(), ts: Date.now() }, jpeg, without.key));
  assert.deepEqual([noConsent.status, noConsent.body.error], [403, "no_consent"]);
  assert.equal((await send(signedHeaders({ ...fresh(), event: ulid() }, jpeg, key))).body.error, "unknown_event");
  assert.equal((await rows()).length, 4, "only the good upload was added");
  assert.equal(cam.requests, 4, "no camera request after the alarm's burst");

  // The incident page in Chromium: the notice, then the images once asked for.
  const skip = browserSkipReason();
  if (skip) t.diagnostic(`browser part skipped: ${skip}`);
  else {
    const b = await launchBrowser();
    cleanups.push(() => b.close());
    const page = await b.newPage();
    await signInPage(page, `${rig.httpUrl}/console/`, "wang");
    await page.getByTestId("who").waitFor();
    await page.goto(`${rig.httpUrl}/console/#/incidents/${incident.id}`);
    await page.getByTestId("stills-notice").waitFor({ timeout: 10_000 });
    assert.match(await page.getByTestId("stills-notice").innerText(), /记录/);
    const before = await views("user:wang");
    await page.getByTestId("stills-load").click();
    await page.locator(".still img").nth(3).waitFor({ timeout: 10_000 });
    await page.waitForFunction(() => [...document.querySelectorAll<HTMLImageElement>(".still img")].every((i) => i.complete && i.naturalWidth === 32), undefined, { timeout: 10_000 });
    assert.equal(await page.locator(".still img").count(), 4);
    await screenshot(page, "console-stills");
    assert.equal(await views("user:wang"), before + 4, "the page's views are audited too");
  }

  // Retention: 72 hours and a little later on the relay's clock, the sweep has deleted them.
  skewMs = 73 * 3_600_000;
  await waitFor("the stills deleted", async () => (await rows()).length === 0, 10_000);
  const late = new ConsoleClient(rig.httpUrl);
  assert.equal((await late.signIn("boss", CONSOLE_PASSWORD)).status, 200);
  const gone = await late.request("GET", listPath);
  assert.equal(gone.status, 200);
  assert.equal(gone.body.stills.length, 0);
  assert.equal((await late.request("GET", `${listPath}/${list.body.stills[0].id}`)).status, 404);
});
