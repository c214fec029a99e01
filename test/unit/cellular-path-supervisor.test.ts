// Path supervision on a controlled clock, against stand-ins for the uplink and the module (the real ones are
// exercised end to end in test/integration/cellular-path.test.ts): when the broadband counts as down, which
// events go by SMS and in what order, retries, the outage notices, and the periodic test.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { ulid } from "ulid";
import { createLogger } from "../../lib/daemon/logger.js";
import type { Envelope, EventDraft } from "../../protocol/envelope.js";
import { decodeCompactAlarm, verifyCompactAlarm } from "../../protocol/sms-compact.js";
import { cellularSchema } from "../../gateway/src/config/cellular.js";
import { PathSupervisor, primaryDownReason } from "../../gateway/src/cellular/path-supervisor.js";
import type { UplinkStatus } from "../../gateway/src/uplink/uplink.js";

const KEY = Buffer.alloc(32, 7);
const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

test("the broadband is down after downAfterS without a connection, or ackTimeoutS without an ack", () => {
  const c = { downAfterS: 5, ackTimeoutS: 8 };
  assert.equal(primaryDownReason({ connected: true, disconnectedSince: null, unansweredSince: null }, 100_000, c), null);
  assert.equal(primaryDownReason({ connected: false, disconnectedSince: 96_000, unansweredSince: null }, 100_000, c), null);
  assert.equal(primaryDownReason({ connected: false, disconnectedSince: 95_000, unansweredSince: null }, 100_000, c), "no MQTT connection for 5 s");
  assert.equal(primaryDownReason({ connected: true, disconnectedSince: null, unansweredSince: 93_000 }, 100_000, c), null);
  assert.equal(primaryDownReason({ connected: true, disconnectedSince: null, unansweredSince: 92_000 }, 100_000, c), "no ack from the relay for 8 s");
});

async function rig(o: { cellular?: Record<string, unknown>; canSend?: boolean } = {}) {
  let t = 1_800_000_000_000;
  const up: UplinkStatus = { state: "connected", inFlight: 0, lastAckAt: null, lastConnectAt: t, reconnects: 0, clockOffsetMs: null, sent: 0, acked: 0, resent: 0, acksRefused: 0, commandsRefused: 0, unansweredSince: null, boundTo: null, url: "mqtt://127.0.0.1:1" };
  const sms: string[] = [];
  const journaled: Envelope[] = [];
  let failNext = 0;
  const dataDir = await mkdtemp(path.join(os.tmpdir(), "anxin-path-"));
  dirs.push(dataDir);
  let seq = 0;
  const sup = new PathSupervisor({
    config: cellularSchema.parse({ port: "/dev/ttyUSB2", relayNumber: "+8610690000001", data: { enabled: false }, test: { firstAfterS: 3600 }, ...o.cellular }),
    uplink: { status: () => up, bindTo: (a) => void (up.boundTo = a) },
    modem: {
      canSend: () => o.canSend ?? true,
      sendSms: async (text) => {
        if (failNext > 0) {
          failNext--;
          throw new Error("+CMS ERROR: 331 no network service");
        }
        sms.push(text);
        return { mr: sms.length };
      },
      dataAddress: async () => null,
      status: () => ({ state: "ready" }),
    },
    key: KEY,
    append: async (d: EventDraft) => {
      const e = { v: 1, hub: "hub-p", boot: 1, seq: ++seq, id: ulid(t), ts: t, ...d } as Envelope;
      journaled.push(e);
      sup.event(e);
      return e;
    },
    probePrimary: async () => false,
    dataDir,
    log: createLogger({ name: "test", level: "silent" }),
    now: () => t,
    tickMs: 2,
  });
  await sup.start();
  const settle = () => new Promise((r) => setTimeout(r, 30));
  return {
    sup, up, sms, journaled, dataDir,
    failNext: (n: number) => void (failNext = n),
    advance: async (ms: number) => {
      t += ms;
      await settle();
    },
    now: () => t,
    alarm: (type: string, severity: Envelope["severity"]) => {
      const e = { v: 1, hub: "hub-p", boot: 1, seq: ++seq, id: ulid(t), ts: t, kind: "alarm", type, severity, device: `${type}-1` } as Envelope;
      sup.event(e);
      return e;
    },
    settle,
  };
}

test("an alarm acknowledged over MQTT never goes by SMS; heartbeats and readings never do", async () => {
  const r = await rig();
  const a = r.alarm("gas", "critical");
  r.sup.event({ ...a, id: ulid(), kind: "heartbeat", type: "heartbeat", severity: "info" });
  r.sup.acked([a.id]);
  r.up.state = "disconnected";
  await r.advance(10_000);
  assert.equal(r.sup.status().mode, "down");
  assert.deepEqual(r.sms, []);
  await r.sup.stop();
});

