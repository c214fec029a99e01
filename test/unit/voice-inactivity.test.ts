// When the elder hears the inactivity prompt, with the real inactivity rule and the hub's journaling of it
// (BehaviourWatch) feeding the voice's triggers the way the daemon does. The rule has no stage before its
// alarm: it journals nothing while it counts, so the raised alarm is the earliest journaled point there is,
// and that is when "if you are fine, please move about" is said. A sign of life then clears the alarm.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createLogger } from "../../lib/daemon/logger.js";
import { BehaviourWatch } from "../../gateway/src/hub/behaviour-watch.js";
import { DEFAULT_BEHAVIOUR, type InactivityParams } from "../../gateway/src/rules/behaviour-params.js";
import { VoiceTriggers } from "../../gateway/src/voice/triggers.js";
import type { PromptId } from "../../gateway/src/voice/prompts.js";
import type { Envelope, EventDraft } from "../../protocol/envelope.js";

const log = createLogger({ name: "test", level: "silent" });
const T0 = 1_764_400_000_000;
const SPAN = 60 * 60_000;
const params: InactivityParams = { enabled: true, spanMs: SPAN, night: null, timeZone: "UTC" };

test("inactivity: nothing journaled or said while the rule counts; the prompt at the raise, once; nothing on the clear", () => {
  let now = T0;
  const journal: Envelope[] = [];
  const said: PromptId[] = [];
  const voice = new VoiceTriggers({ say: (id) => said.push(id) }, () => now, log);
  const record = (d: EventDraft) => {
    const e: Envelope = { v: 1, hub: "h1", boot: 1, seq: journal.length + 1, id: `e${journal.length + 1}`, ts: now, ...d };
    journal.push(e);
    voice.event(e); // the daemon tells the voice of each journaled event
  };
  const watch = new BehaviourWatch({ params: DEFAULT_BEHAVIOUR, inactivity: params, record, log, now: () => now });
  const radar = { type: "reading", device: "radar-1", room: "living", gives: ["presence", "motion"] } as const;

  watch.apply({ ...radar, presence: true, motion: "moving" });
  // A still body under the radar, minute after minute, up to a moment before the span: no pre-alarm stage exists.
  for (now = T0 + 60_000; now < T0 + SPAN; now += 60_000) watch.apply({ ...radar, presence: true, motion: "still" });
  now = T0 + SPAN - 1;
  watch.apply({ type: "tick" });
  assert.equal(journal.length, 0, "the rule journals nothing before its alarm");
  assert.equal(said.length, 0);

  now = T0 + SPAN;
  watch.apply({ type: "tick" });
  assert.deepEqual(journal.map((e) => `${e.kind}/${e.type}`), ["alarm/inactivity"]);
  assert.deepEqual(said, ["inactivity_check"], "asked at the raise");
  now += 60_000;
  watch.apply({ type: "tick" });
  assert.deepEqual(said, ["inactivity_check"], "once per episode");

  // The elder moves about: the hub clears its alarm; nothing more is said.
  now += 60_000;
  watch.apply({ ...radar, presence: true, motion: "moving" });
  assert.deepEqual(journal.map((e) => `${e.kind}/${e.type}`), ["alarm/inactivity", "alarm_cleared/inactivity"]);
  assert.deepEqual(said, ["inactivity_check"]);

  // A later episode is asked about again.
  now += SPAN;
  watch.apply({ type: "tick" });
  assert.deepEqual(said, ["inactivity_check", "inactivity_check"]);
});
