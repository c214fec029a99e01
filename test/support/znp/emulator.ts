/**
 * A Z-Stack 3.x ZNP coordinator emulator on a TCP port: the host side speaks MT over UNPI exactly
 * as to a CC2652 flashed with Z-Stack coordinator firmware, so zigbee-herdsman's real `zstack`
 * adapter (path "tcp://127.0.0.1:<port>", or a socat PTY bridged to it) runs unmodified against it.
 *
 * Modelled: SYS ping/version/ext address, OSAL NV items and extended NV tables (kept in memory for
 * the life of the emulator, so a host restart resumes the network it formed), soft reset with
 * startup options, BDB network formation and startup from NV, AF endpoint registration, groups,
 * permit join, the trust-centre join and device announce of emulated devices, ZDO requests
 * answered as AREQ callbacks, AF data requests with data confirms (MAC_NO_ACK when the device is
 * out of range) and AF incoming messages for everything the devices send.
 *
 * The devices are zigbee-herdsman-free VirtualDevice models (test/support/zigbee/virtual-device.ts);
 * the emulator is their ZigbeeRadio. MT framing uses herdsman's own definitions (see mt.ts).
 */
import { createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { Zdo } from "zigbee-herdsman";
import { DevStates, NvItemsIds, ZnpCommandStatus } from "zigbee-herdsman/dist/adapter/z-stack/constants/common.js";
import type { UplinkFrame, VirtualDevice, ZigbeeRadio } from "../zigbee/virtual-device.js";
import * as zdoCodec from "../zigbee/zdo-codec.js";
import {
  Frame,
  Parser,
  Subsystem,
  Type,
  areq,
  areqRaw,
  commandById,
  decodeOutgoing,
  decodeRequest,
  srsp,
  srspRaw,
  subsystemName,
  zdoCommand,
  type MtPayload,
  type SubsystemId,
} from "./mt.js";
import { NvMemory, NvStatus } from "./nv.js";

export interface ZnpEmulatorOptions {
  /** The coordinator's IEEE address ("0x" + 16 hex digits). */
  ieeeAddr?: string;
  /** Firmware build date reported by SYS.version (herdsman keys LED handling on it). */
  revision?: number;
  /** Delay between SYS.resetReq and SYS.resetInd. */
  resetMs?: number;
  /** Time the BDB formation takes before ZDO.stateChangeInd {state: 9}. */
  formationMs?: number;
}

/** One MT frame on the wire, in either direction. */
export interface TraceEntry {
  dir: "host->znp" | "znp->host";
  type: "SREQ" | "SRSP" | "AREQ" | "POLL";
  command: string; // e.g. "SYS.osalNvReadExt"
  payload?: MtPayload;
  /** performance.now() when the emulator saw or sent it */
  at: number;
}

interface Registration {
  endpoint: number;
  appprofid: number;
  appdeviceid: number;
  appdevver: number;
  appinclusterlist: number[];
  appoutclusterlist: number[];
}

const TYPE_NAME = ["POLL", "SREQ", "AREQ", "SRSP"] as const;
const COORDINATOR_NWK = 0x0000;
const AF_DUPLICATE_ENTRY = ZnpCommandStatus.APS_DUPLICATE_ENTRY;

export class ZnpEmulator implements ZigbeeRadio {
  readonly nv = new NvMemory();
  readonly trace: TraceEntry[] = [];
  /** Host requests the emulator does not implement (a test should expect none). */
  readonly unhandled: string[] = [];
  /** Each AF.dataRequest the host made: destination, cluster and ZCL bytes, with the confirm status. */
  readonly dataRequests: Array<{ nwk: number; endpoint: number; clusterId: number; data: Buffer; status: number; at: number }> = [];

  private readonly ieee: string;
  private readonly revision: number;
  private readonly resetMs: number;
  private readonly formationMs: number;
  private readonly server: Server;
  private host?: Socket;
  private readonly sockets = new Set<Socket>();
  private readonly devices = new Set<VirtualDevice>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private devState: number = DevStates.HOLD;
  private registrations = new Map<number, Registration>();
  private groups = new Map<string, string>(); // "ep:group" -> name
  private permitUntil = 0;
  private closed = false;
  private readonly failures = new Map<number, { count: number; status: number }>();

  constructor(options: ZnpEmulatorOptions = {}) {
    this.ieee = (options.ieeeAddr ?? "0x00124b00a1b2c3d4").toLowerCase();
    this.revision = options.revision ?? 20240710;
    this.resetMs = options.resetMs ?? 5;
    this.formationMs = options.formationMs ?? 20;
    this.server = createServer((socket) => this.onConnection(socket));
  }

  /** Listens on an ephemeral port of 127.0.0.1; returns the herdsman serial path. */
  async listen(): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(0, "127.0.0.1", () => resolve());
    });
    return this.path;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  get path(): string {
    return `tcp://127.0.0.1:${this.port}`;
  }

  get coordinatorIeee(): string {
    return this.ieee;
  }

  get hostConnected(): boolean {
    return this.host !== undefined && !this.host.destroyed;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const s of this.sockets) s.destroy();
    for (const d of this.devices) d.detach(this);
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Power cycle: RAM state is gone (network stopped, endpoints unregistered), NV stays. */
  powerCycle(): void {
    this.devState = DevStates.HOLD;
    this.registrations = new Map();
    this.groups = new Map();
    this.permitUntil = 0;
  }

  /**
   * Radio fault injection: the next `count` AF data requests to `nwk` get this confirm status
   * (default MAC_NO_ACK, a missing MAC acknowledgement) although the device is in range.
   */
  failNext(nwk: number, count: number, status: number = ZnpCommandStatus.MAC_NO_ACK): void {
    this.failures.set(nwk, { count, status });
  }

  /** Names of the MT commands in the trace, in order, optionally from one index on. */
  commands(from = 0): string[] {
    return this.trace.slice(from).map((t) => `${t.type} ${t.command}`);
  }

  // ---- radio side (ZigbeeRadio) --------------------------------------------------------------------------------

  /** Brings a device into radio range of this coordinator. */
  addDevice(device: VirtualDevice): VirtualDevice {
    this.devices.add(device);
    device.attach(this);
    return device;
  }

  get panId(): number {
    return this.nv.formedNetwork()?.panId ?? 0xffff;
  }

  isUp(): boolean {
    return !this.closed && this.devState === DevStates.ZB_COORD;
  }

  permitsJoin(): boolean {
    return this.isUp() && Date.now() < this.permitUntil;
  }

  deviceJoined(device: VirtualDevice): void {
    this.toHost(areq(Subsystem.ZDO, "tcDeviceInd", { nwkaddr: device.nwk, extaddr: device.ieee, parentaddr: COORDINATOR_NWK }));
  }

  deviceAnnounced(device: VirtualDevice, payload: Buffer): void {
    const cmd = zdoCommand(Type.AREQ, Zdo.ClusterId.END_DEVICE_ANNOUNCE);
    if (!cmd) throw new Error("no MT command for the device announce");
    this.toHost(areqRaw(Subsystem.ZDO, cmd.ID, Buffer.concat([u16(device.nwk), payload])));
  }

  deviceLeft(device: VirtualDevice): void {
    this.toHost(areq(Subsystem.ZDO, "leaveInd", { srcaddr: device.nwk, extaddr: device.ieee, request: 0, removechildren: 0, rejoin: 0 }));
  }

  zclFromDevice(device: VirtualDevice, frame: UplinkFrame): void {
    this.toHost(
      areq(Subsystem.AF, "incomingMsg", {
        groupid: 0,
        clusterid: frame.clusterId,
        srcaddr: device.nwk,
        srcendpoint: frame.srcEndpoint,
        dstendpoint: frame.dstEndpoint,
        wasbroadcast: 0,
        linkquality: device.linkquality,
        securityuse: 0,
        timestamp: Date.now() & 0xffffffff,
        transseqnumber: 0,
        len: frame.data.length,
        data: frame.data,
      }),
    );
  }

  private deviceByNwk(nwk: number): VirtualDevice | undefined {
    return [...this.devices].find((d) => d.attachedTo(this) && d.nwk === nwk);
  }

  private deviceByIeee(ieee: string): VirtualDevice | undefined {
    return [...this.devices].find((d) => d.attachedTo(this) && d.ieee === ieee.toLowerCase());
  }

  // ---- host side -----------------------------------------------------------------------------------------------

  private onConnection(socket: Socket): void {
    // One host at a time, as on a serial line: a new connection replaces the old one.
    this.host?.destroy();
    this.host = socket;
    this.sockets.add(socket);
    socket.setNoDelay(true);
    const parser = new Parser();
    parser.on("parsed", (frame: Frame) => {
      try {
        this.onFrame(frame);
      } catch (error) {
        this.unhandled.push(`${subsystemName(frame.subsystem)}.${frame.commandID}: ${(error as Error).message}`);
      }
    });
    socket.pipe(parser);
    socket.on("error", () => undefined);
    socket.on("close", () => {
      this.sockets.delete(socket);
      if (this.host === socket) this.host = undefined;
    });
  }

  private toHost(bytes: Buffer): void {
    const frame = parseOne(bytes);
    const cmd = commandById(frame.subsystem, frame.commandID);
    this.trace.push({
      dir: "znp->host",
      type: TYPE_NAME[frame.type] ?? "POLL",
      command: `${subsystemName(frame.subsystem)}.${cmd?.name ?? frame.commandID}`,
      payload: decodeOutgoing(frame),
      at: performance.now(),
    });
    if (this.hostConnected) this.host?.write(bytes);
  }

  /** Sends after `ms` (0 = next turn of the event loop), keeping the order frames were scheduled in. */
  private later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (!this.closed) fn();
    }, ms);
    this.timers.add(t);
  }

  private onFrame(frame: Frame): void {
    const decoded = decodeRequest(frame);
    const name = `${subsystemName(frame.subsystem)}.${decoded?.cmd.name ?? frame.commandID}`;
    this.trace.push({ dir: "host->znp", type: TYPE_NAME[frame.type] ?? "POLL", command: name, payload: decoded?.payload, at: performance.now() });
    if (!decoded) {
      this.unhandled.push(name);
      return;
    }
    const { cmd, payload } = decoded;
    if ("zdoClusterId" in cmd && frame.type === Type.SREQ) {
      this.onZdoRequest(cmd.ID, cmd.zdoClusterId, Buffer.from(frame.data));
      return;
    }
    const handler = this.handlers[name];
    if (!handler) {
      this.unhandled.push(name);
      return;
    }
    handler(payload);
  }

  private reply(subsystem: SubsystemId, name: string, payload: MtPayload): void {
    this.toHost(srsp(subsystem, name, payload));
  }

  private readonly handlers: Record<string, (p: MtPayload) => void> = {
    // ---- SYS
    "SYS.ping": () => this.reply(Subsystem.SYS, "ping", { capabilities: 0x0d79 }),
    "SYS.version": () =>
      this.reply(Subsystem.SYS, "version", {
        transportrev: 2,
        product: 1, // Z-Stack 3.x.0
        majorrel: 2,
        minorrel: 7,
        maintrel: 1,
        revision: this.revision,
      }),
    "SYS.getExtAddr": () => this.reply(Subsystem.SYS, "getExtAddr", { extaddress: this.ieee }),
    "SYS.osalNvLength": (p) => this.reply(Subsystem.SYS, "osalNvLength", { length: this.nv.length(num(p.id)) }),
    "SYS.osalNvRead": (p) => this.nvRead("osalNvRead", num(p.id), num(p.offset)),
    "SYS.osalNvReadExt": (p) => this.nvRead("osalNvReadExt", num(p.id), num(p.offset)),
    "SYS.osalNvItemInit": (p) =>
      this.reply(Subsystem.SYS, "osalNvItemInit", { status: this.nv.init(num(p.id), num(p.len), buf(p.initvalue)) }),
    "SYS.osalNvWrite": (p) => this.reply(Subsystem.SYS, "osalNvWrite", { status: this.nv.write(num(p.id), num(p.offset), buf(p.value)) }),
    "SYS.osalNvWriteExt": (p) =>
      this.reply(Subsystem.SYS, "osalNvWriteExt", { status: this.nv.write(num(p.id), num(p.offset), buf(p.value)) }),
    "SYS.osalNvDelete": (p) => this.reply(Subsystem.SYS, "osalNvDelete", { status: this.nv.delete(num(p.id)) }),
    "SYS.nvLength": (p) => this.reply(Subsystem.SYS, "nvLength", { len: this.nv.extendedLength(num(p.sysid), num(p.itemid), num(p.subid)) }),
    "SYS.nvRead": (p) => {
      const value = this.nv.extendedRead(num(p.sysid), num(p.itemid), num(p.subid), num(p.offset), num(p.len));
      this.reply(Subsystem.SYS, "nvRead", { status: value ? NvStatus.SUCCESS : NvStatus.FAILURE, len: value?.length ?? 0, value: value ?? Buffer.alloc(0) });
    },
    "SYS.nvCreate": (p) =>
      this.reply(Subsystem.SYS, "nvCreate", { status: this.nv.extendedCreate(num(p.sysid), num(p.itemid), num(p.subid), num(p.len)) }),
    "SYS.nvWrite": (p) =>
      this.reply(Subsystem.SYS, "nvWrite", {
        status: this.nv.extendedWrite(num(p.sysid), num(p.itemid), num(p.subid), num(p.offset), buf(p.value)),
      }),
    "SYS.nvDelete": (p) => this.reply(Subsystem.SYS, "nvDelete", { status: this.nv.extendedDelete(num(p.sysid), num(p.itemid), num(p.subid)) }),
    "SYS.stackTune": () => this.reply(Subsystem.SYS, "stackTune", { value: 0 }),
    "SYS.resetReq": () => this.reset(),

    // ---- UTIL
    "UTIL.getDeviceInfo": () => {
      const children = [...this.devices].filter((d) => d.attachedTo(this)).map((d) => d.nwk);
      this.reply(Subsystem.UTIL, "getDeviceInfo", {
        status: 0,
        ieeeaddr: this.ieee,
        shortaddr: COORDINATOR_NWK,
        devicetype: 0x07, // coordinator, router and end device capable build
        devicestate: this.devState,
        numassocdevices: children.length,
        assocdeviceslist: children,
      });
    },
    "UTIL.ledControl": () => this.reply(Subsystem.UTIL, "ledControl", { status: 0 }),
    "UTIL.assocGetWithAddress": (p) => {
      const device = this.deviceByIeee(String(p.extaddr));
      this.reply(Subsystem.UTIL, "assocGetWithAddress", {
        nwkaddr: device ? device.nwk : 0xfffe,
        addridx: 0,
        noderelation: device ? (device.spec.kind === "EndDevice" ? 1 : 2) : 0xff,
      });
    },
    "UTIL.assocRemove": () => this.reply(Subsystem.UTIL, "assocRemove", { status: 0 }),
    "UTIL.assocAdd": () => this.reply(Subsystem.UTIL, "assocAdd", { status: 0 }),

    // ---- APP_CNF (BDB)
    "APP_CNF.bdbSetChannel": () => this.reply(Subsystem.APP_CNF, "bdbSetChannel", { status: 0 }),
    "APP_CNF.bdbStartCommissioning": (p) => {
      this.reply(Subsystem.APP_CNF, "bdbStartCommissioning", { status: 0 });
      if (num(p.mode) & 0x04) this.formNetwork();
    },

    // ---- ZDO (non-ZDO-cluster commands)
    "ZDO.startupFromApp": () => {
      const network = this.nv.formedNetwork();
      // 0: restored the network from NV, 1: started a new one
      this.reply(Subsystem.ZDO, "startupFromApp", { status: network ? 0 : 1 });
      this.startNetwork(network === undefined);
    },
    "ZDO.extNwkInfo": () => {
      const network = this.nv.formedNetwork();
      this.reply(Subsystem.ZDO, "extNwkInfo", {
        shortaddr: COORDINATOR_NWK,
        devstate: this.devState,
        panid: network?.panId ?? 0xffff,
        parentaddr: COORDINATOR_NWK,
        extendedpanid: network ? `0x${network.extendedPanId.toString("hex")}` : "0xffffffffffffffff",
        parentextaddr: "0x0000000000000000",
        channel: network?.channel ?? 0,
      });
    },
    "ZDO.extRouteDisc": () => this.reply(Subsystem.ZDO, "extRouteDisc", { status: 0 }),
    "ZDO.extFindGroup": (p) => {
      const name = this.groups.get(`${num(p.endpoint)}:${num(p.groupid)}`);
      this.reply(Subsystem.ZDO, "extFindGroup", {
        status: name === undefined ? ZnpCommandStatus.FAILURE : ZnpCommandStatus.SUCCESS,
        groupid: num(p.groupid),
        namelen: 0,
        groupname: Buffer.alloc(0),
      });
    },
    "ZDO.extAddGroup": (p) => {
      this.groups.set(`${num(p.endpoint)}:${num(p.groupid)}`, "");
      this.reply(Subsystem.ZDO, "extAddGroup", { status: 0 });
    },
    "ZDO.extRemoveGroup": (p) => {
      const existed = this.groups.delete(`${num(p.endpoint)}:${num(p.groupid)}`);
      this.reply(Subsystem.ZDO, "extRemoveGroup", { status: existed ? 0 : 1 });
    },

    // ---- AF
    "AF.register": (p) => {
      const endpoint = num(p.endpoint);
      if (this.registrations.has(endpoint)) {
        this.reply(Subsystem.AF, "register", { status: AF_DUPLICATE_ENTRY });
        return;
      }
      this.registrations.set(endpoint, {
        endpoint,
        appprofid: num(p.appprofid),
        appdeviceid: num(p.appdeviceid),
        appdevver: num(p.appdevver),
        appinclusterlist: (p.appinclusterlist as number[]) ?? [],
        appoutclusterlist: (p.appoutclusterlist as number[]) ?? [],
      });
      this.reply(Subsystem.AF, "register", { status: 0 });
    },
    "AF.dataRequest": (p) => this.dataRequest(p),
    "AF.dataRequestExt": (p) => {
      // group and broadcast frames: accepted and confirmed, no device model listens to them
      this.reply(Subsystem.AF, "dataRequestExt", { status: 0 });
      this.later(1, () => this.toHost(areq(Subsystem.AF, "dataConfirm", { status: 0, endpoint: num(p.srcendpoint), transid: num(p.transid) })));
    },
    "AF.interPanCtl": () => this.reply(Subsystem.AF, "interPanCtl", { status: 0 }),
  };

  private nvRead(name: "osalNvRead" | "osalNvReadExt", id: number, offset: number): void {
    // Short reads: the host loops with a growing offset, as over a real UART.
    const value = this.nv.read(id, offset, name === "osalNvRead" ? 244 : 240);
    this.reply(Subsystem.SYS, name, {
      status: value ? NvStatus.SUCCESS : NvStatus.FAILURE,
      len: value?.length ?? 0,
      value: value ?? Buffer.alloc(0),
    });
  }

  /** SYS.resetReq: the chip reboots; startup option bits 0/1 clear configuration / network state. */
  private reset(): void {
    this.powerCycle();
    const option = this.nv.get(NvItemsIds.STARTUP_OPTION)?.[0] ?? 0;
    if (option & 0x02) this.nv.clearNetworkState();
    if (option & 0x01) {
      // configuration back to defaults: the commissioning items the host writes again afterwards
      for (const id of [NvItemsIds.PANID, NvItemsIds.CHANLIST, NvItemsIds.EXTENDED_PAN_ID, NvItemsIds.APS_USE_EXT_PANID, NvItemsIds.PRECFGKEY]) {
        this.nv.delete(id);
      }
    }
    if (option & 0x03) this.nv.set(NvItemsIds.STARTUP_OPTION, Buffer.from([0x00]));
    this.later(this.resetMs, () =>
      this.toHost(areq(Subsystem.SYS, "resetInd", { reason: 0x02, transportrev: 2, productid: 1, majorrel: 2, minorrel: 7, hwrev: 1 })),
    );
  }

  /** BDB network formation from the commissioning NV items the host wrote. */
  private formNetwork(): void {
    const network = this.nv.commissioningParameters();
    this.nv.storeFormedNetwork(network);
    this.startNetwork(true);
  }

  private startNetwork(formed: boolean): void {
    this.later(1, () => {
      this.devState = DevStates.COORD_STARTING;
      this.toHost(areq(Subsystem.ZDO, "stateChangeInd", { state: DevStates.COORD_STARTING }));
    });
    this.later(formed ? Math.max(2, this.formationMs) : 2, () => {
      this.devState = DevStates.ZB_COORD;
      this.toHost(areq(Subsystem.ZDO, "stateChangeInd", { state: DevStates.ZB_COORD }));
      if (formed) this.toHost(areq(Subsystem.APP_CNF, "bdbComissioningNotifcation", { status: 0 }));
    });
  }

  // ---- AF data to devices ----------------------------------------------------------------------------------------

  private dataRequest(p: MtPayload): void {
    const nwk = num(p.dstaddr);
    const endpoint = num(p.destendpoint);
    const clusterId = num(p.clusterid);
    const data = Buffer.from(buf(p.data));
    const device = this.deviceByNwk(nwk);
    let status: number = device?.online ? ZnpCommandStatus.SUCCESS : ZnpCommandStatus.MAC_NO_ACK;
    const injected = this.failures.get(nwk);
    if (injected && injected.count > 0) {
      injected.count--;
      status = injected.status;
    }
    this.dataRequests.push({ nwk, endpoint, clusterId, data, status, at: performance.now() });
    this.reply(Subsystem.AF, "dataRequest", { status: 0 });
    // The confirm follows the MAC acknowledgement; the device's answer comes after that.
    this.later(1, () => {
      this.toHost(areq(Subsystem.AF, "dataConfirm", { status, endpoint: num(p.srcendpoint), transid: num(p.transid) }));
      if (device && status === ZnpCommandStatus.SUCCESS) {
        device.receiveZcl({ dstEndpoint: endpoint, srcEndpoint: num(p.srcendpoint), clusterId, data });
      }
    });
  }

  // ---- ZDO requests ------------------------------------------------------------------------------------------------

  /**
   * herdsman's z-stack adapter puts the destination in front of most ZDO requests (and an
   * address mode for permit join); the answer comes later as the matching ZDO AREQ callback.
   */
  private onZdoRequest(mtId: number, clusterId: number, data: Buffer): void {
    let destination: number | undefined;
    let body: Buffer;
    switch (clusterId) {
      case Zdo.ClusterId.PERMIT_JOINING_REQUEST: {
        const duration = data[3] ?? 0;
        this.toHost(srspRaw(Subsystem.ZDO, mtId, Buffer.from([0])));
        this.permitUntil = duration === 0 ? 0 : Date.now() + duration * 1000;
        this.later(1, () => {
          this.zdoCallback(clusterId, COORDINATOR_NWK, zdoCodec.statusOnly(Zdo.Status.SUCCESS));
          this.toHost(areq(Subsystem.ZDO, "permitJoinInd", { duration }));
        });
        return;
      }
      case Zdo.ClusterId.NETWORK_ADDRESS_REQUEST: {
        this.toHost(srspRaw(Subsystem.ZDO, mtId, Buffer.from([0])));
        const ieee = zdoCodec.readRequest(clusterId, data).ieee ?? "";
        const target = ieee === this.ieee ? "coordinator" : this.deviceByIeee(ieee);
        if (target === "coordinator") this.later(1, () => this.addressCallback(clusterId, zdoCodec.addressResponse(this.ieee, COORDINATOR_NWK)));
        else if (target?.online) this.askDevice(target, clusterId, data, true);
        return;
      }
      case Zdo.ClusterId.IEEE_ADDRESS_REQUEST:
        destination = data.readUInt16LE(0);
        body = data;
        break;
      case Zdo.ClusterId.NWK_UPDATE_REQUEST:
        destination = data.readUInt16LE(0);
        body = data.subarray(3);
        break;
      default:
        destination = data.readUInt16LE(0);
        body = data.subarray(2);
    }
    this.toHost(srspRaw(Subsystem.ZDO, mtId, Buffer.from([0])));
    if (destination === COORDINATOR_NWK) {
      const response = this.coordinatorZdo(clusterId, body);
      if (response) this.later(1, () => this.zdoCallback(clusterId, COORDINATOR_NWK, response));
      return;
    }
    const device = this.deviceByNwk(destination);
    // Unknown or out-of-range destination: the request dies in the air, no callback ever comes.
    if (device?.online) this.askDevice(device, clusterId, body, clusterId === Zdo.ClusterId.IEEE_ADDRESS_REQUEST);
  }

  private askDevice(device: VirtualDevice, clusterId: number, body: Buffer, addressLayout: boolean): void {
    this.later(1, () => {
      const response = device.handleZdo(clusterId, body);
      if (!response) return;
      if (addressLayout) this.addressCallback(clusterId, response);
      else this.zdoCallback(clusterId, device.nwk, response);
    });
  }

  /** The ZDO AREQ for a request cluster: source address, then the ZDO response body. */
  private zdoCallback(requestClusterId: number, srcAddr: number, response: Buffer): void {
    const cmd = zdoCommand(Type.AREQ, requestClusterId | 0x8000);
    if (!cmd) {
      this.unhandled.push(`ZDO callback for cluster 0x${requestClusterId.toString(16)}`);
      return;
    }
    this.toHost(areqRaw(Subsystem.ZDO, cmd.ID, Buffer.concat([u16(srcAddr), response])));
  }

  /** nwkAddrRsp / ieeeAddrRsp: Z-Stack sends no source address and puts the start index before the count. */
  private addressCallback(requestClusterId: number, response: Buffer): void {
    const cmd = zdoCommand(Type.AREQ, requestClusterId | 0x8000);
    if (!cmd) return;
    const body = response.length >= 11 ? Buffer.concat([response.subarray(0, 11), Buffer.from([0, 0])]) : response;
    this.toHost(areqRaw(Subsystem.ZDO, cmd.ID, body));
  }

  /** ZDO requests addressed to the coordinator itself, answered from the AF registrations. */
  private coordinatorZdo(clusterId: number, body: Buffer): Buffer | undefined {
    switch (clusterId) {
      case Zdo.ClusterId.ACTIVE_ENDPOINTS_REQUEST:
        return zdoCodec.activeEndpointsResponse(COORDINATOR_NWK, [...this.registrations.keys()]);
      case Zdo.ClusterId.SIMPLE_DESCRIPTOR_REQUEST: {
        const reg = this.registrations.get(body[2] ?? -1);
        return zdoCodec.simpleDescriptorResponse(
          COORDINATOR_NWK,
          reg && {
            endpoint: reg.endpoint,
            profileId: reg.appprofid,
            deviceId: reg.appdeviceid,
            deviceVersion: reg.appdevver,
            inClusters: reg.appinclusterlist,
            outClusters: reg.appoutclusterlist,
          },
        );
      }
      case Zdo.ClusterId.NODE_DESCRIPTOR_REQUEST:
        return zdoCodec.nodeDescriptorResponse(COORDINATOR_NWK, {
          logicalType: 0,
          manufacturerCode: 0x0000,
          macCapabilities: zdoCodec.macCapabilities("Coordinator", true, true),
        });
      case Zdo.ClusterId.BIND_REQUEST:
      case Zdo.ClusterId.UNBIND_REQUEST:
      case Zdo.ClusterId.LEAVE_REQUEST:
        return zdoCodec.statusOnly(Zdo.Status.SUCCESS);
      default:
        return zdoCodec.statusOnly(Zdo.Status.NOT_SUPPORTED);
    }
  }
}

function parseOne(bytes: Buffer): Frame {
  return Frame.fromBuffer(bytes[1] ?? 0, 4 + (bytes[1] ?? 0), bytes);
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(n);
  return b;
}

function num(v: unknown): number {
  if (typeof v !== "number") throw new Error(`expected a number, got ${String(v)}`);
  return v;
}

function buf(v: unknown): Buffer {
  if (Buffer.isBuffer(v)) return v;
  if (Array.isArray(v)) return Buffer.from(v as number[]);
  throw new Error("expected bytes");
}
