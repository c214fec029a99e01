#!/usr/bin/env node
// anxin-hub: the daemon (`run`) and the installer's commands, which talk to it over the control socket.
import { stopOnSignals } from "../../../lib/daemon/lifecycle.js";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline/promises";
import { Command, Option } from "commander";
import { ConfigError, readConfigFile } from "../config/loader.js";
import { callDaemon, streamDaemon } from "../control/client.js";
import type { ControlRequestInput } from "../control/protocol.js";
import { createLogger } from "../../../lib/daemon/logger.js";
import { loadAndCheck } from "../daemon/run.js";
import { superviseHub } from "../daemon/reloading.js";
import { formatProblems, loadProfiles } from "../profiles/loader.js";
import { SHIPPED_PROFILES_DIR } from "../config/loader.js";
import { VERSION } from "../version.js";
import { registerCommission, registerCommissionWatch } from "./commission.js";
import { registerVoice } from "./voice.js";
import { printDevices, printPairProgress, printPairResult, type PairOutcome } from "./print.js";
import { printStatus } from "./print.js";
import { provision, ProvisionError } from "../uplink/provision.js";
import { secretsPath } from "../uplink/settings.js";

const DEFAULT_SOCKET = process.env.ANXIN_HUB_SOCKET ?? "/run/anxin-hub/control.sock";
const DEFAULT_CONFIG = "/etc/anxin-hub/hub.yaml";

/** Exit codes: 0 ok, 1 failed or refused, 2 bad input (config, profile, arguments). */
function fail(message: string, code = 1): never {
  process.stderr.write(`anxin-hub: ${message}\n`);
  process.exit(code);
}

async function socketPath(opts: Target): Promise<string> {
  if (opts.socket) return opts.socket;
  if (opts.config) return (await readConfigFile(opts.config)).config.hub.controlSocket!;
  return DEFAULT_SOCKET;
}

async function ask(opts: Target, req: ControlRequestInput): Promise<unknown> {
  const r = await callDaemon(await socketPath(opts), req).catch((e: Error) => fail(e.message));
  if (!r.ok) fail(`${r.error}${r.details?.length ? `:\n  - ${r.details.join("\n  - ")}` : ""}`);
  return r.result;
}

const program = new Command("anxin-hub")
  .description("Anxin home safety hub: RS-485 gas/CO detectors, gas shut-off valves, sirens; a durable local journal")
  .version(VERSION);

interface Target {
  socket?: string;
  config?: string;
}

/** The commands that talk to a running daemon say which one, by socket or by its configuration. */
function client(cmd: Command): Command {
  return cmd
    .addOption(new Option("--socket <path>", `the daemon's control socket (default ${DEFAULT_SOCKET})`).env("ANXIN_HUB_SOCKET"))
    .option("--config <file>", "find the control socket in this hub configuration");
}

program
  .command("run")
  .description("run the hub daemon")
  .requiredOption("--config <file>", "the hub's YAML configuration")
  .action(async (opts: { config: string }) => {
    let level: string;
    try {
      level = (await readConfigFile(opts.config)).config.log.level;
    } catch (e) {
      fail((e as Error).message, 2);
    }
    const log = createLogger({ name: "anxin-hub", level });
    const starting = superviseHub(opts.config, { log });
    // Signals are handled from the first moment: one that comes while the hub starts stops it cleanly
    // once it has started (journal closed, planned stop said), instead of killing it half-way.
    stopOnSignals(async () => (await starting).stop(), log);
    try {
      await starting;
    } catch (e) {
      if (e instanceof ConfigError) fail(e.message, 2);
      fail((e as Error).message, (e as Error).message.includes("device profiles") ? 2 : 1);
    }
  });

client(program.command("status"))
  .description("the hub at a glance: alarms, valves, buses, journal")
  .option("--json", "machine-readable")
  .action(async (opts: Target & { json?: boolean }) => {
    const r = await ask(opts, { cmd: "status" });
    process.stdout.write(opts.json ? `${JSON.stringify(r, null, 2)}\n` : printStatus(r as Parameters<typeof printStatus>[0]));
  });

