import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { stringify } from "yaml";
import { formatProblems, loadProfileFile, loadProfiles, parseProfileText, type ProfileProblem } from "../../gateway/src/profiles/loader.js";
import { renderProfileJsonSchema } from "../../gateway/src/profiles/write-json-schema.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const PROFILES = path.join(ROOT, "device-profiles");
const SCHEMA_SCRIPT = path.join(ROOT, "gateway/src/profiles/write-json-schema.ts");
const run = promisify(execFile);

/** A small valid valve profile; each broken case changes one thing. */
function valve(): Record<string, any> {
  return {
    id: "test-valve",
    model: "Test valve",
    vendor: "Test",
    transport: "modbus-rtu",
    roles: ["valve"],
    source: "test fixture",
    poll: [
      { fc: 2, address: 0, count: 4 },
      { fc: 3, address: 0, count: 2 },
    ],
    points: [
      { name: "closed_limit", fc: 2, address: 0, type: "bool" },
      { name: "open_limit", fc: 2, address: 1, type: "bool" },
      { name: "jammed", fc: 2, address: 2, type: "bool" },
      { name: "status", fc: 3, address: 0, enum: { "0": "ok", "1": "fault" } },
      { name: "flags", fc: 3, address: 1, byte: "low", bit: 3 },
    ],
    signals: {
      valve_closed: { point: "closed_limit" },
      valve_open: { point: "open_limit" },
      valve_fault: { any: [{ point: "jammed" }, { point: "status", equals: "fault" }] },
      tamper: { point: "flags" },
    },
    commands: {
      close: { write: [{ fc: 5, address: 1, value: true }], verify: { signal: "valve_closed", equals: true }, ratedMs: 15000, retryMs: 2000 },
    },
  };
}

function gasDetector(): Record<string, any> {
  return {
    id: "test-gas",
    model: "Test gas detector",
    vendor: "Test",
    transport: "modbus-rtu",
    roles: ["gas_detector"],
    source: "test fixture",
    poll: [{ fc: 4, address: 0, count: 2 }],
    points: [
      { name: "lel", fc: 4, address: 0, scale: 0.1, unit: "%LEL", range: [0, 100] },
      { name: "state", fc: 4, address: 1, enum: { "0": "ok", "1": "alarm", "2": "fault" } },
    ],
    signals: { gas_lel: { point: "lel" }, alarm: { point: "state", equals: "alarm" }, fault: { point: "state", in: [2] } },
  };
}

const yamlOf = (o: unknown) => `# yaml-language-server: $schema=./profile.schema.json\n${stringify(o)}`;
const errors = (ps: ProfileProblem[]) => ps.filter((p) => p.severity === "error");
const fields = (ps: ProfileProblem[]) => errors(ps).map((p) => p.field);

async function withDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(path.join(tmpdir(), "anxin-profiles-"));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------

test("every shipped profile loads with zero problems", async () => {
  const { profiles, problems } = await loadProfiles(PROFILES);
  assert.equal(formatProblems(problems), "");
  assert.deepEqual([...profiles.keys()].sort(), ["greystone-cmd5b4", "honeywell-e3point", "modbus-relay-siren", "pemtech-pt495-lel", "rotork-iq-modbus", "saifuli-mtdx62-mb"]);
});

