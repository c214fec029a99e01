// The commissioning engine's steps on a controlled clock: find, trigger, prove, and the results they give.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ulid } from "ulid";
import type { Envelope, EventDraft } from "../../protocol/envelope.js";
import { commissioningReportSchema } from "../../protocol/commissioning.js";
import { CommissionSession, type DeviceView, type EngineDeps } from "../../gateway/src/commission/session.js";
import { parsePlan } from "../../gateway/src/commission/plan.js";

const T0 = 1_800_000_000_000;

function rig(devices: DeviceView[], opts: { uplink?: boolean } = {}) {
  let t = T0;
  const journaled: Envelope[] = [];
  const hooks: Array<(t: number) => void> = [];
  /** The hub's test episodes ended: which device, when, and the state its step had then. */
  const ended: Array<{ device: string; at: number; state: string | undefined }> = [];
  let session!: CommissionSession;
  const deps: EngineDeps = {
    hub: "hub-u",
    now: () => t,
    // Time passes only when the engine waits; scheduled "installer" actions run when their time comes.
    sleep: async (ms) => {
      t += ms;
      for (const h of hooks) h(t);
    },
    devices: () => devices,
    append: async (d: EventDraft) => {
      const env = { v: 1, hub: "hub-u", boot: 1, seq: journaled.length + 1, id: ulid(t), ts: t, ...session.mark(d) } as Envelope;
      journaled.push(env);
      session.observe(env);
      return env;
    },
    uplink: opts.uplink ?? true,
    unpaired: () => [],
    endEpisode: (device) => void ended.push({ device, at: t, state: session.status().steps.find((x) => x.device === device)?.state }),
  };
  return { deps, journaled, ended, at: (fn: (t: number) => void) => hooks.push(fn), set: (s: CommissionSession) => (session = s), now: () => t };
}

const plan = (items: Array<{ kind: string; room: string; count?: number }>) => parsePlan({ version: 3, level: "low", items: items.map((i) => ({ count: 1, ...i })) }, "test");
const sos: DeviceView = { id: "bed-sos", transport: "zigbee", model: "HS1EB", roles: ["sos_button"], room: "bedroom", online: true, address: "0x00124b0000000001", signal: 120, battery: 90 };
const smoke: DeviceView = { id: "hall-smoke", transport: "zigbee", model: "HS1SA", roles: ["smoke_detector"], room: "hall", online: true, address: "0x00124b0000000002" };
const gas: DeviceView = { id: "kitchen-gas", transport: "modbus", model: "PT495", roles: ["gas_detector"], room: "kitchen", online: true, address: "rs485:line1#2" };

/** The installer's trigger at `at`: `draft` journaled, then sent and acked by the relay shortly after. */
function triggerAt(r: ReturnType<typeof rig>, s: CommissionSession, at: number, draft: EventDraft): void {
  let fired = false;
  r.at((t) => {
    if (fired || t < at) return;
    fired = true;
    void r.deps.append(draft).then((e) => {
      s.delivery("sent", [e.id], t + 100);
      s.delivery("acked", [e.id], t + 300);
    });
  });
}

test("a press during its step is marked a test, proven by the relay's ack, and passes; other devices' alarms stay real", async () => {
  const r = rig([sos, smoke]);
  const s = new CommissionSession({ plan: plan([{ kind: "sos_button", room: "bedroom" }]), installer: "Ivan", waivers: {}, stepTimeoutMs: 10_000 }, r.deps);
  r.set(s);
  let pressed = false;
  r.at((t) => {
    if (!pressed && t >= T0 + 3000) {
      pressed = true;
      // A real smoke alarm elsewhere during the test, then the button under test.
      void r.deps.append({ kind: "alarm", type: "smoke", severity: "critical", device: "hall-smoke" });
      void r.deps.append({ kind: "alarm", type: "sos", severity: "critical", device: "bed-sos" }).then((e) => {
        s.delivery("sent", [e.id], T0 + 3100);
        s.delivery("acked", [e.id], T0 + 3300);
      });
    }
  });
  const { report } = await s.run();
  assert.equal(r.journaled.find((e) => e.device === "hall-smoke")?.test, undefined, "another device's alarm is real");
  const press = r.journaled.find((e) => e.device === "bed-sos")!;
  assert.equal(press.test, true);
  assert.equal(report.state, "commissioned");
  assert.deepEqual(report.devices[0], { id: "bed-sos", kind: "sos_button", model: "HS1EB", address: "0x00124b0000000001", room: "bedroom", signal: 120, battery: 90, result: "passed", testedAt: press.ts, eventId: press.id, ackedAt: T0 + 3300 });
  // After the step, the same button is real again.
  assert.equal(s.mark({ kind: "alarm", type: "sos", severity: "critical", device: "bed-sos" }).test, undefined);
  const rep = r.journaled.at(-1)!;
  assert.equal(rep.type, "commissioning_report");
  assert.equal(commissioningReportSchema.parse(rep.data).state, "commissioned");
});

