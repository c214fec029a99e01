// A coordinator adapter with no hardware under zigbee-herdsman's real Controller. It keeps herdsman's adapter
// contract (start/stop, ZDO with responses, ZCL with the response waitress, join/announce/leave events) and
// exchanges raw ZDO/ZCL bytes with VirtualDevices in its "radio range".
import { Zcl, Zdo, ZSpec } from "zigbee-herdsman";
import { Adapter, type ClusterWaitressMatcher } from "zigbee-herdsman/dist/adapter/adapter.js";
import type { ZclPayload } from "zigbee-herdsman/dist/adapter/events.js";
import type * as TsType from "zigbee-herdsman/dist/adapter/tstype.js";
import type { Backup } from "zigbee-herdsman/dist/models/index.js";
import { Waitress } from "zigbee-herdsman/dist/utils/waitress.js";
import type { BroadcastAddress } from "zigbee-herdsman/dist/zspec/enums.js";
import type * as ZdoTypes from "zigbee-herdsman/dist/zspec/zdo/definition/tstypes.js";
import type { UplinkFrame, VirtualDevice, ZigbeeRadio } from "./virtual-device.js";
import * as zdo from "./zdo-codec.js";

/** Stable across FakeAdapter instances so a restarted Controller finds the same coordinator in its database. */
export const FAKE_COORDINATOR_IEEE = "0x00124b00a5c1e0f1";

/** Coordinator endpoints, shaped like a z-stack coordinator's first HA endpoint and the Green Power endpoint. */
const COORDINATOR_ENDPOINTS: zdo.SimpleDescriptor[] = [
  {
    endpoint: 1,
    profileId: 0x0104,
    deviceId: 0x0005,
    deviceVersion: 0,
    inClusters: [0x0000, 0x0003, 0x0006, 0x000a, 0x0019, 0x0501],
    outClusters: [0x0000, 0x0003, 0x0004, 0x0005, 0x0006, 0x0008, 0x0019, 0x0300, 0x0500, 0x0502],
  },
  { endpoint: 242, profileId: 0xa1e0, deviceId: 0x0061, deviceVersion: 0, inClusters: [], outClusters: [0x0021] },
];

export interface SentZdo {
  networkAddress: number;
  clusterId: number;
  name: string;
  payload: Buffer;
}

export class FakeAdapter extends Adapter implements ZigbeeRadio {
  /** Every permitJoin(seconds) herdsman asked for, in order (0 = close). */
  readonly permitJoinCalls: number[] = [];
  /** Whether the network accepts joins now (opened by permitJoin, closed by permitJoin(0) or its timer). */
  joinOpen = false;
  /** ZDO requests herdsman sent (to devices, the coordinator and broadcasts). */
  readonly zdoSent: SentZdo[] = [];
  /** Number of ZCL frames herdsman sent to devices (unicast). */
  zclSentCount = 0;
  private up = false;
  private readonly devices = new Set<VirtualDevice>();
  private readonly zclWaitress: Waitress<ZclPayload, ClusterWaitressMatcher>;
  private joinTimer: NodeJS.Timeout | undefined;

  constructor(networkOptions: TsType.NetworkOptions, serialPortOptions: TsType.SerialPortOptions, backupPath: string, adapterOptions: TsType.AdapterOptions) {
    super(networkOptions, serialPortOptions, backupPath, adapterOptions);
    // like z-stack: ZDO payloads travel without the transaction sequence byte
    this.hasZdoMessageOverhead = false;
    this.manufacturerID = Zcl.ManufacturerCode.TEXAS_INSTRUMENTS;
    this.zclWaitress = new Waitress<ZclPayload, ClusterWaitressMatcher>(
      (payload, matcher) => payload.header !== undefined && Adapter.zclWaitressValidator({ ...payload, header: payload.header }, matcher),
      (matcher, timeout) => Adapter.clusterWaitressTimeoutFormatter(matcher, timeout),
    );
  }

  // ---- radio side (ZigbeeRadio) ------------------------------------------------------------------------------

  get panId(): number {
    return this.networkOptions.panID;
  }

  isUp(): boolean {
    return this.up;
  }

