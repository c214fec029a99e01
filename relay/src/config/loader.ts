// Loads and checks the relay configuration. Like the hub's loader, every problem is reported with its
// file, line and key path, all at once (lib/config/yaml.ts), so an operator fixes them in one pass.
import path from "node:path";
import { ConfigError, readYamlFile, type ConfigProblem, type LoadedYaml } from "../../../lib/config/yaml.js";
import { plaintextListenerProblem } from "../broker/plaintext.js";
import { relayConfigSchema, type RelayConfig } from "./schema.js";

export { ConfigError, formatConfigProblems, readYamlFile, type ConfigProblem } from "../../../lib/config/yaml.js";

export interface LoadedRelayConfig {
  config: RelayConfig;
  file: string;
  lineOf(parts: Array<string | number>): number | undefined;
}

/**
 * Reads the relay configuration. Relative paths (dataDir, TLS and CA files, key files) resolve against the file's
 * folder; a relative SQLite path resolves against dataDir.
 */
export async function readRelayConfig(file: string): Promise<LoadedRelayConfig> {
  const loaded = await readYamlFile(file, relayConfigSchema);
  const config = loaded.value;
  const problems = crossCheck(config, loaded.problem);
  if (problems.length) throw new ConfigError(problems);

  const base = path.dirname(loaded.file);
  config.relay.dataDir = path.resolve(base, config.relay.dataDir);
  if (config.store.kind === "sqlite") config.store.path = path.resolve(config.relay.dataDir, config.store.path);
  const b = config.broker;
  if (b.kind === "embedded" && b.tls) b.tls = { certFile: path.resolve(base, b.tls.certFile), keyFile: path.resolve(base, b.tls.keyFile) };
  if (b.kind === "external" && b.caFile) b.caFile = path.resolve(base, b.caFile);
  if (config.escalation.policiesFile) config.escalation.policiesFile = path.resolve(base, config.escalation.policiesFile);
  if (config.secrets.masterKeyFile) config.secrets.masterKeyFile = path.resolve(base, config.secrets.masterKeyFile);
  if (config.secrets.localMasterKeyFile) config.secrets.localMasterKeyFile = path.resolve(base, config.secrets.localMasterKeyFile);
  return { config, file: loaded.file, lineOf: loaded.lineOf };
}

function crossCheck(c: RelayConfig, problem: LoadedYaml<unknown>["problem"]): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  const url = (parts: Array<string | number>, value: string | undefined, protocols: string[]) => {
    if (value === undefined) return;
    let u: URL;
    try {
      u = new URL(value);
    } catch {
      out.push(problem(parts, `not a URL: '${value}'`));
      return;
    }
    if (!protocols.includes(u.protocol)) out.push(problem(parts, `must start with ${protocols.map((p) => `${p}//`).join(" or ")}`));
  };
  url(["http", "publicUrl"], c.http.publicUrl, ["http:", "https:"]);
  const b = c.broker;
  url(["broker", "publicUrl"], b.publicUrl, ["mqtt:", "mqtts:"]);
  if (b.kind === "embedded" && b.port === 0)
    out.push(problem(["broker", "port"], "0 would pick a random port that hubs cannot be told about; choose a port (1883, or 8883 with TLS)"));
  if (b.kind === "embedded") {
    // TLS by default outside this machine (broker/plaintext.ts); `host` may be the schema's default 0.0.0.0.
    const why = plaintextListenerProblem(b.host, Boolean(b.tls), b.allowPlaintext);
    if (why) out.push(problem(["broker", "host"], why));
  }
  if (b.kind === "external") {
    url(["broker", "url"], b.url, ["mqtt:", "mqtts:"]);
    if (b.password !== undefined && b.username === undefined) out.push(problem(["broker", "password"], "a password needs a username"));
  }
  return out;
}

/** The broker URL hubs are given at enrolment. */
export function hubMqttUrl(c: RelayConfig): string {
  const b = c.broker;
  if (b.publicUrl) return b.publicUrl;
  if (b.kind === "external") return b.url;
  const scheme = b.tls ? "mqtts" : "mqtt";
  const host = c.http.publicUrl ? new URL(c.http.publicUrl).hostname : wildcard(b.host) ? "localhost" : b.host;
  return `${scheme}://${bracket(host)}:${b.port}`;
}

/** The enrolment URL an installer passes to `anxin-hub provision --relay`. */
export function relayPublicUrl(c: RelayConfig): string {
  if (c.http.publicUrl) return c.http.publicUrl.replace(/\/+$/, "");
  return `http://${bracket(wildcard(c.http.host) ? "localhost" : c.http.host)}:${c.http.port}`;
}

const wildcard = (host: string) => host === "0.0.0.0" || host === "::" || host === "";
const bracket = (host: string) => (host.includes(":") && !host.startsWith("[") ? `[${host}]` : host);
