// ZDO byte layouts the virtual devices and the fake coordinator need. herdsman ships request builders and response
// readers but not the reverse, so requests are parsed and responses written here with its own Zdo.Buffalo.
// Payloads carry no ZDO transaction sequence byte: the rig runs herdsman with hasZdoMessageOverhead = false (as z-stack).
import { Zdo } from "zigbee-herdsman";

export interface SimpleDescriptor {
  endpoint: number;
  profileId: number;
  deviceId: number;
  deviceVersion: number;
  inClusters: number[];
  outClusters: number[];
}

export interface NodeDescriptor {
  /** 0 coordinator, 1 router, 2 end device */
  logicalType: 0 | 1 | 2;
  manufacturerCode: number;
  /** MAC capability flags byte (alternate PAN coordinator, FFD, mains, rx-on-when-idle, security, allocate address) */
  macCapabilities: number;
}

/** MAC capability flags for a node of this kind, as the node descriptor and the device announce carry them. */
export function macCapabilities(kind: "Coordinator" | "Router" | "EndDevice", mainsPowered: boolean, rxOnWhenIdle: boolean): number {
  let caps = 0x80; // allocate address
  if (kind !== "EndDevice") caps |= 0x02; // full-function device
  if (mainsPowered) caps |= 0x04;
  if (rxOnWhenIdle) caps |= 0x08;
  if (kind === "Coordinator") caps |= 0x01;
  return caps;
}

function writer(): InstanceType<typeof Zdo.Buffalo> {
  return new Zdo.Buffalo(Buffer.alloc(256));
}

export function statusOnly(status: number): Buffer {
  const b = writer();
  b.writeUInt8(status);
  return b.getWritten();
}

export function nodeDescriptorResponse(nwk: number, nd: NodeDescriptor): Buffer {
  const b = writer();
  b.writeUInt8(Zdo.Status.SUCCESS);
  b.writeUInt16(nwk);
  b.writeUInt8(nd.logicalType & 0x07);
  b.writeUInt8(0x40); // APS flags 0, frequency band bit 3 (2.4 GHz)
  b.writeUInt8(nd.macCapabilities);
  b.writeUInt16(nd.manufacturerCode);
  b.writeUInt8(82); // max buffer size
  b.writeUInt16(82); // max incoming transfer size
  b.writeUInt16(22 << 9); // server mask: stack compliance revision 22
  b.writeUInt16(82); // max outgoing transfer size
  b.writeUInt8(0); // descriptor capability
  return b.getWritten();
}

export function powerDescriptorResponse(nwk: number, mainsPowered: boolean): Buffer {
  const b = writer();
  b.writeUInt8(Zdo.Status.SUCCESS);
  b.writeUInt16(nwk);
  // mode 0 (rx per node descriptor); available/current source: mains (bit 0) or disposable battery (bit 2)
  const source = mainsPowered ? 0x1 : 0x4;
  b.writeUInt8((source << 4) | 0x0);
  b.writeUInt8((0xc << 4) | source); // level 100 %
  return b.getWritten();
}

export function activeEndpointsResponse(nwk: number, endpoints: number[]): Buffer {
  const b = writer();
  b.writeUInt8(Zdo.Status.SUCCESS);
  b.writeUInt16(nwk);
  b.writeUInt8(endpoints.length);
  for (const ep of endpoints) b.writeUInt8(ep);
  return b.getWritten();
}

export function simpleDescriptorResponse(nwk: number, sd: SimpleDescriptor | undefined): Buffer {
  const b = writer();
  if (!sd) {
    b.writeUInt8(Zdo.Status.NOT_ACTIVE);
    b.writeUInt16(nwk);
    b.writeUInt8(0);
    return b.getWritten();
  }
  b.writeUInt8(Zdo.Status.SUCCESS);
  b.writeUInt16(nwk);
  b.writeUInt8(8 + 2 * (sd.inClusters.length + sd.outClusters.length)); // descriptor length
  b.writeUInt8(sd.endpoint);
  b.writeUInt16(sd.profileId);
  b.writeUInt16(sd.deviceId);
  b.writeUInt8(sd.deviceVersion);
  b.writeUInt8(sd.inClusters.length);
  for (const c of sd.inClusters) b.writeUInt16(c);
  b.writeUInt8(sd.outClusters.length);
  for (const c of sd.outClusters) b.writeUInt16(c);
  return b.getWritten();
}

export function addressResponse(ieee: string, nwk: number): Buffer {
  const b = writer();
  b.writeUInt8(Zdo.Status.SUCCESS);
  b.writeIeeeAddr(ieee);
  b.writeUInt16(nwk);
  return b.getWritten();
}

export function deviceAnnounce(nwk: number, ieee: string, capabilities: number): Buffer {
  const b = writer();
  b.writeUInt16(nwk);
  b.writeIeeeAddr(ieee);
  b.writeUInt8(capabilities);
  return b.getWritten();
}

export interface BindRequest {
  source: string;
  sourceEndpoint: number;
  clusterId: number;
  /** 0x03 unicast (ieee + endpoint), 0x01 group */
  type: number;
  destination?: string;
  destinationEndpoint?: number;
  group?: number;
}

/** Parses the request fields the virtual devices act on; unknown requests come back as {}. */
export function readRequest(clusterId: number, payload: Buffer): {
  nwk?: number;
  ieee?: string;
  endpoint?: number;
  bind?: BindRequest;
} {
  const r = new Zdo.Buffalo(payload);
  switch (clusterId) {
    case Zdo.ClusterId.NETWORK_ADDRESS_REQUEST:
      return { ieee: r.readIeeeAddr() };
    case Zdo.ClusterId.IEEE_ADDRESS_REQUEST:
    case Zdo.ClusterId.NODE_DESCRIPTOR_REQUEST:
    case Zdo.ClusterId.POWER_DESCRIPTOR_REQUEST:
    case Zdo.ClusterId.ACTIVE_ENDPOINTS_REQUEST:
      return { nwk: r.readUInt16() };
    case Zdo.ClusterId.SIMPLE_DESCRIPTOR_REQUEST:
      return { nwk: r.readUInt16(), endpoint: r.readUInt8() };
    case Zdo.ClusterId.LEAVE_REQUEST:
      return { ieee: r.readIeeeAddr() };
    case Zdo.ClusterId.BIND_REQUEST:
    case Zdo.ClusterId.UNBIND_REQUEST: {
      const source = r.readIeeeAddr();
      const sourceEndpoint = r.readUInt8();
      const cluster = r.readUInt16();
      const type = r.readUInt8();
      const bind: BindRequest = { source, sourceEndpoint, clusterId: cluster, type };
      if (type === Zdo.UNICAST_BINDING) {
        bind.destination = r.readIeeeAddr();
        bind.destinationEndpoint = r.readUInt8();
      } else {
        bind.group = r.readUInt16();
      }
      return { bind };
    }
    default:
      return {};
  }
}

/** Name of a ZDO cluster for logs and `received` entries. */
export function zdoName(clusterId: number): string {
  return Zdo.ClusterId[clusterId] ?? `0x${clusterId.toString(16).padStart(4, "0")}`;
}