  permitsJoin(): boolean {
    return this.up && this.joinOpen;
  }

  /** Puts a virtual device in radio range of this coordinator. */
  add(device: VirtualDevice): void {
    const clash = [...this.devices].find((d) => d !== device && (d.nwk === device.nwk || d.ieee === device.ieee));
    if (clash) throw new Error(`${device.product} ${device.ieee}/0x${device.nwk.toString(16)} clashes with ${clash.product} ${clash.ieee}/0x${clash.nwk.toString(16)}: give one another ieee or nwk`);
    this.devices.add(device);
    device.attach(this);
  }

  deviceJoined(device: VirtualDevice): void {
    this.emit("deviceJoined", { networkAddress: device.nwk, ieeeAddr: device.ieee });
  }

  deviceAnnounced(_device: VirtualDevice, payload: Buffer): void {
    this.emitZdo(Zdo.ClusterId.END_DEVICE_ANNOUNCE, payload);
  }

  deviceLeft(device: VirtualDevice): void {
    this.emit("deviceLeave", { networkAddress: device.nwk, ieeeAddr: device.ieee });
  }

  zclFromDevice(device: VirtualDevice, f: UplinkFrame): void {
    if (!this.up) return;
    const payload: ZclPayload = {
      clusterID: f.clusterId,
      address: device.nwk,
      header: Zcl.Header.fromBuffer(f.data),
      data: f.data,
      endpoint: f.srcEndpoint,
      linkquality: device.linkquality,
      groupID: 0,
      wasBroadcast: false,
      destinationEndpoint: f.dstEndpoint,
    };
    if (payload.header) this.zclWaitress.resolve(payload);
    this.emit("zclPayload", payload);
  }

  /** Simulates losing the serial link to the coordinator: herdsman's Controller emits 'adapterDisconnected'. */
  disconnect(): void {
    this.up = false;
    this.emit("disconnected");
  }

  private emitZdo(clusterId: number, payload: Buffer): ZdoTypes.GenericZdoResponse {
    const result: ZdoTypes.GenericZdoResponse = Zdo.Buffalo.readResponse(this.hasZdoMessageOverhead, clusterId, payload);
    this.emit("zdoResponse", clusterId, result);
    return result;
  }

  private reachable(networkAddress: number): VirtualDevice {
    const d = [...this.devices].find((x) => x.nwk === networkAddress && x.joined && x.online && x.attachedTo(this));
    // what z-stack reports after its retries for a node that does not answer
    if (!d) throw new Error(`Data request failed with error: 'MAC no ack' (233) [nwk=0x${networkAddress.toString(16).padStart(4, "0")}]`);
    return d;
  }

  // ---- adapter contract ------------------------------------------------------------------------------------

  async start(): Promise<TsType.StartResult> {
    this.up = true;
    // the network already exists (its parameters are the hub's persisted ones): nothing to form or restore
    return "resumed";
  }

  async stop(): Promise<void> {
    this.up = false;
    this.joinOpen = false;
    clearTimeout(this.joinTimer);
    this.zclWaitress.clear();
    for (const d of this.devices) d.detach(this);
    this.devices.clear();
  }

  async getCoordinatorIEEE(): Promise<string> {
    return FAKE_COORDINATOR_IEEE;
  }

  async getCoordinatorVersion(): Promise<TsType.CoordinatorVersion> {
    return { type: "Anxin fake adapter", meta: { revision: 1 } };
  }

  async reset(_type: "soft" | "hard"): Promise<void> {}

  async supportsBackup(): Promise<boolean> {
    return false;
  }

  async backup(_ieeeAddressesInDatabase: string[]): Promise<Backup> {
    throw new Error("the fake adapter has no coordinator backup");
  }

  async getNetworkParameters(): Promise<TsType.NetworkParameters> {
    const ext = Buffer.from(this.networkOptions.extendedPanID ?? [0xdd, 0xdd, 0xdd, 0xdd, 0xdd, 0xdd, 0xdd, 0xdd]);
    return {
      panID: this.networkOptions.panID,
      extendedPanID: `0x${Buffer.from(ext).reverse().toString("hex")}`,
      channel: this.networkOptions.channelList[0] ?? 11,
      nwkUpdateID: 0,
    };
  }

