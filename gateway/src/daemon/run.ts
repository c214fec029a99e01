// Composition root of the hub daemon: reads the configuration, builds the parts and owns start/stop.
// No logic of its own lives here.
import { mkdir, chmod } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { Logger } from "pino";
import { checkAgainstProfiles, ConfigError, readConfigFile, type LoadedConfig } from "../config/loader.js";
import type { BusConfig, HubConfig } from "../config/schema.js";
import { loadProfiles, formatProblems } from "../profiles/loader.js";
import type { Profile } from "../profiles/schema.js";
import type { RadarProfile } from "../profiles/radar-schema.js";
import { Bus } from "../transports/modbus/bus.js";
import { SerialLink, type ModbusLink } from "../transports/modbus/link.js";
import { SimLink } from "../sim/sim-link.js";
import { simDeviceFor, type SimDevice } from "../sim/devices.js";
import { Device } from "../devices/device.js";
import { Journal } from "../journal/journal.js";
import { SafetyHub } from "../hub/safety-hub.js";
import { ControlServer } from "../control/server.js";
import { controlHandler } from "./control-handler.js";
import { Health } from "../../../lib/daemon/health.js";
import { createNotifier } from "../../../lib/daemon/sd-notify.js";
import { VERSION } from "../version.js";
import type { EventDraft } from "../../../protocol/envelope.js";
import { openUplink, SirenTest, type UplinkHandle } from "../uplink/index.js";
import { ZigbeeRegistry } from "../devices/zigbee-registry.js";
import { RadarDevice, type ByteLine } from "../devices/radar-device.js";
import { UartPort } from "../transports/uart/port.js";
import { SimRadarLine } from "../sim/sim-radar.js";
import { codecFor } from "../transports/uart/codecs.js";
import { behaviourParamsFrom, inactivityParamsFrom } from "../config/behaviour.js";
import { StateKeeper } from "../state/keeper.js";
import type { RadarConfig } from "../config/schema.js";
import { Commissioning } from "../commission/controller.js";
import { deviceViews, setupDeps, unpairedZigbee } from "../commission/devices.js";
import type { ReloadResult } from "./reloading.js";
import { RetiredDevices } from "../retire/retired-devices.js";
import { retireDevice } from "../retire/retire-device.js";
import { openCamera, type AlarmCamera } from "../camera/index.js";
import { openVoice, type Voice } from "../voice/index.js";
import { CELLULAR_DEVICE_ID, openCellular, type CellularPath } from "../cellular/index.js";
import { checkSecondPath } from "../cellular/commission-check.js";
import { PowerWatch } from "../power/watch.js";

export interface RunningHub {
  config: HubConfig;
  hub: SafetyHub;
  journal: Journal;
  buses: Bus[];
  /** Simulated devices by bus name and unit, when a bus is `sim`. */
  sim: Map<string, SimLink>;
  health: Health;
  /** Null when the configuration has no `uplink` section. */
  uplink: UplinkHandle | null;
  /** Null when the configuration has no `zigbee` section. */
  zigbee: ZigbeeRegistry | null;
  /** Radars on their own serial lines, in configuration order. */
  radars: RadarDevice[];
  /** Simulated radars by id, when a radar's path is `sim`. */
  simRadars: Map<string, SimRadarLine>;
  /** Saves the rules' state for a restart (through the journal). */
  state: StateKeeper;
  /** Spoken prompts; null when the configuration has no enabled `voice` section. */
  voice: Voice | null;
  /** The cellular second path; null when the configuration has no `cellular` section. */
  cellular: CellularPath | null;
  /** The hub's own power supply; null when the configuration has no `power` section. */
  power: PowerWatch | null;
  stop(): Promise<void>;
}

export interface StartOptions {
  log: Logger;
  /** Replaces how a bus's link is made (tests, benchmarks). */
  linkFor?: (bus: BusConfig, devicesOnBus: Array<{ unit: number; profile: Profile }>) => ModbusLink;
  now?: () => number;
  /** Replaces how a radar's serial line is made (tests, benchmarks). */
  radarLineFor?: (radar: RadarConfig, profile: RadarProfile) => ByteLine;
  /** Replaces how the cellular module's port is opened (tests, benchmarks). */
  cellularLink?: Parameters<typeof openCellular>[0]["openLink"];
  /** Path supervision's tick (tests, benchmarks); default 250 ms. */
  cellularTickMs?: number;
  /** Restarts the hub from its file (given by superviseHub); absent, `reload` over the control socket is refused. */
  reload?: (reason: string, o?: { whenQuiet?: boolean }) => Promise<ReloadResult>;
}

