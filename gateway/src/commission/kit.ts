// The district's standard kit: for each kind a household plan names, which device model it is and how it
// attaches to the hub. With it, commissioning writes the hub's configuration from the plan, so a standard
// home needs no hand-edited YAML (docs/commissioning.md, "From the plan to the configuration").
//
// RS-485 devices leave the supplier with their unit address set by the district's address plan (`units`,
// the n-th planned device of a kind takes the n-th address); Zigbee devices are identified when they join;
// radars by the hub's USB port they are plugged into (`paths`, stable /dev/serial/by-path names).
import { z } from "zod";
import { PLAN_DEVICE_KINDS } from "../../../protocol/commissioning.js";
import { readYamlFile } from "../../../lib/config/yaml.js";

const profile = z.string().min(1).max(64);

const rs485Schema = z
  .object({
    profile,
    units: z.array(z.number().int().min(1).max(247)).min(1).max(20).describe("unit addresses set at the supplier, in the order the plan's devices take them"),
    pollMs: z.number().int().min(100).max(60000).optional(),
    ratedCloseMs: z.number().int().min(100).max(300000).optional().describe("valves: from the datasheet"),
  })
  .strict();

const uartSchema = z
  .object({
    profile,
    paths: z.array(z.string().min(1).max(256)).min(1).max(20).describe("serial ports by the hub's USB socket (/dev/serial/by-path/...), in the order the plan's devices take them"),
  })
  .strict();

const kindSchema = z.union([
  z.object({ rs485: rs485Schema }).strict(),
  z.object({ zigbee: z.object({}).strict() }).strict(),
  z.object({ uart: uartSchema }).strict(),
]);

export const kitSchema = z
  .object({
    name: z.string().min(1).max(80).optional(),
    /** The RS-485 bus of hub.yaml the kit's devices are wired to; default: the configuration's only bus. */
    bus: z.string().min(1).max(64).optional(),
    kinds: z.partialRecord(z.enum(PLAN_DEVICE_KINDS), kindSchema),
  })
  .strict();
export type Kit = z.infer<typeof kitSchema>;
export type KitKind = z.infer<typeof kindSchema>;

/** Reads a kit file; throws ConfigError listing every problem with its line. */
export async function readKitFile(file: string): Promise<Kit> {
  return (await readYamlFile(file, kitSchema)).value;
}
