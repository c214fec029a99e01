// The second path's judgement without a relay: when a hub offline over MQTT counts as on its second path,
// how the homes board ranks `primary_path_down` and `second_path_untested`, that the page words every
// problem kind in both languages, which texts the primary-path watch alerts on, and what the SMS intake
// counts and hands the watch.
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import type { Kysely } from "kysely";
import { pino } from "pino";
import type { Envelope } from "../../protocol/envelope.js";
import { encodeCompactAlarm } from "../../protocol/sms-compact.js";
import { CATALOGUES } from "../../relay/console/src/locales.js";
import { hubProblems, PROBLEM_KINDS, problemRank, SECOND_PATH_TEST_MAX_AGE_MS, urgencyOf, type HubFacts } from "../../relay/src/console/homes/problems.js";
import { SmsIntake, type SmsCount } from "../../relay/src/sms/intake.js";
import type { LoopDb } from "../../relay/src/store/closed-loop-schema.js";
import { onSecondPath, PrimaryPathWatch } from "../../relay/src/supervision/primary-path.js";

const NOW = 1_800_000_000_000;
const DAY = 86_400_000;
const log = pino({ level: "silent" });

function facts(over: Partial<HubFacts> = {}): HubFacts {
  return { hub: "hub-1", online: true, offlineSince: null, deviceEvents: new Map(), valveFaults: new Map(), openedOnSite: new Map(), reopenedAt: null, retiredAt: new Map(), batteryLevels: new Map(), ...over };
}
const kinds = (f: HubFacts, now = NOW) => hubProblems(f, now).map((p) => p.kind);

test("on its second path: offline over MQTT and a text since its last sight there", () => {
  assert.equal(onSecondPath({ online: false, lastSeenAt: 100 }, 150), true);
  assert.equal(onSecondPath({ online: false, lastSeenAt: null }, 150), true, "never connected, yet its texts arrive");
  assert.equal(onSecondPath({ online: false, lastSeenAt: 100 }, 90), false, "a text from before the outage proves nothing now");
  assert.equal(onSecondPath({ online: false, lastSeenAt: 100 }, null), false);
  assert.equal(onSecondPath({ online: true, lastSeenAt: 100 }, 150), false);
});

test("the board: primary_path_down instead of hub_offline, below it; the untested second path last", () => {
  assert.ok(problemRank("hub_offline") < problemRank("primary_path_down"));
  assert.ok(problemRank("primary_path_down") < problemRank("device_offline"));
  assert.equal(PROBLEM_KINDS[PROBLEM_KINDS.length - 1], "second_path_untested");
  assert.equal(urgencyOf("primary_path_down"), "attention");
  assert.equal(urgencyOf("second_path_untested"), "notice");

  const off = { online: false, offlineSince: 200, lastSeenAt: 100 };
  assert.deepEqual(kinds(facts(off)), ["hub_offline"]);
  assert.deepEqual(kinds(facts({ ...off, smsLastAt: 90 })), ["hub_offline"], "silent since its last sight");
  assert.deepEqual(hubProblems(facts({ ...off, smsLastAt: 150 }), NOW), [{ kind: "primary_path_down", device: null, since: 200 }]);

  // The hint: only for hubs that test at all, when the last success is over 8 days old or there is none.
  assert.deepEqual(kinds(facts()), []);
  assert.deepEqual(kinds(facts({ secondPathTest: { lastOkAt: NOW - 7 * DAY, ever: true } })), []);
  assert.deepEqual(hubProblems(facts({ secondPathTest: { lastOkAt: NOW - SECOND_PATH_TEST_MAX_AGE_MS - 1, ever: true } }), NOW), [{ kind: "second_path_untested", device: null, since: NOW - SECOND_PATH_TEST_MAX_AGE_MS - 1 }]);
  assert.deepEqual(hubProblems(facts({ secondPathTest: { lastOkAt: null, ever: true } }), NOW), [{ kind: "second_path_untested", device: null, since: null }]);
  assert.deepEqual(hubProblems(facts({ secondPathTest: { lastOkAt: null, ever: true } })), [], "nor without now");
  // Offline and silent: the hint stays (the second path may be what fails); on the second path it would only contradict.
  assert.deepEqual(kinds(facts({ ...off, secondPathTest: { lastOkAt: null, ever: true } })), ["hub_offline", "second_path_untested"]);
  assert.deepEqual(kinds(facts({ ...off, smsLastAt: 150, secondPathTest: { lastOkAt: null, ever: true } })), ["primary_path_down"]);
});