test("shipped profiles carry the maps the hub relies on", async () => {
  const { profiles } = await loadProfiles(PROFILES);
  const rotork = profiles.get("rotork-iq-modbus")!;
  assert.deepEqual(rotork.commands.close?.write, [{ fc: 5, address: 1, value: true }]);
  assert.deepEqual(rotork.commands.close?.verify, { signal: "valve_closed", equals: true });
  assert.equal(rotork.points.find((p) => p.name === "closed_limit")?.address, 1);
  assert.ok(rotork.signals.valve_fault?.any?.some((c) => c.point === "jammed"));

  const e3 = profiles.get("honeywell-e3point")!;
  assert.equal(e3.readOnly, true);
  assert.deepEqual(e3.commands, {});

  const grey = profiles.get("greystone-cmd5b4")!;
  assert.deepEqual(grey.poll, [{ fc: 3, address: 0, count: 8 }]);
  assert.deepEqual(grey.commands, {});
  assert.ok(grey.assumed.some((a) => /not a safety device/i.test(a)));

  const pem = profiles.get("pemtech-pt495-lel")!;
  const flags = pem.points.filter((p) => p.address === 1 && p.byte === "low").map((p) => [p.name, p.bit]);
  assert.deepEqual(flags, [["alarm_flag", 0], ["calibration_flag", 1], ["fault_flag", 2]]);

  for (const p of profiles.values()) {
    assert.ok(p.source.length > 0, `${p.id}: source`);
    const text = await readFile(path.join(PROFILES, `${p.id}.yaml`), "utf8");
    assert.match(text, /^# yaml-language-server: \$schema=\.\/profile\.schema\.json\n/, `${p.id}: schema comment on line 1`);
  }
});

test("the committed JSON schema is up to date", async () => {
  const committed = await readFile(path.join(PROFILES, "profile.schema.json"), "utf8");
  assert.equal(committed, renderProfileJsonSchema(), "run npm run profiles:schema");
  const schema = JSON.parse(committed) as Record<string, unknown>;
  assert.equal(schema.title, "Anxin device profile");
  assert.equal(typeof schema.description, "string");
});

test("write-json-schema --check passes on the committed file and fails on a stale one", async () => {
  await run(process.execPath, ["--import", "tsx", SCHEMA_SCRIPT, "--check"], { cwd: ROOT });
  await withDir(async (dir) => {
    const stale = path.join(dir, "profile.schema.json");
    await writeFile(stale, "{}\n");
    await assert.rejects(run(process.execPath, ["--import", "tsx", SCHEMA_SCRIPT, "--check", stale], { cwd: ROOT }), (e: { code?: number }) => e.code === 1);
  });
});

test("the fixtures themselves are valid", () => {
  for (const o of [valve(), gasDetector()]) {
    const r = parseProfileText(yamlOf(o), `${o.id}.yaml`);
    assert.equal(formatProblems(r.problems), "");
    assert.ok(r.profile);
  }
});

test("broken profiles: each problem names the right file and field", async () => {
  const cases: Array<{ name: string; text: string; field: string; message?: RegExp }> = [];
  const add = (name: string, change: (o: Record<string, any>) => void, field: string, message?: RegExp, base = valve) => {
    const o = base();
    o.id = name;
    change(o);
    cases.push({ name, text: yamlOf(o), field, message });
  };
  cases.push({ name: "bad-yaml", text: "id: bad-yaml\npoints: [\n  name: x\n", field: "", message: /^YAML: / });
  add("unknown-key", (o) => (o.points[0].scael = 0.1), "points[0].scael", /unknown key "scael" \(did you mean "scale"\?\)/);
  add("wrong-type", (o) => (o.points[3].address = "forty"), "points[3].address", /expected number, got "forty"/);
  add("outside-poll", (o) => (o.points[2].address = 4), "points[2].address", /not inside a poll block/);
  add("dangling-signal", (o) => (o.signals.valve_closed.point = "closed_limt"), "signals.valve_closed.point", /no point named "closed_limt" \(did you mean "closed_limit"\?\)/);
  add("dangling-any", (o) => (o.signals.valve_fault.any[0].point = "nope"), "signals.valve_fault.any[0].point", /no point named "nope"/);
  add("no-close", (o) => delete o.commands.close, "commands", /role valve needs a close command/);
  add("close-unverified", (o) => delete o.commands.close.verify, "commands.close", /needs verify/);
  add("close-no-rated", (o) => delete o.commands.close.ratedMs, "commands.close", /ratedMs/);
  add("readonly-writes", (o) => (o.readOnly = true), "commands.close", /readOnly/);
  add("verify-undefined", (o) => {
    o.commands.open = { write: [{ fc: 5, address: 2, value: true }], verify: { signal: "valve_open" } };
    delete o.signals.valve_open;
  }, "commands.open.verify.signal", /not defined/);
  add("bad-label", (o) => (o.signals.valve_fault.any[1].equals = "faulty"), "signals.valve_fault.any[1].equals", /"faulty" is not a label.*did you mean "fault"/);
  add("bad-enum-number", (o) => (o.signals.valve_fault.any[1].equals = 7), "signals.valve_fault.any[1].equals", /7 is not a value/);
  add("number-as-bool", (o) => (o.signals.valve_fault.any[1] = { point: "status" }), "signals.valve_fault.any[1]", /is a number: add equals/);
  add("register-bool", (o) => (o.points[4].type = "bool"), "points[4].type", /register is not a bool/);
  add("coil-not-bool", (o) => delete o.points[0].type, "points[0].type", /set type: bool/);
  add("coil-value", (o) => (o.commands.close.write[0].value = 65280), "commands.close.write[0].value", /true or false/);
  add("point-and-any", (o) => (o.signals.valve_fault.point = "jammed"), "signals.valve_fault.any", /not both/);
  add("dup-point", (o) => (o.points[1].name = "closed_limit"), "points[1].name", /already used by points\[0\]/);
  add("bad-range", (o) => (o.points[0] = { name: "closed_limit", fc: 2, address: 0, type: "bool", range: [0, 1] }), "points[0].range", /true\/false point has no range/);
  add("gas-unit", (o) => (o.points[0].unit = "ppm"), "points[0].unit", /must be "%LEL"/, gasDetector);
  add("gas-no-signal", (o) => (o.signals = {}), "signals", /gas_detector needs signal gas_lel or alarm/, gasDetector);
  add("numeric-any", (o) => (o.signals.gas_lel = { any: [{ point: "lel", above: 10 }] }), "signals.gas_lel.any", /is a number/, gasDetector);
  add("unknown-signal", (o) => (o.signals.gaslel = { point: "lel" }), "signals.gaslel", /unknown key "gaslel" \(did you mean "gas_lel"\?\)/, gasDetector);
  add("bad-role", (o) => (o.roles = ["gas_detecter"]), "roles[0]", /did you mean "gas_detector"/, gasDetector);

  await withDir(async (dir) => {
    for (const c of cases) await writeFile(path.join(dir, `${c.name}.yaml`), c.text);
    const { profiles, problems } = await loadProfiles(dir);
    assert.equal(profiles.size, 0, `no broken profile may load: ${[...profiles.keys()].join(", ")}`);
    for (const c of cases) {
      const file = path.join(dir, `${c.name}.yaml`);
      const mine = errors(problems.filter((p) => p.file === file));
      const hit = mine.find((p) => p.field === c.field && (!c.message || c.message.test(p.message)));
      assert.ok(hit, `${c.name}: expected an error at "${c.field}"${c.message ? ` matching ${c.message}` : ""}, got:\n${formatProblems(mine)}`);
      assert.ok(hit.line === undefined || hit.line >= 1);
    }
    // No problem is attributed to a file outside the folder.
    assert.ok(problems.every((p) => p.file.startsWith(dir)));
  });
});

test("a YAML syntax error gives line and column", () => {
  const r = parseProfileText("id: x-y\nmodel: m\npoints: [\n  name: a\n", "x-y.yaml");
  const [p] = r.problems;
  assert.equal(r.profile, undefined);
  assert.ok(p && p.line !== undefined && p.col !== undefined);
  assert.match(formatProblems(r.problems), /^x-y\.yaml:\d+:\d+: \(top\): YAML: /);
});

test("schema and semantic problems point at the line of the key", () => {
  const text = yamlOf(valve()).replace("address: 2\n", "address: 9\n");
  const r = parseProfileText(text, "test-valve.yaml");
  const p = r.problems.find((x) => x.field === "points[2].address");
  assert.ok(p);
  assert.equal(text.split("\n")[p.line! - 1]!.trim(), "address: 9");
});

test("every problem in one file is reported, not only the first", () => {
  // Schema stage: three independent mistakes.
  const o = valve();
  o.points[0].scael = 1;
  o.points[1].address = -1;
  o.poll[0].count = "four";
  o.colour = "red";
  const schema = parseProfileText(yamlOf(o), "test-valve.yaml");
  assert.deepEqual(fields(schema.problems).sort(), ["colour", "points[0].scael", "points[1].address", "poll[0].count"]);

  // Semantic stage: all checks run on one valid-by-schema profile.
  const s = valve();
  s.points[2].address = 40;
  s.signals.valve_closed.point = "nope";
  s.signals.valve_fault.any[1].equals = "broken";
  s.commands.close.verify.signal = "valve_open";
  const sem = parseProfileText(yamlOf(s), "test-valve.yaml");
  assert.deepEqual(fields(sem.problems).sort(), ["commands.close.verify", "points[2].address", "signals.valve_closed.point", "signals.valve_fault.any[1].equals"]);
});

test("duplicate ids across files: the later file is rejected", async () => {
  await withDir(async (dir) => {
    await writeFile(path.join(dir, "a-valve.yaml"), yamlOf({ ...valve(), id: "a-valve" }));
    await writeFile(path.join(dir, "b-valve.yaml"), yamlOf({ ...valve(), id: "a-valve" }));
    const { profiles, problems } = await loadProfiles(dir);
    assert.deepEqual([...profiles.keys()], ["a-valve"]);
    const dup = errors(problems);
    assert.equal(dup.length, 1);
    assert.equal(dup[0]!.file, path.join(dir, "b-valve.yaml"));
    assert.equal(dup[0]!.field, "id");
    assert.match(dup[0]!.message, /already used by .*a-valve\.yaml/);
  });
});

test("a file not named <id>.yaml is a warning and the profile still loads", async () => {
  await withDir(async (dir) => {
    const file = path.join(dir, "other-name.yaml");
    await writeFile(file, yamlOf(valve()));
    const r = await loadProfileFile(file);
    assert.ok(r.profile);
    assert.deepEqual(
      r.problems.map((p) => [p.severity, p.field]),
      [["warning", "id"]],
    );
  });
});

test("bad input never throws", async () => {
  const missing = await loadProfiles(path.join(tmpdir(), "anxin-no-such-dir-" + process.pid));
  assert.equal(missing.profiles.size, 0);
  assert.equal(errors(missing.problems).length, 1);
  const unreadable = await loadProfileFile(path.join(tmpdir(), "anxin-no-such-file.yaml"));
  assert.match(unreadable.problems[0]!.message, /cannot read/);
  for (const text of ["", "just a string", "- a\n- b\n", "id: [", "*alias\n", "a: &x [*x]\n"]) {
    const r = parseProfileText(text, "t.yaml");
    assert.equal(r.profile, undefined);
    assert.ok(errors(r.problems).length > 0, JSON.stringify(text));
  }
});

test("formatProblems prints file:line:col: field: message", () => {
  const out = formatProblems([
    { file: "a.yaml", field: "points[1].address", message: "bad", severity: "error", line: 3, col: 5 },
    { file: "b.yaml", field: "id", message: "rename", severity: "warning" },
  ]);
  assert.equal(out, "a.yaml:3:5: points[1].address: bad\nb.yaml: id: warning: rename");
});
