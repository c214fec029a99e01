// Set-up from the plan, in the daemon (it alone holds the serial lines and the Zigbee coordinator): for each
// planned device the configuration does not have yet, find it the way the district's kit says it attaches —
// an RS-485 unit that answers at its planned address, a Zigbee device that joins while pairing is open, a
// radar's USB port that is there — and say what the configuration should gain. The CLI writes the file,
// checks it and asks for a reload; nothing here changes the running hub.
import type { PlanDeviceKind } from "../../../protocol/commissioning.js";
import type { Kit } from "./kit.js";
import { fits, pickDevice } from "./matching.js";
import { slotsOf, type RelayPlan, type Slot } from "./plan.js";
import type { DeviceView } from "./session.js";
import { KINDS, type Bilingual } from "./texts.js";

/** What the configuration gains for one planned device. */
export interface Placement {
  slot: string;
  kind: PlanDeviceKind;
  room: string;
  id: string;
  /** rs485:<bus>#<unit>, the IEEE address, or uart:<path>. */
  address: string;
  section: "devices" | "radars" | "zigbee.devices";
  entry: Record<string, string | number>;
}

export interface Unplaced {
  slot: string;
  kind: PlanDeviceKind;
  room: string;
  reason: string;
}

export interface SetupResult {
  /** Planned devices the configuration already has. */
  configured: Array<{ slot: string; id: string }>;
  placements: Placement[];
  unplaced: Unplaced[];
}

export type SetupProgress = { event: "setup"; text: Bilingual; secondsLeft?: number };

export interface SetupDeps {
  devices(): DeviceView[];
  /** What the configuration file names: device ids, RS-485 addresses, radar ports, Zigbee addresses. */
  configured: { ids: ReadonlySet<string>; rs485: ReadonlySet<string>; radarPaths: ReadonlySet<string>; zigbee: ReadonlySet<string>; buses: readonly string[] };
  profileTransport(id: string): "modbus" | "uart" | undefined;
  /** Reads the profile's poll blocks once at bus/unit: null when it answered, else why not. */
  probe(bus: string, unit: number, profile: string): Promise<string | null>;
  pathExists(path: string): Promise<boolean>;
  /** Opens Zigbee pairing to anyone for `seconds` (absent: this hub has no coordinator). */
  pair?(seconds: number, progress: (secondsLeft: number) => void): Promise<void>;
}

const SHORT: Record<PlanDeviceKind, string> = {
  smoke_detector: "smoke", gas_detector: "gas", gas_valve: "valve", co_detector: "co", sos_button: "sos", camera: "camera", fall_radar: "fall-radar", vital_radar: "vital-radar",
};

/** A device id from the room and kind: `kitchen-gas`, `bedroom-smoke-2`; rooms not in letters fall back to the kind. */
function idFor(room: string, kind: PlanDeviceKind, taken: Set<string>): string {
  const r = room.toLowerCase().replace(/[^a-z0-9_.-]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 40);
  const base = r ? `${r}-${SHORT[kind]}` : SHORT[kind];
  let id = base;
  for (let n = 2; taken.has(id); n++) id = `${base}-${n}`;
  taken.add(id);
  return id;
}

