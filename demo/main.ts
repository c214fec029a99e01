// `npm start`: the whole system on its embedded defaults — the relay with its own MQTT broker and
// SQLite, and a hub on simulated RS-485 devices — walking a gas leak a newcomer can follow.
// Everything real runs (bus queue, rules, valve verification, journal, control socket, enrolment,
// signed uplink, the relay's commit and ack); only the devices are simulated.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { callDaemon } from "../gateway/src/control/client.js";
import { startHub } from "../gateway/src/daemon/run.js";
import type { SimLelDetector, SimValve } from "../gateway/src/sim/devices.js";
import { provision } from "../gateway/src/uplink/provision.js";
import { createLogger } from "../lib/daemon/logger.js";
import type { Envelope } from "../protocol/envelope.js";
import { startRelay } from "../relay/src/daemon/run.js";

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const t0 = Date.now();
const say = (msg: string) => process.stdout.write(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(5)} s] ${msg}\n`);

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

const relayConfig = (mqttPort: number, httpPort: number) => `# The relay on its embedded defaults: its own MQTT broker and SQLite.
relay: { id: demo-relay, dataDir: ./relay-data }
store: { kind: sqlite, path: relay.db }
broker: { kind: embedded, host: 127.0.0.1, port: ${mqttPort} }
http: { host: 127.0.0.1, port: ${httpPort}, publicUrl: "http://127.0.0.1:${httpPort}" }
`;

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
uplink: {}
`;

async function main(): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "anxin-demo-"));
  const level = process.env.LOG_LEVEL ?? "warn";
  const relayFile = path.join(dir, "relay.yaml");
  await writeFile(relayFile, relayConfig(await freePort(), await freePort()));
  let leakAt = 0;
  const relay = await startRelay(relayFile, {
    log: createLogger({ name: "anxin-relay", level }),
    onCommitted: (hub, e) => {
      const env = e as Envelope;
      if (env.kind === "alarm" || env.kind === "alarm_cleared" || env.type === "valve_closed")
        say(`RELAY ← ${hub}: ${env.kind} ${env.type} (${env.severity}) committed${leakAt && env.kind === "alarm" ? `, ${Date.now() - leakAt} ms after the gas crossed the set point` : ""}`);
    },
  });
  say(`Relay up: MQTT broker ${relay.hubMqttUrl}, HTTP ${relay.httpUrl}, SQLite store.`);

  const { code } = await relay.registry.createClaim("demo-hub");
  say(`The installer registered the hub at the relay and got a one-time claim code: ${code}`);
  const file = path.join(dir, "hub.yaml");
  await writeFile(file, CONFIG);
  const p = await provision({ relay: relay.httpUrl, hub: "demo-hub", code, dataDir: path.join(dir, "data"), secretsFile: path.join(dir, "data", "secrets.json") });
  say(`anxin-hub provision → credentials and signing key stored (owner-only) for ${p.hub}; broker ${p.mqttUrl}`);
  say(`Hub configuration: ${file}`);
  const running = await startHub(file, { log: createLogger({ name: "anxin-hub", level }) });
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
      if (p >= 20) leakAt = Date.now();
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

    for (let i = 0; i < 50 && (await running.journal.stats()).rows > 0; i++) await sleep(100);
    const left = (await running.journal.stats()).rows;
    const rows = await relay.store.listEvents({ hub: "demo-hub", limit: 1000 });
    say(`The relay holds ${rows.length} event(s) from the hub; the hub's journal has ${left} left (a row leaves only on the relay's ack):`);
    for (const r of rows) {
      const v = JSON.parse(r.payload) as Envelope;
      say(`  #${v.boot}.${String(v.seq).padEnd(3)} ${v.severity.padEnd(8)} ${v.kind.padEnd(13)} ${v.type.padEnd(22)} ${v.device ?? ""}`);
    }
    say(`anxin-hub status → uplink ${running.uplink?.status().state}, ${running.uplink?.status().acked} event(s) acknowledged`);
    say("Done. Next: the relay's call tree (escalation) starts from exactly these committed alarms.");
  } finally {
    await running.stop();
    await relay.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((e: Error) => {
  process.stderr.write(`demo failed: ${e.stack ?? e.message}\n`);
  process.exit(1);
});
