// Invariant 9: a restart is invisible to the rules. The real daemon on the independent Modbus bench is killed
// (kill -9) in the middle of a CO alarm, the CO falls while it is down, and the daemon that starts again goes on
// with the same episode: the alarm still active, the valve latched closed by it, a reopen refused until the clear
// hold has run after the restart, the siren sounding again, one `alarm_cleared` naming the original `since`, no
// second `alarm`. In-process: a fall waiting for its confirmation survives a restart, and a saved state that
// cannot be used (corrupt, another hub's, another version) is journaled and ignored, never a crash.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { callDaemon } from "../../gateway/src/control/client.js";
import { startHub, type RunningHub } from "../../gateway/src/daemon/run.js";
import { SimRadarLine } from "../../gateway/src/sim/sim-radar.js";
import type { SimCoDetector } from "../../gateway/src/sim/devices.js";
import { createLogger } from "../../lib/daemon/logger.js";
import type { Envelope } from "../../protocol/envelope.js";
import { benchAvailable, startBench } from "../support/modbus-bench.js";
import { waitFor } from "../support/hub-rig.js";

const CLI = path.resolve("gateway/src/cli/main.ts");
const children: ChildProcess[] = [];
const cleanups: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function startDaemon(config: string): ChildProcess & { logs: string[] } {
  const child = spawn(process.execPath, ["--import", "tsx", CLI, "run", "--config", config], { stdio: ["ignore", "pipe", "pipe"] }) as ChildProcess & { logs: string[] };
  child.logs = [];
  child.stdout!.on("data", (b: Buffer) => child.logs.push(b.toString()));
  child.stderr!.on("data", (b: Buffer) => child.logs.push(b.toString()));
  children.push(child);
  return child;
}

/** Every event ever committed to the journal at `dbPath`, oldest first (nothing is acknowledged: no uplink). */
function journaled(dbPath: string): Envelope[] {
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  try {
    return (db.prepare("SELECT payload FROM events ORDER BY rowid").all() as Array<{ payload: string }>).map((r) => JSON.parse(r.payload) as Envelope);
  } finally {
    db.close();
  }
}

interface Status {
  boot: number;
  alarms: Array<{ type: string; since: number; device: string }>;
  valves: Array<{ id: string; latchedClosed: boolean; closed: boolean | null }>;
  siren: boolean;
  state: { restored: { outcome: string; alarms?: string[]; latchedValves?: string[] }; writes?: number; failures?: number };
}

async function status(sock: string): Promise<Status | undefined> {
  const r = await callDaemon(sock, { cmd: "status" }).catch(() => undefined);
  return r?.ok ? ((r as { result: Status }).result) : undefined;
}

const avail = benchAvailable();
const CO_HOLD_MS = 4000;