export async function planSetup(plan: RelayPlan, kit: Kit, d: SetupDeps, o: { pairSeconds: number }, progress: (p: SetupProgress) => void = () => {}): Promise<SetupResult> {
  const slots = slotsOf(plan).filter((s) => KINDS[s.kind].method !== "none");
  const configuredViews = () => d.devices().filter((v) => v.transport !== "zigbee" || d.configured.zigbee.has(v.address?.toLowerCase() ?? ""));
  const covered = (views: DeviceView[]) => {
    const taken = new Set<string>();
    const out = new Map<string, string>();
    for (const s of slots) {
      const pick = pickDevice(s.kind, s.room, views, taken);
      if (pick) {
        taken.add(pick.id);
        out.set(s.key, pick.id);
      }
    }
    return out;
  };
  const open = (m: Map<string, string>) => slots.filter((s) => !m.has(s.key));

  // Zigbee devices join first (the installer pairs them in the order asked), so what joins is matched with
  // the rest; a device the configuration already names may be among them.
  const zigbeeWanted = open(covered(configuredViews())).filter((s) => "zigbee" in (kit.kinds[s.kind] ?? {}));
  if (zigbeeWanted.length && d.pair) {
    const order = zigbeeWanted.map((s) => `${KINDS[s.kind].name.zh}（${s.room}）`).join("、");
    const orderEn = zigbeeWanted.map((s) => `${KINDS[s.kind].name.en} (${s.room})`).join(", ");
    progress({ event: "setup", text: { zh: `配对已打开：请依次按下各设备的配对键：${order}`, en: `Pairing is open: press the pairing button of each device, in this order: ${orderEn}` } });
    await d.pair(o.pairSeconds, (left) => progress({ event: "setup", text: { zh: "等待 Zigbee 设备加入", en: "Waiting for Zigbee devices to join" }, secondsLeft: left }));
  }

  const have = covered(configuredViews());
  const result: SetupResult = { configured: [...have].map(([slot, id]) => ({ slot, id })), placements: [], unplaced: [] };
  const ids = new Set([...d.configured.ids, ...d.devices().map((v) => v.id)]);
  const usedUnits = new Set(d.configured.rs485);
  const usedPaths = new Set(d.configured.radarPaths);
  // Devices that joined but are not in the configuration, in the order they joined.
  const joined = d.devices().filter((v) => v.transport === "zigbee" && !d.configured.zigbee.has(v.address?.toLowerCase() ?? ""));
  const joinedTaken = new Set<string>();
  const miss = (s: Slot, reason: string) => result.unplaced.push({ slot: s.key, kind: s.kind, room: s.room, reason });

  for (const s of open(have)) {
    const how = kit.kinds[s.kind];
    if (!how) {
      miss(s, `the kit has no ${KINDS[s.kind].name.en}: add it to the kit file, or configure the device by hand`);
    } else if ("rs485" in how) {
      await placeRs485(s, how.rs485);
    } else if ("zigbee" in how) {
      if (!d.pair) {
        miss(s, "this hub has no Zigbee coordinator configured (add a `zigbee:` section to hub.yaml)");
        continue;
      }
      const pick = joined.find((v) => !joinedTaken.has(v.id) && fits(s.kind, v));
      if (!pick) {
        miss(s, `no ${KINDS[s.kind].name.en} joined while pairing was open: reset it, bring it near the hub and run again`);
        continue;
      }
      joinedTaken.add(pick.id);
      const ieee = pick.address!.toLowerCase();
      const id = idFor(s.room, s.kind, ids);
      result.placements.push({ slot: s.key, kind: s.kind, room: s.room, id, address: ieee, section: "zigbee.devices", entry: { ieee, id, room: s.room } });
    } else {
      const path = how.uart.paths.find((p) => !usedPaths.has(p));
      if (d.profileTransport(how.uart.profile) !== "uart") {
        miss(s, `the kit names radar profile '${how.uart.profile}', which this hub does not have`);
      } else if (!path) {
        miss(s, `every port the kit lists for ${KINDS[s.kind].name.en}s is taken: add the port it is plugged into to the kit`);
      } else if (!(await d.pathExists(path))) {
        usedPaths.add(path);
        miss(s, `nothing is plugged into ${path}: plug the ${KINDS[s.kind].name.en} into the USB socket the kit names`);
      } else {
        usedPaths.add(path);
        const id = idFor(s.room, s.kind, ids);
        result.placements.push({ slot: s.key, kind: s.kind, room: s.room, id, address: `uart:${path}`, section: "radars", entry: { id, profile: how.uart.profile, path, room: s.room } });
      }
    }
  }
  return result;

  async function placeRs485(s: Slot, how: Extract<NonNullable<Kit["kinds"][PlanDeviceKind]>, { rs485: unknown }>["rs485"]): Promise<void> {
    const bus = kit.bus ?? (d.configured.buses.length === 1 ? d.configured.buses[0] : undefined);
    if (!bus) return void miss(s, d.configured.buses.length ? `the kit does not say which bus (${d.configured.buses.join(", ")}) its RS-485 devices are on: set \`bus:\` in the kit` : "hub.yaml has no RS-485 bus: add the line the kit is wired to under `buses:`");
    if (!d.configured.buses.includes(bus)) return void miss(s, `the kit's bus '${bus}' is not in hub.yaml (buses: ${d.configured.buses.join(", ") || "none"})`);
    if (d.profileTransport(how.profile) !== "modbus") return void miss(s, `the kit names device profile '${how.profile}', which this hub does not have`);
    const unit = how.units.find((u) => !usedUnits.has(`${bus}#${u}`));
    if (unit === undefined) return void miss(s, `every unit address the kit gives ${KINDS[s.kind].name.en}s (${how.units.join(", ")}) is already used on ${bus}`);
    usedUnits.add(`${bus}#${unit}`);
    progress({ event: "setup", text: { zh: `正在查找 ${KINDS[s.kind].name.zh}（${s.room}）：总线 ${bus} 地址 ${unit}`, en: `Looking for the ${KINDS[s.kind].name.en} (${s.room}) at ${bus} unit ${unit}` } });
    const why = await d.probe(bus, unit, how.profile);
    if (why !== null) return void miss(s, `no answer from unit ${unit} on ${bus} (${why}): check its power, wiring and address switch`);
    const id = idFor(s.room, s.kind, ids);
    const entry: Record<string, string | number> = { id, profile: how.profile, bus, unit, room: s.room };
    if (how.pollMs !== undefined) entry.pollMs = how.pollMs;
    if (how.ratedCloseMs !== undefined) entry.ratedCloseMs = how.ratedCloseMs;
    result.placements.push({ slot: s.key, kind: s.kind, room: s.room, id, address: `rs485:${bus}#${unit}`, section: "devices", entry });
  }
}
