// The parts of relay ingest that can be checked on their own: no store, no MQTT, no threads. Timers are
// mocked, so nothing here depends on how fast the machine is. The whole pipeline is relay-ingest.test.ts.
import { test } from "node:test";
import assert from "node:assert/strict";
import { pino, type Logger } from "pino";
import { accepted, factsFromWire, isUrgent, looksUrgent, skewToFlag, type Accepted, type Facts } from "../../relay/src/ingest/accepted.js";
import { acksFor } from "../../relay/src/ingest/after-commit.js";
import { Backlog, OVERLOAD_LOG_EVERY_MS } from "../../relay/src/ingest/backlog.js";
import { BatchCollector } from "../../relay/src/ingest/batches.js";
import { CommitLoop, RETRY_FIRST_MS, RETRY_MAX_MS } from "../../relay/src/ingest/commit-loop.js";
import { Tickets } from "../../relay/src/ingest/tickets.js";
import { createMetrics, type Metrics } from "../../relay/src/metrics.js";

const T0 = 1_800_000_000_000;

function facts(id: string, hub = "hub-1", o: Partial<Facts> = {}): Facts {
  return { id, hub, boot: 1, seq: 1, ts: T0, kind: "reading", type: "gas", severity: "info", device: "gas-1", ...o };
}

const item = (id: string, hub = "hub-1", o: Partial<Facts> = {}): Accepted => accepted(facts(id, hub, o), undefined, `{"id":"${id}"}`, T0, null);
const alarmItem = (id: string, hub = "hub-1"): Accepted => item(id, hub, { kind: "alarm", severity: "critical" });

function logger(): { log: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  return { log: pino({ level: "debug" }, { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) }), lines };
}

async function rejectedCount(m: Metrics, reason: string): Promise<number> {
  const got = await m.eventsRejected.get();
  return got.values.filter((v) => v.labels.reason === reason).reduce((s, v) => s + v.value, 0);
}

/** Lets every pending promise callback run (setImmediate is not mocked). */
const settleMicrotasks = () => new Promise<void>((resolve) => setImmediate(resolve));

// ---- tickets: what flush() waits for

test("tickets: settled() waits for every message handed in before it, in any order, and not for later ones", async () => {
  const t = new Tickets();
  await t.settled(); // nothing open: at once
  const a = t.take();
  const b = t.take();
  let done = false;
  const waiting = t.settled().then(() => (done = true));
  const c = t.take(); // after the call: not waited for
  t.settle(b);
  await settleMicrotasks();
  assert.equal(done, false, "a is still in its checks");
  t.settle(a);
  await waiting;
  assert.equal(done, true);
  let later = false;
  const second = t.settled().then(() => (later = true));
  await settleMicrotasks();
  assert.equal(later, false, "c is still in its checks");
  t.settle(c);
  await second;
});

// ---- accepted events

test("skew: flagged only past the bound, signed, and never for a historical event", () => {
  assert.equal(skewToFlag({ ts: T0 - 299_000 }, T0, 300_000), null);
  assert.equal(skewToFlag({ ts: T0 - 3_600_000 }, T0, 300_000), -3_600_000);
  assert.equal(skewToFlag({ ts: T0 + 400_000 }, T0, 300_000), 400_000);
  assert.equal(skewToFlag({ ts: T0 - 3_600_000, historical: true }, T0, 300_000), null);
});

test("facts from a verify thread: device null and historical 0 are left out, as the parsed envelope would have them", () => {
  assert.deepEqual(factsFromWire("hub-1", ["e1", 2, 7, T0, "alarm", "gas", "critical", null, 0]), { id: "e1", hub: "hub-1", boot: 2, seq: 7, ts: T0, kind: "alarm", type: "gas", severity: "critical" });
  const f = factsFromWire("hub-1", ["e2", 2, 8, T0, "device", "offline", "warning", "valve-1", 1]);
  assert.equal(f.device, "valve-1");
  assert.equal(f.historical, true);
  const row = accepted(f, undefined, "{}", T0 + 5, -5).row;
  assert.deepEqual([row.device, row.historical, row.skewMs, row.receivedAt, row.payload], ["valve-1", true, -5, T0 + 5, "{}"]);
  assert.equal(accepted(facts("e3", "hub-1", { device: undefined }), undefined, "{}", T0, null).row.device, null);
});

// ---- acks

test("acks: per hub in order of first appearance, every id in batch order, chunked, another hub's id left out", () => {
  const items = [item("a1", "hub-a"), item("b1", "hub-b"), item("a2", "hub-a"), item("x", "hub-b"), item("a3", "hub-a"), item("b2", "hub-b")];
  assert.deepEqual(acksFor(items, new Set(["x"]), 2), [
    { hub: "hub-a", ids: ["a1", "a2"] },
    { hub: "hub-a", ids: ["a3"] },
    { hub: "hub-b", ids: ["b1", "b2"] },
  ]);
  assert.deepEqual(acksFor(items, new Set()), [
    { hub: "hub-a", ids: ["a1", "a2", "a3"] },
    { hub: "hub-b", ids: ["b1", "x", "b2"] },
  ]);
  assert.deepEqual(acksFor([item("x")], new Set(["x"])), []);
});

