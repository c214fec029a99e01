// Installs the fake coordinator under zigbee-herdsman's real Controller: Controller.start() calls the static
// Adapter.create factory, which is swapped for one that builds a FakeAdapter; herdsman's fixed waits (10 s for
// Heiman/Tuya end devices, 500 ms IAS enrolment polls, 12 s channel change) go through utils/wait, which is scaled.
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { Controller } from "zigbee-herdsman";
import { Adapter } from "zigbee-herdsman/dist/adapter/adapter.js";
import { FakeAdapter } from "./fake-adapter.js";
import type { VirtualDevice } from "./virtual-device.js";

// The CommonJS export objects themselves: ESM namespace views of them are read-only.
const require = createRequire(import.meta.url);
const waitModule = require("zigbee-herdsman/dist/utils/wait") as { wait: (ms: number) => Promise<void> };
const loggerModule = require("zigbee-herdsman/dist/utils/logger") as { logger: unknown; setLogger(l: unknown): void };
const zhcLoggerModule = require("zigbee-herdsman-converters/lib/logger") as { logger: unknown; setLogger(l: unknown): void };

export interface ZigbeeRig {
  /** The FakeAdapter the Controller created most recently (throws if none yet). */
  adapter(): FakeAdapter;
  /** Every FakeAdapter created while installed, oldest first (one per Controller.start()). */
  adapters(): readonly FakeAdapter[];
  /** Puts another device in radio range of the current and future adapters. */
  addDevice(d: VirtualDevice): void;
  restore(): void;
}

let installed = false;

const quietLogger = {
  debug: () => {},
  info: () => {},
  warning: () => {},
  error: () => {},
};

/**
 * Replaces Adapter.create (herdsman's static factory used by Controller.start) with the fake and compresses herdsman's
 * internal waits (utils/wait) by `waitScale` (default 0.01); restore() puts both back. Devices given here are "in radio
 * range" of every FakeAdapter created while installed. herdsman's and the converters' console logging is silenced unless `quiet: false`
 * or ANXIN_TEST_LOG is set.
 */
export function installFakeZigbee(opts: { devices?: VirtualDevice[]; waitScale?: number; quiet?: boolean } = {}): ZigbeeRig {
  if (installed) throw new Error("installFakeZigbee: already installed (call restore() first)");
  installed = true;
  const devices = [...(opts.devices ?? [])];
  const created: FakeAdapter[] = [];
  const scale = opts.waitScale ?? 0.01;
  // Kept only to be put back on restore().
  // eslint-disable-next-line @typescript-eslint/unbound-method -- a static factory saved to be restored, never called unbound here
  const origCreate = Adapter.create;
  const origWait = waitModule.wait;
  const origLogger = loggerModule.logger;
  const origZhcLogger = zhcLoggerModule.logger;

  Adapter.create = async (networkOptions, serialPortOptions, backupPath, adapterOptions) => {
    const a = new FakeAdapter(networkOptions, serialPortOptions, backupPath, adapterOptions);
    for (const d of devices) a.add(d);
    created.push(a);
    return a;
  };
  waitModule.wait = (ms: number) => origWait(Math.ceil(ms * scale));
  if (opts.quiet ?? !process.env.ANXIN_TEST_LOG) {
    loggerModule.setLogger(quietLogger);
    zhcLoggerModule.setLogger(quietLogger);
  }

  return {
    adapter() {
      const a = created.at(-1);
      if (!a) throw new Error("no FakeAdapter yet: start a Controller first");
      return a;
    },
    adapters: () => created,
    addDevice(d) {
      devices.push(d);
      for (const a of created) if (a.isUp()) a.add(d);
    },
    restore() {
      Adapter.create = origCreate;
      waitModule.wait = origWait;
      loggerModule.setLogger(origLogger);
      zhcLoggerModule.setLogger(origZhcLogger);
      installed = false;
    },
  };
}

/** Controller options for a test network in `dir`: fresh random key, PAN and extended PAN, the fake serial path. */
export function testControllerOptions(dir: string): ConstructorParameters<typeof Controller>[0] {
  const key = [...randomBytes(16)];
  const ext = [...randomBytes(8)];
  return {
    network: { panID: 1 + (randomBytes(2).readUInt16LE(0) % 0xfffd), extendedPanID: ext, channelList: [15], networkKey: key, networkKeyDistribute: false },
    serialPort: { path: "fake", adapter: "zstack" },
    databasePath: path.join(dir, "database.db"),
    databaseBackupPath: path.join(dir, "database.db.backup"),
    backupPath: path.join(dir, "coordinator_backup.json"),
    adapter: { disableLED: false },
    acceptJoiningDeviceHandler: async () => true,
  };
}

type InterviewStatus = "started" | "successful" | "failed";

/** Resolves when herdsman reports the interview of `ieee` finished (successful or failed). */
export function waitForInterview(controller: Controller, ieee: string, timeoutMs = 10_000): Promise<InterviewStatus> {
  return new Promise((resolve, reject) => {
    const onInterview = (e: { status: InterviewStatus; device: { ieeeAddr: string } }): void => {
      if (e.device.ieeeAddr !== ieee || e.status === "started") return;
      clearTimeout(timer);
      controller.off("deviceInterview", onInterview);
      resolve(e.status);
    };
    const timer = setTimeout(() => {
      controller.off("deviceInterview", onInterview);
      reject(new Error(`interview of ${ieee} did not finish within ${timeoutMs} ms`));
    }, timeoutMs);
    controller.on("deviceInterview", onInterview);
  });
}

type ControllerOptions = ConstructorParameters<typeof Controller>[0];

export interface TestNetwork {
  controller: Controller;
  rig: ZigbeeRig;
  dir: string;
  options: ControllerOptions;
}

/** A started Controller on the fake coordinator with these devices in range, in a temp directory; always torn down. */
export async function withNetwork(devices: VirtualDevice[], fn: (n: TestNetwork) => Promise<void>, over: Partial<ControllerOptions> = {}, waitScale?: number): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "anxin-zigbee-"));
  const rig = installFakeZigbee({ devices, waitScale });
  const options = { ...testControllerOptions(dir), ...over };
  const controller = new Controller(options);
  try {
    const started = await controller.start();
    if (started !== "resumed") throw new Error(`the test network started as '${started}', expected 'resumed'`);
    await fn({ controller, rig, dir, options });
  } finally {
    await controller.stop().catch(() => {});
    rig.restore();
    await rm(dir, { recursive: true, force: true });
  }
}

/** Joins `d` (joining must be open) and waits for its interview to succeed. */
export async function pairDevice(controller: Controller, d: VirtualDevice): Promise<void> {
  const done = waitForInterview(controller, d.ieee);
  await d.join();
  const status = await done;
  if (status !== "successful") throw new Error(`${d.product} interview: ${status}`);
}
