// The device-profile format: one declarative YAML file per device model.
// Addresses are 0-based Modbus PDU addresses ("40001" in a manual is holding register 0).
// Checks that need the whole profile (points inside poll blocks, signals naming real points,
// roles having what they need) live in loader.ts; docs/device-profiles.md describes both.
import { z } from "zod";

export const ROLES = ["gas_detector", "co_detector", "valve", "siren", "presence"] as const;
export type Role = (typeof ROLES)[number];

/** The fixed vocabulary the readings layer produces and the rules consume. */
export const SIGNALS = [
  "gas_lel", // combustible gas, %LEL
  "co_ppm", // carbon monoxide, ppm
  "gas_setpoint_lel", // the alarm set point the device itself reports
  "co_setpoint_ppm",
  "alarm", // the detector's own alarm output
  "fault", // the device reports a fault of its own
  "presence",
  "valve_closed", // closed limit switch
  "valve_open", // open limit switch
  "valve_fault", // jammed, obstructed, actuator fault
  "siren_on",
  "battery_low",
  "tamper",
] as const;
export type SignalName = (typeof SIGNALS)[number];

const name = z.string().regex(/^[a-z][a-z0-9_]{0,47}$/, "lower-case letters, digits and _ (starting with a letter)");
const address = z.number().int().min(0).max(65535).describe("0-based PDU address (manual's 40001 / 30001 / 10001 / 00001 = 0)");
const readFc = z.literal([1, 2, 3, 4]);

export const serialSchema = z
  .object({
    baudRate: z.literal([1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200]).default(9600),
    parity: z.enum(["none", "even", "odd"]).default("none"),
    dataBits: z.literal([7, 8]).default(8),
    stopBits: z.literal([1, 2]).default(1),
    unit: z.number().int().min(1).max(247).default(1).describe("the device's factory Modbus address; an install may override it"),
    timeoutMs: z.number().int().min(20).max(5000).default(500).describe("how long to wait for a reply"),
    interFrameMs: z.number().int().min(0).max(1000).default(20).describe("quiet time kept on the bus before the next request"),
  })
  .strict()
  .describe("the device's factory serial settings");

/** One value read from the device. */
export const pointSchema = z
  .object({
    name: name.describe("unique within the profile; signals refer to it"),
    fc: readFc.describe("1 coil, 2 discrete input, 3 holding register, 4 input register"),
    address,
    type: z
      .enum(["bool", "u16", "s16", "u32", "s32", "f32"])
      .default("u16")
      .describe("bool for coils and discrete inputs; the register encoding otherwise (32-bit types span address and address+1)"),
    byte: z.enum(["high", "low"]).optional().describe("take one byte of a 16-bit register"),
    bit: z.number().int().min(0).max(15).optional().describe("take one bit (after `byte`, if given); the value is then true/false"),
    wordOrder: z.enum(["big", "little"]).default("big").describe("for 32-bit types: big = the first register holds the high word"),
    scale: z.number().finite().default(1).describe("value = raw × scale + offset"),
    offset: z.number().finite().default(0),
    unit: z.string().max(16).optional().describe("engineering unit after scaling; %LEL and ppm are required for the gas and CO signals"),
    range: z
      .tuple([z.number(), z.number()])
      .refine(([lo, hi]) => lo <= hi, "range is [min, max]: min must not exceed max")
      .optional()
      .describe("valid engineering range; outside it the value is rejected, never used"),
    enum: z
      .record(z.string().regex(/^-?\d+$/), z.string().min(1).max(48))
      .optional()
      .describe("raw value → label; a raw value not listed is rejected"),
    description: z.string().max(200).optional(),
  })
  .strict();

/** One true/false test on one point; also the entries of a signal's `any` list. */
export const signalConditionSchema = z
  .object({
    point: name.describe("the point this reads"),
    equals: z.union([z.number(), z.string(), z.boolean()]).optional().describe("true when the value (number), enum label (string) or boolean equals this"),
    in: z.array(z.union([z.number(), z.string()])).min(1).optional().describe("true when the value or label is one of these"),
    above: z.number().optional().describe("true when the scaled value is strictly greater"),
    invert: z.boolean().optional().describe("negate the result"),
  })
  .strict()
  .superRefine((c, ctx) => {
    const tests = (["equals", "in", "above"] as const).filter((k) => c[k] !== undefined);
    if (tests.length > 1) ctx.addIssue({ code: "custom", path: [tests[1]!], message: `use only one of equals, in, above (found ${tests.join(" and ")})` });
  });

/**
 * How a signal is derived: the scaled value of one point, a comparison on it giving true/false,
 * or `any` of several conditions (true when at least one holds).
 */
