// One Zigbee product as herdsman sees it over the air: node/power/simple descriptors, an attribute store, IAS zone
// enrolment, a genOnOff actuator, Tuya data points, and the ZDO/ZCL answers a real device gives — all as raw bytes
// built and parsed with herdsman's own codecs. A device talks to a coordinator through the small ZigbeeRadio
// interface, so the same model can sit under the fake adapter or under an emulated coordinator firmware.
import { EventEmitter } from "node:events";
import { Zcl, Zdo } from "zigbee-herdsman";
import * as zdo from "./zdo-codec.js";

/** What a coordinator offers to the devices in its radio range. */
export interface ZigbeeRadio {
  /** PAN the coordinator runs; a device that joined stays with this PAN across coordinator restarts. */
  readonly panId: number;
  /** The coordinator is up and listening. */
  isUp(): boolean;
  /** The coordinator (or a router on its behalf) is permitting joins right now. */
  permitsJoin(): boolean;
  /** Trust centre saw the device join (z-stack: tcDeviceInd). */
  deviceJoined(device: VirtualDevice): void;
  /** Device announce, payload as on air without the ZDO sequence byte. */
  deviceAnnounced(device: VirtualDevice, payload: Buffer): void;
  deviceLeft(device: VirtualDevice): void;
  /** A ZCL frame from the device (APS data indication). */
  zclFromDevice(device: VirtualDevice, frame: UplinkFrame): void;
}

export interface UplinkFrame {
  srcEndpoint: number;
  dstEndpoint: number;
  clusterId: number;
  profileId: number;
  data: Buffer;
}

/** Initial attribute value: plain values take their ZCL type from herdsman's cluster definition. */
export type AttrInit = number | string | boolean | bigint | { type: number; value: unknown };

export interface VirtualEndpoint extends zdo.SimpleDescriptor {
  /** cluster name → attribute name (or numeric id with an explicit type) → initial value */
  attributes?: Record<string, Record<string, AttrInit>>;
}

export interface VirtualDeviceSpec {
  /** Human label for test output, e.g. "Heiman HS1SA smoke alarm". */
  product: string;
  ieee: string;
  nwk?: number;
  kind: "Router" | "EndDevice";
  manufacturerCode: number;
  mainsPowered: boolean;
  rxOnWhenIdle?: boolean;
  endpoints: VirtualEndpoint[];
  /** Sends a zoneEnrollRequest after the coordinator writes iasCieAddr (real Heiman zones do; herdsman answers it). */
  enrollRequest?: boolean;
  /** Tuya MCU data points the device reports on a dataQuery, dp → [type, data]. */
  tuyaDps?: Record<number, [number, Buffer]>;
}

/** A frame as the device saw it, either way. */
interface FrameRecord {
  /** ZCL cluster name, or "zdo" for ZDO requests */
  cluster: string;
  /** ZCL command name (global: read, write, configReport, defaultRsp…; specific: off, enrollRsp, startWarning…) or ZDO cluster name */
  command: string;
  payload: unknown;
  raw: Buffer;
  at: number;
  endpoint: number;
}

export interface ReceivedFrame extends FrameRecord {
  transactionSequenceNumber?: number;
  manufacturerCode?: number;
  disableDefaultResponse?: boolean;
}

export interface SentFrame extends FrameRecord {
  transactionSequenceNumber: number;
}

export interface ConfiguredReporting {
  endpoint: number;
  cluster: string;
  attrId: number;
  minRepIntval: number;
  maxRepIntval: number;
  repChange?: unknown;
}

interface StoredAttr {
  type: number;
  value: unknown;
}

const HA_PROFILE = 0x0104;
const IAS_CIE_ADDR = 0x0010;
/** Global commands that answer or inform; a device never responds to them. */
const GLOBAL_ANSWERS = new Set(["readRsp", "writeRsp", "configReportRsp", "readReportConfigRsp", "report", "defaultRsp", "discoverRsp", "discoverCommandsRsp", "discoverCommandsGenRsp", "discoverExtRsp"]);
const COORDINATOR_ENDPOINT = 1;

/** Tuya MCU data point types. */
export const TuyaDpType = { raw: 0, bool: 1, value: 2, string: 3, enum: 4, bitmap: 5 } as const;

function hexId(n: number, width = 4): string {
  return `0x${n.toString(16).padStart(width, "0")}`;
}

