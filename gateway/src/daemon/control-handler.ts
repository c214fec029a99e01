// What each control-socket request does in the running daemon.
import type { HubConfig } from "../config/schema.js";
import type { ControlRequest, ControlResponse, Progress } from "../control/protocol.js";
import type { ZigbeeRegistry } from "../devices/zigbee-registry.js";
import type { Journal } from "../journal/journal.js";
import type { SafetyHub } from "../hub/safety-hub.js";
import type { Bus } from "../transports/modbus/bus.js";
import type { Health } from "../../../lib/daemon/health.js";
import type { UplinkHandle } from "../uplink/index.js";
import type { StateKeeper } from "../state/keeper.js";
import { VERSION } from "../version.js";
import type { Commissioning } from "../commission/controller.js";
import type { ReloadResult } from "./reloading.js";
import type { RetiredDevices } from "../retire/retired-devices.js";
import type { CellularPath } from "../cellular/index.js";
import type { PowerWatch } from "../power/watch.js";

interface Parts {
  config: HubConfig;
  /** The file the configuration was read from (what `reload` reads again). */
  configFile?: string;
  retired?: RetiredDevices;
  hub: SafetyHub;
  journal: Journal;
  buses: Bus[];
  health: Health;
  uplink?: UplinkHandle | null;
  zigbee?: ZigbeeRegistry | null;
  state?: StateKeeper;
  commissioning?: Commissioning;
  cellular?: CellularPath | null;
  power?: PowerWatch | null;
  reload?: (reason: string) => Promise<ReloadResult>;
  startedAt: number;
}

export function controlHandler(p: Parts) {
  return async (req: ControlRequest, progress: Progress = () => {}, gone?: AbortSignal): Promise<ControlResponse> => {
    switch (req.cmd) {
      case "status":
        return { ok: true, result: await status(p) };
      case "devices":
        return { ok: true, result: devices(p) };
      case "cellular_test": {
        if (!p.cellular) return { ok: false, error: "this hub has no cellular module configured (add a `cellular:` section)" };
        const r = await p.cellular.test();
        return r.ok ? { ok: true, result: r } : { ok: false, error: `second path test failed: ${r.reason ?? "unknown"}` };
      }
      case "test": {
        const d = p.hub.devices().find((x) => x.id === req.device);
        if (!d) return { ok: false, error: `no device '${req.device}' (devices: ${p.hub.devices().map((x) => x.id).join(", ")})` };
        const r = await d.read(Date.now);
        return { ok: true, result: { device: d.id, values: r.values, labels: r.labels, signals: r.signals, problems: r.problems } };
      }
      case "pair": {
        if (!p.zigbee) return { ok: false, error: "this hub has no Zigbee coordinator configured (add a `zigbee:` section)" };
        const r = await p.zigbee.pair({ seconds: req.seconds, expect: req.expect?.map((s) => s.toLowerCase()) }, progress);
        return { ok: true, result: r };
      }
      case "commission_start": {
        if (!p.commissioning) return { ok: false, error: "commissioning is not available in this daemon" };
        const { cmd: _cmd, ...r } = req;
        return { ok: true, result: await p.commissioning.start(r, progress, gone) };
      }
      case "commission_setup": {
        if (!p.commissioning) return { ok: false, error: "commissioning is not available in this daemon" };
        const result = await p.commissioning.setup(req, progress);
        return { ok: true, result: { ...result, configFile: p.configFile ?? null } };
      }
      case "commission_status":
        if (req.watch && p.commissioning) return { ok: true, result: await p.commissioning.watch(progress, gone) };
        return { ok: true, result: p.commissioning?.status() ?? { running: false } };
      case "reload": {
        if (!p.reload) return { ok: false, error: "this daemon cannot reload itself (not started by `anxin-hub run`): restart it instead" };
        if (p.commissioning?.running) return { ok: false, error: "a commissioning session is running: reload when it has ended" };
        const r = await p.reload(`requested by ${req.by}`);
        if (!r.ok) return r;
        p.hub.record({ kind: "audit", type: "config_reloaded", severity: "info", data: { by: req.by, file: p.configFile ?? null, devices: r.devices } });
        return { ok: true, result: { reloading: true, file: p.configFile ?? null, devices: r.devices } };
      }
      case "commission_waive":
        if (!p.commissioning) return { ok: false, error: "commissioning is not available in this daemon" };
        return { ok: true, result: { waived: p.commissioning.waive(req.target, req.reason, req.by) } };
      case "valve_reopen": {
        const r = await p.hub.reopenValves({ person: req.by, osUser: req.osUser });
        return r.ok ? { ok: true, result: r } : { ok: false, error: "valve reopen refused", details: r.reasons };
      }
    }
  };
}

