// The hub's alarm camera (gateway/src/camera/): read only for a new alarm, never making the caller wait, the
// stills signed for the relay, the relay's clock and consent answers obeyed; and the `camera` section's checks.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import pino from "pino";
import { AlarmCamera } from "../../gateway/src/camera/camera.js";
import { openCamera } from "../../gateway/src/camera/index.js";
import { SnapshotReader } from "../../gateway/src/camera/snapshot.js";
import type { StillToSend, UploadOutcome, UploadTarget } from "../../gateway/src/camera/uploader.js";
import { ConfigError, readConfigFile } from "../../gateway/src/config/loader.js";
import { startCameraStandin, STANDIN_JPEG } from "../support/camera-standin.js";
import { waitFor } from "../support/wait.js";

const cleanups: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
});

const TARGET: UploadTarget = { url: "https://relay.invalid", timeoutMs: 1000, hub: "hub-1", key: Buffer.alloc(32, 1) };
const ALARM = { id: "01JALARM000000000000000000", kind: "alarm", type: "gas" };

function capture() {
  const lines: string[] = [];
  return { lines, log: pino({ level: "info" }, { write: (l: string) => void lines.push(l) }) };
}

async function camera() {
  const cam = await startCameraStandin({ username: "u", password: "p" });
  cleanups.push(() => cam.close());
  return cam;
}

test("reads only for a new alarm: not for other events, not for commissioning tests; N stills, signed and sent", async () => {
  const cam = await camera();
  const sent: Array<{ s: StillToSend; ts: number }> = [];
  const { log } = capture();
  const c = new AlarmCamera({
    reader: () => new SnapshotReader({ url: cam.snapshotUrl, username: "u", password: "p", timeoutMs: 2000, maxBytes: 1 << 20 }),
    target: TARGET, stills: 3, intervalMs: 200, attempts: 2, retryMs: 10, log,
    upload: async (_t, s, ts) => (sent.push({ s, ts }), { kind: "stored" }),
  });
  for (const kind of ["reading", "device", "heartbeat", "alarm_cleared", "audit"]) c.alarm({ ...ALARM, kind });
  c.alarm({ ...ALARM, test: true });
  await c.idle();
  assert.equal(cam.requests, 0, "nothing but a real alarm reads the camera");
  const t0 = Date.now();
  c.alarm(ALARM);
  await waitFor("three stills sent", () => sent.length === 3, 5000);
  await c.idle();
  assert.deepEqual(sent.map((x) => x.s.index), [1, 2, 3]);
  assert.ok(sent.every((x) => x.s.event === ALARM.id && x.s.bytes.equals(STANDIN_JPEG)));
  assert.ok(sent[2]!.s.takenAt - sent[0]!.s.takenAt >= 380, "about intervalMs apart");
  assert.ok(sent[0]!.s.takenAt >= t0);
  assert.equal(new Set(sent.map((x) => x.s.still)).size, 3, "each still its own id");
  assert.deepEqual(c.counters, { bursts: 1, read: 3, readFailed: 0, uploaded: 3, dropped: 0 });
});

test("alarm() returns at once even when the camera never answers; stop() ends the wait", async () => {
  const sockets = new Set<import("node:net").Socket>();
  const hang = http.createServer(() => {});
  hang.on("connection", (s) => sockets.add(s));
  await new Promise<void>((r) => hang.listen(0, "127.0.0.1", r));
  cleanups.push(() => new Promise<void>((r) => { for (const s of sockets) s.destroy(); hang.close(() => r()); }));
  const { log, lines } = capture();
  const c = new AlarmCamera({
    reader: () => new SnapshotReader({ url: `http://127.0.0.1:${(hang.address() as AddressInfo).port}/snap.jpg`, username: "u", password: "p", timeoutMs: 30_000, maxBytes: 1 << 20 }),
    target: TARGET, stills: 3, intervalMs: 200, attempts: 1, retryMs: 10, log,
    upload: async () => ({ kind: "stored" }),
  });
  const start = process.hrtime.bigint();
  c.alarm(ALARM);
  const tookMs = Number(process.hrtime.bigint() - start) / 1e6;
  assert.ok(tookMs < 5, `alarm() returned in ${tookMs.toFixed(2)} ms`);
  await waitFor("the request in flight", () => sockets.size > 0, 2000);
  const stopAt = Date.now();
  await c.stop();
  assert.ok(Date.now() - stopAt < 1000, "stop() does not wait for the camera");
  assert.equal(c.counters.uploaded, 0);
  assert.ok(lines.every((l) => !l.includes('"p"')));
});

