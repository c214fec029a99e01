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
}

export class UplinkSetupError extends Error {
  override name = "UplinkSetupError";
}

export const BROKER_PROTOCOLS = ["mqtt:", "mqtts:", "ws:", "wss:"] as const;

/** Where the secrets file is: uplink.secretsFile (relative to the configuration file), else <dataDir>/secrets.json. */
export function secretsPath(config: HubConfig, configDir: string): string {
  const f = config.uplink?.secretsFile;
  return f ? path.resolve(configDir, f) : path.join(path.resolve(configDir, config.hub.dataDir), "secrets.json");
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
  };
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
