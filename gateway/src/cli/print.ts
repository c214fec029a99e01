// Human-readable forms of the daemon's answers, for an installer at a terminal.
import type { PairDeviceReport, PairProgress, PairResult } from "../transports/zigbee/pairing.js";
import type { PathStatus } from "../cellular/path-supervisor.js";

interface Status {
  hub: string;
  version: string;
  boot: number;
  uptimeS: number;
  health: { ok: boolean; checks: Record<string, { ok: boolean; detail?: string }> };
  alarms: Array<{ type: string; since: number; device: string; trigger: string; peak: number | null }>;
  valves: Array<{ id: string; latchedClosed: boolean; closed: boolean | null; fault: string | null }>;
  siren: boolean;
  buses: Array<{ name: string; up: boolean; queued: number; requests: number }>;
  journal: { rows: number; alarms: number; oldestTs: number | null };
  uplink: UplinkView;
  cellular?: CellularView;
  power?: { source: string; mains?: string; batteryPercent?: number | null; batteryStatus?: string; readAt?: number | null; supplies?: string[] };
  zigbee?: { state: string; error?: string | null; adapter?: string; path?: string; channel?: number; devices?: number; pairing?: boolean };
  radars?: Array<{ id: string; room?: string; online: boolean | null }>;
  retired?: Array<{ id: string; reason: string; at: number }>;
  state?: {
    restored: { outcome: string; reason?: string; savedBoot?: number; savedAt?: number; alarms?: string[]; latchedValves?: string[]; windows?: number };
    failures?: number;
    lastError?: string | null;
  };
}

interface CellularView {
  state?: string;
  problem?: string;
  modem?: {
    port: string;
    state: string;
    error?: string;
    modem: { sim: string; registration: string; rssiDbm: number | null; operator: string | null; checkedAt: number } | null;
  };
  path?: PathStatus | null;
}

interface UplinkView {
  state: string;
  url?: string;
  inFlight?: number;
  lastAckAt?: number | null;
  lastConnectAt?: number | null;
  reconnects?: number;
  clockOffsetMs?: number | null;
  sent?: number;
  acked?: number;
  ackWaitMs?: number;
  acksRefused?: number;
  commandsRefused?: number;
  error?: string;
}

const when = (ms: number | null | undefined) => (ms ? new Date(ms).toISOString().replace("T", " ").slice(0, 19) : "-");

export function printStatus(s: Status): string {
  const lines = [
    `hub ${s.hub}  version ${s.version}  boot ${s.boot}  up ${s.uptimeS}s  health ${s.health.ok ? "OK" : "NOT OK"}`,
    s.alarms.length ? "ALARMS:" : "alarms: none",
    ...s.alarms.map((a) => `  ${a.type.toUpperCase()} since ${when(a.since)} at ${a.device}: ${a.trigger} (peak ${a.peak ?? "-"})`),
    "valves:",
    ...(s.valves.length ? s.valves : [{ id: "(none configured)", latchedClosed: false, closed: null, fault: null }]).map(
      (v) => `  ${v.id}: ${v.fault ? `FAULT (${v.fault})` : v.latchedClosed ? (v.closed ? "closed by alarm, verified; reopen on site only" : "closing") : v.closed === true ? "closed" : v.closed === false ? "open" : "-"}`,
    ),
    `siren: ${s.siren ? "ON" : "off"}`,
    "buses:",
    ...s.buses.map((b) => `  ${b.name}: ${b.up ? "up" : "DOWN"}  queued ${b.queued}  requests ${b.requests}`),
    `journal: ${s.journal.rows} event(s) waiting (${s.journal.alarms} alarm(s)), oldest ${when(s.journal.oldestTs)}`,
    `uplink: ${uplinkLine(s.uplink)}`,
    ...cellularLines(s.cellular),
    `power: ${powerLine(s.power)}`,
    `zigbee: ${zigbeeLine(s.zigbee)}`,
    `radars: ${s.radars?.length ? s.radars.map((r) => `${r.id}${r.room ? ` (${r.room})` : ""} ${r.online === true ? "online" : r.online === false ? "OFFLINE" : "not heard yet"}`).join(", ") : "none configured"}`,
    ...(s.retired?.length ? [`retired (not started; remove from hub.yaml at the next visit): ${s.retired.map((r) => `${r.id} (${r.reason.replace(/_/g, " ")}, ${when(r.at)})`).join(", ")}`] : []),
    ...stateLines(s.state),
  ];
  const bad = Object.entries(s.health.checks).filter(([, c]) => !c.ok);
  if (bad.length) lines.push("health problems:", ...bad.map(([n, c]) => `  ${n}: ${c.detail ?? "failing"}`));
  return `${lines.join("\n")}\n`;
}

