// Fire and gas must sound different on every Zigbee siren, including one with a single warning mode. The hub
// daemon runs with herdsman's real Controller over the fake coordinator, the real converters, and virtual Heiman
// sirens: HS2WD-E (stop and emergency only, no sound level) and HS2WD-EF (stop, burglar, fire, emergency and a
// level). What each siren hears is read back from the IAS WD startWarning frames it received, with their times.
import { test, after, afterEach } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createLogger } from "../../lib/daemon/logger.js";
import { startHub, type RunningHub } from "../../gateway/src/daemon/run.js";
import { streamDaemon } from "../../gateway/src/control/client.js";
import type { Envelope } from "../../protocol/envelope.js";
import type { ZigbeeDevice } from "../../gateway/src/devices/zigbee-device.js";
import { waitFor } from "../support/hub-rig.js";
import { installFakeZigbee } from "../support/zigbee/rig.js";
import * as products from "../support/zigbee/products.js";
import type { VirtualDevice } from "../support/zigbee/virtual-device.js";

const IAS = { alarm1: 1, alarm2: 2 };
const MODE = { stop: 0, burglar: 1, fire: 2, emergency: 3 };

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
});
after(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
});

interface Home {
  running: RunningHub;
  sock: string;
  d: { smoke: VirtualDevice; gas: VirtualDevice; sos: VirtualDevice; sirenE: VirtualDevice; sirenEF: VirtualDevice };
  events(): Promise<Envelope[]>;
}

const IDS = { smoke: "hall-smoke", gas: "boiler-gas", sos: "bed-sos", sirenE: "hall-siren", sirenEF: "bedroom-siren" } as const;