// ---- backlog

test("backlog: admits up to its bound, then drops with a count and at most one log line per period", async () => {
  const clock = { now: T0 };
  const metrics = createMetrics();
  const { log, lines } = logger();
  const b = new Backlog(2, metrics, log, () => clock.now);
  assert.equal(b.admit("hub-1"), true);
  assert.equal(b.admit("hub-1"), true);
  assert.equal(b.admit("hub-1"), false);
  assert.equal(b.admit("hub-1"), false);
  assert.equal(b.size, 2);
  assert.equal(await rejectedCount(metrics, "backlog_full"), 2);
  assert.equal(lines.length, 1, "the second drop within the period is counted, not logged");
  clock.now += OVERLOAD_LOG_EVERY_MS;
  assert.equal(b.admit("hub-2"), false);
  assert.equal(lines.length, 2);
  assert.equal(lines[1]?.dropped, 2, "the drops since the last line");
  b.release(2);
  assert.equal(b.admit("hub-1"), true);
  assert.equal(b.size, 1);
});

// ---- batches

test("batches: sealed when full, handed out in order; an id repeats only once its batch is settled", () => {
  const due: number[] = [];
  const c = new BatchCollector(2, 1000, () => due.push(1));
  assert.equal(c.add(item("e1")), true);
  assert.equal(c.add(item("e1")), false, "twice in the batch being collected: one row");
  assert.equal(c.add(item("e2")), true); // full: sealed
  assert.equal(c.holds("hub-1", "e1"), true);
  assert.equal(c.holds("hub-2", "e1"), false, "held per hub: another hub's id is the store's to judge");
  assert.equal(c.add(item("e1")), false, "a copy while its sealed batch waits for its commit: that commit acks it");
  const first = c.takeDue();
  assert.deepEqual(first?.items.map((a) => a.id), ["e1", "e2"]);
  assert.ok(first);
  assert.equal(c.add(item("e2")), false, "nor while its batch is being committed");
  c.putBack(first);
  assert.equal(c.takeDue(), first, "a failed batch goes first again");
  assert.equal(c.holds("hub-1", "e1"), true, "and keeps its events held");
  c.settle(first);
  assert.equal(c.holds("hub-1", "e1"), false);
  assert.equal(c.add(item("e1")), true, "once committed, a resend joins the next batch (the store dedupes)");
  assert.equal(c.takeDue(), undefined, "the batch being collected is not due yet");
  const target = c.sealForFlush();
  const second = c.takeDue();
  assert.equal(second?.no, target);
  assert.deepEqual(second?.items.map((a) => a.id), ["e1"]);
  assert.equal(c.sealForFlush(), target, "nothing collected since: the flush waits for the last batch that held anything");
  c.stopWait();
});

test("urgency: alarms, their clearing and anything critical or high; the same judged on the unparsed text", () => {
  const cases: Array<[Partial<Facts>, boolean]> = [
    [{ kind: "alarm", severity: "critical" }, true],
    [{ kind: "alarm", type: "inactivity", severity: "warning" }, true],
    [{ kind: "alarm_cleared", severity: "info" }, true],
    [{ kind: "device", type: "valve_closed", severity: "high" }, true],
    [{ kind: "reading", type: "smoke_spread", severity: "high" }, true],
    [{ kind: "reading", severity: "info" }, false],
    [{ kind: "heartbeat", type: "heartbeat", severity: "info" }, false],
    [{ kind: "device", severity: "warning" }, false],
  ];
  for (const [o, want] of cases) {
    const f = facts("e1", "hub-1", o);
    assert.equal(isUrgent(f), want, JSON.stringify(o));
    assert.equal(looksUrgent(JSON.stringify(f)), want, `text of ${JSON.stringify(o)}`);
  }
});