/** Only what an installer should know: a take-over after a restart, or state that is not being saved. */
function stateLines(st: Status["state"]): string[] {
  if (!st) return [];
  const out: string[] = [];
  const r = st.restored;
  if (r.outcome === "restored")
    out.push(`rules' state: taken over from boot ${r.savedBoot ?? "?"} (saved ${when(r.savedAt)}): alarms ${r.alarms?.join(", ") || "none"}, latched ${r.latchedValves?.join(", ") || "none"}, ${r.windows ?? 0} pending window(s)`);
  else if (r.outcome === "failed") out.push(`rules' state: NOT TAKEN OVER at start, started clean (${r.reason ?? "unknown reason"})`);
  if (st.failures) out.push(`rules' state: ${st.failures} SAVE FAILURE(S) (last: ${st.lastError ?? "?"})`);
  return out;
}

function zigbeeLine(z: Status["zigbee"]): string {
  if (!z || z.state === "not configured") return "not configured";
  const head = z.state === "up" ? "coordinator up" : `COORDINATOR ${z.state.toUpperCase()}${z.error ? ` (${z.error})` : ""}`;
  return `${head}  ${z.adapter} on ${z.path} channel ${z.channel}  ${z.devices ?? 0} device(s)${z.pairing ? "  PAIRING OPEN" : ""}`;
}

/** The module's health, and which path events take now: the installer's view of the second path. */
function cellularLines(c: CellularView | undefined): string[] {
  if (!c || c.state === "not configured" || !c.modem) return ["cellular: not configured (one path only: broadband)"];
  const m = c.modem;
  const s = m.modem;
  const head =
    m.state !== "ready"
      ? `MODEM ${m.state.toUpperCase()} on ${m.port}${m.error ? ` (${m.error})` : ""}`
      : s
        ? `${m.port}  SIM ${s.sim === "ready" ? "ready" : s.sim.toUpperCase()}  ${["home", "roaming"].includes(s.registration) ? s.registration : s.registration.toUpperCase()}  ${s.operator ?? "-"}  signal ${s.rssiDbm ?? "?"} dBm  checked ${when(s.checkedAt)}`
        : `${m.port}  checking`;
  const out = [`cellular: ${head}`];
  if (c.problem) out.push(`  CARRIES NOTHING: ${c.problem}`);
  const p = c.path;
  if (p) {
    const mode = p.mode === "primary" ? "broadband" : p.mode === "cellular_data" ? `CELLULAR DATA (bound to ${p.boundTo ?? "?"})` : "BROADBAND DOWN, alarms by SMS";
    out.push(`  path: ${mode} since ${when(p.since)}${p.reason ? ` (${p.reason})` : ""}  SMS sent ${p.smsSent}${p.smsFailed ? `, FAILED ${p.smsFailed}` : ""}`);
    const t = p.lastTest;
    out.push(`  second path test: ${t ? (t.ok ? `passed ${when(t.at)}` : `FAILED ${when(t.at)} (${t.reason ?? "?"})`) : "none yet"}, next ${when(p.nextTestAt)}`);
  }
  return out;
}

function powerLine(p: Status["power"]): string {
  if (!p || p.source === "not configured") return "not watched (no power section)";
  const battery = p.batteryPercent === null || p.batteryPercent === undefined ? "battery -" : `battery ${p.batteryPercent}% ${p.batteryStatus ?? ""}`.trim();
  const source = p.source === "battery" ? "ON BATTERY (mains lost)" : p.source === "mains" ? "on mains" : "SOURCE UNKNOWN";
  return `${source}  ${battery}  supplies ${p.supplies?.join(", ") || "none found"}  read ${when(p.readAt)}`;
}

