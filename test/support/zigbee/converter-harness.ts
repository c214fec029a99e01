// Runs a raw ZCL frame through the real zigbee-herdsman-converters fromZigbee converters, the way the hub does with
// herdsman's `message` events: parse with herdsman's codec, build the message (type, cluster, data as herdsman's
// Controller would), pick the definition with findByDevice, apply every matching converter.
import { Zcl } from "zigbee-herdsman";
import { attributeKeyValue } from "zigbee-herdsman/dist/controller/helpers/zclFrameConverter.js";
import { findByDevice } from "zigbee-herdsman-converters";

export interface FrameInput {
  modelID: string;
  manufacturerName: string;
  /** ZCL cluster name or numeric id the frame arrived on */
  cluster: string | number;
  /** APS payload as hex (spaces allowed): frame control, tsn, command id, payload */
  frame: string;
}

export interface Decoded {
  /** model of the definition findByDevice chose (undefined: no definition) */
  model: string | undefined;
  cluster: string;
  /** herdsman message type: attributeReport, readResponse, command<Name> … */
  type: string;
  data: unknown;
  /** merged output of every matching fromZigbee converter */
  state: Record<string, unknown>;
  /** number of converters that matched cluster and type */
  converters: number;
}

type ZhDevice = Parameters<typeof findByDevice>[0];

let serial = 0;

/** The device fields findByDevice and the converters read. A fresh ieee per call keeps the converters' duplicate-transaction store apart. */
export function stubDevice(modelID: string, manufacturerName: string): ZhDevice {
  serial++;
  const endpoint = { ID: 1, deviceIeeeAddress: "", inputClusters: [] as number[], outputClusters: [] as number[] };
  const device = {
    ieeeAddr: `0x00000000000f${serial.toString(16).padStart(4, "0")}`,
    networkAddress: 0x1000 + (serial & 0x0fff),
    modelID,
    manufacturerName,
    type: "EndDevice",
    powerSource: "Battery",
    manufacturerID: undefined,
    interviewState: "SUCCESSFUL",
    endpoints: [endpoint],
    customClusters: {},
    meta: {},
    getEndpoint: (id: number) => (id === 1 ? endpoint : undefined),
    save: () => {},
  };
  endpoint.deviceIeeeAddress = device.ieeeAddr;
  return device as unknown as ZhDevice;
}

/** The message type herdsman's Controller gives a frame. */
export function messageType(frame: Zcl.Frame): string {
  if (frame.header.isGlobal) {
    const byName: Record<string, string> = { report: "attributeReport", readRsp: "readResponse", read: "read", write: "write" };
    return byName[frame.command.name] ?? frame.command.name;
  }
  return `command${frame.command.name.charAt(0).toUpperCase()}${frame.command.name.slice(1)}`;
}

export function hexToBuffer(hex: string): Buffer {
  const clean = hex.replace(/\s+/g, "");
  if (!/^([0-9a-fA-F]{2})+$/.test(clean)) throw new Error(`not hex bytes: ${hex}`);
  return Buffer.from(clean, "hex");
}

export async function decodeFrame(input: FrameInput): Promise<Decoded> {
  const raw = hexToBuffer(input.frame);
  const header = Zcl.Header.fromBuffer(raw);
  if (!header) throw new Error(`no valid ZCL header in ${input.frame}`);
  const clusterId = typeof input.cluster === "number" ? input.cluster : Zcl.Utils.getCluster(input.cluster, undefined, {}).ID;
  const frame = Zcl.Frame.fromBuffer(clusterId, header, raw, {});
  const type = messageType(frame);
  const data = header.isGlobal ? attributeKeyValue(frame, undefined, {}) : frame.payload;
  const device = stubDevice(input.modelID, input.manufacturerName);
  const def = await findByDevice(device);
  const state: Record<string, unknown> = {};
  if (!def) return { model: undefined, cluster: frame.cluster.name, type, data, state, converters: 0 };
  const msg = {
    type,
    cluster: frame.cluster.name,
    data,
    endpoint: device.endpoints[0],
    device,
    meta: { zclTransactionSequenceNumber: header.transactionSequenceNumber, manufacturerCode: header.manufacturerCode, frameControl: header.frameControl, rawData: raw },
    linkquality: 200,
    groupID: 0,
  };
  const meta = { device, state: {}, deviceExposesChanged: () => {} };
  const matching = def.fromZigbee.filter((c) => c.cluster === msg.cluster && ([] as string[]).concat(c.type).includes(type));
  for (const c of matching) {
    // the converter types want herdsman's full message/meta types; this object carries what they read
    const out = await (c.convert as (...a: unknown[]) => unknown)(def, msg, () => {}, {}, meta);
    if (out && typeof out === "object") Object.assign(state, out);
  }
  return { model: def.model, cluster: frame.cluster.name, type, data, state, converters: matching.length };
}
