// The reports page's period (relay/console/src/reports/period.ts): the last N days up to the moment chosen,
// or whole local days from one date to another, both included; impossible dates and a backwards range refused.
import { test } from "node:test";
import assert from "node:assert/strict";
import { dayValue, parseDay, periodOf } from "../../relay/console/src/reports/period.js";

const DAY = 86_400_000;

test("the last 7, 30 or 90 days end at the moment chosen", () => {
  const now = Date.UTC(2026, 2, 15, 9, 30);
  assert.deepEqual(periodOf({ kind: "last", days: 7 }, now), { since: now - 7 * DAY, until: now });
  assert.deepEqual(periodOf({ kind: "last", days: 90 }, now), { since: now - 90 * DAY, until: now });
});

test("from–to covers whole local days, the last one included", () => {
  const p = periodOf({ kind: "range", from: "2026-01-01", to: "2026-01-31" }, 0);
  assert.deepEqual(p, { since: new Date(2026, 0, 1).getTime(), until: new Date(2026, 1, 1).getTime() });
  const one = periodOf({ kind: "range", from: "2026-03-29", to: "2026-03-29" }, 0);
  assert.deepEqual(one, { since: new Date(2026, 2, 29).getTime(), until: new Date(2026, 2, 30).getTime() });
});

test("impossible dates and a range that ends before it starts are refused", () => {
  assert.deepEqual(periodOf({ kind: "range", from: "2026-02-30", to: "2026-03-01" }, 0), { error: "bad_date" });
  assert.deepEqual(periodOf({ kind: "range", from: "", to: "2026-03-01" }, 0), { error: "bad_date" });
  assert.deepEqual(periodOf({ kind: "range", from: "2026-03-02", to: "2026-03-01" }, 0), { error: "from_after_to" });
  assert.equal(parseDay("2026-1-5"), undefined);
  assert.equal(dayValue(new Date(2026, 0, 5)), "2026-01-05");
  assert.equal(dayValue(parseDay("2026-12-31") ?? new Date(0)), "2026-12-31");
});
