/**
 * MT (Monitor and Test) command codec for the Z-Stack ZNP emulator.
 *
 * This deliberately reuses zigbee-herdsman's own MT command table, UNPI framing and parameter
 * codec: the emulator exists to drive herdsman's z-stack adapter state machine (start-up,
 * commissioning, NV handling, ZDO/AF traffic, recovery) over a real byte stream, not to check
 * herdsman's codec against TI firmware. A codec bug shared by both sides would not show here;
 * frames captured from a real coordinator are the check for that.
 */
import BuffaloZnpModule from "zigbee-herdsman/dist/adapter/z-stack/znp/buffaloZnp.js";
import DefinitionModule from "zigbee-herdsman/dist/adapter/z-stack/znp/definition.js";
import ParameterTypeModule from "zigbee-herdsman/dist/adapter/z-stack/znp/parameterType.js";
import type { MtCmd, MtParameter } from "zigbee-herdsman/dist/adapter/z-stack/znp/tstype.js";
import { Constants as UnpiConstants, Frame, Parser } from "zigbee-herdsman/dist/adapter/z-stack/unpi/index.js";

// The modules are CommonJS with `exports.default`; ESM sees the whole exports object as default.
const BuffaloZnp = BuffaloZnpModule.default;
const Definition = DefinitionModule.default;
const ParameterType = ParameterTypeModule.default;

export const Type = UnpiConstants.Type;
export const Subsystem = UnpiConstants.Subsystem;
export type SubsystemId = UnpiConstants.Subsystem;
export { Frame, Parser };

export type MtPayload = Record<string, unknown>;

const LENGTH_PREFIXED = new Set<number>([
  ParameterType.BUFFER,
  ParameterType.LIST_UINT8,
  ParameterType.LIST_UINT16,
]);

export function commandById(subsystem: SubsystemId, id: number): MtCmd | undefined {
  return Definition[subsystem]?.find((c) => c.ID === id);
}

function commandByName(subsystem: SubsystemId, name: string): MtCmd {
  const cmd = Definition[subsystem]?.find((c) => c.name === name);
  if (!cmd) throw new Error(`MT command ${UnpiConstants.Subsystem[subsystem]}.${name} is not defined`);
  return cmd;
}

/** The ZDO MT command whose SREQ carries (or AREQ answers) the given ZDO cluster. */
export function zdoCommand(type: UnpiConstants.Type, zdoClusterId: number): MtCmd | undefined {
  return Definition[Subsystem.ZDO].find(
    (c) => c.type === type && "zdoClusterId" in c && (c as { zdoClusterId?: number }).zdoClusterId === zdoClusterId,
  );
}

function encodeParameters(parameters: readonly MtParameter[], payload: MtPayload): Buffer {
  const buffalo = new BuffaloZnp(Buffer.alloc(UnpiConstants.MaxDataSize));
  for (const p of parameters) {
    const value = payload[p.name];
    if (value === undefined) throw new Error(`MT parameter '${p.name}' missing`);
    buffalo.write(p.parameterType, value, {});
  }
  return buffalo.getWritten();
}

function decodeParameters(parameters: readonly MtParameter[], data: Buffer): MtPayload {
  const buffalo = new BuffaloZnp(data);
  const result: MtPayload = {};
  let previous: unknown;
  for (const p of parameters) {
    // Buffers and lists take their length from the parameter just before them.
    const options = LENGTH_PREFIXED.has(p.parameterType) && typeof previous === "number" ? { length: previous } : {};
    previous = buffalo.read(p.parameterType, options);
    result[p.name] = previous;
  }
  return result;
}

/** Builds the SRSP frame answering an SREQ, from the command's response parameters. */
export function srsp(subsystem: SubsystemId, name: string, payload: MtPayload): Buffer {
  return frameFor(Type.SRSP, subsystem, name, payload);
}

/** Builds an SRSP frame from raw bytes (ZDO SREQs answer with a bare status byte). */
export function srspRaw(subsystem: SubsystemId, id: number, data: Buffer): Buffer {
  return new Frame(Type.SRSP, subsystem, id, data).toBuffer();
}

/** Builds an AREQ (indication/callback) frame from the command's parameters. */
export function areq(subsystem: SubsystemId, name: string, payload: MtPayload): Buffer {
  return frameFor(Type.AREQ, subsystem, name, payload);
}

/** An SRSP carries the command's response parameters; an AREQ its request parameters. */
function frameFor(type: typeof Type.SRSP | typeof Type.AREQ, subsystem: SubsystemId, name: string, payload: MtPayload): Buffer {
  const cmd = commandByName(subsystem, name);
  const params = type === Type.SRSP ? ("response" in cmd ? cmd.response : undefined) : "request" in cmd ? cmd.request : undefined;
  if (!params) throw new Error(`MT command ${name} has no ${type === Type.SRSP ? "response" : "parameters"}`);
  return new Frame(type, subsystem, cmd.ID, encodeParameters(params, payload)).toBuffer();
}

/** Builds an AREQ frame from raw bytes (ZDO callbacks carry ZDO-encoded bodies). */
export function areqRaw(subsystem: SubsystemId, id: number, data: Buffer): Buffer {
  return new Frame(Type.AREQ, subsystem, id, data).toBuffer();
}

/** Decodes a host request (SREQ/AREQ) into its parameters; ZDO requests stay raw. */
export function decodeRequest(frame: Frame): { cmd: MtCmd; payload: MtPayload } | undefined {
  const cmd = commandById(frame.subsystem, frame.commandID);
  if (!cmd) return undefined;
  if (!("request" in cmd)) return { cmd, payload: {} };
  return { cmd, payload: decodeParameters(cmd.request, frame.data) };
}

/** Decodes a frame the emulator sends (SRSP by response parameters, AREQ by its parameters). */
export function decodeOutgoing(frame: Frame): MtPayload | undefined {
  const cmd = commandById(frame.subsystem, frame.commandID);
  if (!cmd) return undefined;
  if (frame.type === Type.SRSP && "response" in cmd) return decodeParameters(cmd.response, frame.data);
  if (frame.type === Type.AREQ && "request" in cmd) return decodeParameters(cmd.request, frame.data);
  return undefined; // ZDO callbacks: ZDO-encoded bodies
}

export function subsystemName(subsystem: number): string {
  return UnpiConstants.Subsystem[subsystem] ?? `SUBSYS_${subsystem}`;
}