function uplinkLine(u: UplinkView): string {
  if (u.state === "not configured") return "not configured (events stay in the journal)";
  if (u.state === "failed") return `NOT STARTED: ${u.error ?? "unknown error"}`;
  const parts = [`${u.state === "connected" ? "connected" : u.state.toUpperCase()} ${u.url ?? ""}`.trim()];
  if (u.state === "connected") parts.push(`since ${when(u.lastConnectAt)}`);
  else if (u.error) parts.push(`(${u.error})`);
  parts.push(`in flight ${u.inFlight ?? 0}`, `sent ${u.sent ?? 0}`, `acked ${u.acked ?? 0}`, `last ack ${when(u.lastAckAt)}`, `reconnects ${u.reconnects ?? 0}`);
  if (u.ackWaitMs !== undefined) parts.push(`ack wait ${(u.ackWaitMs / 1000).toFixed(1)} s`);
  if (u.clockOffsetMs !== null && u.clockOffsetMs !== undefined) {
    const s = u.clockOffsetMs / 1000;
    parts.push(`relay clock ${s >= 0 ? "+" : ""}${s.toFixed(1)} s${Math.abs(s) > 300 ? " (HUB CLOCK WRONG)" : ""}`);
  }
  // Malformed, or not signed by the relay with this hub's key: forged, or from a relay older than signed acks.
  if (u.acksRefused) parts.push(`REFUSED ${u.acksRefused} malformed, unsigned or forged ack(s)`);
  if (u.commandsRefused) parts.push(`REFUSED ${u.commandsRefused} command(s)`);
  return parts.join("  ");
}

interface ZigbeeRow {
  id: string;
  transport: "zigbee";
  ieee: string;
  model: string;
  vendor: string;
  roles: string[];
  room?: string;
  status: string;
  lastSeen: number | null;
  windowMs?: number;
  power: string;
  linkquality: number | null;
  battery: number | null;
  signals: Record<string, unknown>;
}

function zigbeeRow(d: ZigbeeRow): string {
  const sig = Object.entries(d.signals).map(([k, v]) => `${k}=${String(v)}`).join(" ");
  return [
    `${d.id} (zigbee ${d.ieee}; ${d.vendor} ${d.model}; ${d.roles.join(", ")})${d.room ? ` in ${d.room}` : ""}: ${d.status.toUpperCase()}`,
    `    last seen ${when(d.lastSeen)}  ${d.power}${d.battery !== null ? ` ${d.battery}%` : ""}  link quality ${d.linkquality ?? "-"}  check-in window ${d.windowMs ? `${Math.round(d.windowMs / 1000)} s` : "-"}`,
    `    ${sig || "(no values yet)"}`,
  ].join("\n");
}

interface DeviceRow {
  transport?: "modbus";
  id: string;
  profile: string;
  roles: string[];
  bus: string;
  unit: number;
  room?: string;
  status?: string;
  lastGoodAt?: number | null;
  lastError?: string | null;
  signals: Record<string, unknown>;
  problems: string[];
  counters: { ok: number; timeout: number; crc: number; exception: number; framing: number };
}

interface RadarRow {
  id: string;
  transport: "uart";
  profile: string;
  model: string;
  roles: string[];
  path: string;
  room?: string;
  status: string;
  lastFrameAt: number | null;
  portError: string | null;
  product: Record<string, string>;
  readings: Record<string, unknown>;
  counters: Record<string, number>;
}

function radarRow(d: RadarRow): string {
  const readings = Object.entries(d.readings).map(([k, v]) => `${k}=${v === null ? "no reading" : typeof v === "string" ? v : typeof v === "number" || typeof v === "boolean" ? String(v) : (JSON.stringify(v) ?? "undefined")}`).join(" ");
  const product = Object.entries(d.product).map(([k, v]) => `${k} ${v}`).join(", ");
  const c = d.counters;
  return [
    `${d.id} (${d.profile}; ${d.roles.join(", ")}) on ${d.path}${d.room ? ` in ${d.room}` : ""}: ${d.status.toUpperCase()}${d.portError ? `  port: ${d.portError}` : ""}`,
    `    last frame ${when(d.lastFrameAt)}  ${readings || "(no readings yet)"}${product ? `  (${product})` : ""}`,
    `    frames ok ${c.frames}  noise bytes ${c.noiseBytes}  checksum ${c.checksum}  tail ${c.tail}  oversize ${c.oversize}  bad values ${c.badValue}  unknown ${c.unknown}  ignored while settling ${c.ignoredWhileSettling}`,
  ].join("\n");
}

