// The real `anxin-hub` command as an installer uses it: a daemon process, the CLI talking to it over
// the control socket, bad configurations, a clean SIGTERM, and a kill -9 in the middle of an alarm burst.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { benchAvailable, startBench } from "../support/modbus-bench.js";
import { waitFor } from "../support/hub-rig.js";

const CLI = path.resolve("gateway/src/cli/main.ts");
const node = (args: string[]) => [process.execPath, ["--import", "tsx", CLI, ...args]] as const;
const children: ChildProcess[] = [];
const dirs: string[] = [];
after(async () => {
  for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

function cli(args: string[], input?: string) {
  const [cmd, argv] = node(args);
  const r = spawnSync(cmd, argv, { encoding: "utf8", input, timeout: 30_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

async function tempConfig(body: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "anxin-cli-"));
  dirs.push(dir);
  const file = path.join(dir, "hub.yaml");
  await writeFile(file, body);
  return file;
}

function startDaemon(config: string): ChildProcess & { logs: string[] } {
  const [cmd, argv] = node(["run", "--config", config]);
  const child = spawn(cmd, argv, { stdio: ["ignore", "pipe", "pipe"] }) as ChildProcess & { logs: string[] };
  child.logs = [];
  child.stdout!.on("data", (b: Buffer) => child.logs.push(b.toString()));
  child.stderr!.on("data", (b: Buffer) => child.logs.push(b.toString()));
  children.push(child);
  return child;
}

const SIM = `hub: { id: cli-hub, dataDir: ./data }
buses:
  - { name: line1, path: sim }
devices:
  - { id: kitchen-co, profile: greystone-cmd5b4, bus: line1, unit: 1, room: kitchen }
  - { id: kitchen-gas, profile: pemtech-pt495-lel, bus: line1, unit: 2, room: kitchen }
  - { id: gas-valve, profile: rotork-iq-modbus, bus: line1, unit: 3, room: kitchen }
`;

test("config validate: exit 2 and every problem with file, line and key", async () => {
  const file = await tempConfig(`hub: { id: h, dataDir: ./d }
buses:
  - { name: b, path: /dev/ttyUSB0, baud: 9600 }
devices:
  - { id: co, profile: no-such-profile, bus: b }
`);
  const r = cli(["config", "validate", file]);
  assert.equal(r.code, 2, r.err);
  assert.match(r.err, new RegExp(`${file}:3: buses\\[0\\]\\.baud: unknown key 'baud'`));
  const ok = cli(["config", "validate", path.resolve("config/hub.example.yaml")]);
  assert.equal(ok.code, 0, ok.err);
  assert.match(ok.out, /valid \(hub hub-0001, 1 bus\(es\), 4 device\(s\)\)/);
});

test("the daemon refuses a bad configuration at start with exit code 2", async () => {
  const file = await tempConfig(SIM.replace("greystone-cmd5b4", "greystone"));
  const [cmd, argv] = node(["run", "--config", file]);
  const r = spawnSync(cmd, argv, { encoding: "utf8", timeout: 30_000 });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /devices\[0\]\.profile: unknown profile 'greystone'/);
});

test("profiles validate passes on the shipped profiles", () => {
  const r = cli(["profiles", "validate"]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /profile\(s\) valid/);
});

test("run, then status / devices / test / valve reopen over the control socket, then a clean SIGTERM", async () => {
  const file = await tempConfig(SIM);
  const daemon = startDaemon(file);
  const sock = path.join(path.dirname(file), "data", "control.sock");
  await waitFor("control socket", () => existsSync(sock), 20_000);
  await waitFor("devices online", () => {
    const r = cli(["devices", "--json", "--config", file]);
    return r.code === 0 && (JSON.parse(r.out) as Array<{ status: string }>).every((d) => d.status === "online");
  }, 20_000);

  const status = cli(["status", "--config", file]);
  assert.equal(status.code, 0, status.err);
  assert.match(status.out, /hub cli-hub .* boot 1 .* health OK/);
  assert.match(status.out, /alarms: none/);
  assert.match(status.out, /line1: up/);

  const devices = cli(["devices", "--socket", sock]);
  assert.match(devices.out, /kitchen-co \(greystone-cmd5b4; co_detector\) on line1 unit 1 in kitchen: ONLINE/);

  const t = cli(["test", "gas-valve", "--config", file]);
  assert.equal(t.code, 0, t.err);
  assert.equal(JSON.parse(t.out).signals.valve_open, true);

  const unknown = cli(["test", "nope", "--config", file]);
  assert.equal(unknown.code, 1);
  assert.match(unknown.err, /no device 'nope'/);

  const noTty = cli(["valve", "reopen", "--by", "installer", "--config", file]);
  assert.equal(noTty.code, 2, "a reopen without --yes needs a terminal to confirm");
  const reopen = cli(["valve", "reopen", "--by", "installer Zhao", "--yes", "--config", file]);
  assert.equal(reopen.code, 0, reopen.err);
  assert.match(reopen.out, /gas-valve: open command sent/);

  daemon.kill("SIGTERM");
  const code = await new Promise<number | null>((r) => daemon.once("exit", (c) => r(c)));
  assert.equal(code, 0, daemon.logs.join(""));
  assert.equal(existsSync(sock), false, "socket removed on a clean stop");
  const down = cli(["status", "--socket", sock]);
  assert.equal(down.code, 1);
  assert.match(down.err, /is anxin-hub running/);

  const logs = daemon.logs.join("");
  assert.match(logs, /"msg":"anxin-hub ready"/);
  assert.doesNotMatch(logs, /installer Zhao/, "people's names stay out of the logs");
});

const avail = benchAvailable();
test("kill -9 in the middle of an alarm burst loses nothing that was committed", { skip: avail.ok ? false : avail.reason }, async () => {
  const bench = await startBench({ devices: { lel: 2, valve: 3 } });
  try {
    const file = await tempConfig(`hub: { id: burst-hub, dataDir: ./data }
buses:
  - { name: line1, path: "${bench.path}", quietMs: 100 }
devices:
  - { id: kitchen-gas, profile: pemtech-pt495-lel, bus: line1, unit: 2, pollMs: 100 }
  - { id: gas-valve, profile: rotork-iq-modbus, bus: line1, unit: 3, pollMs: 250 }
rules:
  gas: { clearHoldMs: 0, hysteresisLel: 1 }
`);
    const dbPath = path.join(path.dirname(file), "data", "journal.db");
    const daemon = startDaemon(file);
    await waitFor("journal created", () => existsSync(dbPath), 20_000);
    const committed = new Set<string>();
    const look = () => {
      const db = new Database(dbPath, { readonly: true, fileMustExist: true });
      try {
        for (const r of db.prepare("SELECT event_id FROM events").all() as Array<{ event_id: string }>) committed.add(r.event_id);
      } finally {
        db.close();
      }
    };
    // A gas level flapping around the set point: an alarm and its clearing every few polls.
    let high = false;
    let alarms = 0;
    const deadline = Date.now() + 6000;
    while (Date.now() < deadline && alarms < 12) {
      high = !high;
      await bench.slave.send({ cmd: "lel", unit: 2, percent: high ? 35 : 0 });
      await new Promise((r) => setTimeout(r, 250));
      look();
      const db = new Database(dbPath, { readonly: true });
      alarms = (db.prepare("SELECT count(*) n FROM events WHERE kind = 'alarm'").get() as { n: number }).n;
      db.close();
    }
    assert.ok(alarms >= 3, `alarms were raised during the burst (${alarms})`);
    await bench.slave.send({ cmd: "lel", unit: 2, percent: 35 });
    await new Promise((r) => setTimeout(r, 120));
    look();
    daemon.kill("SIGKILL");
    await new Promise((r) => daemon.once("exit", r));

    const db = new Database(dbPath, { readonly: true });
    const after = new Set((db.prepare("SELECT event_id FROM events").all() as Array<{ event_id: string }>).map((r) => r.event_id));
    assert.equal((db.prepare("PRAGMA integrity_check").get() as { integrity_check: string }).integrity_check, "ok");
    db.close();
    const lost = [...committed].filter((id) => !after.has(id));
    assert.deepEqual(lost, [], `${lost.length} of ${committed.size} committed events lost`);

    // Restarted, the hub counts a new boot and is back on guard: the gas is still there.
    const again = startDaemon(file);
    await waitFor("second boot journaled", () => {
      const d = new Database(dbPath, { readonly: true });
      try {
        // The gas alarm active at the kill is taken over (the same episode, never raised twice: invariant 9);
        // one whose commit the kill beat is raised afresh from the next reading.
        return d.prepare("SELECT 1 FROM events WHERE boot = 2 AND ((kind = 'alarm' AND type = 'gas') OR (type = 'state_restored' AND payload LIKE '%\"alarms\":[\"gas\"]%'))").get();
      } finally {
        d.close();
      }
    }, 20_000);
    await waitFor("second daemon ready", () => again.logs.join("").includes('"msg":"anxin-hub ready"'), 20_000);
    again.kill("SIGTERM");
    assert.equal(await new Promise((r) => again.once("exit", r)), 0);
  } finally {
    await bench.stop();
  }
});