async function status(p: Parts) {
  const rule = p.hub.rule;
  return {
    hub: p.config.hub.id,
    version: VERSION,
    boot: p.journal.boot,
    uptimeS: Math.round((Date.now() - p.startedAt) / 1000),
    health: p.health.snapshot(),
    alarms: Object.entries(rule.alarms).map(([type, a]) => ({ type, since: a.since, device: a.device, trigger: a.trigger, peak: a.peak })),
    valves: Object.entries(rule.valves).map(([id, v]) => ({
      id,
      latchedClosed: v.commandedAt !== null,
      closed: v.closed,
      verifiedAt: v.verifiedAt,
      fault: v.fault,
    })),
    siren: rule.sirenOn,
    // The rules' state across restarts: what this start took over, and how its saving goes.
    state: { restored: p.hub.restored, ...(p.state ? p.state.stats() : {}) },
    buses: p.buses.map((b) => ({ name: b.name, up: b.isUp, queued: b.queued, requests: b.requests })),
    journal: await p.journal.stats(),
    uplink: p.uplink?.status() ?? { state: "not configured" },
    cellular: p.cellular?.status() ?? { state: "not configured" },
    power: p.power?.status() ?? { source: "not configured" },
    zigbee: p.zigbee ? { ...p.zigbee.coordinator(), devices: p.zigbee.devices().length } : { state: "not configured" },
    radars: p.hub.radarDevices().map((r) => ({ id: r.id, room: r.room, online: r.stats().online })),
    retired: p.retired?.all().map((r) => ({ id: r.id, reason: r.reason, at: r.at })) ?? [],
  };
}

function devices(p: Parts) {
  return [...modbusDevices(p), ...zigbeeDevices(p), ...radarDevices(p)];
}

function radarDevices(p: Parts) {
  return p.hub.radarDevices().map((r) => {
    const st = r.stats();
    const c = st.counters;
    return {
      id: r.id,
      transport: "uart",
      profile: r.profile.id,
      model: r.profile.model,
      roles: [...r.roles],
      path: p.config.radars.find((x) => x.id === r.id)?.path ?? "",
      room: r.room,
      status: st.online === true ? (st.settledAt !== null && Date.now() < st.settledAt ? "settling" : "online") : st.online === false ? "offline" : "starting",
      lastFrameAt: st.lastFrameAt,
      portError: st.portError,
      product: st.product,
      readings: { ...r.latest },
      counters: { frames: c.frames, bytes: c.bytes, noiseBytes: c.noiseBytes, checksum: c.checksum, tail: c.tail, oversize: c.oversize, unknown: c.unknown, badValue: c.badValue, ignoredWhileSettling: st.ignoredWhileSettling },
    };
  });
}

function zigbeeDevices(p: Parts) {
  return (p.zigbee?.devices() ?? []).map((d) => {
    const h = p.zigbee!.health(d.id);
    const zh = p.zigbee!.stack?.up?.getDeviceByIeeeAddr(d.ieee);
    return {
      id: d.id,
      transport: "zigbee",
      ieee: d.ieee,
      model: d.model,
      vendor: d.vendor,
      roles: [...d.roles],
      room: d.room,
      status: h?.online === true ? "online" : h?.online === false ? "offline" : "starting",
      lastSeen: h?.lastSeen ?? null,
      windowMs: h?.windowMs,
      power: h?.mains ? "mains" : "battery",
      linkquality: d.linkquality ?? zh?.linkquality ?? null,
      battery: typeof d.state.battery === "number" ? d.state.battery : null,
      signals: d.signals(),
    };
  });
}

function modbusDevices(p: Parts) {
  return p.hub.poller.devices().map((d) => {
    const h = p.hub.health(d.id);
    return {
      id: d.id,
      transport: "modbus",
      profile: d.profile.id,
      model: d.profile.model,
      roles: d.profile.roles,
      bus: d.bus.name,
      unit: d.unit,
      room: d.room,
      status: h?.status,
      since: h?.since,
      lastGoodAt: h?.lastGoodAt,
      lastError: h?.lastError,
      signals: h?.lastReading?.signals ?? {},
      problems: h?.problems ?? [],
      counters: d.bus.unitCounters(d.unit),
    };
  });
}