test("batches: urgent events go first, due at once; each lane keeps its order; a flush waits for both", () => {
  let due = 0;
  const c = new BatchCollector(2, 1000, () => due++);
  c.add(item("r1")); // a routine batch collecting, its wait not over
  c.add(alarmItem("a1"));
  assert.equal(c.add(alarmItem("a1")), false, "a copy of a held alarm: one row");
  assert.equal(c.add(item("a1")), false, "held whatever its lane");
  c.add(alarmItem("a2"));
  c.add(alarmItem("a3")); // the first urgent batch was full: a second one collects
  const first = c.takeDue();
  assert.deepEqual(first?.items.map((a) => a.id), ["a1", "a2"]);
  c.putBack(first);
  assert.equal(c.takeDue(), first, "a failed urgent batch goes first again");
  const second = c.takeDue();
  assert.deepEqual(second?.items.map((a) => a.id), ["a3"], "the urgent batch being collected is due at once");
  assert.equal(c.takeDue(), undefined, "the routine batch being collected waits for its time");
  assert.equal(due, 0);
  // Batches are numbered as they get their first event and may commit out of number order: a flush waits
  // for every one numbered up to its start, whatever the order they settle in.
  const target = c.sealForFlush();
  const last = c.takeDue();
  assert.deepEqual(last?.items.map((a) => a.id), ["r1"], "sealed by the flush");
  c.add(alarmItem("a4")); // after the flush began: not waited for
  for (const b of [second, first]) {
    assert.equal(c.settledUpTo(target), false);
    c.settle(b);
  }
  assert.equal(c.settledUpTo(target), false, "r1 is not settled yet");
  c.settle(last);
  assert.equal(c.settledUpTo(target), true);
  assert.equal(c.holds("hub-1", "a4"), true);
  c.stopWait();
});

test("batches: an urgent batch carries the routine batch that is due into its transaction, not one that is still waiting", (t) => {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  const c = new BatchCollector(2, 5, () => {}, { withinMs: 0, gatherMs: 10, now: () => T0 }); // every alarm due at once
  c.add(item("r1"));
  c.add(item("r2")); // full: due
  c.add(item("r3")); // collecting, not due yet
  c.add(alarmItem("a1"));
  const first = c.takeDue();
  assert.deepEqual(first?.items.map((a) => a.id), ["a1", "r1", "r2"]);
  c.add(alarmItem("a2"));
  const second = c.takeDue();
  assert.deepEqual(second?.items.map((a) => a.id), ["a2"], "r3's wait is not over: the alarm does not wait for it");
  c.putBack(first);
  c.add(item("r4")); // r3's batch is full now: due
  assert.equal(c.takeDue(), first, "a retried batch keeps what it had and takes nothing more");
  assert.deepEqual(first?.items.map((a) => a.id), ["a1", "r1", "r2"]);
  const target = c.sealForFlush();
  assert.deepEqual(c.takeDue()?.items.map((a) => a.id), ["r3", "r4"]);
  c.settle(second);
  assert.equal(c.settledUpTo(first.no), false);
  c.settle(first);
  assert.equal(c.holds("hub-1", "r2"), false, "the carried events are settled with it");
  assert.equal(c.settledUpTo(target), false, "r3 and r4 are not settled yet");
  c.stopWait();
});

test("batches: a lone alarm is due at once; alarms in a burst wait a little to share a commit", (t) => {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  let now = T0;
  let due = 0;
  const c = new BatchCollector(3, 1000, () => due++, { withinMs: 100, gatherMs: 10, now: () => now });
  c.add(alarmItem("a1"));
  assert.deepEqual(c.takeDue()?.items.map((a) => a.id), ["a1"], "nothing before it: due at once");
  now += 20;
  c.add(alarmItem("a2", "hub-2")); // 20 ms after an urgent batch was taken: a burst
  assert.equal(c.takeDue(), undefined, "it waits for the others of the burst");
  t.mock.timers.tick(5);
  c.add(alarmItem("a3", "hub-3"));
  t.mock.timers.tick(5);
  assert.equal(due, 1, "due once its gathering time is over");
  assert.deepEqual(c.takeDue()?.items.map((a) => a.id), ["a2", "a3"], "one commit for both");
  now += 20;
  c.add(alarmItem("a4"));
  c.add(alarmItem("a5", "hub-2"));
  c.add(alarmItem("a6", "hub-3")); // full: due without waiting
  assert.deepEqual(c.takeDue()?.items.map((a) => a.id), ["a4", "a5", "a6"]);
  now += 20;
  c.add(alarmItem("a7"));
  assert.equal(c.takeDue(), undefined);
  const target = c.sealForFlush();
  assert.deepEqual(c.takeDue()?.items.map((a) => a.id), ["a7"], "a flush does not wait for the burst");
  assert.equal(c.settledUpTo(target), false);
  t.mock.timers.tick(10);
  assert.equal(due, 1, "the sealed batch's gathering was called off");
  now += 100;
  c.add(alarmItem("a8"));
  assert.deepEqual(c.takeDue()?.items.map((a) => a.id), ["a8"], "100 ms after the last: a lone alarm again");
  c.stopWait();
});