async function startHome(): Promise<Home> {
  const d = {
    smoke: products.heimanSmokeHS1SA(),
    gas: products.heimanGasHS3CG(),
    sos: products.heimanSosHS1EB(),
    sirenE: products.heimanSirenHS2WDE(),
    sirenEF: products.heimanSirenHS2WDEF(),
  };
  const rig = installFakeZigbee({ devices: Object.values(d) });
  cleanups.push(async () => rig.restore());
  const dir = await mkdtemp(path.join(os.tmpdir(), "anxin-sirens-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const configFile = path.join(dir, "hub.yaml");
  await writeFile(
    configFile,
    `hub: { id: zb-sirens, dataDir: ./data }
rules:
  gas: { clearHoldMs: 300 }
zigbee:
  adapter: zstack
  path: /dev/ttyFAKE0
  channel: 20
  sirenSeconds: 30
  devices:
${Object.entries(d)
  .map(([k, v]) => `    - { ieee: "${v.ieee}", id: ${IDS[k as keyof typeof IDS]} }`)
  .join("\n")}
`,
  );
  const running = await startHub(configFile, { log: createLogger({ name: "anxin-hub", level: process.env.ANXIN_TEST_LOG ?? "silent" }) });
  cleanups.push(() => running.stop());
  const h: Home = {
    running, d, sock: running.config.hub.controlSocket!,
    events: async () => (await running.journal.pending(100_000, Number.MAX_SAFE_INTEGER)).map((e) => e.envelope),
  };
  // pair everything over the control socket, as `anxin-hub pair` does
  let joined = false;
  const res = await streamDaemon(h.sock, { cmd: "pair", seconds: 20, expect: Object.values(d).map((v) => v.ieee) }, (p) => {
    if ((p as { event: string }).event === "open" && !joined) {
      joined = true;
      for (const v of Object.values(d)) void v.join();
    }
  });
  assert.equal(res.ok, true, JSON.stringify(res));
  const paired = (res as { result: { devices: Array<{ outcome: string; model?: string }> } }).result.devices;
  assert.deepEqual(paired.map((x) => x.outcome), Object.values(d).map(() => "paired"), JSON.stringify(paired));
  assert.ok(paired.some((x) => x.model === "HS2WD-EF"));
  return h;
}

const byType = async (h: Home, kind: string, type: string) => (await h.events()).filter((e) => e.kind === kind && e.type === type);

interface Warning {
  at: number;
  mode: number;
  level: number;
  strobe: boolean;
  duration: number;
  strobeDutyCycle: number;
  strobeLevel: number;
}

/** The startWarning frames a siren received (from `since`), decoded from the ZCL payload. */
function warnings(siren: VirtualDevice, since = 0): Warning[] {
  return siren.received
    .filter((f) => f.cluster === "ssIasWd" && f.command === "startWarning" && f.at >= since)
    .map((f) => {
      const p = f.payload as { startwarninginfo: number; warningduration: number; strobedutycycle: number; strobelevel: number };
      return {
        at: f.at,
        mode: p.startwarninginfo >> 4,
        strobe: ((p.startwarninginfo >> 2) & 1) === 1,
        level: p.startwarninginfo & 3,
        duration: p.warningduration,
        strobeDutyCycle: p.strobedutycycle,
        strobeLevel: p.strobelevel,
      };
    });
}

/**
 * When the siren sounds between `from` and `to`, from its frames: a warning sounds from its arrival until its
 * duration runs out or the next frame replaces it; `stop` is silence. Touching sounds are one sound.
 */
function sounding(ws: Warning[], from: number, to: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  ws.forEach((w, i) => {
    if (w.mode === MODE.stop || w.duration === 0) return;
    const end = Math.min(w.at + w.duration * 1000, ws[i + 1]?.at ?? Infinity, to);
    const start = Math.max(w.at, from);
    if (end <= start) return;
    const last = out.at(-1);
    if (last && start - last[1] < 50) last[1] = Math.max(last[1], end);
    else out.push([start, end]);
  });
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test("smoke and gas sound different on the one-mode HS2WD-E (fire in three-pulse bursts, gas continuous); the multi-mode HS2WD-EF uses its fire tone for fire", async () => {
  const h = await startHome();
  const { smoke, gas, sirenE, sirenEF } = h.d;
  const WINDOW = 4800;

  // Fire.
  const t0 = Date.now();
  await smoke.zoneStatus(IAS.alarm1);
  await waitFor("smoke alarm", async () => (await byType(h, "alarm", "smoke"))[0]);
  await waitFor("the fire cadence under way on both sirens", () => warnings(sirenE, t0).length >= 5 && warnings(sirenEF, t0).length >= 5, 8000);
  const fireE = warnings(sirenE, t0);
  const fireEF = warnings(sirenEF, t0);
  const fireStart = fireE[0]!.at;
  // On, stop, on, stop, on: every sound a bounded warning; the siren's only tone (HS2WD-E), its fire tone (HS2WD-EF).
  assert.deepEqual(fireE.slice(0, 5).map((w) => w.mode), [MODE.emergency, MODE.stop, MODE.emergency, MODE.stop, MODE.emergency], JSON.stringify(fireE));
  assert.deepEqual(fireEF.slice(0, 5).map((w) => w.mode), [MODE.fire, MODE.stop, MODE.fire, MODE.stop, MODE.fire], JSON.stringify(fireEF));
  for (const w of [...fireE, ...fireEF].filter((w) => w.mode !== MODE.stop)) assert.equal(w.duration, 30, "each sound is a bounded warning");
  for (let i = 1; i < 5; i++) {
    const gap = fireE[i]!.at - fireE[i - 1]!.at;
    assert.ok(gap >= 800 && gap <= 1600, `one-second steps (step ${i}: ${gap} ms)`);
  }
  await sleep(Math.max(0, fireStart + WINDOW - Date.now()));
  const fireSound = sounding(warnings(sirenE, t0), fireStart, fireStart + WINDOW);

  await smoke.zoneStatus(0);
  await waitFor("smoke cleared", async () => (await byType(h, "alarm_cleared", "smoke"))[0]);
  await sleep(300);

  // Gas.
  const t1 = Date.now();
  await gas.zoneStatus(IAS.alarm2);
  await waitFor("gas alarm", async () => (await byType(h, "alarm", "gas"))[0]);
  await waitFor("both sirens on for gas", () => warnings(sirenE, t1).length >= 1 && warnings(sirenEF, t1).length >= 1);
  const gasStart = warnings(sirenE, t1)[0]!.at;
  await sleep(Math.max(0, gasStart + WINDOW - Date.now()));
  const gasE = warnings(sirenE, t1);
  const gasEF = warnings(sirenEF, t1);
  assert.deepEqual(gasE.map((w) => [w.mode, w.duration]), [[MODE.emergency, 30]], "one continuous warning, no stop, until its refresh");
  assert.deepEqual(gasEF.map((w) => [w.mode, w.duration]), [[MODE.emergency, 30]]);
  const gasSound = sounding(gasE, gasStart, gasStart + WINDOW);

  // What the occupant hears from the same one-mode siren in the same 4.8 s: three sounds with silences between
  // them for fire, one unbroken sound for gas.
  assert.equal(fireSound.length, 3, `fire: ${JSON.stringify(fireSound.map(([a, b]) => [a - fireStart, b - fireStart]))}`);
  for (let i = 1; i < fireSound.length; i++) assert.ok(fireSound[i]![0] - fireSound[i - 1]![1] >= 800, "a silence of about a second between the fire bursts");
  assert.equal(gasSound.length, 1);
  assert.ok(gasSound[0]![1] - gasSound[0]![0] >= WINDOW - 50, "gas sounds without a break");

  await gas.zoneStatus(0);
  await waitFor("gas cleared", async () => (await byType(h, "alarm_cleared", "gas"))[0], 5000);
  await waitFor("sirens stopped", () => warnings(sirenE, t1).at(-1)?.mode === MODE.stop && warnings(sirenEF, t1).at(-1)?.mode === MODE.stop);
});

test("the alarm clearing (siren_off) ends the fire bursts at once, and so does stopping the device: no sound is sent after the stop", async () => {
  const h = await startHome();
  const { smoke, sirenE, sirenEF } = h.d;

  const t0 = Date.now();
  await smoke.zoneStatus(IAS.alarm1);
  await waitFor("fire bursts under way", () => warnings(sirenE, t0).filter((w) => w.mode === MODE.stop).length >= 1 && warnings(sirenE, t0).length >= 3, 8000);
  await smoke.zoneStatus(0);
  await waitFor("smoke cleared", async () => (await byType(h, "alarm_cleared", "smoke"))[0]);
  await waitFor("the stop", () => warnings(sirenE, t0).at(-1)?.mode === MODE.stop && warnings(sirenEF, t0).at(-1)?.mode === MODE.stop);
  const settled = Date.now() + 300;
  await sleep(300);
  const countE = warnings(sirenE, t0).length;
  const countEF = warnings(sirenEF, t0).length;
  // Longer than any step of the cadence (the long pause is 3 s): a burst timer left running would have sounded.
  await sleep(3500);
  assert.deepEqual(warnings(sirenE, settled), [], "nothing after siren_off on HS2WD-E");
  assert.deepEqual(warnings(sirenEF, settled), [], "nothing after siren_off on HS2WD-EF");
  assert.equal(warnings(sirenE, t0).length, countE);
  assert.equal(warnings(sirenEF, t0).length, countEF);
  assert.equal(h.running.hub.rule.sirenOn, false);

  // Fire again; then the device is stopped (as when the registry replaces or drops it, or the daemon stops).
  const t1 = Date.now();
  await smoke.zoneStatus(IAS.alarm1);
  await waitFor("fire bursts under way again", () => warnings(sirenE, t1).length >= 3, 8000);
  (h.running.zigbee!.byId(IDS.sirenE) as ZigbeeDevice).stop();
  const stoppedAt = Date.now() + 300;
  await sleep(3800);
  assert.deepEqual(warnings(sirenE, stoppedAt), [], "stop() ended the cadence timer");
  assert.ok(warnings(sirenEF, stoppedAt).length >= 2, "the other siren's cadence goes on");
});

test("a siren that misses its fire bursts is tried again soon, and its cadence resumes once it answers", async () => {
  const h = await startHome();
  const { smoke, sirenE } = h.d;
  sirenE.online = false;
  const t0 = Date.now();
  await smoke.zoneStatus(IAS.alarm1);
  await waitFor("smoke alarm", async () => (await byType(h, "alarm", "smoke"))[0]);
  await sleep(500);
  assert.deepEqual(warnings(sirenE, t0), []);
  sirenE.online = true;
  const back = Date.now();
  await waitFor("the fire cadence on the siren that came back", () => warnings(sirenE, back).filter((w) => w.mode === MODE.emergency).length >= 2 && warnings(sirenE, back).some((w) => w.mode === MODE.stop), 10_000);
  const first = warnings(sirenE, back)[0]!;
  assert.equal(first.mode, MODE.emergency, "it starts with a sound, not a stop");
  assert.ok(first.at - back <= 2500, `retried within the retry time (${first.at - back} ms)`);
});

test("each siren is sent only what it exposes: no sound level to HS2WD-E, levels and the strobe as the table says on HS2WD-EF; the SOS chirp stays one short sound", async () => {
  const h = await startHome();
  const { smoke, gas, sos, sirenE, sirenEF } = h.d;
  // What the hub hands each siren's converter, recorded at the converter's own convertSet.
  const sent = new Map<string, Array<Record<string, unknown>>>();
  const features = new Map<string, string[]>();
  for (const id of [IDS.sirenE, IDS.sirenEF]) {
    const dev = h.running.zigbee!.byId(id) as ZigbeeDevice;
    const conv = dev.definition.toZigbee.find((c) => c.key?.includes("warning"))!;
    const original = conv.convertSet!;
    conv.convertSet = (entity, key, value, meta) => {
      sent.set(id, [...(sent.get(id) ?? []), value as Record<string, unknown>]);
      return original(entity, key, value, meta);
    };
    cleanups.push(async () => void (conv.convertSet = original));
    const exposes = typeof dev.definition.exposes === "function" ? dev.definition.exposes(dev.zh(), {}) : dev.definition.exposes;
    const warning = exposes.find((e) => e.name === "warning") as unknown as { features: Array<{ property: string }> };
    features.set(id, warning.features.map((f) => f.property));
  }
  assert.deepEqual(features.get(IDS.sirenE)!.sort(), ["duration", "mode", "strobe", "strobe_duty_cycle"]);

  // SOS chirp: one short sound per siren, then nothing.
  const t0 = Date.now();
  await sos.zoneStatus(IAS.alarm1);
  await waitFor("chirps", () => warnings(sirenE, t0).length === 1 && warnings(sirenEF, t0).length === 1);
  await sleep(1500);
  const [chirpE, chirpEF] = [warnings(sirenE, t0), warnings(sirenEF, t0)];
  assert.deepEqual(chirpE.map((w) => [w.mode, w.duration]), [[MODE.emergency, 1]]);
  assert.deepEqual(chirpEF.map((w) => [w.mode, w.duration, w.level]), [[MODE.emergency, 1, 0]], "the chirp is low on a siren with levels");

  await smoke.zoneStatus(IAS.alarm1);
  await waitFor("sirens on for fire", () => warnings(sirenE, t0).length >= 2 && warnings(sirenEF, t0).length >= 2);
  await sleep(2500);
  await smoke.zoneStatus(0);
  await gas.zoneStatus(IAS.alarm2);
  await waitFor("gas on both sirens", async () => (await byType(h, "alarm", "gas"))[0]);
  await sleep(300);
  await gas.zoneStatus(0);
  await waitFor("gas cleared", async () => (await byType(h, "alarm_cleared", "gas"))[0], 5000);
  await waitFor("stopped", () => warnings(sirenE, t0).at(-1)?.mode === MODE.stop);

  for (const id of [IDS.sirenE, IDS.sirenEF]) {
    const values = sent.get(id) ?? [];
    assert.ok(values.length >= 4, `${id}: ${values.length} warnings`);
    for (const v of values) for (const k of Object.keys(v)) assert.ok(features.get(id)!.includes(k), `${id} was sent '${k}', which it does not expose: ${JSON.stringify(v)}`);
  }
  // On the air: HS2WD-E got the converter's defaults for what it does not expose (level medium = 1, strobe
  // level medium = 1), never a level of the hub's choosing.
  for (const w of warnings(sirenE, t0)) {
    assert.equal(w.level, 1, `level bits ${JSON.stringify(w)}`);
    assert.equal(w.strobeLevel, 1);
  }
  // HS2WD-EF: very high for both alarms; the strobe flashes (ZCL duty cycle 50 %, not 0 %) while sounding.
  const alarmsEF = warnings(sirenEF, t0).filter((w) => w.mode !== MODE.stop && w.duration > 1);
  assert.ok(alarmsEF.some((w) => w.mode === MODE.fire) && alarmsEF.some((w) => w.mode === MODE.emergency));
  for (const w of alarmsEF) assert.deepEqual([w.level, w.strobe, w.strobeDutyCycle], [3, true, 50], JSON.stringify(w));
  for (const w of warnings(sirenEF, t0).filter((w) => w.mode === MODE.stop)) assert.equal(w.strobe, false);
});