test("no trigger in time fails; a trigger never acked fails; a missing device and a camera block until waived", async () => {
  const r = rig([sos]);
  const s = new CommissionSession({ plan: plan([{ kind: "sos_button", room: "bedroom" }, { kind: "smoke_detector", room: "bedroom" }, { kind: "camera", room: "living" }]), installer: "Ivan", waivers: {}, stepTimeoutMs: 5000 }, r.deps);
  r.set(s);
  const { report } = await s.run();
  const by = (k: string) => report.devices.find((d) => d.kind === k)!;
  assert.equal(report.state, "blocked");
  assert.equal(by("sos_button").result, "failed");
  assert.match(by("sos_button").detail!, /no trigger seen from bed-sos within 5 s/);
  assert.equal(by("smoke_detector").result, "missing");
  assert.match(by("camera").detail!, /not installable by this hub/);
  // The find waited its full step and the test its own: the clock, not the machine's speed, decides.
  assert.ok(r.now() - T0 >= 10_000 && r.now() - T0 < 11_000, String(r.now() - T0));

  const r2 = rig([sos]);
  const s2 = new CommissionSession({ plan: plan([{ kind: "sos_button", room: "bedroom" }, { kind: "smoke_detector", room: "bedroom" }, { kind: "camera", room: "living" }]), installer: "Ivan", waivers: { camera: "no camera in this programme", "smoke_detector@bedroom": "ceiling being repaired" }, stepTimeoutMs: 5000 }, r2.deps);
  r2.set(s2);
  let fired = false;
  r2.at((t) => {
    // Everything else planned is waived or found, so the find ends at once and the test step starts at T0.
    if (!fired && t >= T0 + 1000) {
      fired = true;
      void r2.deps.append({ kind: "alarm", type: "sos", severity: "critical", device: "bed-sos" }); // never sent or acked
    }
  });
  const out = await s2.run();
  assert.equal(out.report.devices.find((d) => d.kind === "sos_button")!.result, "failed");
  assert.match(out.report.devices.find((d) => d.kind === "sos_button")!.detail!, /never sent/);
  assert.deepEqual(out.report.devices.find((d) => d.kind === "camera")!.waiver, { reason: "no camera in this programme", by: "Ivan", at: T0 });
  assert.equal(out.report.devices.find((d) => d.kind === "smoke_detector")!.result, "waived");
});

test("a waiver naming nothing planned is refused; a plan that is not one is a clear error", async () => {
  const r = rig([]);
  const s = new CommissionSession({ plan: plan([{ kind: "sos_button", room: "bedroom" }]), installer: "Ivan", waivers: { radar: "x" }, stepTimeoutMs: 1000 }, r.deps);
  r.set(s);
  await assert.rejects(s.run(), /--waive radar: no planned device matches/);
  assert.throws(() => parsePlan({ version: 1, level: "low", items: [{ kind: "toaster", room: "kitchen", count: 1 }] }, "plan.json"), /plan.json: not a household plan: items.0.kind/);
  assert.throws(() => parsePlan({ plan: null }, "relay"), /has no plan yet/);
});