test("broadband down: every unacknowledged alarm goes by SMS, most severe first, once each; a failed send is tried again", async () => {
  const r = await rig();
  const fall = r.alarm("fall", "high");
  const gas = r.alarm("gas", "critical");
  r.up.state = "disconnected";
  await r.advance(4000);
  assert.equal(r.sup.status().mode, "primary", "not before downAfterS");
  assert.deepEqual(r.sms, []);
  r.failNext(1);
  await r.advance(1000);
  assert.equal(r.sup.status().mode, "down");
  await r.settle();
  // The gas alarm's first send failed (no network); the fall went; the gas alarm goes again after 5 s.
  assert.deepEqual(r.sms.map((s) => decodeCompactAlarm(s).id), [fall.id]);
  await r.advance(5000);
  assert.deepEqual(r.sms.map((s) => decodeCompactAlarm(s).id), [fall.id, gas.id]);
  assert.ok(r.sms.every((s) => verifyCompactAlarm(s, KEY)), "signed with the hub's key");
  // An alarm while down goes at once.
  const smoke = r.alarm("smoke", "critical");
  await r.settle();
  assert.equal(decodeCompactAlarm(r.sms.at(-1)!).id, smoke.id);
  await r.advance(30_000);
  assert.equal(r.sms.filter((s) => / A/.test(s)).length, 3, "once each");
  const status = r.sup.status();
  assert.equal(status.smsSent, 3);
  assert.equal(status.smsFailed, 1);
  assert.ok(r.journaled.filter((e) => e.type === "sms_sent").length === 3, "each send is recorded");
  await r.sup.stop();
});

test("the outage is noticed after noticeAfterS (by SMS without data), and its end is journaled", async () => {
  const r = await rig({ cellular: { primary: { noticeAfterS: 60 } } });
  r.up.state = "disconnected";
  await r.advance(5000);
  await r.advance(59_000);
  assert.equal(r.journaled.filter((e) => e.type === "primary_path_down").length, 0);
  await r.advance(1000);
  const notice = r.journaled.find((e) => e.type === "primary_path_down");
  assert.ok(notice, "journaled");
  await r.settle();
  assert.ok(r.sms.some((s) => decodeCompactAlarm(s).id === notice.id && decodeCompactAlarm(s).kind === "device"), "texted");
  // The broadband comes back: a session, and the relay's ack of what was waiting.
  r.up.state = "connected";
  r.up.lastConnectAt = r.now();
  r.up.lastAckAt = r.now() + 100;
  await r.advance(200);
  assert.equal(r.sup.status().mode, "primary");
  assert.ok(r.journaled.some((e) => e.type === "primary_path_restored"));
  await r.sup.stop();
});

test("the periodic test: due firstAfterS after a start, then everyH after the last; a failure is a warning and comes back within the hour", async () => {
  const r = await rig({ cellular: { test: { everyH: 168, firstAfterS: 600 } }, canSend: false });
  assert.equal(r.sup.status().nextTestAt, r.now() + 600_000);
  await r.advance(600_000);
  await r.settle();
  const failed = r.journaled.find((e) => e.type === "second_path_test_failed");
  assert.ok(failed, "a failed test is journaled");
  assert.equal(failed.severity, "warning");
  assert.equal(r.sup.status().lastTest?.ok, false);
  assert.equal(r.sup.status().nextTestAt, r.now() + 3600_000);
  await assert.rejects(stat(path.join(r.dataDir, "cellular-state.json")), "a failed test is not remembered as done");
  await r.sup.stop();

  const ok = await rig({ cellular: { test: { everyH: 168, firstAfterS: 0 } } });
  await ok.advance(10);
  await ok.settle();
  const t = ok.journaled.find((e) => e.type === "second_path_test");
  assert.ok(t);
  assert.equal(decodeCompactAlarm(ok.sms[0]!).type, "second_path_test");
  assert.equal(ok.sup.status().lastTest?.ok, true);
  assert.equal(ok.sup.status().nextTestAt, ok.sup.status().lastTest!.at + 168 * 3600_000);
  const saved = JSON.parse(await readFile(path.join(ok.dataDir, "cellular-state.json"), "utf8")) as { lastTestAt: number };
  assert.equal(saved.lastTestAt, ok.sup.status().lastTest!.at, "remembered across a restart");
  assert.equal((await stat(path.join(ok.dataDir, "cellular-state.json"))).mode & 0o077, 0, "owner-only");
  await ok.sup.stop();
});
