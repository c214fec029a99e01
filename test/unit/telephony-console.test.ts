// The console adapter the demo runs on: it calls nobody, prints each call with the number masked, and
// answers by its script on a scheduler the test drives.
import { test } from "node:test";
import assert from "node:assert/strict";
import { pino } from "pino";
import { createTelephony, maskNumber, telephonyConfigSchema, type CallOutcome } from "../../relay/src/telephony/index.js";

const ELDER = "+8613800000001";
const SON = "+8613900000002";

function manualScheduler() {
  const timers: { at: number; fn: () => void; cancelled: boolean }[] = [];
  let now = 1_800_000_000_000;
  return {
    now: () => now,
    schedule: (fn: () => void, ms: number) => {
      const t = { at: now + ms, fn, cancelled: false };
      timers.push(t);
      return () => void (t.cancelled = true);
    },
    /** Moves the clock on, running what fell due in order. */
    async advance(ms: number) {
      now += ms;
      for (const t of timers.filter((x) => !x.cancelled && x.at <= now).sort((a, b) => a.at - b.at)) {
        timers.splice(timers.indexOf(t), 1);
        t.fn();
      }
      await new Promise((r) => setImmediate(r));
    },
    get pending() {
      return timers.filter((t) => !t.cancelled).length;
    },
  };
}

function make(config: unknown) {
  const clock = manualScheduler();
  const outcomes: CallOutcome[] = [];
  const lines: string[] = [];
  const logs: string[] = [];
  const h = createTelephony(telephonyConfigSchema.parse(config), {
    log: pino({ level: "info" }, { write: (l: string) => void logs.push(l) }),
    onOutcome: async (o) => void outcomes.push(o),
    publicUrl: "http://127.0.0.1:1",
    now: clock.now,
    schedule: clock.schedule,
    print: (l) => lines.push(l),
  });
  return { h, clock, outcomes, lines, logs };
}

test("the scripted first call is answered with key 1 after its delay; later calls by `otherwise`", async () => {
  const { h, clock, outcomes, lines, logs } = make({
    kind: "console",
    script: [{ call: 1, status: "answered", digits: "1", afterMs: 3000 }],
    otherwise: { status: "no_answer", afterMs: 5000 },
  });
  assert.equal(h.telephony.name, "console");
  await h.telephony.place({ attemptId: "a1", to: ELDER, channel: "voice", message: "张阿姨家燃气报警", gatherDigits: ["1"] });
  await h.telephony.place({ attemptId: "a2", to: SON, channel: "voice", message: "张阿姨家燃气报警", gatherDigits: ["1"] });
  await clock.advance(2999);
  assert.equal(outcomes.length, 0);
  await clock.advance(1);
  assert.deepEqual(outcomes.map((o) => [o.attemptId, o.status, o.digits, o.at]), [["a1", "answered", "1", clock.now()]]);
  await clock.advance(2000);
  assert.deepEqual(outcomes.map((o) => [o.attemptId, o.status]), [["a1", "answered"], ["a2", "no_answer"]]);
  // Printed and logged with the number masked; the message (it names the elder) is not shown by default.
  const text = lines.join("\n") + logs.join("\n");
  assert.ok(text.includes(maskNumber(ELDER)));
  assert.ok(!text.includes(ELDER) && !text.includes(SON) && !text.includes("张阿姨"), text);
  assert.equal(maskNumber(ELDER), "+86*******0001");
  assert.equal(h.counters.placed, 2);
});

test("rules by number; showMessage prints the message; the same attempt twice is one call", async () => {
  const { h, clock, outcomes, lines } = make({
    kind: "console",
    script: [
      { to: SON, status: "busy", afterMs: 10 },
      { to: ELDER, status: "answered", digits: "2", afterMs: 10 },
    ],
    showMessage: true,
  });
  const a = await h.telephony.place({ attemptId: "x", to: ELDER, channel: "voice", message: "请按1确认", gatherDigits: ["1", "2"] });
  const b = await h.telephony.place({ attemptId: "x", to: ELDER, channel: "voice", message: "请按1确认", gatherDigits: ["1", "2"] });
  await h.telephony.place({ attemptId: "y", to: SON, channel: "sms", message: "短信" });
  assert.equal(a.providerRef, b.providerRef);
  await clock.advance(10);
  assert.deepEqual(outcomes.map((o) => [o.attemptId, o.status, o.digits]), [["x", "answered", "2"], ["y", "busy", undefined]]);
  assert.ok(lines.some((l) => l.includes("请按1确认")));
});

test("the default script never pretends anyone confirmed; close() cancels pending answers", async () => {
  const { h, clock, outcomes } = make({ kind: "console" });
  await h.telephony.place({ attemptId: "d1", to: ELDER, channel: "voice", message: "m", gatherDigits: ["1"] });
  await clock.advance(20_000);
  assert.deepEqual(outcomes.map((o) => o.status), ["no_answer"]);
  await h.telephony.place({ attemptId: "d2", to: ELDER, channel: "voice", message: "m" });
  await h.close();
  await clock.advance(60_000);
  assert.equal(outcomes.length, 1);
  // Console has no HTTP callbacks: its route claims no path.
  assert.deepEqual(h.callbackRoute.paths, []);
});
