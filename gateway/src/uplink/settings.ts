// Turns the `uplink` configuration section and the secrets file into what the session needs.
import { open } from "node:fs/promises";
import path from "node:path";
import type { HubConfig } from "../config/schema.js";
import { readSecrets } from "./secrets.js";

export interface UplinkSettings {
  /** Broker URL; may carry no credentials (they come separately). */
  url: string;
  username?: string;
  password?: string;
  /** HMAC key for event signatures. */
  key: Buffer;
  heartbeatS: number;
  window: number;
  ackTimeoutMs: number;
  historicalAfterMs: number;
  reconnectMinMs: number;
  reconnectMaxMs: number;
  tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer };
  /**
   * Set when the broker is reached without TLS on another machine, which only `uplink.allowPlaintext: true`
   * permits: the warning to log at start.
   */
  plaintextWarning?: string;
}

export class UplinkSetupError extends Error {
  override name = "UplinkSetupError";
}

export const BROKER_PROTOCOLS = ["mqtt:", "mqtts:", "ws:", "wss:"] as const;
/** Broker protocols without TLS: allowed to this machine, elsewhere only with `uplink.allowPlaintext: true`. */
export const PLAINTEXT_PROTOCOLS = ["mqtt:", "ws:"] as const;

/** Where the secrets file is: uplink.secretsFile (relative to the configuration file), else <dataDir>/secrets.json. */
export function secretsPath(config: HubConfig, configDir: string): string {
  const f = config.uplink?.secretsFile;
  return f ? path.resolve(configDir, f) : path.join(path.resolve(configDir, config.hub.dataDir), "secrets.json");
}

/** localhost, 127.0.0.0/8, ::1 (and ::ffff:127.x): a relay on this machine. `hostname` is a URL's (IPv6 in brackets). */
export function isLoopback(hostname: string): boolean {
  const h = hostname.toLowerCase().replace(/^\[(.*)\]$/, "$1").replace(/\.$/, "");
  if (h === "localhost" || h.endsWith(".localhost")) return true;
  if (h === "::1" || /^::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}$/.test(h)) return true;
  const v4 = /^(?:::ffff:)?(\d{1,3})\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.exec(h);
  return v4 !== null && v4[1] === "127";
}

/** The URL as it may be shown and logged: no user, no password. */
export function displayUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = "";
    u.password = "";
    return u.toString().replace(/\/$/, "");
  } catch {
    return "(invalid url)";
  }
}

export async function loadUplinkSettings(config: HubConfig, configDir: string): Promise<UplinkSettings> {
  const up = config.uplink;
  if (!up) throw new UplinkSetupError("uplink: not configured");
  const secrets = await readSecrets(secretsPath(config, configDir), config.hub.id);
  const url = up.url ?? secrets.url;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UplinkSetupError(`uplink: broker url ${JSON.stringify(displayUrl(url))} is not a URL`);
  }
  if (!(BROKER_PROTOCOLS as readonly string[]).includes(parsed.protocol)) {
    throw new UplinkSetupError(`uplink: broker url ${displayUrl(url)} must use one of ${BROKER_PROTOCOLS.join(" ")}`);
  }
  const plaintextWarning = plaintextCheck(parsed, up.url !== undefined, up.allowPlaintext === true);
  const tls: NonNullable<UplinkSettings["tls"]> = {};
  if (up.caFile) tls.ca = await readTlsFile(path.resolve(configDir, up.caFile), "caFile", false);
  if (up.certFile) tls.cert = await readTlsFile(path.resolve(configDir, up.certFile), "certFile", false);
  if (up.keyFile) tls.key = await readTlsFile(path.resolve(configDir, up.keyFile), "keyFile", true);
  return {
    url,
    username: secrets.username,
    password: secrets.password,
    key: secrets.key,
    // The relay supervises the hub on the period it assigned at enrolment, so that is the default.
    heartbeatS: up.heartbeatS ?? secrets.heartbeatS,
    window: up.window,
    ackTimeoutMs: up.ackTimeoutMs,
    historicalAfterMs: up.historicalAfterMs,
    reconnectMinMs: up.reconnectMinMs,
    reconnectMaxMs: up.reconnectMaxMs,
    ...(Object.keys(tls).length ? { tls } : {}),
    ...(plaintextWarning ? { plaintextWarning } : {}),
  };
}

/**
 * TLS by default: a plaintext broker URL (mqtt://, ws://) to another machine is refused, since the hub's
 * password, its events and the relay's acks and commands would cross the network in clear (the acks and
 * commands are signed, but anyone on the path could read everything and keep the hub from its relay).
 * To this machine (localhost, 127.0.0.0/8, ::1) it is allowed. `uplink.allowPlaintext: true` allows it
 * anywhere, and the warning returned is logged at every start.
 */
function plaintextCheck(u: URL, fromConfig: boolean, allowed: boolean): string | undefined {
  if (!(PLAINTEXT_PROTOCOLS as readonly string[]).includes(u.protocol) || isLoopback(u.hostname)) return undefined;
  const where = fromConfig ? "uplink.url" : "the broker url in the secrets file (from the relay at enrolment)";
  if (!allowed) {
    throw new UplinkSetupError(
      `uplink: refusing ${where} ${displayUrl(u.href)}: ${u.protocol}// is not encrypted and ${u.hostname} is not this machine. ` +
        `Use the relay's ${u.protocol === "ws:" ? "wss" : "mqtts"}:// URL (set uplink.url, with uplink.caFile if the relay's certificate needs it), ` +
        `or set uplink.allowPlaintext: true if this network is trusted`,
    );
  }
  return `uplink: ${displayUrl(u.href)} is not encrypted (uplink.allowPlaintext: true): this hub's password, its events and the relay's acks and commands cross the network in clear`;
}

async function readTlsFile(file: string, key: string, secret: boolean): Promise<Buffer> {
  let fh;
  try {
    fh = await open(file, "r");
  } catch (e) {
    throw new UplinkSetupError(`uplink.${key}: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  try {
    const st = await fh.stat();
    // A private key anyone on the machine can read is no longer private.
    if (secret && st.mode & 0o004) {
      throw new UplinkSetupError(`uplink.keyFile: refusing to use ${file}: every user can read this private key (mode ${(st.mode & 0o777).toString(8)}); chmod o-rwx it`);
    }
    return await fh.readFile();
  } finally {
    await fh.close();
  }
}
