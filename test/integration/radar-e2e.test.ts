// Radars on a real serial line (a PTY pair) driven by an independent MR60FDA1 / MR60BHA1 stand-in (Python,
// its own framing): a fall → the hub's alarm → the relay's incident → the elder called first; and what a
// radar's line does to the hub: settling, noise, corrupted frames, going silent and coming back.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createLogger } from "../../lib/daemon/logger.js";
import { startHub, type RunningHub } from "../../gateway/src/daemon/run.js";
import { provision } from "../../gateway/src/uplink/provision.js";
import type { Envelope } from "../../protocol/envelope.js";
import { parseCarePlan, setCarePlan } from "../../relay/src/careplans/store.js";
import { listIncidents } from "../../relay/src/incidents/repo.js";
import { startRelayForTest } from "../support/relay-rig.js";
import { startTelephonyStub } from "../support/telephony-stub.js";
import { startPtyPair } from "../support/pty-pair.js";
import { radarEmulatorSkip, startRadarEmulator, type RadarStep } from "../support/radar-emulator.js";
import { waitFor, sleep } from "../support/wait.js";

const skip = radarEmulatorSkip();
const cleanups: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});
const log = () => createLogger({ name: "anxin-hub", level: process.env.ANXIN_TEST_LOG ?? "silent" });

async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function line(dir: string, name: string) {
  const pair = await startPtyPair(path.join(dir, `${name}-hub`), path.join(dir, `${name}-radar`));
  cleanups.push(() => pair.stop());
  return pair;
}

async function hubWith(dir: string, hubId: string, body: string): Promise<RunningHub> {
  const file = path.join(dir, "hub.yaml");
  await writeFile(file, `hub: { id: ${hubId}, dataDir: ./data }\n${body}`);
  const running = await startHub(file, { log: log() });
  cleanups.push(() => running.stop());
  return running;
}

const journal = async (h: RunningHub) => (await h.journal.pending(100_000, Number.MAX_SAFE_INTEGER)).map((e) => e.envelope).sort((a, b) => a.seq - b.seq);

const ELDER = "+8613800000100";
const SON = "+8613800000101";

test("a fall on a serial radar reaches the relay as a fall incident and the elder is called first", { skip }, async () => {
  const secret = "radar-e2e-gateway-secret-0123456789abcdef";
  const gw = await startTelephonyStub({ secret });
  cleanups.push(() => gw.close());
  const dir = await tempDir("anxin-radar-e2e-");
  const secretFile = path.join(dir, "gw.secret");
  await writeFile(secretFile, secret, { mode: 0o600 });
  const rig = await startRelayForTest({ config: { telephony: { kind: "http", url: gw.url, secretFile, retries: 0, backoffMs: 0, timeoutMs: 3000 }, escalation: { pollMs: 50 } } });
  cleanups.push(() => rig.stop());
  const hubId = "hub-radar-e2e";
  const { code } = await rig.relay.registry.createClaim(hubId);
  await provision({ relay: rig.httpUrl, hub: hubId, code, dataDir: path.join(dir, "data"), secretsFile: path.join(dir, "data", "secrets.json") });
  await setCarePlan(
    rig.relay.db,
    hubId,
    parseCarePlan(
      {
        elder: { name: "Test Elder", phone: ELDER, address: "Flat 1, Test Road", riskLevel: "high" },
        contacts: [{ id: "son", name: "Test Son", phone: SON, role: "emergency_contact" }],
        onsiteTeam: { name: "Team", phone: "+8613800000109" },
        language: "en",
      },
      "test",
    ),
    { actor: "test", purpose: "setup", at: Date.now() },
  );
  gw.script(ELDER, { status: "no_answer", silent: true });

  const pty = await line(dir, "bath");
  const hub = await hubWith(
    dir,
    hubId,
    `radars:
  - { id: bath-radar, profile: seeed-mr60fda1, path: ${pty.hubEnd}, room: bathroom, settleMs: 300, offlineAfterMs: 4000 }
rules:
  fall: { confirmMs: 2000, getUpMs: 1000 }
uplink: { reconnectMaxMs: 2000 }
`,
  );
  await waitFor("uplink connected", () => hub.uplink?.status().state === "connected", 15_000);
  // Walking about, then a fall; the radar takes its own flag back while the person is still down.
  const steps: RadarStep[] = [
    { at: 0, send: [["presence", 1], ["motion", 2]], every: 200 },
    { at: 1500, send: [["fall", 1], ["motion", 1]] },
    { at: 1600, send: [["presence", 1], ["motion", 1]], every: 300 },
    { at: 2500, send: [["fall", 0], ["motion", 1]] },
    { at: 2600, send: [["presence", 1], ["motion", 1]], every: 300 },
    { at: 9000, send: [["presence", 1]] },
  ];
  const emu = await startRadarEmulator(pty.deviceEnd, steps);
  cleanups.push(() => emu.stop());
  const t0 = Date.now();

  const events = async () => (await rig.relay.store.listEvents({ hub: hubId, limit: 1000 })).map((r) => JSON.parse(r.payload) as Envelope);
  const fall = await waitFor("fall alarm at the relay", async () => (await events()).find((e) => e.kind === "alarm" && e.type === "fall"), 15_000);
  assert.equal(fall.severity, "critical");
  assert.equal(fall.device, "bath-radar");
  assert.equal(fall.room, "bathroom");
  const data = fall.data as { trigger: string; afterMs: number; model: string; evidence: { trigger: string; windows: Record<string, unknown> } };
  assert.equal(data.trigger, "fall_report");
  assert.equal(data.model, "seeed-mr60fda1");
  assert.equal(data.evidence.windows.confirmMs, 2000, "the alarm carries the window in force");
  assert.ok(data.afterMs >= 2000 && data.afterMs <= 4000, `raised ${data.afterMs} ms after the radar's report (window 2000 ms + 2 s)`);
  assert.ok(fall.ts - t0 >= 1500 + 2000 - 200, "not before the window closed");

  const incident = await waitFor("fall incident", async () => (await listIncidents(rig.relay.db, { hub: hubId })).find((i) => i.type === "fall"), 10_000);
  assert.equal(incident.policyName, "person");
  await gw.waitForCalls(1);
  assert.equal(gw.calls[0]!.to, ELDER, "the elder is called first");

  // The radar answered the hub's product query, and no frame was thrown away on a clean line.
  const radar = hub.radars[0]!.stats();
  assert.equal(radar.product.model, "MR60FDA1");
  assert.equal(radar.counters.checksum + radar.counters.tail + radar.counters.oversize + radar.counters.badValue, 0);
  assert.ok(radar.ignoredWhileSettling > 0, "the first 300 ms after power-up were ignored");
});

