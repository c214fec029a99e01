// Reloading the hub's configuration (`anxin-hub reload`, and the reload after commissioning writes the file):
// a file that does not load is refused with its problems and the hub runs on untouched; the hub never
// restarts itself during an alarm; after a reload a valve closed by an alarm is still latched closed, the
// valve on the independent Modbus slave is never told to open, and the new devices run.
import { test, after, afterEach } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createLogger } from "../../lib/daemon/logger.js";
import { superviseHub } from "../../gateway/src/daemon/reloading.js";
import { callDaemon } from "../../gateway/src/control/client.js";
import { benchAvailable, startBench } from "../support/modbus-bench.js";
import { waitFor } from "../support/hub-rig.js";

const bench = benchAvailable();
const skip = bench.ok ? false : bench.reason;
const cleanups: Array<() => Promise<unknown>> = [];
const done = async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
};
afterEach(done);
after(done);
const CLI = path.resolve("gateway/src/cli/main.ts");

const config = (serial: string, extra = "") => `hub: { id: hub-reload, dataDir: ./data }
buses:
  - { name: line1, path: ${serial} }
devices:
  - { id: kitchen-gas, profile: pemtech-pt495-lel, bus: line1, unit: 2, room: kitchen, pollMs: 200 }
  - { id: gas-valve, profile: rotork-iq-modbus, bus: line1, unit: 3, room: kitchen, pollMs: 300, ratedCloseMs: 4000 }
${extra}rules:
  gas: { clearHoldMs: 300 }
`;

test("reload: a bad file is refused with its problems, never during an alarm, and a latched valve stays latched and is never reopened", { skip }, async () => {
  const b = await startBench({ devices: { lel: 2, valve: 3, co: 1 } });
  cleanups.push(() => b.stop());
  const dir = await mkdtemp(path.join(os.tmpdir(), "anxin-reload-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, "hub.yaml");
  await writeFile(file, config(b.path));
  const sup = await superviseHub(file, { log: createLogger({ name: "test", level: process.env.ANXIN_TEST_LOG ?? "silent" }) });
  cleanups.push(() => sup.stop());
  const sock = sup.current().config.hub.controlSocket!;
  const first = sup.current();
  // Asynchronously: the daemon answering it runs in this process.
  const cli = (...args: string[]) =>
    new Promise<{ status: number; stdout: string; stderr: string }>((resolve) =>
      execFile(process.execPath, ["--import", "tsx", CLI, ...args, "--socket", sock], (err, stdout, stderr) => resolve({ status: err ? Number(err.code) : 0, stdout, stderr })),
    );

  // A file with a mistake: refused with the line, the running hub untouched.
  await writeFile(file, config(b.path, "  - { id: kitchen-co, profile: no-such-profile, bus: line1, unit: 1 }\n").replace("devices:\n", "devices:\n  - { id: bad, bus: nowhere, profile: pemtech-pt495-lel, unit: 7 }\n"));
  const bad = await cli("reload", "--by", "Ivan");
  assert.equal(bad.status, 1, bad.stderr);
  assert.match(bad.stderr, /has problems; nothing was reloaded/);
  assert.match(bad.stderr, /line \d+: devices\[0\]\.bus/);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(sup.current(), first, "still the same hub");

  // A gas alarm closes the valve; while the alarm lasts the hub refuses to restart itself.
  await writeFile(file, config(b.path, "  - { id: kitchen-co, profile: greystone-cmd5b4, bus: line1, unit: 1, room: kitchen }\n"));
  await b.slave.send({ cmd: "lel", unit: 2, percent: 35 });
  await waitFor("the valve closed by the gas alarm", () => first.hub.rule.valves["gas-valve"]?.closed === true && first.hub.rule.alarms.gas !== undefined, 20_000);
  const during = await callDaemon(sock, { cmd: "reload", by: "Ivan" });
  assert.equal(during.ok, false);
  assert.match(during.ok ? "" : during.error, /an alarm is active \(gas\): the hub does not restart itself during an alarm/);
  assert.equal(sup.current(), first);

  // The alarm over, the valve stays latched; the reload goes through and takes the latch over.
  await b.slave.send({ cmd: "lel", unit: 2, percent: 0 });
  await waitFor("the gas alarm cleared", () => first.hub.rule.alarms.gas === undefined, 20_000);
  const closesBefore = ((await b.slave.send({ cmd: "stats", unit: 3 })) as { close_commands: number }).close_commands;
  const ok = await cli("reload", "--by", "Ivan");
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /reloading .*hub\.yaml: 3 devices/);
  await waitFor("the hub restarted from the new file", () => sup.current() !== first && sup.current().hub.devices().length === 3, 20_000);
  const second = sup.current();
  assert.ok(second.journal.boot > first.journal.boot);
  assert.deepEqual(second.hub.devices().map((d) => d.id).sort(), ["gas-valve", "kitchen-co", "kitchen-gas"]);
  assert.equal(second.hub.restored.outcome, "restored", "the rules' state was taken over");
  assert.notEqual(second.hub.rule.valves["gas-valve"]?.commandedAt ?? null, null, "the valve is still latched closed after the reload");
  await waitFor("the new CO detector online", () => second.hub.health("kitchen-co")?.status === "online", 15_000);
  const st = (await callDaemon(sock, { cmd: "status" })) as { ok: true; result: { valves: Array<{ id: string; latchedClosed: boolean; closed: boolean | null }> } };
  assert.deepEqual(st.result.valves.map((v) => [v.id, v.latchedClosed, v.closed]), [["gas-valve", true, true]]);
  const valve = (await b.slave.send({ cmd: "get", unit: 3, table: "di", address: 1, count: 2 })) as { values: number[] };
  assert.deepEqual(valve.values.map(Boolean), [true, false], "the real valve is still closed (closed switch on, open switch off)");
  const closesAfter = ((await b.slave.send({ cmd: "stats", unit: 3 })) as { close_commands: number }).close_commands;
  assert.ok(closesAfter >= closesBefore, "no open command; at most the latch re-asserted as a close");
  const events = (await second.journal.pending(10_000, Number.MAX_SAFE_INTEGER)).map((e) => e.envelope);
  const reloaded = events.find((e) => e.type === "config_reloaded");
  assert.deepEqual(reloaded?.data, { by: "Ivan", file, devices: 3 });

  // A reload requested during an alarm "when quiet" (a device retired by the relay) waits for the alarm to end.
  await b.slave.send({ cmd: "lel", unit: 2, percent: 35 });
  await waitFor("a second gas alarm", () => second.hub.rule.alarms.gas !== undefined, 20_000);
  const later = await sup.reload("test: deferred", { whenQuiet: true });
  assert.equal(later.ok, true);
  await new Promise((res) => setTimeout(res, 1500));
  assert.equal(sup.current(), second, "not restarted while the alarm lasts");
  await b.slave.send({ cmd: "lel", unit: 2, percent: 0 });
  await waitFor("restarted once the alarm is over", () => sup.current() !== second, 30_000);
});