test("the SOS button's test episode ends with its step, passed or failed, so the elder's next press is a new alarm", async () => {
  const r = rig([sos]);
  const s = new CommissionSession({ plan: plan([{ kind: "sos_button", room: "bedroom" }]), installer: "Ivan", waivers: {}, stepTimeoutMs: 10_000 }, r.deps);
  r.set(s);
  triggerAt(r, s, T0 + 2000, { kind: "alarm", type: "sos", severity: "critical", device: "bed-sos" });
  const { report } = await s.run();
  assert.equal(report.devices[0]!.result, "passed");
  // Once, for the button, when its step had settled (after the relay's ack), not before.
  assert.deepEqual(r.ended, [{ device: "bed-sos", at: r.ended[0]!.at, state: "passed" }]);
  assert.ok(r.ended[0]!.at >= T0 + 2000, String(r.ended[0]!.at - T0));

  // No trigger: the step fails, and the episode is ended all the same.
  const r2 = rig([sos]);
  const s2 = new CommissionSession({ plan: plan([{ kind: "sos_button", room: "bedroom" }]), installer: "Ivan", waivers: {}, stepTimeoutMs: 3000 }, r2.deps);
  r2.set(s2);
  assert.equal((await s2.run()).report.devices[0]!.result, "failed");
  assert.deepEqual(r2.ended.map((e) => [e.device, e.state]), [["bed-sos", "failed"]]);
});

test("a detector still in alarm after its test: one real, unmarked alarm after the recovery time, and the step fails", async () => {
  const r = rig([gas]);
  const s = new CommissionSession({ plan: plan([{ kind: "gas_detector", room: "kitchen" }]), installer: "Ivan", waivers: {}, stepTimeoutMs: 10_000 }, r.deps);
  r.set(s);
  triggerAt(r, s, T0 + 1000, { kind: "alarm", type: "gas", severity: "critical", device: "kitchen-gas", room: "kitchen" });
  const { report } = await s.run();
  const alarms = r.journaled.filter((e) => e.kind === "alarm" && e.device === "kitchen-gas");
  assert.equal(alarms.length, 2, JSON.stringify(alarms));
  const [testAlarm, real] = alarms as [Envelope, Envelope];
  assert.equal(testAlarm.test, true);
  assert.equal(real.test, undefined, "the report is a real alarm: the relay opens an incident and calls");
  assert.deepEqual({ type: real.type, severity: real.severity, room: real.room, data: real.data }, { type: "gas", severity: "critical", room: "kitchen", data: { reason: "still_in_alarm_after_test", testEventId: testAlarm.id } });
  assert.equal(real.ts, testAlarm.ts + 60_000, "exactly the default recovery time after the test alarm");
  const d = report.devices[0]!;
  assert.equal(d.result, "failed");
  assert.equal(d.detail, "still in alarm 60 s after its test: reported as a real alarm");
  assert.equal(d.eventId, testAlarm.id);
  assert.equal(report.state, "blocked");
  // Its later clear is real too, and so is the next alarm.
  assert.equal(s.mark({ kind: "alarm_cleared", type: "gas", severity: "info", device: "kitchen-gas" }).test, undefined);
  assert.equal(r.ended.length, 1);

  // The recovery time is a session option.
  const r2 = rig([gas]);
  const s2 = new CommissionSession({ plan: plan([{ kind: "gas_detector", room: "kitchen" }]), installer: "Ivan", waivers: {}, stepTimeoutMs: 10_000, recoveryMs: 20_000 }, r2.deps);
  r2.set(s2);
  triggerAt(r2, s2, T0 + 1000, { kind: "alarm", type: "gas", severity: "high", device: "kitchen-gas" });
  const out = await s2.run();
  const real2 = r2.journaled.filter((e) => e.kind === "alarm" && !e.test);
  assert.equal(real2.length, 1);
  assert.equal(real2[0]!.severity, "high", "the original's severity");
  assert.equal(real2[0]!.ts, T0 + 21_000);
  assert.match(out.report.devices[0]!.detail!, /^still in alarm 20 s after its test/);
});

