#!/usr/bin/env node
// anxin-relay: the daemon (`run`) and the operator's commands. The hub commands open the store directly
// (they run on the relay host), so they work whether or not the daemon is running.
import { stopOnSignals } from "../../../lib/daemon/lifecycle.js";
import { existsSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { Command, Option } from "commander";
import { createLogger } from "../../../lib/daemon/logger.js";
import {
  DEFAULT_HUB_CONNECTIONS,
  DEFAULT_RELAY_CONNECTIONS,
  listenerFromUrl,
  MOSQUITTO_FILES,
  mosquittoConf,
  mosquittoHubAcl,
  mosquittoRelayAcl,
  type MosquittoListener,
} from "../broker/mosquitto.js";
import { ConfigError, hubMqttUrl, readRelayConfig, relayPublicUrl } from "../config/loader.js";
import { defaultStateDir, ensureDefaultConfig } from "../config/defaults.js";
import { RELAY_VERSION } from "../version.js";
import { registerForwardCommands } from "./forward-commands.js";
import { registerRetentionCommands } from "../retention/cli.js";
import { registerLedgerCommands } from "./ledger-commands.js";
import { registerHouseholdCommands } from "./household-commands.js";
import { registerOperatorCommands } from "./operator-commands.js";
import { recordAudit } from "../careplans/audit.js";
import { CLAIM_AUDIT_ACTION } from "../registry/registry.js";
import { cliActor, registerLoopCommands } from "./loop-commands.js";
import { openAdminStore, type AdminHandle as Admin } from "./open-admin.js";
import { isHubId, RELAY_USERNAME } from "../mqtt/topics.js";

const DEFAULT_CONFIG = "/etc/anxin-relay/relay.yaml";
/** Where anxin-hub looks for its configuration when not told (its `--config` default). */
const HUB_DEFAULT_CONFIG = "/etc/anxin-hub/hub.yaml";

/** Exit codes: 0 ok, 1 failed or refused, 2 bad input (config, arguments). */
function fail(message: string, code = 1): never {
  process.stderr.write(`anxin-relay: ${message}\n`);
  process.exit(code);
}

const when = (ms: number | null | undefined) => (ms ? `${new Date(ms).toISOString().replace("T", " ").slice(0, 19)} UTC` : "-");
/** Claim codes and URLs go into a command line an installer copies; quote anything a shell would touch. */
const shellWord = (s: string) => (/^[A-Za-z0-9_.:/@%+=,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

function withConfig(cmd: Command): Command {
  return cmd.addOption(new Option("--config <file>", "the relay's YAML configuration").default(DEFAULT_CONFIG).env("ANXIN_RELAY_CONFIG"));
}

async function admin<T>(configFile: string, f: (a: Admin) => Promise<T>): Promise<T> {
  let a: Admin;
  try {
    a = await openAdminStore(configFile);
  } catch (e) {
    fail((e as Error).message, e instanceof ConfigError ? 2 : 1);
  }
  try {
    return await f(a);
  } finally {
    await a.close().catch(() => {});
  }
}

function checkHubId(hub: string): void {
  if (hub === RELAY_USERNAME) fail(`'${RELAY_USERNAME}' is reserved for the relay's own MQTT login`, 2);
  if (!isHubId(hub)) fail(`'${hub}' is not a hub id: letters, digits, _ . - (up to 64, starting with a letter or digit)`, 2);
}

const program = new Command("anxin-relay")
  .description("Anxin cloud relay: MQTT ingest from home safety hubs, enrolment, supervision, care plans, escalation")
  .version(RELAY_VERSION);

program
  .command("run")
  .description(`run the relay daemon; without --config (and no ${DEFAULT_CONFIG}) on its embedded defaults, with its data in the service's state folder`)
  .addOption(new Option("--config <file>", "the relay's YAML configuration").env("ANXIN_RELAY_CONFIG"))
  .action(async (opts: { config?: string }) => {
    const config = opts.config ?? (existsSync(DEFAULT_CONFIG) ? DEFAULT_CONFIG : await useDefaults());
    let level: string;
    try {
      level = (await readRelayConfig(config)).config.log.level;
    } catch (e) {
      fail((e as Error).message, e instanceof ConfigError ? 2 : 1);
    }
    const log = createLogger({ name: "anxin-relay", level });
    // Loaded here, not at the top: every other command starts without loading the daemon (about 0.7 s less).
    const { startRelay } = await import("../daemon/run.js");
    const starting = startRelay(config, { log });
    // A signal during start stops the relay cleanly once it has started, rather than killing it half-way.
    stopOnSignals(async () => (await starting).stop(), log);
    try {
      await starting;
    } catch (e) {
      log.fatal({ err: (e as Error).message }, "relay failed to start");
      fail((e as Error).message, e instanceof ConfigError ? 2 : 1);
    }
  });

/** No configuration anywhere: the embedded defaults, saying where the data and the file that describes it are. */
async function useDefaults(): Promise<string> {
  const dir = defaultStateDir();
  const { file, created } = await ensureDefaultConfig(dir).catch((e: Error) => fail(`cannot prepare the data folder ${dir}: ${e.message}`));
  process.stderr.write(
    `anxin-relay: no configuration given: running on the embedded defaults (MQTT broker and HTTP on 127.0.0.1, SQLite, console telephony)\n` +
      `anxin-relay: data in ${dir}; configuration ${created ? "written to" : "read from"} ${file} (other commands: --config ${shellWord(file)})\n`,
  );
  return file;
}

const hubs = program.command("hubs").description("enrol, list and revoke hubs");

withConfig(hubs.command("add"))
  .description("register a hub and print its one-time claim code and the command the installer runs on the hub")
  .argument("<hub>", "the hub's id (its hub.id)")
  .option("--direct", "issue credentials now, without a claim code, and print them once (for an external broker's password file)")
  .option("--hub-config <file>", `where the hub's configuration is, when not ${HUB_DEFAULT_CONFIG} (goes into the printed provision command)`)
  .option("--json", "machine-readable")
  .action(async (hub: string, opts: { config: string; direct?: boolean; hubConfig?: string; json?: boolean }) => {
    checkHubId(hub);
    await admin(opts.config, async ({ config, registry, db }) => {
      if (opts.direct) {
        const r = await registry.provisionDirect(hub);
        await recordAudit(db, { actor: cliActor(), action: "hub.provision_direct", subject: hub, purpose: "cli", at: Date.now() });
        // Shown once: the relay keeps only what it needs to check them.
        process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
        if (!opts.json)
          process.stderr.write(
            `These credentials are shown once. For Mosquitto, on the broker host:\n  mosquitto_passwd -b <password_file> ${shellWord(r.mqtt.username)} <password from above>\n` +
              `then reload Mosquitto. The JSON is the hub's secrets file: <hub dataDir>/secrets.json, mode 0600 (docs/relay.md).\n`,
          );
        return;
      }
      const claim = await registry.createClaim(hub).catch((e: Error & { code?: string }) =>
        fail(e.code === "active" ? `hub ${hub} is already enrolled; 'anxin-relay hubs rotate ${hub}' issues a new claim code` : e.message),
      );
      await recordAudit(db, { actor: cliActor(), action: CLAIM_AUDIT_ACTION[claim.action], subject: hub, purpose: "cli", at: Date.now() });
      printClaim(hub, claim, relayPublicUrl(config), opts);
    });
  });

withConfig(hubs.command("rotate"))
  .description("issue a fresh claim code for an enrolled hub (re-enrolment gives it new credentials and key)")
  .argument("<hub>")
  .option("--hub-config <file>", `where the hub's configuration is, when not ${HUB_DEFAULT_CONFIG} (goes into the printed provision command)`)
  .option("--json", "machine-readable")
  .action(async (hub: string, opts: { config: string; hubConfig?: string; json?: boolean }) => {
    checkHubId(hub);
    await admin(opts.config, async ({ config, registry, db }) => {
      const claim = await registry.createClaim(hub, { rotate: true }).catch((e: Error) => fail(e.message));
      await recordAudit(db, { actor: cliActor(), action: CLAIM_AUDIT_ACTION[claim.action], subject: hub, purpose: "cli", at: Date.now() });
      printClaim(hub, claim, relayPublicUrl(config), opts);
    });
  });

withConfig(hubs.command("revoke"))
  .description("revoke a hub: its login, key and claim code stop working; a running relay drops its connection")
  .argument("<hub>")
  .action(async (hub: string, opts: { config: string }) => {
    checkHubId(hub);
    await admin(opts.config, async ({ config, registry }) => {
      if (!(await registry.revoke(hub))) fail(`no hub '${hub}' (or already revoked)`);
      const note =
        config.broker.kind === "embedded"
          ? "a running relay drops its broker connection within 15 s"
          : `also remove it from the broker: mosquitto_passwd -D <password_file> ${shellWord(hub)}, then reload Mosquitto`;
      process.stdout.write(`hub ${hub} revoked; ${note}\n`);
    });
  });

withConfig(hubs.command("list"))
  .description("every hub: status, online, last seen")
  .option("--json", "machine-readable")
  .action(async (opts: { config: string; json?: boolean }) => {
    await admin(opts.config, async ({ registry }) => {
      const rows = await registry.list();
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
        return;
      }
      if (!rows.length) {
        process.stdout.write("no hubs\n");
        return;
      }
      const table = [["HUB", "STATUS", "ONLINE", "LAST SEEN", "BOOT", "ADDED"], ...rows.map((h) => [h.id, h.status, h.online ? "yes" : "no", when(h.lastSeenAt), h.lastBoot === null ? "-" : String(h.lastBoot), when(h.createdAt)])];
      const widths = table[0]!.map((_, i) => Math.max(...table.map((r) => r[i]!.length)));
      process.stdout.write(table.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd()).join("\n") + "\n");
    });
  });

program
  .command("config")
  .description("configuration")
  .command("validate")
  .description("check a relay configuration; reports every problem with file, line and key")
  .argument("<file>")
  .action(async (file: string) => {
    try {
      const { config: c } = await readRelayConfig(file);
      process.stdout.write(
        `${file}: valid (relay ${c.relay.id}, store ${c.store.kind}, broker ${c.broker.kind}; hubs enrol at ${relayPublicUrl(c)} and connect to ${hubMqttUrl(c)})\n`,
      );
      if (!c.http.publicUrl) process.stdout.write("note: http.publicUrl is not set; installers are told the listening address, which hubs may not reach\n");
      if (c.escalation.enabled && c.telephony.kind === "console")
        process.stdout.write("note: telephony.kind is console: call trees run but nobody is called (demo only); configure http or twilio for service\n");
      if (c.forwarders.destinations.length === 0) process.stdout.write("note: forwarders.destinations is empty: incidents are not pushed to the duty platform or operations centres\n");
    } catch (e) {
      fail((e as Error).message, e instanceof ConfigError ? 2 : 1);
    }
  });

withConfig(program.command("broker-config"))
  .description("write the Mosquitto configuration and ACLs for an external broker")
  .option("--out <dir>", "where to write the files (the directory they will have on the broker host)", ".")
  .option("--hub-connections <n>", "max_connections of the hubs' listener", String(DEFAULT_HUB_CONNECTIONS))
  .option("--relay-connections <n>", "max_connections of the relay's listener", String(DEFAULT_RELAY_CONNECTIONS))
  .action(async (opts: { config: string; out: string; hubConnections: string; relayConnections: string }) => {
    let cfg: Awaited<ReturnType<typeof readRelayConfig>>["config"];
    try {
      cfg = (await readRelayConfig(opts.config)).config;
    } catch (e) {
      fail((e as Error).message, e instanceof ConfigError ? 2 : 1);
    }
    const count = (v: string, flag: string): number => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1) fail(`${flag}: expected a whole number of at least 1, got ${JSON.stringify(v)}`, 2);
      return n;
    };
    const hubConnections = count(opts.hubConnections, "--hub-connections");
    const relayConnections = count(opts.relayConnections, "--relay-connections");
    const dir = path.resolve(opts.out);
    let hubs: MosquittoListener;
    let relay: MosquittoListener;
    let conf: string;
    try {
      if (cfg.broker.kind === "external") {
        // The relay connects to broker.url, hubs to broker.publicUrl: two listeners, two ports.
        if (!cfg.broker.publicUrl)
          throw new Error("broker.publicUrl is not set: hubs would be sent to broker.url, the relay's own listener; set broker.publicUrl to the hubs' listener (another port)");
        const r = listenerFromUrl(cfg.broker.url, "broker.url");
        const h = listenerFromUrl(cfg.broker.publicUrl, "broker.publicUrl");
        relay = { port: r.port, bind: r.host, tls: r.tls, maxConnections: relayConnections };
        hubs = { port: h.port, tls: h.tls, maxConnections: hubConnections };
        if (h.port === r.port) throw new Error(`broker.url and broker.publicUrl both use port ${r.port}: the relay needs a listener of its own, on another port`);
      } else {
        relay = { port: 1884, bind: "127.0.0.1", tls: false, maxConnections: relayConnections };
        hubs = { port: 1883, tls: false, maxConnections: hubConnections };
      }
      conf = mosquittoConf({ dir, maxPayloadBytes: cfg.ingest.maxPayloadBytes, hubs, relay });
    } catch (e) {
      fail(`${opts.config}: ${(e as Error).message}`, 2);
    }
    const relayUser = cfg.broker.kind === "external" && cfg.broker.username ? cfg.broker.username : RELAY_USERNAME;
    await mkdir(dir, { recursive: true });
    const files: Array<[string, string]> = [
      [MOSQUITTO_FILES.hubAcl, mosquittoHubAcl()],
      [MOSQUITTO_FILES.relayAcl, mosquittoRelayAcl(relayUser)],
      [MOSQUITTO_FILES.conf, conf],
    ];
    for (const [name, text] of files) {
      const file = path.join(dir, name);
      await writeFile(file, text, { mode: 0o644 });
      process.stdout.write(`wrote ${file}\n`);
    }
    if (cfg.broker.kind === "embedded") process.stdout.write("note: this configuration uses the embedded broker; these files are for broker.kind: external\n");
    process.stdout.write(
      `\nInstall ${MOSQUITTO_FILES.conf} as /etc/mosquitto/conf.d/anxin.conf and create the two password files\n` +
        `(${path.join(dir, MOSQUITTO_FILES.hubPasswords)}: hubs only; ${path.join(dir, MOSQUITTO_FILES.relayPasswords)}: ${relayUser} only; see docs/relay.md).\n\n${conf}`,
    );
  });

