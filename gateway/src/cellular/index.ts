// The daemon's way in to the second path: the module service and, when the uplink can sign, the path
// supervisor. Without a `cellular` section nothing is opened; without a working uplink there is no key to
// sign an SMS with, so the module is only watched (and `anxin-hub status` says why nothing would be sent).
import type { Logger } from "pino";
import type { Envelope, EventDraft } from "../../../protocol/envelope.js";
import type { HubConfig } from "../config/schema.js";
import type { UplinkHandle } from "../uplink/uplink.js";
import { probeBroker } from "../uplink/bound-connect.js";
import type { AtLink } from "./at-channel.js";
import { ModemService, type ModemServiceStatus } from "./modem-service.js";
import { PathSupervisor, type PathStatus, type PathTestResult } from "./path-supervisor.js";

export { CELLULAR_DEVICE_ID } from "./status.js";

export interface CellularPath {
  modem: ModemService;
  /** Null when the uplink cannot sign (not configured or failed). */
  path: PathSupervisor | null;
  event(e: Envelope): void;
  acked(ids: readonly string[]): void;
  status(): { modem: ModemServiceStatus; path: PathStatus | null; problem?: string };
  test(): Promise<PathTestResult>;
  stop(): Promise<void>;
}

export interface OpenCellularOptions {
  config: HubConfig;
  uplink: UplinkHandle | null;
  append: (draft: EventDraft) => Promise<Envelope>;
  /** Alarms already journaled and not yet acknowledged (an earlier run's). */
  unacked: () => Promise<Envelope[]>;
  log: Logger;
  now?: () => number;
  openLink?: (path: string, baudRate: number) => Promise<AtLink>;
  /** Path supervision's tick; default 250 ms (tests). */
  tickMs?: number;
}

export async function openCellular(o: OpenCellularOptions): Promise<CellularPath | null> {
  const cfg = o.config.cellular;
  if (!cfg) return null;
  const log = o.log.child({ part: "cellular" });
  const modem = new ModemService({ config: cfg, append: o.append, log, now: o.now, openLink: o.openLink });
  const up = o.uplink;
  const key = up?.signingKey;
  let problem: string | undefined;
  let path: PathSupervisor | null = null;
  if (!up || !key || !up.bindTo) problem = "no working uplink: alarms cannot be signed for SMS (see the uplink's status)";
  else {
    const status = () => up.status();
    const bindTo = (a: string | null) => up.bindTo!(a);
    path = new PathSupervisor({
      config: cfg,
      uplink: { status, bindTo },
      modem,
      key,
      append: o.append,
      probePrimary: () => {
        const target = status().url;
        return target ? probeBroker(target, 3000) : Promise.resolve(false);
      },
      dataDir: o.config.hub.dataDir,
      log,
      now: o.now,
      tickMs: o.tickMs,
    });
  }
  if (problem) log.error({ problem }, "cellular: the module is watched but carries nothing");
  modem.start();
  if (path) {
    await path.start();
    path.seed(await o.unacked().catch(() => []));
  }
  return {
    modem,
    path,
    event: (e) => path?.event(e),
    acked: (ids) => path?.acked(ids),
    status: () => ({ modem: modem.status(), path: path?.status() ?? null, ...(problem ? { problem } : {}) }),
    test: () => (path ? path.test() : Promise.resolve({ ok: false, at: Date.now(), reason: problem ?? "no path supervisor" })),
    async stop() {
      await path?.stop();
      await modem.stop();
    },
  };
}