test("a stale answer is signed again with the relay's clock; a refusal for consent stops the camera until restart", async () => {
  const cam = await camera();
  const { log, lines } = capture();
  const calls: number[] = [];
  const answers: UploadOutcome[] = [{ kind: "clock", relayNow: Date.now() + 7_200_000 }, { kind: "stored" }, { kind: "no_consent" }];
  const c = new AlarmCamera({
    reader: () => new SnapshotReader({ url: cam.snapshotUrl, username: "u", password: "p", timeoutMs: 2000, maxBytes: 1 << 20 }),
    target: TARGET, stills: 2, intervalMs: 200, attempts: 3, retryMs: 10, log,
    upload: async (_t, _s, ts) => (calls.push(ts), answers.shift() ?? { kind: "no_consent" }),
  });
  c.alarm(ALARM);
  await waitFor("the burst done", () => c.counters.read === 2, 5000);
  await c.idle();
  assert.ok(Math.abs(calls[1]! - (Date.now() + 7_200_000)) < 5000, "the second try carries the relay's clock");
  const before = cam.requests;
  c.alarm({ ...ALARM, id: "01JALARM000000000000000001" });
  c.alarm({ ...ALARM, id: "01JALARM000000000000000002" });
  await c.idle();
  assert.equal(cam.requests, before, "no consent at the relay: the camera is not read again");
  assert.equal(lines.filter((l) => l.includes("no recorded consent")).length, 1, "said once");
});

test("uploads that keep failing are retried, then dropped; a wrong camera password ends the burst", async () => {
  const cam = await camera();
  const { log, lines } = capture();
  let tries = 0;
  const c = new AlarmCamera({
    reader: () => new SnapshotReader({ url: cam.snapshotUrl, username: "u", password: "wrong", timeoutMs: 2000, maxBytes: 1 << 20 }),
    target: TARGET, stills: 3, intervalMs: 200, attempts: 3, retryMs: 10, log,
    upload: async () => (tries++, { kind: "retry", reason: "http_503" }),
  });
  c.alarm(ALARM);
  await c.idle();
  assert.equal(c.counters.readFailed, 1, "unauthorized once, then the burst stops");
  assert.equal(cam.requests, 2, "the challenge and one answer");
  assert.ok(lines.some((l) => l.includes('"reason":"unauthorized"')));
  assert.ok(!lines.join("").includes("wrong"), "no password in the log");
  const ok = new AlarmCamera({
    reader: () => new SnapshotReader({ url: cam.snapshotUrl, username: "u", password: "p", timeoutMs: 2000, maxBytes: 1 << 20 }),
    target: TARGET, stills: 1, intervalMs: 200, attempts: 3, retryMs: 10, log,
    upload: async () => (tries++, { kind: "retry", reason: "http_503" }),
  });
  ok.alarm(ALARM);
  await waitFor("dropped", () => ok.counters.dropped === 1, 5000);
  assert.equal(tries, 3, "three tries");
});

test("the camera section: every problem with file, line and key; no consent or a readable password file: never read", async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), "anxin-camera-cfg-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, "hub.yaml");
  await writeFile(
    file,
    `hub: { id: hub-1, dataDir: ./data }
camera:
  snapshotUrl: "http://admin:pw@192.168.1.64/snap.jpg"
  username: anxin
  stills: 50
  colour: true
  upload: { url: "http://relay.example.cn" }
`,
  );
  const err = await readConfigFile(file).then(() => null, (e: unknown) => e);
  assert.ok(err instanceof ConfigError);
  const text = err.message;
  assert.match(text, /hub\.yaml:3: camera\.snapshotUrl: must not carry a user name or password/);
  assert.match(text, /hub\.yaml:5: camera\.stills: /);
  assert.match(text, /hub\.yaml:6: camera\.colour: unknown key/);
  assert.match(text, /hub\.yaml:7: camera\.upload\.url: must be the relay's https:\/\/ address/);

  const good = (consent: string) => `hub: { id: hub-1, dataDir: ./data }
camera:
  snapshotUrl: "http://192.168.1.64/snap.jpg"
  username: anxin
  passwordFile: ./camera-password
  ${consent}
  upload: { url: "https://relay.example.cn" }
`;
  await writeFile(file, good("consent: { recorded: false }"));
  let c = capture();
  assert.equal(await openCamera({ config: (await readConfigFile(file)).config, configDir: dir, log: c.log }), null);
  assert.equal(c.lines.length, 1);
  assert.match(c.lines[0]!, /no recorded consent/);

  await writeFile(file, good("consent: { recorded: true }"));
  await writeFile(path.join(dir, "camera-password"), "secret\n");
  await chmod(path.join(dir, "camera-password"), 0o644);
  c = capture();
  assert.equal(await openCamera({ config: (await readConfigFile(file)).config, configDir: dir, log: c.log }), null);
  assert.match(c.lines.join(""), /chmod 600/);
  assert.ok(!c.lines.join("").includes("secret"));
});