/** Deterministic 16-bit network address derived from an ieee (never 0, never broadcast). */
function nwkFromIeee(ieee: string): number {
  const n = Number.parseInt(ieee.slice(-4), 16) & 0x7fff;
  return n === 0 ? 0x1234 : n;
}

export class VirtualDevice {
  readonly ieee: string;
  nwk: number;
  /** false → frames to it fail like an unreachable device, and it cannot send */
  online = true;
  readonly spec: VirtualDeviceSpec;
  /** Every frame the hub sent it, in arrival order (ZCL and ZDO). */
  readonly received: ReceivedFrame[] = [];
  readonly binds: zdo.BindRequest[] = [];
  readonly reportings: ConfiguredReporting[] = [];
  /** Tuya data points as last set or reported. */
  readonly dps = new Map<number, { type: number; data: Buffer }>();
  linkquality = 180;
  /** Every ZCL frame this device sent (reports, notifications, answers), in order. */
  readonly sent: SentFrame[] = [];
  /** true → enrollRsp is ignored and zoneState stays 0, like a zone that never enrols (herdsman then fails the interview). */
  refuseEnrolment = false;
  /** true → genOnOff on/off are acknowledged but nothing moves (a jammed valve): the state stays and is reported as is. */
  jammed = false;
  /** Delay before a genOnOff actuator reports its new position (valve travel time); 0 = at once. */
  moveMs = 0;
  /** Answers that could not be sent (e.g. the device went offline while processing). */
  readonly errors: unknown[] = [];

  private readonly attrs = new Map<string, StoredAttr>();
  private readonly radios = new Set<ZigbeeRadio>();
  private joinedPan: number | undefined;
  private tsn = 0;
  private tuyaSeq = 0;
  private readonly events = new EventEmitter();

  constructor(spec: VirtualDeviceSpec) {
    this.spec = spec;
    this.ieee = spec.ieee.toLowerCase();
    this.nwk = spec.nwk ?? nwkFromIeee(this.ieee);
    this.events.setMaxListeners(0); // any number of concurrent waitForReceived
    for (const ep of spec.endpoints) {
      for (const [clusterName, attrs] of Object.entries(ep.attributes ?? {})) {
        for (const [attrKey, init] of Object.entries(attrs)) this.initAttribute(ep.endpoint, clusterName, attrKey, init);
      }
    }
    for (const [dp, [type, data]] of Object.entries(spec.tuyaDps ?? {})) this.dps.set(Number(dp), { type, data });
  }

  get product(): string {
    return this.spec.product;
  }

  get joined(): boolean {
    return this.joinedPan !== undefined;
  }

  get rxOnWhenIdle(): boolean {
    return this.spec.rxOnWhenIdle ?? this.spec.kind === "Router";
  }

  get capabilities(): number {
    return zdo.macCapabilities(this.spec.kind, this.spec.mainsPowered, this.rxOnWhenIdle);
  }

  // ---- radio range -------------------------------------------------------------------------------------------

  attach(radio: ZigbeeRadio): void {
    this.radios.add(radio);
  }

  detach(radio: ZigbeeRadio): void {
    this.radios.delete(radio);
  }

  attachedTo(radio: ZigbeeRadio): boolean {
    return this.radios.has(radio) && this.joinedPan === radio.panId;
  }

  /** The coordinator(s) of the network this device belongs to that are up and in range. */
  private network(): ZigbeeRadio[] {
    return [...this.radios].filter((r) => r.isUp() && r.panId === this.joinedPan);
  }

  private uplink(): ZigbeeRadio[] {
    if (!this.online) throw new Error(`${this.product} ${this.ieee} is offline`);
    const net = this.network();
    if (net.length === 0) throw new Error(`${this.product} ${this.ieee} is not joined to a network that is up`);
    return net;
  }

  // ---- lifecycle ---------------------------------------------------------------------------------------------

  /** Joins the first network in range that permits joining: trust-centre join, then a device announce. */
  async join(): Promise<void> {
    if (!this.online) throw new Error(`${this.product} ${this.ieee} is offline`);
    const radio = [...this.radios].find((r) => r.isUp() && r.permitsJoin());
    if (!radio) throw new Error(`join refused for ${this.product} ${this.ieee}: no network in range permits joining`);
    this.joinedPan = radio.panId;
    radio.deviceJoined(this);
    await tick();
    radio.deviceAnnounced(this, zdo.deviceAnnounce(this.nwk, this.ieee, this.capabilities));
  }

