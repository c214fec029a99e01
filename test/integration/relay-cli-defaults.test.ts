// `anxin-relay run` as a new operator first tries it: no configuration at all. It starts on the embedded
// defaults, says where its data is, and leaves a configuration file the other commands can be pointed at.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { defaultStateDir } from "../../relay/src/config/defaults.js";
import { freePort } from "../support/relay-rig.js";
import { waitFor } from "../support/hub-rig.js";

const CLI = path.resolve("relay/src/cli/main.ts");
const children: ChildProcess[] = [];
const dirs: string[] = [];
after(async () => {
  for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

function env(stateDir: string): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = { ...process.env, STATE_DIRECTORY: stateDir };
  delete e.ANXIN_RELAY_CONFIG;
  return e;
}

function run(stateDir: string): ChildProcess & { out: () => string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, ["--import", "tsx", CLI, "run"], { stdio: ["ignore", "pipe", "pipe"], env: env(stateDir) });
  let out = "";
  child.stdout.on("data", (b: Buffer) => (out += b.toString()));
  child.stderr.on("data", (b: Buffer) => (out += b.toString()));
  children.push(child);
  const exited = new Promise<number | null>((r) => child.on("close", r));
  return Object.assign(child, { out: () => out, exited });
}

test("the default data folder: systemd's StateDirectory, else /var/lib for root, else the user's XDG state folder", () => {
  assert.equal(defaultStateDir({ STATE_DIRECTORY: "/var/lib/anxin-relay:/var/lib/other" }, 1000), "/var/lib/anxin-relay");
  assert.equal(defaultStateDir({}, 0), "/var/lib/anxin-relay");
  assert.equal(defaultStateDir({ XDG_STATE_HOME: "/home/ops/.state" }, 1000), "/home/ops/.state/anxin-relay");
  assert.equal(defaultStateDir({ HOME: "/home/ops" }, 1000), "/home/ops/.local/state/anxin-relay");
});

test("anxin-relay run with no configuration: embedded defaults on loopback, data in the state folder, a config file to reuse", async () => {
  const root = await mkdtemp(path.join(os.tmpdir(), "anxin-relay-defaults-"));
  dirs.push(root);
  const state = path.join(root, "state");
  const file = path.join(state, "relay.yaml");

  // First start: the file is written. Port 1883 may be taken on this machine (a Mosquitto): either way
  // the relay has said where its data is before it tries to listen.
  const first = run(state);
  await waitFor("where the data is", () => first.out().includes(`data in ${state}`), 30_000);
  assert.match(first.out(), new RegExp(`configuration written to ${file.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}`));
  first.kill("SIGTERM");
  await first.exited;
  assert.equal((await stat(state)).mode & 0o777, 0o700, "the data folder is owner-only");
  assert.equal((await stat(file)).mode & 0o777, 0o600);
  const written = await readFile(file, "utf8");
  assert.match(written, /broker: \{ kind: embedded, host: 127\.0\.0\.1/);
  assert.match(written, /http: \{ host: 127\.0\.0\.1/);

  // The operator moves the ports (kept on edit), starts again: the same file is read, the relay serves.
  const [mqttPort, httpPort] = [await freePort(), await freePort()];
  await writeFile(file, written.replace("port: 1883", `port: ${mqttPort}`).replace("port: 8080", `port: ${httpPort}`));
  const second = run(state);
  await waitFor("read from the same file", () => second.out().includes(`configuration read from ${file}`), 30_000);
  const health = await waitFor(
    "healthz",
    async () => {
      const r = await fetch(`http://127.0.0.1:${httpPort}/healthz`).catch(() => undefined);
      return r?.ok ? r : undefined;
    },
    30_000,
  );
  assert.equal(health.status, 200);
  const db = await stat(path.join(state, "data", "relay.db"));
  assert.ok(db.isFile(), "the SQLite store is in the state folder's data/");
  assert.equal((await stat(path.join(state, "relay-master.key"))).mode & 0o777, 0o600, "the master key is beside the config, outside data/, owner-only");

  // The other commands work against the file the relay printed.
  const add = spawnSync(process.execPath, ["--import", "tsx", CLI, "hubs", "add", "hub-def-1", "--config", file], { encoding: "utf8", env: env(state), timeout: 60_000 });
  assert.equal(add.status, 0, add.stderr);
  assert.match(add.stdout, new RegExp(`anxin-hub provision --relay http://127\\.0\\.0\\.1:${httpPort} --hub hub-def-1 --code \\S+$`, "m"));
  second.kill("SIGTERM");
  assert.equal(await second.exited, 0, second.out());
});
