import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, writeFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { checkAgainstProfiles, ConfigError, readConfigFile, SHIPPED_PROFILES_DIR } from "../../gateway/src/config/loader.js";
import { loadProfiles } from "../../gateway/src/profiles/loader.js";

async function withFile(text: string, fn: (file: string) => Promise<void>) {
  const dir = await mkdtemp(path.join(os.tmpdir(), "anxin-cfg-"));
  const file = path.join(dir, "hub.yaml");
  await writeFile(file, text);
  try {
    await fn(file);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function problemsOf(text: string) {
  let problems: ConfigError["problems"] = [];
  await withFile(text, async (file) => {
    try {
      const loaded = await readConfigFile(file);
      const set = await loadProfiles(SHIPPED_PROFILES_DIR);
      problems = checkAgainstProfiles(loaded, set.profiles, set.radars);
    } catch (e) {
      assert.ok(e instanceof ConfigError, String(e));
      problems = e.problems;
    }
  });
  return problems;
}

const base = `hub: { id: h1, dataDir: ./data }
buses:
  - { name: b1, path: /dev/ttyUSB0 }
devices:
  - { id: co, profile: greystone-cmd5b4, bus: b1, unit: 1 }
`;

test("the example configuration is valid against the shipped profiles", async () => {
  const loaded = await readConfigFile(path.resolve("config/hub.example.yaml"));
  const set = await loadProfiles(SHIPPED_PROFILES_DIR);
  assert.deepEqual(checkAgainstProfiles(loaded, set.profiles, set.radars), []);
  assert.equal(loaded.config.rules.gas.setpointLel, 20);
  assert.equal(loaded.config.radars.length, 2);
});

test("radars and rooms: unknown or Modbus profiles, shared ports, clashing ids and misspelt rooms are errors with their place", async () => {
  const problems = await problemsOf(`${base}radars:
  - { id: bath-radar, profile: seeed-mr60fda1, path: /dev/ttyUSB1, room: bathroom }
  - { id: co, profile: seeed-mr60bha1, path: /dev/ttyUSB2, room: bedroom }
  - { id: r3, profile: greystone-cmd5b4, path: /dev/ttyUSB1 }
  - { id: r4, profile: seeed-mr60fda1, path: /dev/ttyUSB0 }
rooms:
  bathrom: { stillness: { dangerous: true } }
  bedroom: { vitals: { absentMs: 30000 } }
`);
  const by = (field: string) => problems.filter((p) => p.field === field).map((p) => p.message);
  assert.match(by("radars[1].id")[0] ?? "", /already used/);
  assert.match(by("radars[2].profile")[0] ?? "", /unknown radar profile 'greystone-cmd5b4'.*RS-485 Modbus profile/);
  assert.match(by("radars[2].path")[0] ?? "", /already used by radar 'bath-radar'/);
  assert.match(by("radars[3].path")[0] ?? "", /already used by bus 'b1'/);
  assert.match(by("rooms.bathrom")[0] ?? "", /no device is in room 'bathrom'/);
  assert.deepEqual(by("rooms.bedroom"), [], "a room with a radar in it is fine");
  assert.ok(problems.every((p) => p.line !== undefined), "every problem has its line");
});

test("behaviour rules: defaults fill in, a typo in a window is an error, the night must be HH:MM", async () => {
  await withFile(base, async (file) => {
    const { config } = await readConfigFile(file);
    assert.deepEqual(config.rules.fall, { confirmMs: 30000, getUpMs: 5000 });
    assert.equal(config.rules.vitals.absentMs, 60000);
    assert.deepEqual(config.rules.inactivity.night, { from: "22:00", to: "07:00" });
  });
  const typo = await problemsOf(`${base}rules: { fall: { confirmMS: 1000 }, inactivity: { night: { from: "22", to: "07:00" }, timeZone: Mars/Olympus } }\n`);
  assert.ok(typo.some((p) => p.field.startsWith("rules.fall") && /confirmMS/.test(p.message)), JSON.stringify(typo));
  assert.ok(typo.some((p) => p.field === "rules.inactivity.night.from"));
  assert.ok(typo.some((p) => p.field === "rules.inactivity.timeZone"));
});

test("relative paths resolve against the configuration file, and defaults fill in", async () => {
  await withFile(base, async (file) => {
    const { config } = await readConfigFile(file);
    assert.equal(config.hub.dataDir, path.join(path.dirname(file), "data"));
    assert.equal(config.hub.controlSocket, path.join(path.dirname(file), "data", "control.sock"));
    assert.equal(config.rules.co.tiers[0]!.ppm, 300);
  });
});

test("an unknown key is reported with its path and line", async () => {
  const p = await problemsOf(base + "rules:\n  gas:\n    setpointLEL: 10\n");
  assert.equal(p.length, 1);
  assert.equal(p[0]!.field, "rules.gas.setpointLEL");
  assert.equal(p[0]!.line, 8);
  assert.match(p[0]!.message, /unknown key 'setpointLEL'/);
});

test("a wrong type and a missing port are both reported, each where it is", async () => {
  const p = await problemsOf(`hub: { id: h1, dataDir: ./data }
buses:
  - { name: b1, baudRate: fast }
`);
  const fields = p.map((x) => x.field).sort();
  assert.deepEqual(fields, ["buses[0].baudRate", "buses[0].path"]);
  assert.ok(p.every((x) => x.line === 3));
});

test("YAML syntax errors give the line", async () => {
  const p = await problemsOf("hub:\n  id: h1\n  dataDir: [unclosed\n");
  assert.ok(p.length >= 1);
  assert.ok(p[0]!.line !== undefined);
  assert.match(p[0]!.message, /^YAML/);
});

test("an unknown profile names the known ones", async () => {
  const p = await problemsOf(base.replace("greystone-cmd5b4", "greystone-cmd5"));
  assert.equal(p.length, 1);
  assert.equal(p[0]!.field, "devices[0].profile");
  assert.match(p[0]!.message, /unknown profile 'greystone-cmd5'.*greystone-cmd5b4/);
});

test("cross-checks: unknown bus, duplicate unit, slow safety poll, serial mismatch, duplicate port", async () => {
  const p = await problemsOf(`hub: { id: h1, dataDir: ./data }
buses:
  - { name: b1, path: /dev/ttyUSB0 }
  - { name: b2, path: /dev/ttyUSB0, baudRate: 19200 }
devices:
  - { id: co, profile: greystone-cmd5b4, bus: b1, unit: 1, pollMs: 2000 }
  - { id: co2, profile: greystone-cmd5b4, bus: b1, unit: 1 }
  - { id: co3, profile: greystone-cmd5b4, bus: nowhere }
  - { id: co4, profile: greystone-cmd5b4, bus: b2, unit: 5 }
`);
  const by = (f: string) => p.filter((x) => x.field === f).map((x) => x.message).join(" | ");
  assert.match(by("devices[0].pollMs"), /at least once a second/);
  assert.match(by("devices[1].unit"), /unit 1 on bus 'b1' is already device 'co'/);
  assert.match(by("devices[2].bus"), /no bus named 'nowhere'/);
  assert.match(by("devices[3].bus"), /expects 9600 8N1 but bus 'b2' is 19200 8N1/);
  assert.match(by("buses[1].path"), /already used by bus 'b1'/);
});

test("a missing file says so", async () => {
  await assert.rejects(readConfigFile("/nonexistent/hub.yaml"), (e: ConfigError) => /cannot read/.test(e.message));
});