export const signalSourceSchema = z
  .object({
    point: name.optional().describe("the point this reads (give `point` or `any`, not both)"),
    equals: z.union([z.number(), z.string(), z.boolean()]).optional().describe("true when the value (number), enum label (string) or boolean equals this"),
    in: z.array(z.union([z.number(), z.string()])).min(1).optional().describe("true when the value or label is one of these"),
    above: z.number().optional().describe("true when the scaled value is strictly greater"),
    invert: z.boolean().optional().describe("negate the result (with `any`: true when none holds)"),
    any: z.array(signalConditionSchema).min(1).optional().describe("true when any of these conditions holds"),
  })
  .strict()
  .superRefine((s, ctx) => {
    if (s.point === undefined && s.any === undefined) ctx.addIssue({ code: "custom", path: ["point"], message: "give `point` (one point) or `any` (a list of conditions)" });
    if (s.point !== undefined && s.any !== undefined) ctx.addIssue({ code: "custom", path: ["any"], message: "give `point` or `any`, not both" });
    const tests = (["equals", "in", "above"] as const).filter((k) => s[k] !== undefined);
    if (s.any !== undefined && tests.length)
      ctx.addIssue({ code: "custom", path: [tests[0]!], message: `with \`any\`, put ${tests[0]} inside each entry` });
    else if (tests.length > 1) ctx.addIssue({ code: "custom", path: [tests[1]!], message: `use only one of equals, in, above (found ${tests.join(" and ")})` });
  })
  .meta({ oneOf: [{ required: ["point"] }, { required: ["any"] }] });

export const writeSchema = z
  .object({
    fc: z.literal([5, 6]).describe("5 write single coil, 6 write single register"),
    address,
    value: z.union([z.boolean(), z.number().int().min(0).max(65535)]).describe("true/false for fc 5 (true is sent as FF00), 0–65535 for fc 6"),
  })
  .strict();

export const commandSchema = z
  .object({
    write: z.array(writeSchema).min(1).describe("frames written in order"),
    verify: z
      .object({ signal: z.enum(SIGNALS), equals: z.boolean().default(true) })
      .strict()
      .optional()
      .describe("what must be read back to prove the command took effect"),
    ratedMs: z.number().int().min(100).max(300000).optional().describe("rated time for the device to reach the verified state"),
    retryMs: z.number().int().min(100).max(60000).optional().describe("resend the command this often while unverified"),
  })
  .strict();

export const pollSchema = z
  .object({
    fc: readFc,
    address,
    count: z.number().int().min(1).max(125).describe("registers (fc 3/4) or bits (fc 1/2) read in one request"),
  })
  .strict()
  .superRefine((b, ctx) => {
    if (b.address + b.count > 65536) ctx.addIssue({ code: "custom", path: ["count"], message: `block runs past address 65535 (${b.address} + ${b.count})` });
  });

export const profileSchema = z
  .object({
    $schema: z.string().optional().describe("editor hint: ./profile.schema.json"),
    id: z.string().regex(/^[a-z0-9][a-z0-9-]{1,63}$/, "lower-case letters, digits and - (2 to 64)").describe("unique; the file is named <id>.yaml"),
    model: z.string().min(1).max(120),
    vendor: z.string().min(1).max(80),
    transport: z.literal("modbus-rtu"),
    roles: z.array(z.enum(ROLES)).min(1).describe("what the hub uses the device for; each role needs certain signals and commands"),
    source: z.string().min(1).max(300).describe("where the register map comes from"),
    assumed: z.array(z.string().max(300)).default([]).describe("what in this map is assumed rather than taken from the manual"),
    serial: serialSchema.default(serialSchema.parse({})),
    poll: z.array(pollSchema).min(1).describe("the blocks read on every poll; every point must fall inside one"),
    points: z.array(pointSchema).min(1),
    signals: z.partialRecord(z.enum(SIGNALS), signalSourceSchema).default({}).describe("the fixed signal vocabulary, each derived from points"),
    commands: z
      .partialRecord(z.enum(["close", "open", "siren_on", "siren_off"]), commandSchema)
      .default({})
      .describe("writes the hub may make; none on a readOnly profile"),
    readOnly: z.boolean().default(false).describe("the manual forbids writes: the hub never writes to it"),
  })
  .strict();

export type Profile = z.infer<typeof profileSchema>;
export type Point = z.infer<typeof pointSchema>;
export type SignalCondition = z.infer<typeof signalConditionSchema>;
export type SignalSource = z.infer<typeof signalSourceSchema>;
export type Command = z.infer<typeof commandSchema>;
export type CommandName = keyof Profile["commands"];
export type PollBlock = z.infer<typeof pollSchema>;