client(program.command("devices"))
  .description("every configured device: status, last values, line errors")
  .option("--json", "machine-readable")
  .action(async (opts: Target & { json?: boolean }) => {
    const r = await ask(opts, { cmd: "devices" });
    process.stdout.write(opts.json ? `${JSON.stringify(r, null, 2)}\n` : printDevices(r as Parameters<typeof printDevices>[0]));
  });

client(program.command("cellular-test"))
  .description("send the second path's test SMS now (second_path_test) and say whether the module took it")
  .action(async (opts: Target) => {
    const r = (await ask(opts, { cmd: "cellular_test" })) as { mr?: number };
    process.stdout.write(`second path test SMS handed to the module (message reference ${r.mr ?? "?"}); the relay records its arrival\n`);
  });

client(program.command("test"))
  .description("read one device now and show what it reports")
  .argument("<device>", "device id from the configuration")
  .action(async (device: string, opts: Target) => {
    const r = await ask(opts, { cmd: "test", device });
    process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
  });

client(program.command("pair"))
  .description("open the Zigbee network for new devices, follow each through its interview and report what it is")
  .option("--seconds <n>", "how long joining stays open (1–254)", "120")
  .option("--expect <ieee...>", "admit only these devices (IEEE addresses from their labels); others are sent away")
  .option("--json", "machine-readable result")
  .action(async (opts: Target & { seconds: string; expect?: string[]; json?: boolean }) => {
    const seconds = Number(opts.seconds);
    if (!Number.isInteger(seconds) || seconds < 1 || seconds > 254) fail("--seconds must be a whole number from 1 to 254", 2);
    const expect = opts.expect?.map((e) => e.toLowerCase());
    const bad = expect?.filter((e) => !/^0x[0-9a-f]{16}$/.test(e)) ?? [];
    if (bad.length) fail(`not an IEEE address (0x and 16 hex digits): ${bad.join(", ")}`, 2);
    // With --json, standard output carries the JSON alone so scripts can parse it; progress goes to stderr.
    const progressOut = opts.json ? process.stderr : process.stdout;
    const tty = progressOut.isTTY === true;
    const r = await streamDaemon(await socketPath(opts), { cmd: "pair", seconds, expect }, (p) => {
      const line = printPairProgress(p as Parameters<typeof printPairProgress>[0], tty);
      if (line) progressOut.write(line);
    }, 150_000).catch((e: Error) => fail(e.message));
    if (!r.ok) fail(`${r.error}${r.details?.length ? `:\n  - ${r.details.join("\n  - ")}` : ""}`);
    const result = r.result as PairOutcome;
    process.stdout.write(opts.json ? `${JSON.stringify(result, null, 2)}\n` : printPairResult(result));
    // A refused stranger (a neighbour's device) is not a failure of this pairing; anything else not paired is.
    if (result.devices.some((d) => d.outcome !== "paired" && d.outcome !== "rejected")) process.exit(1);
  });

registerCommission(client(program.command("commission")), socketPath, fail);
registerCommissionWatch(client(program.command("commission-watch")), socketPath, fail);

client(program.command("reload"))
  .description("check the daemon's configuration file and restart the hub from it (refused with every problem listed, or during an alarm)")
  .requiredOption("--by <name>", "who changed the configuration (recorded in the journal)")
  .action(async (opts: Target & { by: string }) => {
    const r = (await ask(opts, { cmd: "reload", by: opts.by })) as { file: string | null; devices: number };
    process.stdout.write(`reloading ${r.file ?? "the configuration"}: ${r.devices} devices\n`);
  });

const valve = program.command("valve").description("gas shut-off valves");
client(valve.command("reopen"))
  .description(
    "on site only: reopen the gas valves after an alarm (refused while any gas/CO alarm or detector fault is active); " +
      "asks for confirmation at a terminal, and off a terminal (a script) needs --yes",
  )
  .requiredOption("--by <name>", "who is reopening (recorded in the journal)")
  .option("--yes", "confirm without the question (needed when not run at a terminal)")
  .action(async (opts: Target & { by: string; yes?: boolean }) => {
    if (!opts.yes) {
      if (!process.stdin.isTTY) fail("confirmation needed: run it at a terminal, or add --yes", 2);
      const rl = createInterface({ input: process.stdin, output: process.stdout });
      const answer = await rl.question("Have you checked the home for gas and ventilated it? Reopen the gas valves? (yes/no) ");
      rl.close();
      if (answer.trim().toLowerCase() !== "yes") fail("not reopened");
    }
    const r = (await ask(opts, { cmd: "valve_reopen", by: opts.by, osUser: os.userInfo().username })) as { opened: Array<{ valve: string; ok: boolean; error?: string }> };
    for (const o of r.opened) process.stdout.write(`${o.valve}: ${o.ok ? "open command sent" : `FAILED: ${o.error}`}\n`);
    if (r.opened.some((o) => !o.ok)) process.exit(1);
  });

