// Spoken prompts on their own: the queue's rules (urgent first, newest first, duplicates folded, superseded
// prompts dropped, a siren always wins, quiet hours hold back only info), the player with a stand-in for aplay
// (one at a time, cut off by a siren and said again, a missing file logged once), what the hub says when
// (triggers), the signed `announce` command's schema, and which incident news the relay announces.
import { test } from "node:test";
import assert from "node:assert/strict";
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createLogger } from "../../lib/daemon/logger.js";
import { PromptQueue, inQuietHours } from "../../gateway/src/voice/queue.js";
import { Player } from "../../gateway/src/voice/player.js";
import { PROMPT_IDS, PROMPTS, promptFile, type PromptId } from "../../gateway/src/voice/prompts.js";
import { VoiceTriggers } from "../../gateway/src/voice/triggers.js";
import { FallPendingWatch } from "../../gateway/src/voice/fall-pending.js";
import { voiceSchema } from "../../gateway/src/config/voice.js";
import { configSchema } from "../../gateway/src/config/schema.js";
import { Commands } from "../../gateway/src/uplink/commands.js";
import { ANNOUNCEMENTS, commandSchema, signCommand, type HubCommand } from "../../protocol/messages.js";
import { holdThreadPool, stuckAfter } from "../support/thread-pool.js";
import type { Envelope } from "../../protocol/envelope.js";
import { announcementsOf, type IncidentNews } from "../../relay/src/announce/announcer.js";

const log = createLogger({ name: "test", level: "silent" });
const NOW = 1_764_400_000_000;
const ctx = (o: Partial<{ now: number; sirenOn: boolean; quiet: boolean }> = {}) => ({ now: NOW, sirenOn: false, quiet: false, ...o });

test("queue: urgent before alarm before info, newest first within one; duplicates folded", () => {
  const q = new PromptQueue();
  q.push({ id: "voice_test", at: NOW, cause: "t" });
  q.push({ id: "platform_received", at: NOW + 1, cause: "ack" });
  q.push({ id: "family_coming", at: NOW + 2, cause: "announce" });
  q.push({ id: "call_sent", at: NOW + 3, cause: "sos" });
  assert.equal(q.push({ id: "platform_received", at: NOW + 4, cause: "ack" }), false, "folded into the one waiting");
  const order: PromptId[] = [];
  for (let n = q.take(ctx({ now: NOW + 5 })); n; n = q.take(ctx({ now: NOW + 5 }))) order.push(n.id);
  assert.deepEqual(order, ["call_sent", "platform_received", "family_coming", "voice_test"], "the refreshed platform_received is now the newer alarm prompt");
});

test("queue: a siren always wins; quiet hours hold back info only; stale prompts lapse", () => {
  const q = new PromptQueue();
  q.push({ id: "gas_alarm", at: NOW, cause: "gas" });
  q.push({ id: "voice_test", at: NOW, cause: "t" });
  assert.equal(q.take(ctx({ sirenOn: true })), null, "nothing while a siren sounds");
  assert.equal(q.size, 2, "they wait");
  assert.equal(q.take(ctx({ quiet: true }))?.id, "gas_alarm", "alarm advice in quiet hours");
  assert.equal(q.take(ctx({ quiet: true })), null, "info held back in quiet hours");
  assert.equal(q.take(ctx({ now: NOW + PROMPTS.voice_test.keepMs + 1 })), null, "lapsed");
  assert.equal(q.size, 0);
});

test("queue: the verified valve close supersedes the plain gas advice", () => {
  const q = new PromptQueue();
  q.push({ id: "gas_alarm", at: NOW, cause: "gas" });
  q.push({ id: "gas_valve_closed", at: NOW + 1, cause: "valve" });
  assert.equal(q.push({ id: "gas_alarm", at: NOW + 2, cause: "co" }), false, "already said by the waiting one");
  assert.deepEqual(q.waiting().map((i) => i.id), ["gas_valve_closed"]);
});

