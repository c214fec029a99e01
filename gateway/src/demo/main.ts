// `npm start`: the hub on simulated RS-485 devices, walking a gas leak a newcomer can follow.
// Everything real runs (bus queue, rules, valve verification, journal, control socket); only the
// devices are simulated.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { callDaemon } from "../control/client.js";
import { createLogger } from "../daemon/logger.js";
import { startHub } from "../daemon/run.js";
import type { SimLelDetector, SimValve } from "../sim/devices.js";

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const t0 = Date.now();
const say = (msg: string) => process.stdout.write(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(5)} s] ${msg}\n`);

const CONFIG = `# A one-room install: kitchen gas and CO detectors, the gas valve and a presence radar on one RS-485 line.
hub:
  id: demo-hub
  dataDir: ./data
buses:
  - name: rs485-1
    path: sim
    baudRate: 9600
devices:
  - { id: kitchen-co, profile: greystone-cmd5b4, bus: rs485-1, unit: 1, room: kitchen }
  - { id: kitchen-gas, profile: pemtech-pt495-lel, bus: rs485-1, unit: 2, room: kitchen }
  - { id: gas-valve, profile: rotork-iq-modbus, bus: rs485-1, unit: 3, room: kitchen }
  - { id: living-radar, profile: saifuli-mtdx62-mb, bus: rs485-1, unit: 4, room: living room }
rules:
  gas: { setpointLel: 20, hysteresisLel: 5, clearHoldMs: 5000 }
`;

async function main(): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "anxin-demo-"));
  const file = path.join(dir, "hub.yaml");
  await writeFile(file, CONFIG);
  say(`Anxin hub demo. Configuration: ${file}`);
  const running = await startHub(file, { log: createLogger({ name: "anxin-hub", level: process.env.LOG_LEVEL ?? "warn" }) });
  const socket = running.config.hub.controlSocket!;
  const link = running.sim.get("rs485-1")!;
  const lel = link.devices.get(2) as SimLelDetector;
  const valve = link.devices.get(3) as SimValve;
  running.hub.on("decision", (d) => {
    if (d.do === "raise") say(`ALARM ${d.alarm.toUpperCase()} at ${d.device}: ${d.trigger}`);
    else if (d.do === "close_valve") say(`→ valve ${d.valve}: close command on the bus (attempt ${d.attempt})`);
    else if (d.do === "siren") say(`→ siren ${d.on ? "ON" : "off"} (${d.reason})`);
    else if (d.do === "valve_verified") say(`✓ valve ${d.valve} proven closed by its limit switch after ${d.afterMs} ms`);
    else if (d.do === "valve_fault") say(`✗ VALVE FAULT ${d.valve}: ${d.reason}`);
    else if (d.do === "clear") say(`alarm ${d.alarm} cleared (peak ${d.peak}); the valve stays closed until someone reopens it on site`);
  });
  try {
    say("Waiting for the first readings of every device ...");
    for (let i = 0; i < 50 && running.hub.poller.devices().some((d) => running.hub.health(d.id)?.status !== "online"); i++) await sleep(100);
    for (const d of running.hub.poller.devices()) say(`  ${d.id.padEnd(13)} ${running.hub.health(d.id)?.status}  ${JSON.stringify(running.hub.health(d.id)?.lastReading?.signals)}`);

    say("Scenario: the burner flame went out under a pot; gas is escaping in the kitchen.");
    for (const p of [4, 9, 14, 23]) {
      lel.setLel(p);
      say(`  (kitchen gas now ${p} %LEL)`);
      await sleep(1200);
    }
    await sleep(2500);

    say("A neighbour tries to reopen the valve while the gas is still there:");
    const refused = await callDaemon(socket, { cmd: "valve_reopen", by: "neighbour", osUser: os.userInfo().username });
    say(`  anxin-hub valve reopen → ${refused.ok ? "opened (unexpected!)" : `refused: ${refused.details?.join("; ")}`}`);

    say("The windows are opened; the gas disperses.");
    for (const p of [12, 6, 1]) {
      lel.setLel(p);
      say(`  (kitchen gas now ${p} %LEL)`);
      await sleep(1500);
    }
    await sleep(5000);

    say("The installer has checked the stove and reopens the valve on site:");
    const ok = await callDaemon(socket, { cmd: "valve_reopen", by: "installer Wang", osUser: os.userInfo().username });
    say(`  anxin-hub valve reopen → ${ok.ok ? "open command sent" : `refused: ${ok.error} ${ok.details?.join("; ") ?? ""}`}`);
    await sleep(2500);
    say(`  valve open limit: ${valve.bank.get("di", 2) === 1 ? "reached" : "not yet"}; close commands the valve received: ${valve.closeCommands}`);

    const events = await running.journal.pending(1000, Number.MAX_SAFE_INTEGER);
    say(`The journal holds ${events.length} event(s) waiting for the relay (most urgent first):`);
    for (const e of events) {
      const v = e.envelope;
      say(`  #${v.boot}.${String(v.seq).padEnd(3)} ${v.severity.padEnd(8)} ${v.kind.padEnd(13)} ${v.type.padEnd(22)} ${v.device ?? ""}`);
    }
    say("Done. The hub keeps every event until the relay acknowledges it (the uplink comes next).");
  } finally {
    await running.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((e: Error) => {
  process.stderr.write(`demo failed: ${e.stack ?? e.message}\n`);
  process.exit(1);
});