  async addInstallCode(_ieeeAddress: string, _key: Buffer, _hashed: boolean): Promise<void> {}

  waitFor(
    networkAddress: number,
    endpoint: number,
    _frameType: Zcl.FrameType,
    _direction: Zcl.Direction,
    transactionSequenceNumber: number | undefined,
    clusterId: number,
    commandId: number,
    defaultRspCommandId: number | undefined,
    timeout: number,
  ): { promise: Promise<ZclPayload>; cancel: () => void } {
    const waiter = this.zclWaitress.waitFor({ address: networkAddress, endpoint, clusterId, commandId, defaultRspCommandId, transactionSequenceNumber }, timeout);
    return { promise: waiter.start().promise, cancel: () => this.zclWaitress.remove(waiter.ID) };
  }

  async permitJoin(seconds: number, networkAddress?: number): Promise<void> {
    this.permitJoinCalls.push(seconds);
    clearTimeout(this.joinTimer);
    this.joinOpen = seconds > 0;
    if (seconds > 0) {
      // the coordinator closes the window on its own, like the firmware does
      this.joinTimer = setTimeout(() => (this.joinOpen = false), seconds * 1000);
      this.joinTimer.unref();
    }
    if (networkAddress !== undefined && networkAddress !== ZSpec.COORDINATOR_ADDRESS) this.reachable(networkAddress);
  }

  sendZdo(ieeeAddress: string, networkAddress: number, clusterId: Zdo.ClusterId, payload: Buffer, disableResponse: true): Promise<void>;
  sendZdo<K extends keyof ZdoTypes.RequestToResponseMap>(ieeeAddress: string, networkAddress: number, clusterId: K, payload: Buffer, disableResponse: false): Promise<ZdoTypes.RequestToResponseMap[K]>;
  sendZdo<K extends keyof ZdoTypes.RequestToResponseMap>(
    ieeeAddress: string,
    networkAddress: number,
    clusterId: K,
    payload: Buffer,
    disableResponse: boolean,
  ): Promise<ZdoTypes.RequestToResponseMap[K] | undefined>;
  async sendZdo(_ieeeAddress: string, networkAddress: number, clusterId: Zdo.ClusterId, payload: Buffer, disableResponse: boolean): Promise<unknown> {
    this.zdoSent.push({ networkAddress, clusterId, name: zdo.zdoName(clusterId), payload });
    const responseId = Zdo.Utils.getResponseClusterId(clusterId);
    if (networkAddress === ZSpec.COORDINATOR_ADDRESS) {
      const rsp = this.coordinatorZdo(clusterId, payload);
      if (!rsp || responseId === undefined) throw new Error(`the fake coordinator does not answer ZDO ${zdo.zdoName(clusterId)}`);
      return this.emitZdo(responseId, rsp);
    }
    if (networkAddress >= ZSpec.BROADCAST_MIN) {
      // broadcasts (permit join, channel change, network address discovery): answers arrive as events only
      await tick();
      for (const d of this.devices) {
        if (!d.joined || !d.online || !d.attachedTo(this)) continue;
        if (networkAddress === ZSpec.BroadcastAddress.DEFAULT && d.spec.kind !== "Router") continue;
        const rsp = d.handleZdo(clusterId, payload);
        if (rsp && responseId !== undefined && clusterId === Zdo.ClusterId.NETWORK_ADDRESS_REQUEST) this.emitZdo(responseId, rsp);
      }
      return undefined;
    }
    const device = this.reachable(networkAddress);
    await tick();
    const rsp = device.handleZdo(clusterId, payload);
    if (disableResponse || responseId === undefined) return undefined;
    if (!rsp) throw new Error(`Timeout waiting for ZDO ${zdo.zdoName(responseId)} from 0x${networkAddress.toString(16)}`);
    return this.emitZdo(responseId, rsp);
  }