test("batches: the wait counts from a batch's first event", (t) => {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  let due = 0;
  const c = new BatchCollector(100, 5, () => due++);
  c.add(item("e1"));
  t.mock.timers.tick(4);
  c.add(item("e2")); // does not restart the wait
  t.mock.timers.tick(1);
  assert.equal(due, 1);
  assert.deepEqual(c.takeDue()?.items.map((a) => a.id), ["e1", "e2"]);
  c.add(item("e3"));
  t.mock.timers.tick(4);
  assert.equal(due, 1);
  assert.equal(c.takeDue(), undefined);
  t.mock.timers.tick(1);
  assert.equal(due, 2);
  assert.deepEqual(c.takeDue()?.items.map((a) => a.id), ["e3"]);
});

// ---- the commit loop

function commitRig(failFirst: number) {
  const metrics = createMetrics();
  const { log, lines } = logger();
  const backlog = new Backlog(100, metrics, log, () => T0);
  const batches = new BatchCollector(1, 1000, () => loop.pump()); // one event a batch: each add seals
  const tried: number[] = [];
  const acked: number[] = [];
  const fail = { next: failFirst };
  const loop = new CommitLoop(
    batches,
    {
      store: (b) => {
        tried.push(b.no);
        if (fail.next-- > 0) return Promise.reject(new Error("connection refused"));
        return Promise.resolve({ inserted: new Set(b.items.map((a) => a.id)), foreign: new Set<string>() });
      },
      afterCommit: (b) => void acked.push(b.no),
    },
    backlog,
    log,
  );
  const add = (id: string) => {
    assert.ok(backlog.admit("hub-1"));
    batches.add(item(id));
    loop.pump();
  };
  return { loop, backlog, tried, acked, lines, add, fail };
}

test("commit loop: one commit at a time in batch order; a failed batch is retried with backoff before anything after it", async (t) => {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  const r = commitRig(2);
  r.add("e1");
  r.add("e2");
  r.add("e3");
  await settleMicrotasks();
  assert.deepEqual(r.tried, [1], "nothing overtakes the failed batch");
  assert.equal(r.backlog.size, 3);
  t.mock.timers.tick(RETRY_FIRST_MS - 1);
  await settleMicrotasks();
  assert.deepEqual(r.tried, [1]);
  t.mock.timers.tick(1);
  await settleMicrotasks();
  assert.deepEqual(r.tried, [1, 1]);
  t.mock.timers.tick(2 * RETRY_FIRST_MS);
  for (let i = 0; i < 5; i++) await settleMicrotasks();
  assert.deepEqual(r.tried, [1, 1, 1, 2, 3]);
  assert.deepEqual(r.acked, [1, 2, 3], "acknowledged only once committed, in order");
  assert.equal(r.backlog.size, 0);
  const errors = r.lines.filter((l) => l.level === 50);
  assert.deepEqual(errors.map((l) => [l.attempt, l.retryInMs]), [
    [1, RETRY_FIRST_MS],
    [2, 2 * RETRY_FIRST_MS],
  ]);
  assert.ok(r.lines.some((l) => l.msg === "ingest: commits succeed again" && l.afterFailures === 2));
  await r.loop.done(3);
});

test("commit loop: the retry delay doubles up to its cap and starts again after a success", async (t) => {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  const r = commitRig(8);
  const lastRetry = () => r.lines.filter((l) => l.level === 50).at(-1)?.retryInMs;
  r.add("e1");
  await settleMicrotasks();
  const delays: unknown[] = [];
  for (let i = 0; i < 8; i++) {
    delays.push(lastRetry());
    t.mock.timers.tick(RETRY_MAX_MS);
    await settleMicrotasks();
  }
  const expected: number[] = [];
  for (let d = RETRY_FIRST_MS; expected.length < 8; d = Math.min(2 * d, RETRY_MAX_MS)) expected.push(d);
  assert.deepEqual(delays, expected);
  assert.ok(expected.includes(RETRY_MAX_MS), "the cap is reached");
  assert.deepEqual(r.acked, [1], "the ninth try succeeded");
  r.fail.next = 1;
  r.add("e2");
  await settleMicrotasks();
  assert.equal(lastRetry(), RETRY_FIRST_MS, "after a success the backoff starts from the beginning");
});

test("commit loop: once closing, a failed commit is given up (not acknowledged) and done() still resolves", async (t) => {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  const r = commitRig(Infinity);
  r.add("e1");
  await settleMicrotasks();
  assert.deepEqual(r.tried, [1]);
  r.loop.close(); // the waiting retry goes at once
  r.loop.pump();
  await settleMicrotasks();
  assert.deepEqual(r.tried, [1, 1]);
  await r.loop.done(1);
  assert.deepEqual(r.acked, []);
  assert.equal(r.backlog.size, 0, "given up: no longer held");
  assert.ok(r.lines.some((l) => l.level === 40 && l.events === 1));
  const last = r.lines.filter((l) => l.level === 50).at(-1);
  assert.equal(last?.retryInMs, null, "closing: no retry is promised");
});