test("quiet hours: across midnight and within a day; none", () => {
  const night = { from: "22:00", to: "07:00" };
  assert.equal(inQuietHours(23 * 60, night), true);
  assert.equal(inQuietHours(3 * 60, night), true);
  assert.equal(inQuietHours(7 * 60, night), false);
  assert.equal(inQuietHours(12 * 60, night), false);
  assert.equal(inQuietHours(13 * 60 + 30, { from: "13:00", to: "14:00" }), true);
  assert.equal(inQuietHours(14 * 60, { from: "13:00", to: "14:00" }), false);
  assert.equal(inQuietHours(3 * 60, null), false);
});

test("config: voice defaults to Mandarin; bad values are refused", () => {
  const v = voiceSchema.parse({});
  assert.equal(v.language, "zh-CN");
  assert.equal(v.enabled, true);
  assert.equal(v.quietHours, null);
  assert.equal(voiceSchema.safeParse({ language: "fr" }).success, false);
  assert.equal(voiceSchema.safeParse({ quietHours: { from: "25:00", to: "07:00" } }).success, false);
  assert.equal(voiceSchema.safeParse({ volume: 500 }).success, false);
  assert.equal(voiceSchema.safeParse({ device: "bad device" }).success, false);
  assert.equal(configSchema.safeParse({ hub: { id: "h1", dataDir: "/tmp/x" }, voice: { language: "en" } }).success, true);
});

test("catalogue: every prompt has Mandarin and English text, every announcement a prompt", () => {
  for (const id of PROMPT_IDS) {
    assert.match(PROMPTS[id].text["zh-CN"], /[\u4e00-\u9fff]/, id);
    assert.match(PROMPTS[id].text.en, /^[A-Z]/, id);
  }
  assert.equal(PROMPTS.call_sent.text["zh-CN"], "呼叫已发出。");
  assert.equal(PROMPTS.platform_received.text["zh-CN"], "平台已收到。");
  assert.equal(PROMPTS.family_coming.text["zh-CN"], "您的家人正在赶来。");
  for (const a of ANNOUNCEMENTS) assert.ok(PROMPT_IDS.includes(a), a);
});

/** A stand-in for aplay: logs its file, plays for `ms`, exits 0 (or as told by the file's name). */
async function fakeAplay(dir: string, ms: number): Promise<{ program: string; plays: () => Promise<string[]> }> {
  const logFile = path.join(dir, "plays.log");
  const program = path.join(dir, "fake-aplay");
  await writeFile(program, `#!/bin/sh\n# -q -D <device> <file>\necho "$4" >> ${logFile}\nsleep ${ms / 1000}\n`);
  await chmod(program, 0o755);
  return { program, plays: async () => (await readFile(logFile, "utf8").catch(() => "")).split("\n").filter(Boolean).map((f) => path.basename(f, ".wav")) };
}

async function promptsDir(ids: readonly PromptId[]): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "anxin-voice-unit-"));
  await mkdir(path.join(dir, "zh-CN"));
  for (const id of ids) await writeFile(path.join(dir, promptFile("zh-CN", id)), "RIFF");
  return dir;
}