  /** Device announce (power cycle or rejoin); herdsman updates lastSeen and the network address. */
  announce(): void {
    for (const r of this.uplink()) r.deviceAnnounced(this, zdo.deviceAnnounce(this.nwk, this.ieee, this.capabilities));
  }

  /** Leaves the network (as after a LEAVE request or a factory reset). */
  leave(): void {
    const net = this.network();
    this.joinedPan = undefined;
    for (const r of net) r.deviceLeft(this);
  }

  // ---- attribute store ---------------------------------------------------------------------------------------

  private key(endpoint: number, clusterId: number, attrId: number): string {
    return `${endpoint}/${clusterId}/${attrId}`;
  }

  private resolveAttr(clusterName: string, attrKey: string): { clusterId: number; attrId: number; type: number | undefined } {
    const cluster = Zcl.Utils.getCluster(clusterName, this.spec.manufacturerCode, {});
    const asNumber = Number(attrKey);
    if (!Number.isNaN(asNumber)) {
      const def = Zcl.Utils.getClusterAttribute(cluster, asNumber, this.spec.manufacturerCode);
      return { clusterId: cluster.ID, attrId: asNumber, type: def?.type };
    }
    const def = Zcl.Utils.getClusterAttribute(cluster, attrKey, this.spec.manufacturerCode);
    if (!def) throw new Error(`unknown attribute ${clusterName}.${attrKey}`);
    return { clusterId: cluster.ID, attrId: def.ID, type: def.type };
  }

  private initAttribute(endpoint: number, clusterName: string, attrKey: string, init: AttrInit): void {
    const { clusterId, attrId, type } = this.resolveAttr(clusterName, attrKey);
    if (typeof init === "object" && init !== null && "type" in init) {
      this.attrs.set(this.key(endpoint, clusterId, attrId), { type: init.type, value: init.value });
      return;
    }
    if (type === undefined) throw new Error(`attribute ${clusterName}.${attrKey} needs an explicit {type, value}`);
    this.attrs.set(this.key(endpoint, clusterId, attrId), { type, value: typeof init === "boolean" ? (init ? 1 : 0) : init });
  }

  /** Current value of an attribute (by cluster name and attribute name or numeric id). */
  attribute(clusterName: string, attrKey: string, endpoint = 1): unknown {
    const { clusterId, attrId } = this.resolveAttr(clusterName, attrKey);
    return this.attrs.get(this.key(endpoint, clusterId, attrId))?.value;
  }

  /** Sets an attribute without reporting it (the next read returns it). */
  setAttribute(clusterName: string, attrKey: string, value: unknown, endpoint = 1): void {
    const { clusterId, attrId, type } = this.resolveAttr(clusterName, attrKey);
    const k = this.key(endpoint, clusterId, attrId);
    const existing = this.attrs.get(k);
    const t = existing?.type ?? type;
    if (t === undefined) throw new Error(`attribute ${clusterName}.${attrKey} has no known type`);
    this.attrs.set(k, { type: t, value });
  }

  /** genOnOff state of an endpoint: true = on (valve open), false = off (closed). */
  onOff(endpoint = 1): boolean {
    return this.attribute("genOnOff", "onOff", endpoint) === 1;
  }

  // ---- device-originated traffic -----------------------------------------------------------------------------

  private nextTsn(): number {
    this.tsn = (this.tsn + 1) & 0xff;
    return this.tsn;
  }

  /** Sends a ZCL frame from this device to the coordinator endpoint. */
  async send(frame: Zcl.Frame, srcEndpoint = 1): Promise<void> {
    const data = frame.toBuffer();
    const net = this.uplink();
    this.sent.push({
      cluster: frame.cluster.name,
      command: frame.command.name,
      payload: frame.payload,
      raw: data,
      at: Date.now(),
      endpoint: srcEndpoint,
      transactionSequenceNumber: frame.header.transactionSequenceNumber,
    });
    await tick();
    for (const r of net) r.zclFromDevice(this, { srcEndpoint, dstEndpoint: COORDINATOR_ENDPOINT, clusterId: frame.cluster.ID, profileId: HA_PROFILE, data });
  }