test("a detector that recovers in time passes with no extra alarm; its clear stays a test", async () => {
  const r = rig([smoke]);
  const s = new CommissionSession({ plan: plan([{ kind: "smoke_detector", room: "hall" }]), installer: "Ivan", waivers: {}, stepTimeoutMs: 10_000 }, r.deps);
  r.set(s);
  triggerAt(r, s, T0 + 1000, { kind: "alarm", type: "smoke", severity: "critical", device: "hall-smoke" });
  let cleared = false;
  r.at((t) => {
    if (!cleared && t >= T0 + 40_000) {
      cleared = true;
      void r.deps.append({ kind: "alarm_cleared", type: "smoke", severity: "info", device: "hall-smoke" });
    }
  });
  const { report } = await s.run();
  assert.equal(report.devices[0]!.result, "passed", report.devices[0]!.detail);
  assert.equal(report.state, "commissioned");
  const mine = r.journaled.filter((e) => e.device === "hall-smoke");
  assert.deepEqual(mine.map((e) => [e.kind, e.test]), [["alarm", true], ["alarm_cleared", true]]);
  // The session waited for the clear, not the whole recovery time.
  assert.ok(r.now() < T0 + 41_000, String(r.now() - T0));

  // Cleared at once, inside the trigger window: passes as well, and the device's later alarms and clears are real.
  const r2 = rig([smoke]);
  const s2 = new CommissionSession({ plan: plan([{ kind: "smoke_detector", room: "hall" }]), installer: "Ivan", waivers: {}, stepTimeoutMs: 10_000 }, r2.deps);
  r2.set(s2);
  triggerAt(r2, s2, T0 + 1000, { kind: "alarm", type: "smoke", severity: "critical", device: "hall-smoke" });
  triggerAt(r2, s2, T0 + 1000, { kind: "alarm_cleared", type: "smoke", severity: "info", device: "hall-smoke" });
  assert.equal((await s2.run()).report.devices[0]!.result, "passed");
  assert.equal(r2.journaled.filter((e) => e.kind === "alarm" && !e.test).length, 0);
  assert.equal(s2.mark({ kind: "alarm_cleared", type: "smoke", severity: "info", device: "hall-smoke" }).test, undefined);
});

test("the cellular second path: passed is in the report; failed blocks commissioning; a waiver names why it is accepted", async () => {
  const run = async (check: EngineDeps["secondPath"], waivers: Record<string, string> = {}) => {
    const r = rig([sos]);
    r.deps.secondPath = check;
    const seen: unknown[] = [];
    const s2 = new CommissionSession({ plan: plan([{ kind: "sos_button", room: "bedroom" }]), installer: "Ivan", waivers: { sos_button: "tested last week", ...waivers }, stepTimeoutMs: 1000 }, r.deps, (p) => seen.push(p));
    r.set(s2);
    const { report } = await s2.run();
    commissioningReportSchema.parse(report);
    assert.ok(seen.some((p) => (p as { event: string }).event === "second_path"), "the installer sees the check");
    return report;
  };
  const ok = await run(async () => ({ ok: true, sim: "ready", registration: "home", rssiDbm: -73, operator: "CHINA MOBILE", longestSms: 121, testedAt: T0, mr: 7 }));
  assert.equal(ok.state, "commissioned");
  assert.deepEqual(ok.secondPath, { result: "passed", sim: "ready", registration: "home", rssiDbm: -73, operator: "CHINA MOBILE", longestSms: 121, testedAt: T0, mr: 7, detail: undefined });

  const noSim = await run(async () => ({ ok: false, sim: "absent", registration: "not_registered", rssiDbm: null, operator: null, longestSms: 121, detail: "no usable SIM (absent)" }));
  assert.equal(noSim.state, "blocked", "a dead second path is not commissioned");
  assert.equal(noSim.secondPath?.result, "failed");
  assert.equal(noSim.secondPath?.detail, "no usable SIM (absent)");

  const thrown = await run(async () => {
    throw new Error("the cellular module on /dev/ttyUSB2 does not answer (opening)");
  });
  assert.equal(thrown.state, "blocked");
  assert.match(thrown.secondPath?.detail ?? "", /does not answer/);

  const waived = await run(async () => ({ ok: false, sim: "ready", registration: "searching", rssiDbm: -111, operator: null, longestSms: 121, detail: "not registered on a network (searching)" }), { "second-path": "no coverage in the basement flat; district informed" });
  assert.equal(waived.state, "commissioned");
  assert.equal(waived.secondPath?.result, "waived");
  assert.deepEqual(waived.secondPath?.waiver, { reason: "no coverage in the basement flat; district informed", by: "Ivan", at: T0 });

  // Without a cellular module there is no second-path section, and a `second-path` waiver names nothing.
  const r = rig([sos]);
  const none = new CommissionSession({ plan: plan([{ kind: "sos_button", room: "bedroom" }]), installer: "Ivan", waivers: { "second-path": "x" }, stepTimeoutMs: 1000 }, r.deps);
  r.set(none);
  await assert.rejects(none.run(), /--waive second-path: no planned device matches/);
});