test("a radar's line: settling, noise and corrupted frames never make a reading; silence is offline, frames again are online", { skip }, async () => {
  const dir = await tempDir("anxin-radar-line-");
  const pty = await line(dir, "bed");
  const hub = await hubWith(
    dir,
    "hub-radar-line",
    `radars:
  - { id: bed-radar, profile: seeed-mr60bha1, path: ${pty.hubEnd}, room: bedroom, settleMs: 800, offlineAfterMs: 2000 }
rules:
  vitals: { absentMs: 5000 }
`,
  );
  const good = "535985020001487C5443"; // heart rate 72
  // A heart-rate frame with its checksum broken, one with its tail broken, noise, and a length of 40000.
  const badSum = "53598502000148FF5443";
  const badTail = "535985020001487C5444";
  const noise = "00FF1234AA53";
  const oversize = "53598502 9C40".replace(/ /g, "");
  const steps: RadarStep[] = [
    { at: 0, send: [["presence", 1], ["inbed", 1], ["heart", 70], ["breath", 15]] }, // during settling: ignored
    { at: 1200, send: [["presence", 1], ["inbed", 1], ["heart", 72], ["breath", 16]] },
    { at: 1400, raw: badSum + noise + badTail + oversize + good },
    { at: 1500, send: [["heart", 0], ["breath", 0]] },
  ];
  const emu = await startRadarEmulator(pty.deviceEnd, steps, "MR60BHA1");
  await emu.done;
  await waitFor("the valid frame after the junk", () => (hub.radars[0]!.stats().reports >= 7 ? true : undefined), 5000);
  const st = hub.radars[0]!.stats();
  assert.equal(st.ignoredWhileSettling, 4, "the four readings during settling were ignored");
  assert.equal(st.counters.checksum, 1);
  assert.equal(st.counters.tail, 1);
  assert.equal(st.counters.oversize, 1);
  assert.ok(st.counters.noiseBytes > 0);
  assert.equal(hub.radars[0]!.latest.heartRate, null, "0 is no reading, never a low rate");

  // The emulator goes silent (unplugged): offline within its 2 s window, and no vital-sign alarm from stale state.
  await emu.stop();
  const offline = await waitFor("offline event", async () => (await journal(hub)).find((e) => e.kind === "device" && e.type === "offline" && e.device === "bed-radar"), 6000);
  assert.equal((offline.data as { transport: string }).transport, "uart");
  await sleep(5500);
  assert.equal((await journal(hub)).filter((e) => e.kind === "alarm").length, 0, "silence is never absent vital signs");
  // Plugged back in: online by itself, and settling again from its first byte.
  const emu2 = await startRadarEmulator(pty.deviceEnd, [{ at: 0, send: [["presence", 1]], every: 200 }, { at: 1500, send: [["presence", 1]] }], "MR60BHA1");
  cleanups.push(() => emu2.stop());
  const online = await waitFor("online event", async () => (await journal(hub)).find((e) => e.kind === "device" && e.type === "online" && e.device === "bed-radar"), 5000);
  assert.ok(online.ts > offline.ts);
  assert.ok(hub.radars[0]!.stats().poweredAt! >= offline.ts, "power-up counted from the first byte after the silence");
});