test("kill -9 during a CO alarm, CO falls while the hub is down: after the restart the same episode goes on (alarm, latch, hold, one clear)", { skip: avail.ok ? false : avail.reason, timeout: 120_000 }, async () => {
  const bench = await startBench({ devices: { co: 1, lel: 2, valve: 3, relay: 4 } });
  cleanups.push(() => bench.stop());
  const dir = await tempDir("anxin-restart-");
  const file = path.join(dir, "hub.yaml");
  await writeFile(
    file,
    `hub: { id: restart-hub, dataDir: ./data }
buses:
  - { name: line1, path: "${bench.path}", quietMs: 200, reconnectMinMs: 200 }
devices:
  - { id: kitchen-co, profile: greystone-cmd5b4, bus: line1, unit: 1, room: kitchen, pollMs: 200 }
  - { id: kitchen-gas, profile: pemtech-pt495-lel, bus: line1, unit: 2, room: kitchen, pollMs: 200 }
  - { id: gas-valve, profile: rotork-iq-modbus, bus: line1, unit: 3, room: kitchen, pollMs: 500, ratedCloseMs: 4000 }
  - { id: hall-siren, profile: modbus-relay-siren, bus: line1, unit: 4, room: hall }
rules:
  co: { clearHoldMs: ${CO_HOLD_MS} }
`,
  );
  const sock = path.join(dir, "data", "control.sock");
  const dbPath = path.join(dir, "data", "journal.db");
  const siren = async () => (await bench.slave.send({ cmd: "get", unit: 4, table: "co", address: 0, count: 1 })).values?.[0];

  // --- the first run: CO rises, the valve closes and is proven closed, the siren sounds ------------------
  const first = startDaemon(file);
  await waitFor("first daemon answering", async () => existsSync(sock) && (await status(sock)), 30_000);
  await bench.slave.send({ cmd: "co", unit: 1, ppm: 350 });
  const before = await waitFor("CO alarm with the valve proven closed", async () => {
    const s = await status(sock);
    return s && s.alarms.some((a) => a.type === "co") && s.valves.find((v) => v.id === "gas-valve")?.closed === true && s;
  }, 15_000);
  const since = before.alarms.find((a) => a.type === "co")!.since;
  // The valve's proof is committed (with the state that knows of it, in the same transaction).
  await waitFor("valve_closed committed", () => journaled(dbPath).some((e) => e.type === "valve_closed"), 5000);
  assert.equal(await siren(), 1, "the siren sounds");

  first.kill("SIGKILL");
  await new Promise((r) => first.once("exit", r));

  // --- while the hub is down: the CO falls, and the siren loses its output (power blip) ----------------
  await bench.slave.send({ cmd: "co", unit: 1, ppm: 3 });
  await bench.slave.send({ cmd: "set", unit: 4, table: "co", address: 0, value: 0 });

  // --- the second run ---------------------------------------------------------------------------------
  const second = startDaemon(file);
  const startedAt = Date.now();
  const after = await waitFor("second daemon answering", async () => (await status(sock))?.boot === 2 && status(sock), 30_000);
  const co = after.alarms.find((a) => a.type === "co");
  assert.ok(co, `the CO alarm is still active after the restart: ${JSON.stringify(after.alarms)}`);
  assert.equal(after.state.restored.outcome, "restored", JSON.stringify(after.state));
  assert.equal(co.since, since, "the same episode, not a new one");
  assert.equal(after.valves.find((v) => v.id === "gas-valve")?.latchedClosed, true, "the valve is latched closed by the alarm");
  const refused = await callDaemon(sock, { cmd: "valve_reopen", by: "neighbour", osUser: "test" });
  assert.equal(refused.ok, false, "a reopen during the restored alarm is refused");
  assert.match((refused as { details: string[] }).details.join(), /co alarm active/);
  await waitFor("the siren sounds again", async () => (await siren()) === 1, 5000);
  // Still in the hold a second later: the clear hold counts only readings after the restart.
  await new Promise((r) => setTimeout(r, 1000));
  const during = await callDaemon(sock, { cmd: "valve_reopen", by: "neighbour", osUser: "test" });
  assert.equal(during.ok, false, "still refused while the clear hold runs");

  const cleared = await waitFor("alarm_cleared", () => journaled(dbPath).find((e) => e.kind === "alarm_cleared" && e.type === "co"), 20_000);
  const clearedAfterMs = Date.now() - startedAt;
  assert.ok(clearedAfterMs >= CO_HOLD_MS, `the hold ran in full after the restart (cleared ${clearedAfterMs} ms after the start)`);
  assert.equal(cleared.boot, 2);
  assert.equal((cleared.data as { since: number }).since, since, "the clear names the original episode");

  const ev = journaled(dbPath);
  assert.equal(ev.filter((e) => e.kind === "alarm" && e.type === "co").length, 1, "no second CO alarm");
  assert.equal(ev.filter((e) => e.kind === "alarm_cleared" && e.type === "co").length, 1, "one clear");
  const restoredAudit = ev.find((e) => e.type === "state_restored");
  assert.ok(restoredAudit && restoredAudit.boot === 2);
  assert.deepEqual((restoredAudit.data as { alarms: string[] }).alarms, ["co"]);

  await waitFor("siren off after the clear", async () => (await siren()) === 0, 5000);
  const ok = await callDaemon(sock, { cmd: "valve_reopen", by: "installer Li", osUser: "test" });
  assert.equal(ok.ok, true, `the on-site reopen is accepted once the alarm cleared: ${JSON.stringify(ok)}`);

  second.kill("SIGTERM");
  assert.equal(await new Promise((r) => second.once("exit", r)), 0, second.logs.join(""));
});

// --- in-process ------------------------------------------------------------------------------------------

const log = () => createLogger({ name: "anxin-hub", level: process.env.ANXIN_TEST_LOG ?? "silent" });
const events = async (h: RunningHub) => (await h.journal.pending(100_000, Number.MAX_SAFE_INTEGER)).map((e) => e.envelope).sort((a, b) => a.boot - b.boot || a.seq - b.seq);

