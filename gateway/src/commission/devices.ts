// The hub's devices as commissioning sees them: every transport reduced to id, roles, address, whether it
// answers, and the one state a test watches (presence, a valve's read-back).
import { stat } from "node:fs/promises";
import type { HubConfig } from "../config/schema.js";
import { Device } from "../devices/device.js";
import type { Profile } from "../profiles/schema.js";
import type { RadarProfile } from "../profiles/radar-schema.js";
import type { Bus } from "../transports/modbus/bus.js";
import type { SetupDeps } from "./setup.js";
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

export interface SetupParts extends DeviceParts {
  buses: readonly Bus[];
  profiles: ReadonlyMap<string, Profile>;
  radarProfiles: ReadonlyMap<string, RadarProfile>;
}

/** What the set-up from the plan needs of the running daemon (see setup.ts). */
export function setupDeps(p: SetupParts): SetupDeps {
  const c = p.config;
  return {
    devices: () => deviceViews(p),
    configured: {
      ids: new Set([...c.devices.map((d) => d.id), ...c.radars.map((r) => r.id), ...(c.zigbee?.devices.map((d) => d.id).filter((x): x is string => !!x) ?? [])]),
      rs485: new Set(c.devices.map((d) => `${d.bus}#${d.unit ?? p.profiles.get(d.profile)?.serial.unit}`)),
      radarPaths: new Set(c.radars.map((r) => r.path)),
      zigbee: new Set(c.zigbee?.devices.map((d) => d.ieee.toLowerCase()) ?? []),
      buses: c.buses.map((b) => b.name),
    },
    profileTransport: (id) => (p.profiles.has(id) ? "modbus" : p.radarProfiles.has(id) ? "uart" : undefined),
    probe: async (busName, unit, profileId) => {
      const bus = p.buses.find((b) => b.name === busName);
      const profile = p.profiles.get(profileId);
      if (!bus || !profile) return `no bus '${busName}' or profile '${profileId}'`;
      // A throw-away device on the running bus: the probe queues behind the safety polls like any request.
      const probe = new Device({ id: `probe-${unit}`, profile, bus, unit, pollMs: 1000, offlineAfterMs: 5000, timeoutMs: profile.serial.timeoutMs });
      try {
        await probe.read(Date.now);
        return null;
      } catch (e) {
        return (e as Error).message;
      }
    },
    pathExists: (file) => stat(file).then(() => true, () => false),
    pair: p.zigbee
      ? async (seconds, left) => {
          await p.zigbee!.pair({ seconds }, (ev) => {
            if (ev.event === "countdown") left(ev.secondsLeft);
          });
        }
      : undefined,
  };
}