  /** A cluster-specific command from the device (server → client), e.g. ssIasZone statusChangeNotification. */
  async command(clusterName: string, commandName: string, payload: Record<string, unknown>, opts: { endpoint?: number; disableDefaultResponse?: boolean; manufacturerCode?: number } = {}): Promise<void> {
    const frame = Zcl.Frame.create(
      Zcl.FrameType.SPECIFIC,
      Zcl.Direction.SERVER_TO_CLIENT,
      opts.disableDefaultResponse ?? true,
      opts.manufacturerCode,
      this.nextTsn(),
      commandName,
      clusterName,
      payload,
      {},
    );
    await this.send(frame, opts.endpoint ?? 1);
  }

  /** IAS zone status change notification with these Zone Status bits (bit 0 alarm1, 1 alarm2, 2 tamper, 3 battery low…). */
  async zoneStatus(bits: number, endpoint = 1): Promise<void> {
    this.setAttribute("ssIasZone", "zoneStatus", bits, endpoint);
    const zoneID = (this.attribute("ssIasZone", "zoneId", endpoint) as number | undefined) ?? 0xff;
    await this.command("ssIasZone", "statusChangeNotification", { zonestatus: bits, extendedstatus: 0, zoneID, delay: 0 }, { endpoint });
  }

  /** Attribute report; values are stored, then reported with the attribute's ZCL type. */
  async report(clusterName: string, attrs: Record<string, number>, endpoint = 1): Promise<void> {
    const payload: Array<{ attrId: number; dataType: number; attrData: unknown }> = [];
    for (const [attrKey, value] of Object.entries(attrs)) {
      const { clusterId, attrId, type } = this.resolveAttr(clusterName, attrKey);
      const stored = this.attrs.get(this.key(endpoint, clusterId, attrId));
      const dataType = stored?.type ?? type;
      if (dataType === undefined) throw new Error(`attribute ${clusterName}.${attrKey} has no known type`);
      this.attrs.set(this.key(endpoint, clusterId, attrId), { type: dataType, value });
      payload.push({ attrId, dataType, attrData: value });
    }
    const frame = Zcl.Frame.create(Zcl.FrameType.GLOBAL, Zcl.Direction.SERVER_TO_CLIENT, true, undefined, this.nextTsn(), "report", clusterName, payload, {});
    await this.send(frame, endpoint);
  }

  /** Tuya MCU data point report (manuSpecificTuya dataReport), as TS0601 devices send state. */
  async tuyaDp(dp: number, type: number, data: Buffer | number | boolean, endpoint = 1): Promise<void> {
    const bytes = encodeDp(type, data);
    this.dps.set(dp, { type, data: bytes });
    await this.sendDps([{ dp, datatype: type, data: bytes }], endpoint);
  }

  private async sendDps(dpValues: Array<{ dp: number; datatype: number; data: Buffer }>, endpoint: number): Promise<void> {
    this.tuyaSeq = (this.tuyaSeq + 1) & 0xffff;
    // Tuya MCUs leave the default response enabled on reports
    await this.command("manuSpecificTuya", "dataReport", { seq: this.tuyaSeq, dpValues }, { endpoint, disableDefaultResponse: false });
  }

  // ---- hub-originated traffic --------------------------------------------------------------------------------

  private record(f: ReceivedFrame): void {
    this.received.push(f);
    this.events.emit("frame", f);
  }

  /** Resolves with the first received frame (already received or arriving) that matches. */
  waitForReceived(pred: (f: ReceivedFrame) => boolean, timeoutMs = 5000): Promise<ReceivedFrame> {
    const hit = this.received.find(pred);
    if (hit) return Promise.resolve(hit);
    return new Promise((resolve, reject) => {
      const onFrame = (f: ReceivedFrame): void => {
        if (!pred(f)) return;
        clearTimeout(timer);
        this.events.off("frame", onFrame);
        resolve(f);
      };
      const timer = setTimeout(() => {
        this.events.off("frame", onFrame);
        reject(new Error(`${this.product} ${this.ieee}: no matching frame within ${timeoutMs} ms`));
      }, timeoutMs);
      this.events.on("frame", onFrame);
    });
  }