export function printDevices(rows: Array<DeviceRow | ZigbeeRow | RadarRow>): string {
  return (
    rows
      .map((d) => {
        if (d.transport === "zigbee") return zigbeeRow(d);
        if (d.transport === "uart") return radarRow(d);
        const sig = Object.entries(d.signals).map(([k, v]) => `${k}=${String(v)}`).join(" ");
        const c = d.counters;
        return [
          `${d.id} (${d.profile}; ${d.roles.join(", ")}) on ${d.bus} unit ${d.unit}${d.room ? ` in ${d.room}` : ""}: ${(d.status ?? "?").toUpperCase()}`,
          `    last good ${when(d.lastGoodAt)}  ${sig || "(no values yet)"}`,
          `    frames ok ${c.ok}  timeouts ${c.timeout}  crc ${c.crc}  exceptions ${c.exception}  framing ${c.framing}${d.lastError ? `  last error: ${d.lastError}` : ""}`,
          ...d.problems.map((p) => `    value problem: ${p}`),
        ].join("\n");
      })
      .join("\n") + "\n"
  );
}

// ---- pairing ----------------------------------------------------------------------------------------------

// The daemon's own report and progress types (type-only: the CLI never loads the Zigbee stack).
type PairReport = PairDeviceReport;
export type PairOutcome = PairResult;

/** One progress line; on a terminal the countdown rewrites itself in place. */
export function printPairProgress(p: PairProgress, tty: boolean): string {
  const nl = tty ? "\r\x1b[K" : "";
  switch (p.event) {
    case "open":
      return `joining open for ${p.seconds} s${p.expect.length ? `, only for ${p.expect.join(", ")}` : " for any device"}: put the device in pairing mode now\n`;
    case "countdown":
      if (tty) return `\r\x1b[K  ${p.secondsLeft} s left`;
      return p.secondsLeft % 10 === 0 || p.secondsLeft <= 5 ? `  ${p.secondsLeft} s left\n` : "";
    case "joined":
      return `${nl}${p.ieee}: joined\n`;
    case "rejected":
      return `${nl}${p.ieee}: REFUSED (${p.reason})\n`;
    case "interviewing":
      return `${nl}${p.ieee}: interviewing (a battery device can take about 15 s)\n`;
    case "closed":
      return `${nl}joining closed${p.waitingFor.length ? `; waiting for ${p.waitingFor.join(", ")} to finish` : ""}\n`;
    case "result":
      return `${nl}${pairLine(p.device)}\n`;
  }
}

function pairLine(d: PairReport): string {
  if (d.outcome === "paired") {
    const parts = [
      `${d.ieee}: PAIRED as ${d.id}`,
      `${d.vendor} ${d.model}`,
      `roles ${d.roles.join(", ")}`,
      `link quality ${d.linkquality ?? "-"}`,
      d.power === "battery" ? `battery ${d.battery !== null ? `${d.battery}%` : "unknown"}` : "mains",
    ];
    if (d.checkIn) parts.push(d.checkIn.reportS ? `reports every ${d.checkIn.reportS} s, offline after ${d.checkIn.windowS} s` : `pinged, offline after ${d.checkIn.windowS} s of silence`);
    return [parts.join("  "), ...(d.notes ?? []).map((n) => `    note: ${n}`)].join("\n");
  }
  const what = d.model ? ` (${d.vendor ?? ""} ${d.model})` : "";
  return `${d.ieee}${what}: ${d.outcome.toUpperCase()}: ${d.reason ?? "no reason given"}`;
}

export function printPairResult(r: PairOutcome): string {
  if (!r.devices.length) return "no device joined\n";
  return `${r.devices.map(pairLine).join("\n")}\n${r.devices.filter((d) => d.outcome === "paired").length} of ${r.devices.length} device(s) paired\n`;
}
