// `npm start`: the whole system on its embedded defaults — the relay with its own MQTT broker and
// SQLite, and a hub on simulated RS-485 devices and a simulated fall radar — walking a gas leak a newcomer
// can follow, from the detector to the valve, the relay, the call tree and a duty operator closing the
// incident; then a fall in the bathroom, from the radar to the elder's phone.
// Everything real runs (bus queue, rules, valve verification, journal, control socket, enrolment,
// signed uplink, the relay's commit and ack, incidents, escalation timers, the operator API over HTTP with
// a bearer token); only the devices are simulated and the telephony is the console adapter, which calls
// nobody and answers by a script.
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
import { addToken } from "../relay/src/auth/tokens.js";
import { parseCarePlan, setCarePlan } from "../relay/src/careplans/store.js";
import { startRelay } from "../relay/src/daemon/run.js";
import { listIncidents, type Incident, type TimelineEntry } from "../relay/src/incidents/repo.js";
import { DEMO_PLAN, DEMO_SCRIPT, whoIs } from "./care-plan.js";
import { OperatorClient } from "./operator-client.js";

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
# The default escalation policies; a short timer poll only so the demo's steps follow each other briskly
# (a commit wakes the loop at once anyway).
escalation: { pollMs: 250 }
# Calls nobody: prints each call (number masked) and answers by this script.
telephony:
  kind: console
  showMessage: true
  script: ${JSON.stringify(DEMO_SCRIPT)}
  otherwise: { status: no_answer, afterMs: 3000 }
`;

/** A detail field in plain words: a string as it is, anything else as JSON (never "[object Object]"). */
const text = (v: unknown): string => (typeof v === "string" ? v : JSON.stringify(v) ?? String(v));

/** A timeline entry in plain words. */
function describe(e: TimelineEntry, openedAt: number): string {
  const d = e.detail ?? {};
  const what =
    e.kind === "transition"
      ? e.from ? `${e.from} → ${e.to}` : `opened: ${e.to}`
      : e.kind === "call"
        ? `${text(d.channel ?? "call")} to ${text(d.target ?? "?")}`
        : e.kind === "outcome"
          ? `${text(d.status ?? "")}${d.digits ? `, pressed ${text(d.digits)}` : ""}${d.meaning ? ` (${text(d.meaning).replace(/_/g, " ")})` : ""}`
          : e.kind;
  const cause = e.cause && e.kind !== "outcome" ? ` — ${e.cause}` : "";
  return `+${((e.at - openedAt) / 1000).toFixed(1).padStart(5)} s  ${e.actor.padEnd(34)} ${what}${cause}`;
}

const treeOf = (i: Incident) => `call tree ${i.escalation}${i.acknowledgedBy ? ` by ${i.acknowledgedBy}` : ""}`;

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
# A fall radar in the bathroom, simulated in-process (real Seeed frames through the hub's codec).
radars:
  - { id: bath-radar, profile: seeed-mr60fda1, path: sim, room: bathroom, settleMs: 1000 }
rooms:
  bathroom: { stillness: { dangerous: true } }
rules:
  gas: { setpointLel: 20, hysteresisLel: 5, clearHoldMs: 5000 }
  # 5 s instead of the default 30 s, only so the demo moves briskly.
  fall: { confirmMs: 5000 }
uplink: {}
`;

