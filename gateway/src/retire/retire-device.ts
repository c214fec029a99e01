// The relay's `retire_device` command (the elder withdrew consent for a vital-sign radar): the radar is
// recorded as retired before anything else, so it stays off across restarts, and the hub reloads without it
// once no alarm is active. Only a device that does nothing but watch vital signs can be retired this way: a
// command can never switch off a gas, CO or smoke detector, a valve, a one-key button or a fall radar — those
// are removed on site by an installer.
import type { Logger } from "pino";
import type { HubConfig } from "../config/schema.js";
import type { ZigbeeRegistry } from "../devices/zigbee-registry.js";
import type { SafetyHub } from "../hub/safety-hub.js";
import type { RetiredDevices } from "./retired-devices.js";

export type RetireResult = { ok: true; already: boolean } | { ok: false; reason: string };

/** Roles a remotely retirable device may have; it must have the vital-sign one. */
const RETIRABLE_ROLES: ReadonlySet<string> = new Set(["breathing_monitor", "presence"]);

export interface RetireParts {
  config: HubConfig;
  hub: SafetyHub;
  zigbee?: ZigbeeRegistry | null;
  retired: RetiredDevices;
  now: () => number;
  /** Restarts the hub from its file once no alarm is active; absent, the device stops at the next start. */
  reload?: (reason: string, o?: { whenQuiet?: boolean }) => Promise<unknown>;
  log: Logger;
}

function find(p: RetireParts, id: string): { roles: readonly string[]; address: string } | undefined {
  const m = p.hub.poller.devices().find((d) => d.id === id);
  if (m) return { roles: m.profile.roles, address: `rs485:${m.bus.name}#${m.unit}` };
  const r = p.hub.radarDevices().find((d) => d.id === id);
  if (r) return { roles: r.roles, address: p.config.radars.find((x) => x.id === id)?.path ?? "" };
  const z = p.zigbee?.devices().find((d) => d.id === id);
  if (z) return { roles: z.roles, address: z.ieee.toLowerCase() };
  return undefined;
}

export async function retireDevice(p: RetireParts, device: string, reason: string, command: string): Promise<RetireResult> {
  const d = find(p, device);
  if (!d) return { ok: true, already: true };
  if (!d.roles.includes("breathing_monitor") || d.roles.some((r) => !RETIRABLE_ROLES.has(r)))
    return { ok: false, reason: `${device} is a ${d.roles.join("/")} device: only a vital-sign radar can be retired remotely; an installer removes any other device on site` };
  await p.retired.add({ id: device, reason, at: p.now(), command, address: d.address || undefined });
  if (p.reload) await p.reload(`device ${device} retired (${reason})`, { whenQuiet: true });
  else p.log.warn({ device }, "device retired; it stops at the hub's next start (this daemon cannot reload itself)");
  return { ok: true, already: false };
}
