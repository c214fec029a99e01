// Set-up from the plan: which planned devices the configuration gains and why the others do not, how the
// configuration text is edited, and the kit file's checks. (The end-to-end run against the independent
// Modbus slave and the emulated Zigbee coordinator is in commissioning-e2e.test.ts.)
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { parseDocument } from "yaml";
import { planSetup, type SetupDeps } from "../../gateway/src/commission/setup.js";
import { parsePlan } from "../../gateway/src/commission/plan.js";
import { kitSchema, readKitFile, type Kit } from "../../gateway/src/commission/kit.js";
import type { DeviceView } from "../../gateway/src/commission/session.js";
import { addEntries, ConfigEditError } from "../../gateway/src/config/edit.js";
import { ConfigError } from "../../gateway/src/config/loader.js";

const plan = parsePlan(
  {
    version: 3,
    level: "high",
    items: [
      { kind: "smoke_detector", room: "kitchen", count: 1 },
      { kind: "smoke_detector", room: "卧室", count: 2 },
      { kind: "gas_detector", room: "kitchen", count: 1 },
      { kind: "gas_valve", room: "kitchen", count: 1 },
      { kind: "sos_button", room: "bedroom", count: 1 },
      { kind: "vital_radar", room: "bedroom", count: 1 },
      { kind: "fall_radar", room: "bathroom", count: 1 },
      { kind: "camera", room: "living", count: 1 },
    ],
  },
  "plan",
);

const kit: Kit = kitSchema.parse({
  bus: "line1",
  kinds: {
    gas_detector: { rs485: { profile: "pemtech-pt495-lel", units: [2, 5] } },
    gas_valve: { rs485: { profile: "rotork-iq-modbus", units: [3], ratedCloseMs: 9000 } },
    smoke_detector: { zigbee: {} },
    sos_button: { zigbee: {} },
    vital_radar: { uart: { profile: "seeed-mr60bha1", paths: ["/dev/serial/by-path/usb-0:1.2"] } },
    fall_radar: { uart: { profile: "seeed-mr60fda1", paths: ["/dev/serial/by-path/usb-0:1.3"] } },
  },
});

function deps(o: { views?: DeviceView[]; joins?: DeviceView[]; answering?: Set<number>; ports?: Set<string>; zigbee?: boolean; configured?: Partial<SetupDeps["configured"]> } = {}) {
  const views = [...(o.views ?? [])];
  const probes: number[] = [];
  const d: SetupDeps = {
    devices: () => views,
    configured: { ids: new Set(), rs485: new Set(), radarPaths: new Set(), zigbee: new Set(), buses: ["line1"], ...o.configured },
    profileTransport: (id) => (id.startsWith("seeed") ? "uart" : ["pemtech-pt495-lel", "rotork-iq-modbus"].includes(id) ? "modbus" : undefined),
    probe: async (_bus, unit) => {
      probes.push(unit);
      return o.answering?.has(unit) ? null : "Timed out";
    },
    pathExists: async (p) => o.ports?.has(p) ?? false,
    pair:
      o.zigbee === false
        ? undefined
        : async () => {
            views.push(...(o.joins ?? []));
          },
  };
  return { d, probes };
}

const zb = (n: number, roles: string[]): DeviceView => ({ id: `zb-00000${n}`, transport: "zigbee", roles, online: true, address: `0x00124B000000000${n}` });

test("every planned device the kit can place is placed where the kit says, in plan order; ids from room and kind", async () => {
  const { d } = deps({
    joins: [zb(1, ["smoke_detector"]), zb(2, ["sos_button"]), zb(3, ["smoke_detector"]), zb(4, ["smoke_detector"])],
    answering: new Set([2, 3]),
    ports: new Set(["/dev/serial/by-path/usb-0:1.2", "/dev/serial/by-path/usb-0:1.3"]),
  });
  const r = await planSetup(plan, kit, d, { pairSeconds: 5 });
  assert.deepEqual(r.unplaced.map((u) => u.kind), [], JSON.stringify(r.unplaced));
  const by = (k: string) => r.placements.filter((p) => p.kind === k);
  assert.deepEqual(by("smoke_detector").map((p) => `${p.id}@${p.room}=${p.address}`), ["kitchen-smoke@kitchen=0x00124b0000000001", "smoke@卧室=0x00124b0000000003", "smoke-2@卧室=0x00124b0000000004"]);
  assert.deepEqual(by("gas_detector")[0]!.entry, { id: "kitchen-gas", profile: "pemtech-pt495-lel", bus: "line1", unit: 2, room: "kitchen" });
  assert.deepEqual(by("gas_valve")[0]!.entry, { id: "kitchen-valve", profile: "rotork-iq-modbus", bus: "line1", unit: 3, room: "kitchen", ratedCloseMs: 9000 });
  assert.equal(by("vital_radar")[0]!.section, "radars");
  assert.equal(by("sos_button")[0]!.section, "zigbee.devices");
  assert.ok(!r.placements.some((p) => p.kind === "camera"), "a camera is never placed on the hub");
});

test("what cannot be placed is named with the reason an installer can act on; nothing is placed in its stead", async () => {
  const { d, probes } = deps({ joins: [zb(1, ["sos_button"])], answering: new Set([3]), ports: new Set(["/dev/serial/by-path/usb-0:1.3"]) });
  const r = await planSetup(plan, kit, d, { pairSeconds: 5 });
  const why = Object.fromEntries(r.unplaced.map((u) => [`${u.kind}@${u.room}`, u.reason]));
  assert.match(why["gas_detector@kitchen"]!, /no answer from unit 2 on line1 \(Timed out\): check its power, wiring and address switch/);
  assert.match(why["smoke_detector@kitchen"]!, /no smoke detector joined while pairing was open/);
  assert.match(why["vital_radar@bedroom"]!, /nothing is plugged into \/dev\/serial\/by-path\/usb-0:1.2/);
  assert.deepEqual(probes, [2, 3], "each planned unit probed once");
  assert.deepEqual(r.placements.map((p) => p.id).sort(), ["bathroom-fall-radar", "bedroom-sos", "kitchen-valve"]);
});

