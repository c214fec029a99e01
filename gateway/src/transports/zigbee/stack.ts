// Owns herdsman's Controller: starts it with the hub's own network secrets and database, passes its
// events on, and when the coordinator drops out (or will not start) reports a fault and starts it again
// with exponential backoff. Nothing else in the hub waits for it: RS-485 rules, the journal and the
// uplink keep running while the Zigbee side is down.
import { EventEmitter } from "node:events";
import path from "node:path";
import { Controller, setLogger, type Events, type Models } from "zigbee-herdsman";
import type { Logger } from "pino";
import { reconnectDelay } from "../../uplink/backoff.js";
import type { NetworkSecrets } from "./network-keys.js";
import { zigbeeLogger } from "./definitions.js";
import { routeCoordinatorSerialThroughMainThread } from "./coordinator-serial.js";

export interface StackOptions {
  adapter: "zstack" | "ember" | "deconz" | "zigate" | "zboss";
  path: string;
  baudRate?: number;
  rtscts?: boolean;
  channel: number;
  /** <dataDir>/zigbee: database.db, its backup and the coordinator backup live here. */
  dir: string;
  secrets: NetworkSecrets;
  restartMinMs: number;
  restartMaxMs: number;
  /** A start attempt that takes longer than this is abandoned and retried. */
  startTimeoutMs: number;
  /** Decides whether a joining device may stay (herdsman asks it to leave otherwise). */
  accept: (ieee: string) => Promise<boolean>;
  log: Logger;
  random?: () => number;
}

export type StackState = "starting" | "up" | "down" | "stopped";

type StackEvents = {
  up: [info: { result: string; attempt: number; downForMs: number | null }];
  fault: [info: { reason: string; attempt: number; retryInMs: number }];
  message: [m: Events.MessagePayload];
  deviceJoined: [d: Events.DeviceJoinedPayload];
  deviceInterview: [d: Events.DeviceInterviewPayload];
  deviceAnnounce: [d: Events.DeviceAnnouncePayload];
  deviceLeave: [d: Events.DeviceLeavePayload];
  lastSeenChanged: [d: Events.LastSeenChangedPayload];
  permitJoinChanged: [d: Events.PermitJoinChangedPayload];
};

const FORWARDED = ["message", "deviceJoined", "deviceInterview", "deviceAnnounce", "deviceLeave", "lastSeenChanged", "permitJoinChanged"] as const;

export class ZigbeeStack extends EventEmitter<StackEvents> {
  private controller: Controller | null = null;
  private _state: StackState = "stopped";
  private failures = 0;
  private attempts = 0;
  private retryTimer?: NodeJS.Timeout;
  private downSince: number | null = null;
  private lastError: string | null = null;
  private stopped = false;

  constructor(private readonly o: StackOptions) {
    super();
    setLogger(zigbeeLogger(o.log.child({ component: "zigbee-herdsman" })));
  }

  get state(): StackState {
    return this._state;
  }

  get error(): string | null {
    return this.lastError;
  }

  /** The running controller, or null while the coordinator is down. */
  get up(): Controller | null {
    return this._state === "up" ? this.controller : null;
  }

  /** Makes the first attempt; resolves when it has succeeded or failed (a failure schedules retries). */
  async start(): Promise<void> {
    this.stopped = false;
    try {
      routeCoordinatorSerialThroughMainThread();
    } catch (e) {
      // Zigbee still works, its port I/O through libuv's thread pool as serialport does it.
      this.o.log.error({ err: (e as Error).message }, "zigbee: the coordinator's port could not be moved to the main thread");
    }
    await this.attempt();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    const c = this.controller;
    this.controller = null;
    this._state = "stopped";
    if (c) await c.stop().catch((e: Error) => this.o.log.warn({ err: e.message }, "zigbee controller stop failed"));
  }

  devices(): Models.Device[] {
    const c = this.up;
    return c ? [...c.getDevicesIterator((d) => d.type !== "Coordinator")] : [];
  }

  private makeController(): Controller {
    const o = this.o;
    return new Controller({
      network: { panID: o.secrets.panID, extendedPanID: o.secrets.extendedPanID, channelList: [o.channel], networkKey: o.secrets.networkKey, networkKeyDistribute: false },
      serialPort: { path: o.path, adapter: o.adapter, baudRate: o.baudRate, rtscts: o.rtscts },
      databasePath: path.join(o.dir, "database.db"),
      databaseBackupPath: path.join(o.dir, "database.db.backup"),
      backupPath: path.join(o.dir, "coordinator_backup.json"),
      adapter: { disableLED: false },
      acceptJoiningDeviceHandler: (ieee) => o.accept(ieee),
    });
  }

  private async attempt(): Promise<void> {
    if (this.stopped) return;
    this.attempts++;
    this._state = this.downSince === null && this.attempts === 1 ? "starting" : "down";
    const c = this.makeController();
    this.controller = c;
    const on = c.on.bind(c) as (e: string, l: (p: unknown) => void) => void;
    for (const ev of FORWARDED) on(ev, (p) => (this.emit as (e: string, p: unknown) => boolean)(ev, p));
    c.on("adapterDisconnected", () => {
      if (this.controller === c) void this.fail(c, "coordinator disconnected (adapterDisconnected)");
    });
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(new Error(`start did not finish within ${this.o.startTimeoutMs} ms`)), this.o.startTimeoutMs);
    try {
      const result = await c.start(abort.signal);
      clearTimeout(timer);
      if (this.stopped) return;
      const downForMs = this.downSince === null ? null : Date.now() - this.downSince;
      this._state = "up";
      this.failures = 0;
      this.downSince = null;
      this.lastError = null;
      this.o.log.info({ result, attempt: this.attempts, channel: this.o.channel, adapter: this.o.adapter }, "zigbee coordinator up");
      this.emit("up", { result, attempt: this.attempts, downForMs });
    } catch (e) {
      clearTimeout(timer);
      await this.fail(c, `coordinator did not start: ${(e as Error).message}`);
    }
  }

  private async fail(c: Controller, reason: string): Promise<void> {
    if (this.stopped || this.controller !== c) return;
    this._state = "down";
    this.downSince ??= Date.now();
    this.lastError = reason;
    this.controller = null;
    c.removeAllListeners();
    // Saves the database where it can; a controller that never started has nothing to save.
    await c.stop().catch(() => {});
    const retryInMs = reconnectDelay(this.failures++, this.o.restartMinMs, this.o.restartMaxMs, this.o.random);
    this.o.log.error({ reason, attempt: this.attempts, retryInMs }, "zigbee coordinator down; restarting with backoff");
    this.emit("fault", { reason, attempt: this.attempts, retryInMs });
    if (this.stopped) return;
    this.retryTimer = setTimeout(() => void this.attempt(), retryInMs);
  }
}