program
  .command("provision")
  .description("enrol this hub at the relay with its one-time claim code; writes the uplink secrets file (mode 0600)")
  .requiredOption("--relay <url>", "the relay's enrolment endpoint base, http(s)://host[:port]")
  .requiredOption("--hub <id>", "this hub's id; must match hub.id in the configuration")
  .requiredOption("--code <code>", "the one-time claim code from the relay operator")
  .option("--insecure", "allow a plain http:// relay URL that is not on this machine (the claim code and credentials travel unencrypted)")
  .addOption(new Option("--config <file>", "the hub's configuration: says where the secrets go").default(DEFAULT_CONFIG).env("ANXIN_HUB_CONFIG"))
  .action(async (opts: { relay: string; hub: string; code: string; config: string; insecure?: boolean }) => {
    let loaded: Awaited<ReturnType<typeof readConfigFile>>;
    try {
      loaded = await readConfigFile(opts.config);
    } catch (e) {
      fail((e as Error).message, 2);
    }
    const c = loaded.config;
    if (c.hub.id !== opts.hub) fail(`${loaded.file} is the configuration of hub '${c.hub.id}', not '${opts.hub}'`, 2);
    const secretsFile = secretsPath(c, path.dirname(loaded.file));
    try {
      // A plain-http URL is refused (unless loopback or --insecure) and warned about before anything is sent.
      const r = await provision({
        relay: opts.relay,
        hub: opts.hub,
        code: opts.code,
        secretsFile,
        dataDir: c.hub.dataDir,
        insecure: opts.insecure === true,
        warn: (m) => process.stderr.write(`anxin-hub: warning: ${m}\n`),
      });
      const out = [
        `enrolled hub ${r.hub} at ${r.relay}`,
        `${r.replaced ? "replaced" : "wrote"} ${r.secretsFile} (mode 0600): broker ${r.mqttUrl}, user ${r.username}, signing key, heartbeat every ${r.heartbeatS} s`,
        c.uplink ? "restart the daemon to connect with these credentials" : `note: ${loaded.file} has no 'uplink' section; add 'uplink: {}' so the daemon connects`,
      ];
      process.stdout.write(`${out.join("\n")}\n`);
    } catch (e) {
      if (e instanceof ProvisionError) fail(e.message, e.exitCode);
      fail(`provisioning failed: ${(e as Error).message}`);
    }
  });

program
  .command("profiles")
  .description("device profiles")
  .command("validate")
  .description("check device profiles; reports every problem with file and field")
  .argument("[dir]", "folder of profiles", SHIPPED_PROFILES_DIR)
  .action(async (dir: string) => {
    const set = await loadProfiles(dir);
    if (set.problems.length) process.stderr.write(`${formatProblems(set.problems)}\n`);
    const errors = set.problems.filter((p) => (p as { severity?: string }).severity !== "warning");
    process.stdout.write(`${set.profiles.size} profile(s) valid in ${dir}${errors.length ? `; ${errors.length} problem(s)` : ""}\n`);
    if (errors.length) process.exit(2);
  });

program
  .command("config")
  .description("configuration")
  .command("validate")
  .description("check a hub configuration and the profiles it names")
  .argument("<file>")
  .action(async (file: string) => {
    try {
      const { loaded } = await loadAndCheck(file);
      const c = loaded.config;
      process.stdout.write(`${file}: valid (hub ${c.hub.id}, ${c.buses.length} bus(es), ${c.devices.length} device(s))\n`);
    } catch (e) {
      fail((e as Error).message, 2);
    }
  });

registerVoice(program.command("voice").description("the elder's spoken prompts"), DEFAULT_CONFIG, fail);

program.parseAsync().catch((e: Error) => fail(e.message));