async function main(): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "anxin-demo-"));
  const level = process.env.LOG_LEVEL ?? "warn";
  const relayFile = path.join(dir, "relay.yaml");
  await writeFile(relayFile, relayConfig(await freePort(), await freePort()));
  let leakAt = 0;
  const opened = new Map<string, (i: Incident) => void>();
  const incidentOf = (type: string) => new Promise<Incident>((resolve) => opened.set(type, resolve));
  const incidentOpened = incidentOf("gas");
  const relay = await startRelay(relayFile, {
    log: createLogger({ name: "anxin-relay", level }),
    onCommitted: (hub, e) => {
      const env = e as Envelope;
      if (env.kind === "alarm" || env.kind === "alarm_cleared" || env.type === "valve_closed")
        say(`RELAY ← ${hub}: ${env.kind} ${env.type} (${env.severity}) committed${leakAt && env.kind === "alarm" && env.type === "gas" ? `, ${Date.now() - leakAt} ms after the gas crossed the set point` : ""}`);
      if (env.kind === "alarm")
        // The incident, its frozen policy and its first timer were written in that same commit.
        void listIncidents(relay.db, { hub, openOnly: true }).then((list) => {
          const inc = list.find((i) => i.type === env.type);
          if (!inc) return;
          if (!opened.has(inc.type)) return;
          say(`RELAY: incident ${inc.id} opened in the same commit (${inc.type}, policy ${inc.policyName} v${inc.policyVersion}); the call tree starts`);
          opened.get(inc.type)?.(inc);
          opened.delete(inc.type);
        });
    },
    // The console telephony's lines, with who each masked number belongs to in the demo's care plan.
    print: (line) => {
      const masked = /\+\d+\*+\d{4}/.exec(line)?.[0];
      const who = masked ? whoIs(masked) : undefined;
      say(`${line}${who ? `   [${who}]` : ""}`);
    },
  });
  say(`Relay up: MQTT broker ${relay.hubMqttUrl}, HTTP ${relay.httpUrl}, SQLite store, console telephony.`);

  // The care-plan office's part: the elder's plan (fictional people, numbers nobody has), and a token for
  // the duty operator (the CLI equivalents: anxin-relay careplan set / token add --role operator).
  const version = await setCarePlan(relay.db, "demo-hub", parseCarePlan(DEMO_PLAN, "the demo care plan"), { actor: "cli:demo", purpose: "enrolment", at: Date.now() });
  say(`Care plan v${version} stored for demo-hub: the elder, 2 emergency contacts, the residents' committee, the on-site team (all fictional).`);
  const { token } = await addToken(relay.db, "duty-operator", "operator", Date.now());
  say(`Operator token created for "duty-operator" (shown once, kept only as a hash): ${token.slice(0, 8)}…`);
  const api = new OperatorClient(relay.httpUrl, token);

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
  running.hub.on("other", (o) => {
    if (o.rule !== "behaviour") return;
    const d = o.d;
    if (d.do === "raise") say(`ALARM ${d.alarm.toUpperCase()} at ${d.device} (${d.room}): ${d.evidence.trigger.replace(/_/g, " ")}, nobody seen getting up for ${d.evidence.windows.confirmMs} ms`);
    else if (d.do === "clear") say(`alarm ${d.alarm} at ${d.device} cleared on the hub: ${d.reason.replace(/_/g, " ")} (the relay's call tree goes on until a person resolves it)`);
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

    // The duty operator's console, over HTTP with the bearer token, while the call tree runs.
    const opened = await withTimeout(incidentOpened, 10_000, "the relay opened no incident");
    let inc = (await api.get<{ incident: Incident }>(`/v1/incidents/${opened.id}`)).incident;
    for (let i = 0; i < 120 && inc.escalation === "running"; i++) {
      await sleep(250);
      inc = (await api.get<{ incident: Incident }>(`/v1/incidents/${opened.id}`)).incident;
    }
    say(`OPERATOR GET /v1/incidents/${inc.id} → ${inc.state}, ${treeOf(inc)}`);
    const open = (await api.get<{ incidents: Incident[] }>("/v1/incidents")).incidents;
    say(`OPERATOR GET /v1/incidents → ${open.length} open: ${open.map((i) => `${i.id} ${i.hub} ${i.type} ${i.state}`).join("; ")}`);
    const { timeline } = await api.get<{ timeline: TimelineEntry[] }>(`/v1/incidents/${inc.id}/timeline`);
    say(`OPERATOR GET /v1/incidents/${inc.id}/timeline → ${timeline.length} entries:`);
    for (const e of timeline) say(`    ${describe(e, inc.openedAt)}`);
    const act = async (what: string, body: unknown) => {
      const r = await api.post<{ incident: Incident; entry: TimelineEntry }>(`/v1/incidents/${inc.id}/${what}`, body);
      say(`OPERATOR POST /v1/incidents/…/${what} ${JSON.stringify(body)} → ${r.incident.state}`);
      return r.incident;
    };
    say("The operator calls the gas company and opens a ticket with the district operations centre:");
    await act("dispatches", { service: "gas_company", ref: "GAS-DEMO-0001", note: "son on his way with a key" });
    await act("tickets", { centre: "district", ref: "DIST-DEMO-0001" });

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

    say("The gas company finds a burner left on; the operator resolves the incident:");
    await act("resolve", { summary: "burner left on; gas shut off by the hub, kitchen aired, valve reopened on site" });
    say("(the next day) A community worker visits the elder; the operator records it and closes the incident:");
    await act("follow-up", { visitedBy: "community worker (fictional)", outcome: "well" });
    const closed = await act("close", { note: "follow-up done" });
    say(`Incident ${closed.id} closed via the operator API: ${closed.state}.`);
    const after = (await api.get<{ timeline: TimelineEntry[] }>(`/v1/incidents/${inc.id}/timeline`)).timeline;
    say(`Its timeline keeps ${after.length} entries: every call, answer and operator step with who and when.`);
    const still = (await api.get<{ incidents: Incident[] }>("/v1/incidents")).incidents;
    say(`OPERATOR GET /v1/incidents → ${still.length} open.`);

    await fallScene(running, api, incidentOf("fall"));

    // What the last steps set off (a spoken notice's audit row, say) may be journaled just now: wait until the
    // journal has stayed empty for a few reads, and report the count those reads saw.
    let left = (await running.journal.stats()).rows;
    for (let i = 0, empty = left === 0 ? 1 : 0; i < 60 && empty < 3; i++) {
      await sleep(100);
      left = (await running.journal.stats()).rows;
      empty = left === 0 ? empty + 1 : 0;
    }
    const rows = await relay.store.listEvents({ hub: "demo-hub", limit: 1000 });
    say(`The relay holds ${rows.length} event(s) from the hub; the hub's journal has ${left} left (a row leaves only on the relay's ack):`);
    for (const r of rows) {
      const v = JSON.parse(r.payload) as Envelope;
      say(`  #${v.boot}.${String(v.seq).padEnd(3)} ${v.severity.padEnd(8)} ${v.kind.padEnd(13)} ${v.type.padEnd(22)} ${v.device ?? ""}`);
    }
    say(`anxin-hub status → uplink ${running.uplink?.status().state}, ${running.uplink?.status().acked} event(s) acknowledged`);
    say("Done: gas leak → valve closed and proven → relay → call tree → operator closed the incident; a fall → radar → relay → the elder called first.");
  } finally {
    // The relay first: its graceful stop commits and acks what is in flight while the hub is still
    // connected, and it is not there to report the hub going offline as an outage.
    await relay.stop();
    await running.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

/** The elder slips in the bathroom: the fall radar's report, the hub's confirmation, the call tree. */
async function fallScene(running: Awaited<ReturnType<typeof startHub>>, api: OperatorClient, fallIncident: Promise<Incident>): Promise<void> {
  const radar = running.simRadars.get("bath-radar")!;
  const st = running.radars[0]!.stats();
  say(`Evening. The bathroom fall radar: ${st.online ? "online" : "not heard"}, model ${st.product.model ?? "?"}, ${st.counters.frames} frames, no errors: ${st.counters.checksum + st.counters.tail + st.counters.oversize + st.counters.badValue === 0}.`);
  say("Scenario: the elder slips in the bathroom. The radar reports a fall; she lies still on the floor.");
  radar.set("fallen");
  const inc = await withTimeout(fallIncident, 20_000, "the relay opened no fall incident");
  let now = (await api.get<{ incident: Incident }>(`/v1/incidents/${inc.id}`)).incident;
  for (let i = 0; i < 120 && now.escalation === "running"; i++) {
    await sleep(250);
    now = (await api.get<{ incident: Incident }>(`/v1/incidents/${inc.id}`)).incident;
  }
  say(`OPERATOR GET /v1/incidents/${now.id} → ${now.type} ${now.state}, ${treeOf(now)}`);
  say("The son arrives and helps her up; the radar sees her walking again.");
  radar.set("walking");
  await sleep(6000);
  const act = async (what: string, body: unknown) => {
    const r = await api.post<{ incident: Incident }>(`/v1/incidents/${inc.id}/${what}`, body);
    say(`OPERATOR POST /v1/incidents/…/${what} ${JSON.stringify(body)} → ${r.incident.state}`);
  };
  await act("dispatches", { service: "door", by: "son", note: "bruised hip, no ambulance needed" });
  await act("resolve", { summary: "fall in the bathroom; son helped her up; GP visit booked" });
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<never>((_, reject) => (t = setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms)))]).finally(() => clearTimeout(t));
}

main().catch((e: Error) => {
  process.stderr.write(`demo failed: ${e.stack ?? e.message}\n`);
  process.exit(1);
});