test("the page words every problem kind in both languages", () => {
  for (const lang of ["zh-CN", "en"] as const) {
    const problem = (CATALOGUES[lang] as { homes: { problem: Record<string, string>; alertKind: Record<string, string> } }).homes;
    for (const k of [...PROBLEM_KINDS, "second_path_never_tested"]) assert.ok(problem.problem[k], `${lang}: homes.problem.${k}`);
    assert.ok(problem.alertKind.primary_path_down, `${lang}: homes.alertKind.primary_path_down`);
    const incident = (CATALOGUES[lang] as { incident: { kind: Record<string, string> } }).incident;
    assert.ok(incident.kind.second_path_working, `${lang}: incident.kind.second_path_working`);
  }
});

test("the primary-path watch alerts on alarms and on the hub's primary_path_down notice, not on the path test", async () => {
  const raised: Array<{ key: string; detail: string }> = [];
  const watch = (hub: { online: boolean; lastSeenAt: number | null }) =>
    new PrimaryPathWatch({
      db: {} as Kysely<LoopDb>,
      alerts: { raise: async (_db, a) => void raised.push({ key: a.key ?? "", detail: a.detail }) },
      getHub: async (id) => ({ id, status: "active", createdAt: 0, lastBoot: null, offlineSince: null, claimExpiresAt: null, claimUsedAt: null, claimOwner: null, enrolled: true, ...hub }),
      silentAfterMs: 180_000,
      log,
      now: () => NOW,
    });
  const down = watch({ online: false, lastSeenAt: NOW - DAY });
  await down.smsEvent("hub-1", "device", "second_path_test");
  assert.equal(raised.length, 0);
  await down.smsEvent("hub-1", "device", "primary_path_down");
  assert.equal(raised.length, 1);
  assert.match(raised[0]?.detail ?? "", /^hub hub-1: the hub says by SMS that its primary path is down while its MQTT session is down/);
  await down.smsEvent("hub-1", "alarm", "gas");
  assert.equal(raised.length, 1, "one alert per outage");
  await watch({ online: false, lastSeenAt: NOW - DAY }).smsEvent("hub-2", "alarm", "gas");
  assert.match(raised[1]?.detail ?? "", /^hub hub-2: an alarm arrived by SMS/);
  await watch({ online: true, lastSeenAt: NOW }).smsEvent("hub-3", "device", "primary_path_down");
  assert.equal(raised.length, 2, "MQTT up: no alert");
});

test("the intake counts every text and tells the watch the kind and type of each verified one", async () => {
  const KEY = randomBytes(32);
  const counts: SmsCount[] = [];
  const seen: string[] = [];
  let outcome: "stored" | "duplicate" | "foreign" = "stored";
  const intake = new SmsIntake({
    signingKey: async (hub) => (hub === "hub-7" ? KEY : null),
    ingest: async () => outcome,
    onSmsEvent: async (hub, kind, type) => void seen.push(`${hub} ${kind} ${type}`),
    count: (c) => counts.push(c),
    inboundNumber: "+8613900000009",
    log,
  });
  const env: Envelope = { v: 1, hub: "hub-7", boot: 1, seq: 3, id: "01JF3Z8Y7XWV6T5S4R3Q2P1N0M", ts: NOW, kind: "device", type: "second_path_test", severity: "info", device: "cellular-modem" };
  const sms = (text: string, to = "+8613900000009") => intake.handle({ provider: "test", messageId: "m", from: "+8613811112222", to, text, receivedAt: NOW });
  assert.equal(await sms(encodeCompactAlarm(env, KEY)), "stored");
  outcome = "duplicate";
  assert.equal(await sms(encodeCompactAlarm({ ...env, type: "primary_path_down", severity: "warning" }, KEY)), "duplicate");
  outcome = "foreign";
  assert.equal(await sms(encodeCompactAlarm(env, KEY)), "refused");
  assert.equal(await sms(encodeCompactAlarm(env, randomBytes(32))), "refused");
  assert.equal(await sms(encodeCompactAlarm({ ...env, hub: "hub-8" }, KEY)), "refused");
  assert.equal(await sms("AX1 hub-7 x 1.1 x Dsecond_path_test i - - AAAAAAAAAAAAAAAA"), "refused");
  assert.equal(await sms("on my way"), "not_alarm");
  assert.equal(await sms(encodeCompactAlarm(env, KEY), "+8613900000001"), "not_ours");
  assert.deepEqual(seen, ["hub-7 device second_path_test", "hub-7 device primary_path_down"], "only verified, stored or already stored texts reach the watch");
  assert.deepEqual(counts, [
    { result: "stored", reason: "", kind: "device" },
    { result: "duplicate", reason: "", kind: "device" },
    { result: "refused", reason: "id_collision", kind: "device" },
    { result: "refused", reason: "bad_mac", kind: "device" },
    { result: "refused", reason: "unknown_hub", kind: "device" },
    { result: "refused", reason: "malformed", kind: "none" },
    { result: "not_alarm", reason: "", kind: "none" },
    { result: "not_ours", reason: "", kind: "none" },
  ]);
});