const SAFETY = new Set(["gas_detector", "co_detector", "valve"]);
/** How long the start waits for the coordinator before telling systemd it is ready anyway. */
const ZIGBEE_READY_WAIT_MS = 20_000;
/** Event-loop lag probe period (see where Health is made). */
const HEALTH_PROBE_MS = 1000;

/** Loads and checks everything the daemon would, without starting anything. */
export async function loadAndCheck(file: string): Promise<{ loaded: LoadedConfig; profiles: Map<string, Profile>; radarProfiles: Map<string, RadarProfile> }> {
  const loaded = await readConfigFile(file);
  const set = await loadProfiles(loaded.config.hub.profilesDir!);
  if (set.problems.some((p) => (p as { severity?: string }).severity !== "warning"))
    throw new Error(`device profiles in ${loaded.config.hub.profilesDir} have problems:\n${formatProblems(set.problems)}`);
  const problems = checkAgainstProfiles(loaded, set.profiles, set.radars);
  if (problems.length) throw new ConfigError(problems);
  return { loaded, profiles: set.profiles, radarProfiles: set.radars };
}

export async function startHub(configFile: string, o: StartOptions): Promise<RunningHub> {
  const { loaded, profiles, radarProfiles } = await loadAndCheck(configFile);
  const config = loaded.config;
  const log = o.log;
  const now = o.now ?? Date.now;

  await mkdir(config.hub.dataDir, { recursive: true, mode: 0o700 });
  await chmod(config.hub.dataDir, 0o700).catch(() => {});
  // Devices retired by the relay (consent withdrawn) stay off even while hub.yaml still names them.
  const retired = await RetiredDevices.open(config.hub.dataDir);
  for (const r of retired.all()) {
    const named = config.devices.some((d) => d.id === r.id) || config.radars.some((d) => d.id === r.id) || !!config.zigbee?.devices.some((d) => d.id === r.id);
    if (named) log.warn({ device: r.id, reason: r.reason, since: new Date(r.at).toISOString() }, "device retired: not started; remove it from the configuration at the next visit");
  }
  config.devices = config.devices.filter((d) => !retired.has(d.id));
  config.radars = config.radars.filter((d) => !retired.has(d.id));
  if (config.zigbee) config.zigbee.devices = config.zigbee.devices.filter((d) => !(d.id && retired.has(d.id)) && !retired.addresses().has(d.ieee.toLowerCase()));
  const journal = await Journal.open({ path: path.join(config.hub.dataDir, "journal.db"), hub: config.hub.id, maxRows: config.journal.maxRows, clock: now });

  const sim = new Map<string, SimLink>();
  const buses: Bus[] = [];
  const devices: Device[] = [];
  for (const b of config.buses) {
    const mine = config.devices.filter((d) => d.bus === b.name).map((d) => ({ cfg: d, profile: profiles.get(d.profile)! }));
    const units = mine.map((m) => ({ unit: m.cfg.unit ?? m.profile.serial.unit, profile: m.profile }));
    let link: ModbusLink;
    if (o.linkFor) link = o.linkFor(b, units);
    else if (b.path === "sim") {
      const simDevices = new Map<number, SimDevice>(units.map((u) => [u.unit, simDeviceFor(u.profile.id)]));
      const l = new SimLink(simDevices, b.baudRate);
      sim.set(b.name, l);
      link = l;
    } else link = new SerialLink(b.path, { baudRate: b.baudRate, parity: b.parity, dataBits: b.dataBits, stopBits: b.stopBits });
    const bus = new Bus(link, { name: b.name, quietMs: b.quietMs, reconnectMinMs: b.reconnectMinMs, reconnectMaxMs: b.reconnectMaxMs, now });
    buses.push(bus);
    for (const { cfg, profile } of mine) {
      const safety = profile.roles.some((r) => SAFETY.has(r));
      const pollMs = cfg.pollMs ?? (safety ? 1000 : 2000);
      devices.push(
        new Device({
          id: cfg.id,
          profile,
          bus,
          unit: cfg.unit ?? profile.serial.unit,
          room: cfg.room,
          pollMs,
          offlineAfterMs: cfg.offlineAfterMs ?? Math.max(5 * pollMs, 5000),
          timeoutMs: cfg.timeoutMs ?? profile.serial.timeoutMs,
          ratedCloseMs: cfg.ratedCloseMs,
        }),
      );
    }
  }

  // Every committed event nudges the uplink, so an alarm leaves at once instead of at the next poll.
  let uplink: UplinkHandle | null = null;
  // Commissioning marks the events of the device under test (test: true) on their way into the journal.
  let commissioning: Commissioning | null = null;
  // Told of each journaled event after its actuator commands went out; a new alarm gets a few camera stills.
  let camera: AlarmCamera | null = null;
  // Spoken prompts for the elder: told of each journaled event after its actuator commands went out; it only queues.
  let voice: Voice | null = null;
  // The second path watches each alarm until the relay acknowledges it, and texts it if the broadband fails.
  let cellular: CellularPath | null = null;
  const sink = {
    append: async (d: EventDraft) => {
      const e = await journal.append(commissioning ? commissioning.mark(d) : d);
      commissioning?.observe(e);
      uplink?.nudge();
      camera?.alarm(e);
      voice?.event(e);
      cellular?.event(e);
      return e;
    },
  };
  const simRadars = new Map<string, SimRadarLine>();
  const radars = config.radars.map((r) => {
    const profile = radarProfiles.get(r.profile)!;
    const codec = codecFor(profile.protocol);
    if (!codec) throw new Error(`radar ${r.id}: no codec for protocol '${profile.protocol}'`);
    const s = profile.serial;
    const sim = r.path === "sim" && !o.radarLineFor ? new SimRadarLine(profile.model) : undefined;
    if (sim) simRadars.set(r.id, sim);
    const line =
      o.radarLineFor?.(r, profile) ??
      sim ??
      new UartPort({ path: r.path, baudRate: r.baudRate ?? s.baudRate, parity: s.parity, dataBits: s.dataBits, stopBits: s.stopBits, reopenMinMs: r.reopenMinMs, reopenMaxMs: r.reopenMaxMs });
    return new RadarDevice({ id: r.id, room: r.room, profile, codec, line, settleMs: r.settleMs ?? profile.settleMs, offlineAfterMs: r.offlineAfterMs ?? profile.checkInMs, now });
  });
  const zigbee = config.zigbee ? new ZigbeeRegistry({ config: config.zigbee, dataDir: config.hub.dataDir, log, now, exclude: retired.addresses() }) : null;
  const hub = new SafetyHub({
    devices, buses, rules: config.rules, journal: sink, log, now,
    zigbee: zigbee ?? undefined,
    radars,
    behaviour: behaviourParamsFrom(config),
    inactivity: inactivityParamsFrom(config),
    state: { changed: () => journal.stateChanged() },
  });
  // The rules' state is saved with the journal's commits and taken over from the last run before anything
  // else starts: no reading reaches a rule, and no reopen is accepted, before it is (invariant 9).
  const state = new StateKeeper({ hub: config.hub.id, boot: journal.boot, read: () => hub.rulesState(), now, log });
  journal.setStateSource(state);
  hub.restore(journal.savedState, { hub: config.hub.id, readError: journal.savedStateError });
  const sirenTest = new SirenTest(hub, log);
  voice = openVoice({ config: config.voice, configDir: path.dirname(loaded.file), timeZone: inactivityParamsFrom(config).timeZone, sirenOn: () => hub.rule.sirenOn || sirenTest.running, fallDevices: () => hub.behaviour.snapshot().fall.devices, log, now });
  uplink = await openUplink({ config, configDir: path.dirname(loaded.file), boot: journal.boot, version: VERSION, journal, append: sink.append, sirenTest: sirenTest.run,
    retire: (device, reason, command) => retireDevice({ config, hub, zigbee, retired, now, reload: o.reload, log }, device, reason, command),
    announce: (a) => voice?.announce(a) ?? { spoken: false, reason: "voice prompts are off" },
    log, startedAt: now() });
  cellular = await openCellular({
    config, uplink, append: sink.append, log, now, openLink: o.cellularLink, tickMs: o.cellularTickMs,
    unacked: async () => (await journal.pending(500, Number.MAX_SAFE_INTEGER)).map((r) => r.envelope).filter((e) => e.kind === "alarm"),
  });
  // Mains loss and the battery's state, so the platform knows a home is on battery before it goes silent.
  const power = config.power ? new PowerWatch({ config: { ...config.power, sysfsDir: path.resolve(path.dirname(loaded.file), config.power.sysfsDir) }, append: sink.append, log, now }) : null;
  camera = await openCamera({ config, configDir: path.dirname(loaded.file), log, now, relayClockOffset: () => uplink?.status().clockOffsetMs ?? null });
  commissioning = new Commissioning(() => ({
    hub: config.hub.id, now, sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
    devices: () => deviceViews({ config, hub, zigbee }), append: sink.append, uplink: uplink !== null,
    endEpisode: (device) => hub.endTestEpisode(device),
    unpaired: () => unpairedZigbee({ config, hub, zigbee }),
    pair: zigbee ? async (expect, seconds) => void (await zigbee.pair({ seconds, expect }, () => {})) : undefined,
    secondPath: cellular
      ? () => {
          const views = deviceViews({ config, hub, zigbee });
          return checkSecondPath(cellular, config.hub.id, [...views.map((d) => d.id), CELLULAR_DEVICE_ID], views.flatMap((d) => (d.room ? [d.room] : [])));
        }
      : undefined,
  }), () => setupDeps({ config, hub, zigbee, buses, profiles, radarProfiles }));
  const stopDelivery = journal.onDelivery((op, ids, at) => {
    commissioning?.delivery(op, ids, at);
    if (op === "acked") {
      voice?.acked(ids);
      cellular?.acked(ids);
    }
  });
  // The lag probe once a second instead of Health's 100 ms default: in a quiet home its wake-ups were half the
  // hub's idle CPU (issue 14, a Pi 3B+ core; docs/benchmarks.md). The limit (1 s) and the window (10 s) are
  // unchanged; a stall reads up to 1 s short, so every stall of 2 s or more is seen, and one of 1–2 s only
  // sometimes. A single stall costs at most one watchdog ping anyway; repeated ones are still caught, and a
  // hang longer than WatchdogSec gets the hub restarted whatever the probe says.
  const health = new Health({ probeIntervalMs: HEALTH_PROBE_MS });
  // Only what a restart can fix makes the hub unhealthy (and stops the watchdog pings): a stalled event
  // loop or a request that never settles. A pulled cable or a full disk is reported, not restarted:
  // a restart would not fix it and would drop the journal's in-memory retry queue.
  for (const bus of buses)
    health.register(`bus:${bus.name}`, () => {
      const stuck = bus.busyForMs > 15_000;
      return { ok: !stuck, detail: stuck ? `a request has been running for ${Math.round(bus.busyForMs)} ms` : bus.isUp ? "up" : "port missing, reconnecting" };
    });

  if (zigbee)
    // A coordinator that is down is reported and restarted; restarting the daemon would not bring it back.
    health.register("zigbee", () => ({ ok: true, detail: zigbee.coordinator().state === "up" ? "up" : `coordinator ${zigbee.coordinator().state}: ${zigbee.coordinator().error ?? "starting"}` }));

  const control = new ControlServer(config.hub.controlSocket!, controlHandler({ config, configFile: loaded.file, retired, hub, journal, buses, health, uplink, zigbee, state, commissioning, cellular, power, reload: o.reload, startedAt: now() }), log);
  await control.start();
  for (const bus of buses) await bus.start();
  hub.start();
  // The RS-485 rules already run. The coordinator's first start is awaited for a while (a failure retries in
  // the background); a Zigbee side that cannot start at all is a fault event, never a reason not to run.
  if (zigbee) {
    const first = zigbee.start().catch((e: Error) => {
      log.error({ err: e.message }, "the Zigbee side cannot start");
      hub.record({ kind: "device", type: "fault", severity: "warning", device: "zigbee-coordinator", data: { component: "zigbee", reason: e.message } });
    });
    await Promise.race([first, new Promise<void>((r) => setTimeout(r, ZIGBEE_READY_WAIT_MS).unref())]);
  }
  uplink?.start();
  await power?.start();
  hub.record({
    kind: "audit", type: "hub_started", severity: "info",
    data: { version: VERSION, boot: journal.boot, devices: devices.length, buses: buses.length, radars: radars.length, host: os.hostname(), ...(zigbee ? { zigbee: zigbee.coordinator().state, zigbeeDevices: zigbee.devices().length } : {}) },
  });

  const notifier = createNotifier({ healthy: () => health.ok(), log: (msg, err) => log.warn({ err: err instanceof Error ? err.message : err }, msg) });
  notifier.ready();
  log.info({ hub: config.hub.id, boot: journal.boot, devices: devices.length, buses: buses.map((b) => b.name), socket: config.hub.controlSocket }, "anxin-hub ready");

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      notifier.stopping();
      hub.stop();
      // The last state, readings-level details too, goes with the journal's last commit.
      state.writeNext();
      journal.stateChanged();
      await hub.stopRadars();
      // A clean stop: the uplink tells the relay, signed, that this is a planned stop (bounded wait for the
      // broker, then a clean disconnect, so no will), and the relay waits for the hub to come back before
      // opening a hub_offline incident. A crash or kill never gets here: the will says "lost".
      await uplink?.stop({ reason: "stopping" }).catch((e: Error) => log.error({ err: e.message }, "uplink: error while stopping"));
      await sirenTest.stop();
      await camera?.stop();
      await voice?.stop();
      await cellular?.stop();
      await power?.stop();
      await control.stop();
      stopDelivery();
      await zigbee?.stop();
      for (const bus of buses) await bus.stop();
      await journal.close();
      notifier.close();
      health.close?.();
      log.info("anxin-hub stopped");
    })());
  return { config, hub, journal, buses, sim, health, uplink, zigbee, radars, simRadars, state, voice, cellular, power, stop };
}
