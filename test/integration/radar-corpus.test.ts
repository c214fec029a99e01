// The radar corpus against the real hub: a deterministic stratified subset of the labelled traces (every
// category, traces up to 3 simulated hours, ~40 s on 2 vCPUs; the whole corpus takes ~3.5 min: `npm run
// score:radars`), played onto PTY serial lines with a virtual clock, and one short trace in real time.
// docs/fall-detection.md has the method and the figures.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { SerialPort } from "serialport";
import { demoTrace, type Trace } from "../../bench/radar-corpus/generate.js";
import { openPtyPair, playVirtual, RadarEnd } from "../../bench/radar-corpus/player.js";
import { report, runCorpus, runTrace, TARGETS, formatReport, type Report } from "../../bench/radar-corpus/score.js";
import { encodeReport, seeed5359 } from "../../gateway/src/transports/uart/seeed-5359.js";

const socat = spawnSync("socat", ["-V"], { stdio: "ignore" });
const skip = socat.error || socat.status !== 0 ? "socat not found: apt-get install socat" : false;

/**
 * Traces the rules get wrong today, by name (docs/fall-detection.md, "What the rules still get wrong"). Each
 * must still fail: when a rule is fixed, its traces leave this list.
 */
const KNOWN_MISSES: Record<string, string> = {
  // none today: a failed attempt to get up and abnormal runs judged on the clock were fixed after the first runs
};

let subset: Report | undefined;
async function runSubset(): Promise<Report> {
  subset ??= await runCorpus({ seed: 1, traces: 72, maxDurationMs: 3 * 3600_000, jobs: 2 });
  return subset;
}

function targetProblems(r: Report): string[] {
  const out: string[] = [];
  for (const [type, min] of Object.entries(TARGETS.sensitivity)) {
    const row = r.rows.find((x) => x.type === type)!;
    if (row.expected < 3) out.push(`${type}: only ${row.expected} expectations in the run`);
    else if (row.sensitivity! < min) out.push(`${type}: sensitivity ${(row.sensitivity! * 100).toFixed(1)} % < ${min * 100} %`);
  }
  if (r.falseAlarmsPerDay > TARGETS.falseAlarmsPerDay) out.push(`false alarms ${r.falseAlarmsPerDay.toFixed(2)}/day > ${TARGETS.falseAlarmsPerDay}`);
  for (const row of r.rows) if (row.late > 0) out.push(`${row.type}: ${row.late} later than window + 2 s`);
  return out;
}

test("corpus subset: every trace outside the known misses passes, and every known miss still fails", { skip, timeout: 240_000 }, async () => {
  const r = await runSubset();
  assert.ok(r.results.length >= 60, `a subset of ${r.results.length} traces`);
  assert.ok(r.categories.length >= 20, `${r.categories.length} categories covered`);
  const unexpected = r.results.filter((t) => !t.pass && !t.ambiguous && !(t.name in KNOWN_MISSES));
  assert.deepEqual(
    unexpected.map((t) => `${t.name}: ${t.failures.join("; ")}`),
    [],
    `traces failing that did not before:\n${formatReport(r)}`,
  );
  const fixed = r.results.filter((t) => t.pass && t.name in KNOWN_MISSES).map((t) => t.name);
  assert.deepEqual(fixed, [], "these known misses pass now: take them off KNOWN_MISSES and docs/fall-detection.md");
  // every byte the player wrote was read by the hub, every query it sent answered (or ignored while the radar
  // was off) before the counts are read, and every intact frame and every reply decoded
  for (const t of r.results) {
    assert.equal(t.play.unread, 0, `${t.name}: the hub did not read everything written`);
    assert.equal(t.play.queriesUnheard, 0, `${t.name}: queries the hub sent never reached the player`);
    for (const [id, f] of Object.entries(t.frames)) assert.equal(f.decoded, f.intact + f.replies, `${t.name}/${id}: decoded frames`);
  }
});

test("corpus subset, known misses set apart: falls and vital absence ≥ 95 %, ≤ 0.1 false alarms a day, on time", { skip, timeout: 240_000 }, async () => {
  const r = await runSubset();
  const kept = r.results.filter((t) => !(t.name in KNOWN_MISSES));
  const k = report(r.seed, kept, r.wallMs);
  assert.deepEqual(targetProblems(k), [], formatReport(k));
  // the figures are the hub's: a rule that never raised would fail above (sensitivity 0)
  assert.ok(k.rows.find((x) => x.type === "fall")!.tp >= 15);
  assert.ok(k.rows.find((x) => x.type === "vital_absent")!.tp >= 3);
});