test("devices the configuration already has are kept, and their addresses are not handed out again", async () => {
  const gas: DeviceView = { id: "kitchen-gas", transport: "modbus", roles: ["gas_detector"], room: "kitchen", online: true, address: "rs485:line1#2" };
  const { d, probes } = deps({ views: [gas], answering: new Set([3, 5]), configured: { ids: new Set(["kitchen-gas"]), rs485: new Set(["line1#2"]) } });
  const small = parsePlan({ version: 1, level: "low", items: [{ kind: "gas_detector", room: "kitchen", count: 2 }, { kind: "gas_valve", room: "kitchen", count: 1 }] }, "p");
  const r = await planSetup(small, kit, d, { pairSeconds: 5 });
  assert.deepEqual(r.configured, [{ slot: "gas_detector@kitchen#1", id: "kitchen-gas" }]);
  assert.deepEqual(r.placements.map((p) => `${p.id}:${p.address}`), ["kitchen-gas-2:rs485:line1#5", "kitchen-valve:rs485:line1#3"]);
  assert.deepEqual(probes, [5, 3]);
});

test("a kit that does not fit the hub: no Zigbee coordinator, an unknown bus or profile, a kind left out", async () => {
  const { d } = deps({ zigbee: false });
  const odd = kitSchema.parse({ bus: "line9", kinds: { gas_detector: { rs485: { profile: "pemtech-pt495-lel", units: [2] } }, sos_button: { zigbee: {} }, fall_radar: { uart: { profile: "no-such-radar", paths: ["/x"] } } } });
  const r = await planSetup(plan, odd, d, { pairSeconds: 5 });
  const why = Object.fromEntries(r.unplaced.map((u) => [u.kind, u.reason]));
  assert.match(why.gas_detector!, /the kit's bus 'line9' is not in hub.yaml \(buses: line1\)/);
  assert.match(why.sos_button!, /no Zigbee coordinator configured/);
  assert.match(why.fall_radar!, /radar profile 'no-such-radar', which this hub does not have/);
  assert.match(why.gas_valve!, /the kit has no gas valve/);
});

test("the configuration text gains entries and keeps the installer's comments and layout", () => {
  const before = "# hub of flat 2\nhub: { id: h1, dataDir: ./data }   # id from the relay\nbuses:\n  - { name: line1, path: /dev/ttyUSB0 }\nzigbee:\n  adapter: zstack\n  path: /dev/ttyACM0\n";
  const after = addEntries(before, [
    { section: "devices", entry: { id: "kitchen-gas", profile: "p", bus: "line1", unit: 2, room: "kitchen" }, comment: "added from plan v3" },
    { section: "zigbee.devices", entry: { ieee: "0x00124b0000000001", id: "kitchen-smoke", room: "厨房" } },
  ]);
  assert.ok(after.startsWith("# hub of flat 2\nhub: { id: h1, dataDir: ./data } # id from the relay\n"), after);
  const js = parseDocument(after).toJS() as { devices: unknown[]; zigbee: { devices: unknown[] } };
  assert.deepEqual(js.devices, [{ id: "kitchen-gas", profile: "p", bus: "line1", unit: 2, room: "kitchen" }]);
  assert.deepEqual(js.zigbee.devices, [{ ieee: "0x00124b0000000001", id: "kitchen-smoke", room: "厨房" }]);
  assert.match(after, /# added from plan v3\n {2}- \{ id: kitchen-gas/);
  assert.throws(() => addEntries("hub: { id: h1 }\n", [{ section: "zigbee.devices", entry: { ieee: "0x1", id: "a" } }]), (e: Error) => e instanceof ConfigEditError && /no `zigbee:` section/.test(e.message));
  assert.throws(() => addEntries("devices: 3\n", [{ section: "devices", entry: { id: "a" } }]), /`devices` in the configuration is not a list/);
});

test("a kit file with mistakes is refused with every problem and its line", async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), "anxin-kit-"));
  const file = path.join(dir, "kit.yaml");
  await writeFile(file, "kinds:\n  gas_detector: { rs485: { profile: p, units: [0] } }\n  toaster: { zigbee: {} }\n  smoke_detector: { zigbee: {}, uart: { profile: x, paths: [a] } }\n");
  await assert.rejects(readKitFile(file), (e: Error) => {
    assert.ok(e instanceof ConfigError);
    const lines = e.problems.map((p) => `${p.line}:${p.field}`);
    assert.ok(lines.some((l) => l.startsWith("2:kinds.gas_detector")), lines.join(" "));
    assert.ok(lines.some((l) => l.startsWith("3:") || l.includes("toaster")), lines.join(" "));
    assert.ok(lines.some((l) => l.startsWith("4:kinds.smoke_detector")), lines.join(" "));
    return true;
  });
});

test("the example kit shipped in config/ is valid", async () => {
  const k = await readKitFile(path.resolve("config/kit.example.yaml"));
  assert.deepEqual(Object.keys(k.kinds).sort(), ["co_detector", "fall_radar", "gas_detector", "gas_valve", "smoke_detector", "sos_button", "vital_radar"]);
});