  /** ZDO request addressed to this device; returns the response payload (no sequence byte), or undefined for none. */
  handleZdo(clusterId: number, payload: Buffer): Buffer | undefined {
    const req = zdo.readRequest(clusterId, payload);
    this.record({ cluster: "zdo", command: zdo.zdoName(clusterId), payload: req, raw: payload, at: Date.now(), endpoint: 0 });
    switch (clusterId) {
      case Zdo.ClusterId.NODE_DESCRIPTOR_REQUEST:
        return zdo.nodeDescriptorResponse(this.nwk, {
          logicalType: this.spec.kind === "Router" ? 1 : 2,
          manufacturerCode: this.spec.manufacturerCode,
          macCapabilities: this.capabilities,
        });
      case Zdo.ClusterId.POWER_DESCRIPTOR_REQUEST:
        return zdo.powerDescriptorResponse(this.nwk, this.spec.mainsPowered);
      case Zdo.ClusterId.ACTIVE_ENDPOINTS_REQUEST:
        return zdo.activeEndpointsResponse(this.nwk, this.spec.endpoints.map((e) => e.endpoint));
      case Zdo.ClusterId.SIMPLE_DESCRIPTOR_REQUEST:
        return zdo.simpleDescriptorResponse(this.nwk, this.spec.endpoints.find((e) => e.endpoint === req.endpoint));
      case Zdo.ClusterId.NETWORK_ADDRESS_REQUEST:
        return req.ieee === this.ieee ? zdo.addressResponse(this.ieee, this.nwk) : undefined;
      case Zdo.ClusterId.IEEE_ADDRESS_REQUEST:
        return zdo.addressResponse(this.ieee, this.nwk);
      case Zdo.ClusterId.BIND_REQUEST: {
        const bind = req.bind!;
        if (!this.spec.endpoints.some((e) => e.endpoint === bind.sourceEndpoint)) return zdo.statusOnly(Zdo.Status.INVALID_EP);
        if (!this.binds.some((b) => JSON.stringify(b) === JSON.stringify(bind))) this.binds.push(bind);
        return zdo.statusOnly(Zdo.Status.SUCCESS);
      }
      case Zdo.ClusterId.UNBIND_REQUEST: {
        const i = this.binds.findIndex((b) => JSON.stringify(b) === JSON.stringify(req.bind));
        if (i < 0) return zdo.statusOnly(Zdo.Status.NO_ENTRY);
        this.binds.splice(i, 1);
        return zdo.statusOnly(Zdo.Status.SUCCESS);
      }
      case Zdo.ClusterId.LEAVE_REQUEST:
        // answer first, then go: the coordinator then sees the leave indication
        setImmediate(() => {
          if (this.joined) this.leave();
        });
        return zdo.statusOnly(Zdo.Status.SUCCESS);
      case Zdo.ClusterId.PERMIT_JOINING_REQUEST:
      case Zdo.ClusterId.NWK_UPDATE_REQUEST:
        return zdo.statusOnly(Zdo.Status.SUCCESS);
      default:
        return zdo.statusOnly(Zdo.Status.NOT_SUPPORTED);
    }
  }

  /** ZCL frame addressed to one of this device's endpoints; answers go back through the radio. */
  receiveZcl(frame: { dstEndpoint: number; srcEndpoint: number; clusterId: number; data: Buffer }): void {
    setImmediate(() => {
      this.processZcl(frame).catch((err: unknown) => {
        // an answer that cannot go out (device went offline meanwhile) is like a lost frame
        this.errors.push(err);
      });
    });
  }

  private async processZcl(f: { dstEndpoint: number; srcEndpoint: number; clusterId: number; data: Buffer }): Promise<void> {
    const ep = this.spec.endpoints.find((e) => e.endpoint === f.dstEndpoint);
    const header = Zcl.Header.fromBuffer(f.data);
    if (!header) {
      this.record({ cluster: hexId(f.clusterId), command: "malformed", payload: undefined, raw: f.data, at: Date.now(), endpoint: f.dstEndpoint });
      return;
    }
    let frame: Zcl.Frame;
    try {
      frame = Zcl.Frame.fromBuffer(f.clusterId, header, f.data, {});
    } catch {
      this.record({
        cluster: hexId(f.clusterId),
        command: hexId(header.commandIdentifier, 2),
        payload: undefined,
        raw: f.data,
        at: Date.now(),
        endpoint: f.dstEndpoint,
        transactionSequenceNumber: header.transactionSequenceNumber,
      });
      if (ep) await this.defaultRsp(f, header, Zcl.Status.UNSUP_COMMAND, true);
      return;
    }
    this.record({
      cluster: frame.cluster.name,
      command: frame.command.name,
      payload: frame.payload,
      raw: f.data,
      at: Date.now(),
      endpoint: f.dstEndpoint,
      transactionSequenceNumber: header.transactionSequenceNumber,
      manufacturerCode: header.manufacturerCode,
      disableDefaultResponse: header.frameControl.disableDefaultResponse,
    });
    if (!ep) return; // nothing listens on that endpoint: a real node drops it
    if (header.frameControl.direction !== Zcl.Direction.CLIENT_TO_SERVER) return; // responses to our own frames
    if (header.isGlobal && GLOBAL_ANSWERS.has(frame.command.name)) return; // e.g. the hub's defaultRsp to our report
    if (!ep.inClusters.includes(f.clusterId)) {
      await this.defaultRsp(f, header, Zcl.Status.UNSUPPORTED_CLUSTER, true);
      return;
    }
    if (header.isGlobal) await this.processGlobal(f, header, frame);
    else await this.processSpecific(f, header, frame);
  }

