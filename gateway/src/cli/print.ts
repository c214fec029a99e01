// Human-readable forms of the daemon's answers, for an installer at a terminal.
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
  ];
  const bad = Object.entries(s.health.checks).filter(([, c]) => !c.ok);
  if (bad.length) lines.push("health problems:", ...bad.map(([n, c]) => `  ${n}: ${c.detail ?? "failing"}`));
  return `${lines.join("\n")}\n`;
}

function uplinkLine(u: UplinkView): string {
  if (u.state === "not configured") return "not configured (events stay in the journal)";
  if (u.state === "failed") return `NOT STARTED: ${u.error ?? "unknown error"}`;
  const parts = [`${u.state === "connected" ? "connected" : u.state.toUpperCase()} ${u.url ?? ""}`.trim()];
  if (u.state === "connected") parts.push(`since ${when(u.lastConnectAt)}`);
  else if (u.error) parts.push(`(${u.error})`);
  parts.push(`in flight ${u.inFlight ?? 0}`, `sent ${u.sent ?? 0}`, `acked ${u.acked ?? 0}`, `last ack ${when(u.lastAckAt)}`, `reconnects ${u.reconnects ?? 0}`);
  if (u.clockOffsetMs !== null && u.clockOffsetMs !== undefined) {
    const s = u.clockOffsetMs / 1000;
    parts.push(`relay clock ${s >= 0 ? "+" : ""}${s.toFixed(1)} s${Math.abs(s) > 300 ? " (HUB CLOCK WRONG)" : ""}`);
  }
  return parts.join("  ");
}

interface DeviceRow {
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

export function printDevices(rows: DeviceRow[]): string {
  return (
    rows
      .map((d) => {
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
