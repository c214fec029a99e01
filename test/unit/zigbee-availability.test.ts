// Zigbee supervision wakes the hub only when a window ends or a ping is due (issue 14: idle CPU on a Pi),
// and still judges every window the moment it ends.
import { test, mock } from "node:test";
import assert from "node:assert/strict";
import { Availability, MAX_CHECK_SLEEP_MS } from "../../gateway/src/transports/zigbee/availability.js";

function rig() {
  mock.timers.enable({ apis: ["setTimeout"] });
  let now = 1_000_000;
  const av = new Availability({ pingMs: 120_000, now: () => now });
  const events: string[] = [];
  av.on("status", (id, online) => events.push(`${id}:${online ? "online" : "offline"}`));
  let checks = 0;
  const check = av.check.bind(av);
  av.check = () => {
    checks++;
    check();
  };
  /** Moves the fake clock and the timers together, a millisecond at a time where it matters. */
  const advance = (ms: number, step = 1000) => {
    for (let left = ms; left > 0; left -= step) {
      const d = Math.min(step, left);
      now += d;
      mock.timers.tick(d);
    }
  };
  return { av, events, advance, checks: () => checks, now: () => now };
}

test("a battery device goes offline when its window ends, not before, with a handful of checks in 16 min", (t) => {
  t.after(() => mock.timers.reset());
  const { av, events, advance, checks } = rig();
  av.track({ id: "co", mains: false, windowMs: 960_000 }, 1_000_000);
  av.start();
  assert.deepEqual(events, ["co:online"]);
  advance(960_000, 1);
  assert.deepEqual(events, ["co:online"], "at exactly the window: still online");
  advance(1, 1);
  assert.deepEqual(events, ["co:online", "co:offline"], "one millisecond past the window: offline");
  assert.ok(checks() <= 960_000 / MAX_CHECK_SLEEP_MS + 3, `${checks()} checks (a 250 ms period made 3,840)`);
  // Heard again: online, and its window runs again from that frame.
  av.seen("co");
  advance(960_000);
  assert.equal(events.at(-1), "co:online");
  advance(1000);
  assert.equal(events.at(-1), "co:offline");
  av.stop();
});

test("a frame moves the window; a device tracked later with a shorter window is judged on time", (t) => {
  t.after(() => mock.timers.reset());
  const { av, events, advance } = rig();
  av.start();
  av.track({ id: "smoke", mains: false, windowMs: 960_000 }, 1_000_000);
  advance(500_000);
  av.seen("smoke");
  av.track({ id: "radar", mains: false, windowMs: 5_000 }, 1_500_000);
  advance(5_000, 1);
  assert.deepEqual(events, ["smoke:online", "radar:online"]);
  advance(1, 1);
  assert.deepEqual(events, ["smoke:online", "radar:online", "radar:offline"]);
  advance(954_000);
  assert.deepEqual(events, ["smoke:online", "radar:online", "radar:offline"], "the frame at 500 s moved smoke's window");
  advance(1_000);
  assert.equal(events.at(-1), "smoke:offline");
  av.stop();
});

test("a quiet mains device is pinged when pingMs has passed, again pingMs after a failed ping, never twice at once", async (t) => {
  t.after(() => mock.timers.reset());
  const { av, events, advance } = rig();
  let pings = 0;
  let answer = true;
  let release: (() => void) | undefined;
  av.track({
    id: "valve",
    mains: true,
    windowMs: 120_000,
    ping: () => {
      pings++;
      if (answer) return Promise.resolve();
      return new Promise<void>((_, reject) => (release = () => reject(new Error("no ack"))));
    },
  });
  av.start();
  advance(119_000);
  assert.equal(pings, 0);
  advance(1_000);
  assert.equal(pings, 1, "pinged once its quiet time reached pingMs");
  await Promise.resolve();
  answer = false;
  advance(120_000);
  assert.equal(pings, 2);
  advance(60_000);
  assert.equal(pings, 2, "no second ping while one is in flight");
  release!();
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(events, ["valve:online", "valve:offline"], "online after the answered ping, offline after the failed one");
  advance(60_000);
  assert.equal(pings, 3, "pingMs after the failed ping started");
  av.stop();
});

test("paused (coordinator down): no window ends; resumed: every device gets a full window from then", (t) => {
  t.after(() => mock.timers.reset());
  const { av, events, advance } = rig();
  av.track({ id: "co", mains: false, windowMs: 60_000 }, 1_000_000);
  av.start();
  av.pause();
  advance(600_000);
  assert.deepEqual(events, ["co:online"]);
  av.resume();
  advance(60_000);
  assert.deepEqual(events, ["co:online"]);
  advance(1_000);
  assert.deepEqual(events, ["co:online", "co:offline"]);
  av.stop();
});