const until = async (what: string, f: () => boolean | Promise<boolean>, ms = 5000) => {
  const end = Date.now() + ms;
  while (!(await f())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

test("player: one at a time, urgent first; a siren cuts a prompt off and it is said again after", async () => {
  const dir = await promptsDir(["call_sent", "platform_received", "gas_alarm"]);
  try {
    const aplay = await fakeAplay(dir, 400);
    let siren = false;
    const p = new Player({ dir, language: "zh-CN", device: "null", sirenOn: () => siren, quiet: () => false, log, program: aplay.program, checkMs: 20 });
    p.say("platform_received", "ack");
    p.say("call_sent", "sos");
    p.say("call_sent", "sos");
    await until("two spoken", () => p.played.filter((x) => x.ok).length === 2);
    assert.deepEqual(p.played.map((x) => x.id), ["platform_received", "call_sent"], "the first started at once; the second waited its turn, once");
    assert.ok(p.played[1]!.startedAt >= p.played[0]!.at, "never two at once");
    // A siren starts while a prompt plays: it is cut off, waits, and is said in full once the siren is silent.
    p.say("gas_alarm", "gas");
    await until("gas advice started", async () => (await aplay.plays()).includes("gas_alarm"));
    siren = true;
    await until("cut off", () => p.played.some((x) => x.problem === "interrupted"));
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await aplay.plays()).filter((x) => x === "gas_alarm").length, 1, "nothing while the siren sounds");
    siren = false;
    await until("said again", () => p.played.some((x) => x.id === "gas_alarm" && x.ok));
    await p.stop();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("player: a missing prompt file is logged once and skipped; the next prompt still plays", async () => {
  const dir = await promptsDir(["call_sent"]);
  try {
    const aplay = await fakeAplay(dir, 50);
    const lines: string[] = [];
    const { pino } = await import("pino");
    const l = pino({ level: "info" }, { write: (s: string) => void lines.push(s) });
    const p = new Player({ dir, language: "zh-CN", device: "null", sirenOn: () => false, quiet: () => false, log: l, program: aplay.program, checkMs: 20 });
    p.say("family_coming", "announce");
    await until("missing noted", () => p.played.length === 1);
    p.say("family_coming", "announce");
    p.say("call_sent", "sos");
    await until("call sent", () => p.played.some((x) => x.id === "call_sent" && x.ok));
    assert.deepEqual(p.played.filter((x) => x.problem === "missing").length, 2);
    assert.equal(lines.filter((s) => s.includes("prompt file missing")).length, 1, "logged once");
    await p.stop();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("player: with every thread of libuv's pool held, a prompt found at start is still spoken", async () => {
  const dir = await promptsDir(["gas_alarm"]);
  try {
    const aplay = await fakeAplay(dir, 50);
    const p = new Player({ dir, language: "zh-CN", device: "null", sirenOn: () => false, quiet: () => false, log, program: aplay.program, checkMs: 20 });
    await p.ready;
    const pool = await holdThreadPool();
    const deadline = stuckAfter(10_000);
    try {
      p.say("gas_alarm", "gas");
      const spoken = (async () => {
        while (!p.played.some((x) => x.id === "gas_alarm")) await new Promise((r) => setTimeout(r, 20));
        return "spoken";
      })();
      assert.equal(await Promise.race([spoken, deadline.stuck]), "spoken", "the prompt waited for the thread pool");
      assert.equal(p.played[0]!.ok, true);
    } finally {
      deadline.cancel();
      await pool.release();
    }
    await p.stop();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

const env = (e: Partial<Envelope>): Envelope => ({ v: 1, hub: "h1", boot: 1, seq: 1, id: "01JDX3Q4Z8K6M2N5P7R9T1V3W0", ts: NOW, kind: "alarm", type: "sos", severity: "critical", ...e });

test("triggers: call sent at once, platform received on that event's ack, announcements only with an open local alarm", () => {
  const said: string[] = [];
  let now = NOW;
  const t = new VoiceTriggers({ say: (id) => said.push(id) }, () => now, log);
  const announce = { announcement: "family_coming", alarm: "sos", incident: "inc-1" } as const;
  assert.deepEqual(t.announce(announce), { spoken: false, reason: "no open local sos alarm" });
  t.event(env({ test: true }));
  assert.deepEqual(said, [], "a commissioning test press says nothing");
  t.event(env({}));
  assert.deepEqual(said, ["call_sent"]);
  t.acked(["01JDX3Q4Z8K6M2N5P7R9T1V3W9"]);
  assert.deepEqual(said, ["call_sent"], "another event's ack says nothing");
  t.acked(["01JDX3Q4Z8K6M2N5P7R9T1V3W0"]);
  t.acked(["01JDX3Q4Z8K6M2N5P7R9T1V3W0"]);
  assert.deepEqual(said, ["call_sent", "platform_received"], "once");
  assert.deepEqual(t.announce(announce), { spoken: true });
  assert.deepEqual(t.announce({ ...announce, alarm: "gas" }), { spoken: false, reason: "no open local gas alarm" }, "only of the kind that is open");
  now += 3 * 3600_000;
  assert.equal(t.announce(announce).spoken, false, "a one-key call long past is no longer open");
  // Gas: the advice; the verified close only while the alarm is open; a cleared alarm takes announcements with it.
  said.length = 0;
  t.event(env({ type: "valve_closed", kind: "device", actions: [{ action: "valve_closed", target: "v", ok: true }] }));
  assert.deepEqual(said, [], "no gas alarm open: the valve's close is not news for the elder");
  t.event(env({ type: "gas" }));
  t.event(env({ type: "valve_closed", kind: "device", actions: [{ action: "valve_closed", target: "v", ok: false }] }));
  t.event(env({ type: "valve_closed", kind: "device", actions: [{ action: "valve_closed", target: "v", ok: true }] }));
  assert.deepEqual(said, ["gas_alarm", "gas_valve_closed"], "only a verified close");
  t.event(env({ kind: "alarm_cleared", type: "gas" }));
  assert.equal(t.announce({ ...announce, alarm: "gas" }).spoken, false);
  t.event(env({ type: "inactivity" }));
  assert.equal(said.at(-1), "inactivity_check");
});

test("fall pending: each pending report asked about once", () => {
  const devices: Record<string, { pendingSince: number | null }> = { bath: { pendingSince: null } };
  const asked: string[] = [];
  const w = new FallPendingWatch(() => devices, (d) => asked.push(d));
  w.check();
  devices.bath!.pendingSince = NOW;
  w.check();
  w.check();
  devices.bath!.pendingSince = null;
  w.check();
  devices.bath!.pendingSince = NOW + 5000;
  w.check();
  assert.deepEqual(asked, ["bath", "bath"]);
});

const KEY = Buffer.alloc(32, 7);
test("announce command: a fixed id, a known alarm type; signed; run by the hub's command handler", async () => {
  const base = { cmd: "announce", id: "a-1", ts: NOW, announcement: "family_coming", alarm: "sos", incident: "inc-1" };
  assert.equal(commandSchema.safeParse(base).success, true);
  assert.equal(commandSchema.safeParse({ ...base, announcement: "say_anything" }).success, false, "no other announcement");
  assert.equal(commandSchema.safeParse({ ...base, text: "您好" }).success, false, "no free text");
  assert.equal(commandSchema.safeParse({ ...base, alarm: "hub_offline" }).success, false, "only alarms a hub raises");
  const drafts: Array<{ type: string; data?: Record<string, unknown> }> = [];
  const asked: unknown[] = [];
  const c = new Commands({
    hub: "h1", key: KEY, relayNow: () => NOW, clock: () => NOW, log,
    append: (d) => (drafts.push(d), Promise.resolve()),
    announce: (a) => (asked.push(a), { spoken: false, reason: "no open local sos alarm" }),
  });
  c.handle(Buffer.from(JSON.stringify({ ...base, sig: "0".repeat(64) })), false);
  assert.equal(asked.length, 0, "a badly signed one is refused");
  c.handle(Buffer.from(JSON.stringify(signCommand("h1", base as HubCommand, KEY))), false);
  assert.deepEqual(asked, [{ announcement: "family_coming", alarm: "sos", incident: "inc-1" }]);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(drafts.map((d) => [d.type, d.data?.spoken, d.data?.reason]), [["announcement", false, "no open local sos alarm"]]);
});

test("relay: which incident news is announced", () => {
  const inc = (o: Partial<IncidentNews>): IncidentNews => ({ id: "i", hub: "h", type: "sos", state: "confirming", acknowledged_at: null, acknowledged_by: null, updated_at: NOW, ...o });
  assert.deepEqual(announcementsOf(inc({})), []);
  assert.deepEqual(announcementsOf(inc({ acknowledged_at: NOW, acknowledged_by: "emergency_contact:son" })), [{ announcement: "family_coming", at: NOW }]);
  assert.deepEqual(announcementsOf(inc({ acknowledged_at: NOW, acknowledged_by: "volunteer:v1" })), [{ announcement: "helper_coming", at: NOW }]);
  assert.deepEqual(announcementsOf(inc({ acknowledged_at: NOW, acknowledged_by: "operator:duty-1" })), [{ announcement: "operator_handling", at: NOW }]);
  assert.deepEqual(announcementsOf(inc({ acknowledged_at: NOW, acknowledged_by: "elder" })), [], "the elder's own answer is not news to the elder");
  assert.deepEqual(announcementsOf(inc({ state: "responding", updated_at: NOW + 1 })), [{ announcement: "help_dispatched", at: NOW + 1 }]);
});
