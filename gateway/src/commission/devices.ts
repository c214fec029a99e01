// The hub's devices as commissioning sees them: every transport reduced to id, roles, address, whether it
// answers, and the one state a test watches (presence, a valve's read-back).
import type { HubConfig } from "../config/schema.js";
import type { ZigbeeRegistry } from "../devices/zigbee-registry.js";
import type { SafetyHub } from "../hub/safety-hub.js";
import type { DeviceView } from "./session.js";

export interface DeviceParts {
  config: HubConfig;
  hub: SafetyHub;
  zigbee?: ZigbeeRegistry | null;
}

export function deviceViews(p: DeviceParts): DeviceView[] {
  const valves = p.hub.rule.valves;
  const out: DeviceView[] = [];
  for (const d of p.hub.poller.devices()) {
    const h = p.hub.health(d.id);
    out.push({
      id: d.id,
      transport: "modbus",
      model: d.profile.model,
      roles: d.profile.roles,
      room: d.room,
      online: h?.status === "online",
      address: `rs485:${d.bus.name}#${d.unit}`,
      presence: h?.lastReading?.signals.presence === true,
      valveClosed: valves[d.id]?.closed ?? null,
    });
  }
  for (const d of p.zigbee?.devices() ?? []) {
    const h = p.zigbee!.health(d.id);
    const st = d.state as Record<string, unknown>;
    out.push({
      id: d.id,
      transport: "zigbee",
      model: d.model,
      roles: d.roles,
      room: d.room,
      online: h?.online === true,
      address: d.ieee,
      signal: typeof d.linkquality === "number" ? Math.max(0, Math.min(255, Math.round(d.linkquality))) : undefined,
      battery: typeof st.battery === "number" ? Math.max(0, Math.min(100, st.battery)) : undefined,
      presence: st.presence === true || st.occupancy === true,
      valveClosed: valves[d.id]?.closed ?? null,
    });
  }
  for (const r of p.hub.radarDevices()) {
    out.push({ id: r.id, transport: "uart", model: r.model, roles: r.roles, room: r.room, online: r.stats().online === true, address: `uart:${p.config.radars.find((x) => x.id === r.id)?.path ?? "?"}`, presence: r.latest.presence === true });
  }
  return out;
}

/** Zigbee devices the configuration names that have not joined the network yet. */
export function unpairedZigbee(p: DeviceParts): string[] {
  if (!p.zigbee || !p.config.zigbee) return [];
  const have = new Set(p.zigbee.devices().map((d) => d.ieee.toLowerCase()));
  return p.config.zigbee.devices.map((d) => d.ieee.toLowerCase()).filter((i) => !have.has(i));
}
