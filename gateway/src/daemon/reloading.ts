// The hub daemon across reloads. A reload (the installer's new configuration, or a device retired by the relay)
// stops the hub cleanly and starts it again from its file in the same process: the journal, the rules' saved
// state (a latched valve stays latched) and the relay's view ("planned stop", then back) are those of any
// restart. A configuration that does not load is refused before anything stops, and the hub never restarts
// itself during an alarm: the rules keep running until the alarm is over.
import type { Logger } from "pino";
import { ConfigError } from "../config/loader.js";
import { loadAndCheck, startHub, type RunningHub, type StartOptions } from "./run.js";

export type ReloadResult = { ok: true; devices: number } | { ok: false; error: string; details?: string[] };

export interface SupervisedHub {
  /** The hub running now (a new object after each reload). */
  current(): RunningHub;
  /**
   * Checks the file and, when it loads, restarts the hub from it once the reply could be sent. Refused (the
   * running hub untouched) when the file has problems or an alarm is active, unless `whenQuiet` defers it.
   */
  reload(reason: string, o?: { whenQuiet?: boolean }): Promise<ReloadResult>;
  /** Resolves when the reload under way (if any) has finished starting. */
  settled(): Promise<void>;
  stop(): Promise<void>;
}

export interface SuperviseOptions extends Omit<StartOptions, "reload"> {
  log: Logger;
  /** How often a deferred reload looks again for the alarms to be over. */
  quietPollMs?: number;
  /** How long after a failed start the next attempt comes. */
  retryMs?: number;
}

export async function superviseHub(file: string, o: SuperviseOptions): Promise<SupervisedHub> {
  const log = o.log;
  let stopped = false;
  let restarting: Promise<void> = Promise.resolve();
  let deferred: NodeJS.Timeout | undefined;
  const start = (): Promise<RunningHub> => startHub(file, { ...o, reload: (reason, ro) => api.reload(reason, ro) });
  let hub = await start();

  const activeAlarms = () => Object.keys(hub.hub.rule.alarms);

  const restart = (reason: string) => {
    restarting = restarting.then(async () => {
      if (stopped) return;
      log.info({ reason }, "anxin-hub reloading its configuration");
      await hub.stop();
      for (;;) {
        if (stopped) return;
        try {
          hub = await start();
          log.info({ reason, devices: hub.hub.devices().length }, "anxin-hub reloaded");
          return;
        } catch (e) {
          // Checked before stopping, so only the machine can fail here (a port taken, a disk full): keep trying,
          // and the service manager's watchdog restarts the process if it never comes back.
          log.error({ err: (e as Error).message }, "anxin-hub could not start after a reload; trying again");
          await new Promise((r) => setTimeout(r, o.retryMs ?? 5000));
        }
      }
    });
    return restarting;
  };

  const api: SupervisedHub = {
    current: () => hub,
    async reload(reason, ro = {}) {
      let checked: Awaited<ReturnType<typeof loadAndCheck>>;
      try {
        checked = await loadAndCheck(file);
      } catch (e) {
        return e instanceof ConfigError
          ? { ok: false, error: `${file} has problems; nothing was reloaded`, details: e.problems.map((p) => `${p.line ? `line ${p.line}: ` : ""}${p.field || "(top)"}: ${p.message}`) }
          : { ok: false, error: `${file}: ${(e as Error).message}; nothing was reloaded` };
      }
      const devices = checked.loaded.config.devices.length + checked.loaded.config.radars.length + (checked.loaded.config.zigbee?.devices.length ?? 0);
      const alarms = activeAlarms();
      if (alarms.length && !ro.whenQuiet) return { ok: false, error: `an alarm is active (${alarms.join(", ")}): the hub does not restart itself during an alarm; reload again once it is over` };
      if (alarms.length) {
        log.warn({ reason, alarms }, "reload deferred until the alarms are over");
        clearInterval(deferred);
        deferred = setInterval(() => {
          if (stopped) return clearInterval(deferred);
          if (activeAlarms().length) return;
          clearInterval(deferred);
          void restart(reason);
        }, o.quietPollMs ?? 5000);
        deferred.unref();
        return { ok: true, devices };
      }
      // After this request's reply has gone out: the control socket closes with the old hub.
      setTimeout(() => void restart(reason), 50);
      return { ok: true, devices };
    },
    settled: async () => {
      await new Promise((r) => setTimeout(r, 60));
      await restarting;
    },
    async stop() {
      stopped = true;
      clearInterval(deferred);
      await restarting;
      await hub.stop();
    },
  };
  return api;
}