  private coordinatorZdo(clusterId: number, payload: Buffer): Buffer | undefined {
    const req = zdo.readRequest(clusterId, payload);
    switch (clusterId) {
      case Zdo.ClusterId.NODE_DESCRIPTOR_REQUEST:
        return zdo.nodeDescriptorResponse(0, { logicalType: 0, manufacturerCode: this.manufacturerID, macCapabilities: zdo.macCapabilities("Coordinator", true, true) });
      case Zdo.ClusterId.ACTIVE_ENDPOINTS_REQUEST:
        return zdo.activeEndpointsResponse(0, COORDINATOR_ENDPOINTS.map((e) => e.endpoint));
      case Zdo.ClusterId.SIMPLE_DESCRIPTOR_REQUEST:
        return zdo.simpleDescriptorResponse(0, COORDINATOR_ENDPOINTS.find((e) => e.endpoint === req.endpoint));
      case Zdo.ClusterId.IEEE_ADDRESS_REQUEST:
        return zdo.addressResponse(FAKE_COORDINATOR_IEEE, 0);
      case Zdo.ClusterId.BIND_REQUEST:
      case Zdo.ClusterId.UNBIND_REQUEST:
      case Zdo.ClusterId.PERMIT_JOINING_REQUEST:
        return zdo.statusOnly(Zdo.Status.SUCCESS);
      default:
        return undefined;
    }
  }

  async sendZclFrameToEndpoint(
    _ieeeAddr: string,
    networkAddress: number,
    endpoint: number,
    zclFrame: Zcl.Frame,
    timeout: number,
    disableResponse: boolean,
    _disableRecovery: boolean,
    sourceEndpoint?: number,
    _profileId?: number,
  ): Promise<ZclPayload | undefined> {
    if (networkAddress === ZSpec.COORDINATOR_ADDRESS) return undefined;
    const device = this.reachable(networkAddress);
    this.zclSentCount++;
    let commandResponseId: number | undefined;
    if (zclFrame.command.response !== undefined && !disableResponse) commandResponseId = zclFrame.command.response;
    else if (!zclFrame.header.frameControl.disableDefaultResponse) commandResponseId = Zcl.Foundation.defaultRsp.ID;
    // register before the frame leaves so an immediate answer cannot be missed
    const waiter =
      commandResponseId === undefined
        ? undefined
        : this.zclWaitress
            .waitFor(
              { address: networkAddress, clusterId: zclFrame.cluster.ID, endpoint, commandId: commandResponseId, defaultRspCommandId: undefined, transactionSequenceNumber: zclFrame.header.transactionSequenceNumber },
              timeout,
            )
            .start();
    device.receiveZcl({ dstEndpoint: endpoint, srcEndpoint: sourceEndpoint ?? 1, clusterId: zclFrame.cluster.ID, data: zclFrame.toBuffer() });
    return waiter ? await waiter.promise : undefined;
  }

  async sendZclFrameToGroup(_groupID: number, _zclFrame: Zcl.Frame, _sourceEndpoint?: number, _profileId?: number): Promise<void> {}

  async sendZclFrameToAll(_endpoint: number, _zclFrame: Zcl.Frame, _sourceEndpoint: number, _destination: BroadcastAddress, _profileId?: number): Promise<void> {}

  async setChannelInterPAN(_channel: number): Promise<void> {
    throw new Error("InterPAN is not supported by the fake adapter");
  }

  async sendZclFrameInterPANToIeeeAddr(_zclFrame: Zcl.Frame, _ieeeAddress: string): Promise<void> {
    throw new Error("InterPAN is not supported by the fake adapter");
  }

  sendZclFrameInterPANBroadcast(zclFrame: Zcl.Frame, timeout: number, disableResponse: false): Promise<ZclPayload>;
  sendZclFrameInterPANBroadcast(zclFrame: Zcl.Frame, timeout: number, disableResponse: true): Promise<undefined>;
  sendZclFrameInterPANBroadcast(zclFrame: Zcl.Frame, timeout: number, disableResponse: boolean): Promise<ZclPayload | undefined>;
  async sendZclFrameInterPANBroadcast(_zclFrame: Zcl.Frame, _timeout: number, _disableResponse: boolean): Promise<ZclPayload | undefined> {
    throw new Error("InterPAN is not supported by the fake adapter");
  }

  async restoreChannelInterPAN(): Promise<void> {}
}

function tick(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}