test("a fall waiting for its confirmation survives a restart: raised at the original deadline, from the original report", { timeout: 60_000 }, async () => {
  const dir = await tempDir("anxin-restart-fall-");
  const file = path.join(dir, "hub.yaml");
  const CONFIRM = 4000;
  await writeFile(
    file,
    `hub: { id: fall-hub, dataDir: ./data }
radars:
  - { id: bath-radar, profile: seeed-mr60fda1, path: sim, room: bathroom, settleMs: 0, offlineAfterMs: 4000 }
rules:
  fall: { confirmMs: ${CONFIRM}, getUpMs: 1000 }
`,
  );
  let line = new SimRadarLine("MR60FDA1", 200);
  const first = await startHub(file, { log: log(), radarLineFor: () => line });
  await waitFor("radar heard", () => first.radars[0]!.stats().online === true, 5000);
  line.set("fallen");
  const reportAt = Date.now();
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal((await events(first)).filter((e) => e.kind === "alarm").length, 0, "not raised yet: the window is pending");
  await first.stop();

  // The radar sees the elder lying still; its fall flag is not repeated.
  line = new SimRadarLine("MR60FDA1", 200);
  line.set("sitting");
  const second = await startHub(file, { log: log(), radarLineFor: () => line });
  cleanups.push(() => second.stop());
  const fall = await waitFor("fall raised after the restart", async () => (await events(second)).find((e) => e.kind === "alarm" && e.type === "fall"), CONFIRM + 5000);
  assert.equal(fall.boot, 2);
  const since = (fall.data as { since: number }).since;
  assert.ok(Math.abs(since - reportAt) < 300, `the episode starts at the original report (${since - reportAt} ms off)`);
  assert.ok(fall.ts >= since + CONFIRM, "not before the original deadline");
  assert.ok(fall.ts < since + CONFIRM + 1500, `at the original deadline, not a full window after the restart (${fall.ts - since} ms after the report)`);
  assert.equal(second.hub.restored.outcome, "restored");
});

test("a saved state that cannot be used (not JSON, another hub's, another version, a wrong shape) is journaled and ignored; the hub starts clean", { timeout: 60_000 }, async () => {
  const dir = await tempDir("anxin-restart-bad-");
  const file = path.join(dir, "hub.yaml");
  await writeFile(
    file,
    `hub: { id: state-hub, dataDir: ./data }
buses:
  - { name: line1, path: sim }
devices:
  - { id: kitchen-co, profile: greystone-cmd5b4, bus: line1, unit: 1, room: kitchen, pollMs: 200 }
  - { id: gas-valve, profile: rotork-iq-modbus, bus: line1, unit: 3, room: kitchen, pollMs: 200 }
`,
  );
  const dbPath = path.join(dir, "data", "journal.db");
  // A real state with an active CO alarm, saved by a first run.
  const coHigh = (h: RunningHub) => (h.sim.get("line1")!.devices.get(1) as SimCoDetector).setPpm(400);
  const h0 = await startHub(file, { log: log() });
  coHigh(h0);
  await waitFor("CO alarm", () => h0.hub.rule.alarms.co !== undefined, 5000);
  await h0.stop();
  const db = new Database(dbPath);
  cleanups.push(async () => db.close());
  const good = db.prepare("SELECT snapshot FROM rule_state").pluck().get() as string;
  assert.match(good, /"co":\{"since":/, "the first run saved its alarm");

  const bad: Array<[string, string, RegExp]> = [
    ["not JSON", good.slice(0, good.length / 2), /not JSON/],
    ["another hub", good.replace('"hub":"state-hub"', '"hub":"other-hub"'), /written by hub "other-hub"/],
    ["an older version", good.replace('"v":1', '"v":0'), /format version 0/],
    ["a wrong shape", good.replace(/"valves":\{"gas-valve":\{"commandedAt":/, '"valves":{"gas-valve":{"commandedAt":"soon","x":'), /wrong shape at gas\.valves\.gas-valve\.commandedAt/],
  ];
  for (const [what, doc, reason] of bad) {
    db.prepare("UPDATE rule_state SET snapshot = ?").run(doc);
    const h = await startHub(file, { log: log() });
    try {
      const audit = await waitFor(`${what}: audit event`, async () => (await events(h)).find((e) => e.type === "state_restore_failed" && e.boot === h.journal.boot), 3000);
      assert.equal(audit.kind, "audit");
      assert.match(String((audit.data as { reason: string }).reason), reason);
      assert.equal(h.hub.restored.outcome, "failed", what);
      assert.match(h.hub.restored.reason ?? "", reason, what);
      assert.equal(h.hub.rule.alarms.co, undefined, `${what}: nothing of it was used`);
      // The hub runs, and guards: the CO is still high, so a new alarm is raised from fresh readings.
      coHigh(h);
      await waitFor(`${what}: CO alarm from fresh readings`, () => h.hub.rule.alarms.co !== undefined, 5000);
    } finally {
      await h.stop();
    }
  }
});
