import { test } from "node:test";
import assert from "node:assert/strict";
import { pino } from "pino";
import { BurstLog } from "../../lib/log/burst-log.js";

function rig(maxSources = 3) {
  const clock = { now: 0 };
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level: "debug" }, { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) });
  const bursts = new BurstLog(log, "refused", () => clock.now, { maxSources, quietMs: 1000, remindMs: 5000 });
  const warned = () => lines.filter((l) => l.level === 40).map((l) => l.source);
  return { clock, lines, bursts, warned };
}

test("burst log: the sources it follows stay bounded; quiet ones are forgotten first, and a forgotten one warns again", () => {
  const r = rig();
  for (const s of ["a", "b", "c"]) r.bursts.note(s, { source: s });
  r.clock.now = 500;
  r.bursts.note("a", { source: "a" }); // a is now the most recent
  r.bursts.note("d", { source: "d" }); // full: b, the longest quiet, goes
  assert.equal(r.bursts.sources, 3);
  r.bursts.note("c", { source: "c" });
  r.bursts.note("a", { source: "a" });
  assert.deepEqual(r.warned(), ["a", "b", "c", "d"], "c and a are still in their bursts");
  r.bursts.note("b", { source: "b" });
  assert.deepEqual(r.warned(), ["a", "b", "c", "d", "b"], "b was forgotten, so it starts a burst again");
  // Once quiet, sources are dropped as new ones come, not kept to the bound.
  r.clock.now = 10_000;
  r.bursts.note("e", { source: "e" });
  assert.equal(r.bursts.sources, 1);
  assert.equal(r.lines.length, 9, "every note logged, warnings or debug");
});