test("corpus subset, all traces: the targets", { skip, timeout: 240_000 }, async () => {
  const r = await runSubset();
  assert.deepEqual(targetProblems(r), []);
});

test("a fall played in real time reaches the journal within the window + 2 s", { skip, timeout: 60_000 }, async () => {
  const t = await runTrace(demoTrace(1), { realtime: true });
  assert.deepEqual(t.failures, []);
  const e = t.expects[0]!;
  assert.equal(e.outcome, "tp");
  assert.ok(e.latencyMs! <= e.windowMs + 2000, `latency ${e.latencyMs} ms`);
});

// --- the player's own accounting: `decoded === intact + replies` only holds if the player never breaks a frame
// with a reply and counts no reply the hub could not have read yet.

/** A player's end on one PTY line, the test holding the hub's end; `got` is every byte the hub end read. */
async function playerLine(): Promise<{ end: RadarEnd; hubPort: SerialPort; got: () => Buffer; close: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "radar-player-"));
  const pair = await openPtyPair(path.join(dir, "hub"), path.join(dir, "radar"));
  const end = new RadarEnd("r", pair.deviceEnd, "seeed-mr60fda1");
  await end.open();
  const hubPort = new SerialPort({ path: pair.hubEnd, baudRate: 115200, autoOpen: false });
  await new Promise<void>((res, rej) => hubPort.open((e) => (e ? rej(e) : res())));
  const chunks: Buffer[] = [];
  hubPort.on("data", (c: Buffer) => chunks.push(c));
  return {
    end,
    hubPort,
    got: () => Buffer.concat(chunks),
    close: async () => {
      await new Promise<void>((r) => hubPort.close(() => r()));
      await end.close();
      await pair.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function until(cond: () => boolean, what: string, ms = 3000): Promise<void> {
  const t = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > t) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

test("player: a query heard while the line paused inside a frame is answered after the rest of that frame", { skip, timeout: 20_000 }, async () => {
  const l = await playerLine();
  try {
    const fall = encodeReport({ fall: "fall" })[0]!;
    // a split write (line noise) that paused right after the frame's first byte, as in noise-normal-01
    l.end.writeChunk({ bytes: fall.subarray(0, 1), continues: true });
    l.hubPort.write(seeed5359.livenessQuery());
    await until(() => l.end.queriesHeard === 1, "the player to hear the query");
    l.end.writeChunk({ bytes: fall.subarray(1) });
    await until(() => l.got().length === l.end.written, "the hub end to read everything written");
    const p = seeed5359.createParser();
    const frames = p.push(l.got());
    assert.deepEqual(
      frames.map((f) => f.kind),
      ["report", "product"],
      "the fall frame whole, then the answer",
    );
    assert.equal(l.end.repliesWritten, 1);
    assert.equal(p.counters.frames, 1 + l.end.repliesWritten);
  } finally {
    await l.close();
  }
});

test("player: the virtual play waits for the answer to a query sent by the last tick before it returns", { skip, timeout: 20_000 }, async () => {
  const l = await playerLine();
  try {
    const frame = encodeReport({ presence: true })[0]!;
    const trace = { name: "last-tick-query", startAt: 0, durationMs: 1000, chunks: [{ at: 0, radar: "r", bytes: frame }], power: [], expect: [] } as unknown as Trace;
    let sent = 0;
    const stats = await playVirtual(trace, new Map([["r", l.end]]), {
      setNow: () => {},
      // the tick at the trace's end asks the radar (a quiet radar's liveness query)
      tick: () => {
        l.hubPort.write(seeed5359.livenessQuery());
        sent++;
      },
      bytesIn: () => l.got().length,
      queriesSent: () => sent,
    });
    // read at once, as the corpus runner reads the hub's counters
    assert.equal(stats.queriesUnheard, 0);
    assert.equal(l.end.repliesWritten, 1, "the answer was written before the play returned");
    assert.equal(l.got().length, l.end.written, "and read by the hub end");
    assert.equal(seeed5359.createParser().push(l.got()).length, 1 + l.end.repliesWritten);
  } finally {
    await l.close();
  }
});
