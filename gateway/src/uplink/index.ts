// The daemon's way in: builds the uplink from the configuration. An uplink that cannot start (no or
// unsafe secrets, unreadable TLS files, an unencrypted broker URL to another machine) is reported, not
// fatal: the hub keeps guarding the home locally and keeps journaling, and `anxin-hub status` says why
// nothing is being sent.
import type { Logger } from "pino";
import type { EventDraft } from "../../../protocol/envelope.js";
import type { HubConfig } from "../config/schema.js";
import type { SirenTestResult } from "./commands.js";
import type { RetireResult } from "../retire/retire-device.js";
import type { AnnounceRequest, AnnounceResult } from "../voice/triggers.js";
import { loadUplinkSettings, displayUrl } from "./settings.js";
import { Uplink, type UplinkHandle, type UplinkJournal, type UplinkStatus } from "./uplink.js";

export { Uplink, type Goodbye, type UplinkHandle, type UplinkStatus } from "./uplink.js";
export { SirenTest } from "./siren-test.js";

export interface OpenUplinkOptions {
  config: HubConfig;
  /** Folder of the configuration file: relative uplink paths start there. */
  configDir: string;
  boot: number;
  version: string;
  journal: UplinkJournal;
  append: (draft: EventDraft) => Promise<unknown>;
  sirenTest?: (seconds: number) => SirenTestResult;
  retire?: (device: string, reason: string, command: string) => Promise<RetireResult>;
  announce?: (a: AnnounceRequest) => AnnounceResult;
  log: Logger;
  startedAt?: number;
}

export const NOT_CONFIGURED: UplinkStatus = {
  state: "not configured",
  inFlight: 0,
  lastAckAt: null,
  lastConnectAt: null,
  reconnects: 0,
  clockOffsetMs: null,
  sent: 0,
  acked: 0,
  resent: 0,
  acksRefused: 0,
  commandsRefused: 0,
};

/** Null when the configuration has no `uplink` section. */
export async function openUplink(o: OpenUplinkOptions): Promise<UplinkHandle | null> {
  if (!o.config.uplink) return null;
  try {
    const settings = await loadUplinkSettings(o.config, o.configDir);
    const up = new Uplink({
      hub: o.config.hub.id,
      boot: o.boot,
      version: o.version,
      settings,
      journal: o.journal,
      append: o.append,
      sirenTest: o.sirenTest,
      retire: o.retire,
      announce: o.announce,
      log: o.log,
      startedAt: o.startedAt,
    });
    o.log.info(
      { url: displayUrl(settings.url), window: settings.window, heartbeatS: settings.heartbeatS, tls: Boolean(settings.tls) },
      "uplink: configured",
    );
    // Only with uplink.allowPlaintext: said at every start, so it cannot be forgotten.
    if (settings.plaintextWarning) o.log.warn({ url: displayUrl(settings.url) }, settings.plaintextWarning);
    return up;
  } catch (err) {
    const error = (err as Error).message;
    o.log.error({ err: error }, "uplink: not started; events stay in the journal until it is fixed and the daemon restarted");
    return failedUplink(error);
  }
}

function failedUplink(error: string): UplinkHandle {
  return {
    start() {},
    stop: async () => {},
    nudge() {},
    status: () => ({ ...NOT_CONFIGURED, state: "failed", error }),
  };
}