  private async reply(f: { dstEndpoint: number; clusterId: number }, header: Zcl.Header, commandName: string, payload: unknown): Promise<void> {
    const frame = Zcl.Frame.create(
      Zcl.FrameType.GLOBAL,
      Zcl.Direction.SERVER_TO_CLIENT,
      true,
      header.manufacturerCode,
      header.transactionSequenceNumber,
      commandName,
      f.clusterId,
      payload,
      {},
    );
    await this.send(frame, f.dstEndpoint);
  }

  /** ZCL default response: always on error, on success only when the sender did not disable it. */
  private async defaultRsp(f: { dstEndpoint: number; clusterId: number }, header: Zcl.Header, status: number, force = false): Promise<void> {
    if (!force && status === Zcl.Status.SUCCESS && header.frameControl.disableDefaultResponse) return;
    await this.reply(f, header, "defaultRsp", { cmdId: header.commandIdentifier, statusCode: status });
  }

  private async processGlobal(f: { dstEndpoint: number; clusterId: number }, header: Zcl.Header, frame: Zcl.Frame): Promise<void> {
    const ep = f.dstEndpoint;
    switch (frame.command.name) {
      case "read": {
        const records = (frame.payload as Array<{ attrId: number }>).map(({ attrId }) => {
          const a = this.attrs.get(this.key(ep, f.clusterId, attrId));
          return a
            ? { attrId, status: Zcl.Status.SUCCESS, dataType: a.type, attrData: a.value }
            : { attrId, status: Zcl.Status.UNSUPPORTED_ATTRIBUTE };
        });
        await this.reply(f, header, "readRsp", records);
        return;
      }
      case "write":
      case "writeUndiv":
      case "writeNoRsp": {
        const statuses: Array<{ attrId: number; status: number }> = [];
        let wroteCie = false;
        for (const { attrId, dataType, attrData } of frame.payload as Array<{ attrId: number; dataType: number; attrData: unknown }>) {
          const k = this.key(ep, f.clusterId, attrId);
          const a = this.attrs.get(k);
          if (!a) {
            statuses.push({ attrId, status: Zcl.Status.UNSUPPORTED_ATTRIBUTE });
            continue;
          }
          this.attrs.set(k, { type: a.type ?? dataType, value: attrData });
          statuses.push({ attrId, status: Zcl.Status.SUCCESS });
          if (f.clusterId === Zcl.Clusters.ssIasZone.ID && attrId === IAS_CIE_ADDR) wroteCie = true;
        }
        if (frame.command.name !== "writeNoRsp") await this.reply(f, header, "writeRsp", statuses);
        if (wroteCie && this.spec.enrollRequest) {
          const zoneType = this.attribute("ssIasZone", "zoneType", ep) as number;
          await this.command("ssIasZone", "enrollReq", { zonetype: zoneType, manucode: this.spec.manufacturerCode }, { endpoint: ep });
        }
        return;
      }
      case "configReport": {
        const statuses: Array<{ status: number; direction: number; attrId: number }> = [];
        for (const r of frame.payload as Array<{ direction: number; attrId: number; minRepIntval: number; maxRepIntval: number; repChange?: unknown }>) {
          const known = this.attrs.has(this.key(ep, f.clusterId, r.attrId));
          statuses.push({ status: known ? Zcl.Status.SUCCESS : Zcl.Status.UNSUPPORTED_ATTRIBUTE, direction: r.direction, attrId: r.attrId });
          if (known) {
            const cluster = frame.cluster.name;
            const i = this.reportings.findIndex((x) => x.endpoint === ep && x.cluster === cluster && x.attrId === r.attrId);
            const entry = { endpoint: ep, cluster, attrId: r.attrId, minRepIntval: r.minRepIntval, maxRepIntval: r.maxRepIntval, repChange: r.repChange };
            if (i >= 0) this.reportings[i] = entry;
            else this.reportings.push(entry);
          }
        }
        await this.reply(f, header, "configReportRsp", statuses);
        return;
      }
      default:
        await this.defaultRsp(f, header, Zcl.Status.UNSUP_GENERAL_COMMAND, true);
    }
  }