registerLoopCommands(program, { withConfig, admin, fail });
registerForwardCommands(program, { withConfig, admin, fail });
registerRetentionCommands(program, { withConfig, admin, fail });
registerLedgerCommands(program, { withConfig, admin, fail });
registerHouseholdCommands(program, { withConfig, admin, fail });
registerOperatorCommands(program, { withConfig, fail });

/** Prints the claim and the exact command for the hub, ready to paste (the hub's config path when not its default). */
function printClaim(hub: string, claim: { code: string; expiresAt: number }, publicUrl: string, o: { hubConfig?: string; json?: boolean }): void {
  const configPart = o.hubConfig && o.hubConfig !== HUB_DEFAULT_CONFIG ? ` --config ${shellWord(o.hubConfig)}` : "";
  const command = `anxin-hub provision --relay ${shellWord(publicUrl)} --hub ${shellWord(hub)} --code ${shellWord(claim.code)}${configPart}`;
  if (o.json) {
    process.stdout.write(`${JSON.stringify({ hub, code: claim.code, expiresAt: claim.expiresAt, command }, null, 2)}\n`);
    return;
  }
  process.stdout.write(
    `hub ${hub}\n  claim code: ${claim.code}\n  valid until: ${when(claim.expiresAt)} (works once)\n\nOn the hub, the installer runs:\n  ${command}\n`,
  );
}

program.parseAsync().catch((e: Error) => fail(e.message));