  private async processSpecific(f: { dstEndpoint: number; clusterId: number }, header: Zcl.Header, frame: Zcl.Frame): Promise<void> {
    const ep = f.dstEndpoint;
    const cluster = frame.cluster.name;
    const command = frame.command.name;
    const payload = frame.payload as Record<string, unknown>;
    if (cluster === "genOnOff" && ["on", "off", "toggle", "offWithEffect", "onWithTimedOff"].includes(command)) {
      const now = this.attribute("genOnOff", "onOff", ep) === 1;
      const wanted = command === "toggle" ? !now : command === "on" || command === "onWithTimedOff";
      const next = this.jammed ? now : wanted;
      // with no travel time the new state is already readable when the default response arrives
      if (this.moveMs === 0) this.setAttribute("genOnOff", "onOff", next ? 1 : 0, ep);
      await this.defaultRsp(f, header, Zcl.Status.SUCCESS);
      if (this.moveMs > 0) {
        await new Promise((r) => setTimeout(r, this.moveMs));
        this.setAttribute("genOnOff", "onOff", next ? 1 : 0, ep);
      }
      // a valve reports its position once it has moved (a jammed one reports where it stuck)
      await this.report("genOnOff", { onOff: next ? 1 : 0 }, ep);
      return;
    }
    if (cluster === "ssIasZone" && command === "enrollRsp") {
      if (payload.enrollrspcode === 0 && !this.refuseEnrolment) {
        this.setAttribute("ssIasZone", "zoneState", 1, ep);
        this.setAttribute("ssIasZone", "zoneId", payload.zoneid, ep);
      }
      await this.defaultRsp(f, header, Zcl.Status.SUCCESS);
      return;
    }
    if (cluster === "manuSpecificTuya" && (command === "dataRequest" || command === "sendData")) {
      const dpValues = payload.dpValues as Array<{ dp: number; datatype: number; data: Buffer }>;
      for (const v of dpValues) this.dps.set(v.dp, { type: v.datatype, data: Buffer.from(v.data) });
      await this.defaultRsp(f, header, Zcl.Status.SUCCESS);
      // the MCU confirms a setting by reporting the data point back
      await this.sendDps(dpValues, ep);
      return;
    }
    if (cluster === "manuSpecificTuya" && command === "dataQuery") {
      await this.defaultRsp(f, header, Zcl.Status.SUCCESS);
      const all = [...this.dps].map(([dp, v]) => ({ dp, datatype: v.type, data: v.data }));
      if (all.length > 0) await this.sendDps(all, ep);
      return;
    }
    // identify, IAS WD startWarning/squawk and the rest: accepted (the test inspects `received`)
    await this.defaultRsp(f, header, Zcl.Status.SUCCESS);
  }
}

function encodeDp(type: number, data: Buffer | number | boolean): Buffer {
  if (Buffer.isBuffer(data)) return data;
  const n = typeof data === "boolean" ? (data ? 1 : 0) : data;
  switch (type) {
    case TuyaDpType.bool:
    case TuyaDpType.enum:
      return Buffer.from([n & 0xff]);
    case TuyaDpType.value: {
      const b = Buffer.alloc(4);
      b.writeInt32BE(n);
      return b;
    }
    case TuyaDpType.bitmap: {
      if (n <= 0xff) return Buffer.from([n]);
      if (n <= 0xffff) return Buffer.from([n >> 8, n & 0xff]);
      const b = Buffer.alloc(4);
      b.writeUInt32BE(n);
      return b;
    }
    case TuyaDpType.string:
      return Buffer.from(String(n), "utf8");
    default:
      return Buffer.from([n & 0xff]);
  }
}

function tick(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}
