// The `power` section: the hub's own supply (mains adapter, UPS HAT battery) read from Linux's power-supply
// class in sysfs, so the platform hears that a home is on battery before the hub goes silent. docs/power.md.
// Optional: without the section nothing is watched.
import { z } from "zod";

/**
 * A power-supply name as the kernel lists it under sysfsDir (AC, BAT0, battery, axp20x-usb).
 * One path segment only: the name is joined onto sysfsDir, so a slash or a leading dot would read elsewhere.
 */
const supplyName = z
  .string()
  .min(1, "a supply name (see `ls /sys/class/power_supply`)")
  .max(64, "at most 64 characters")
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.:@+-]*$/, "a supply name as listed by `ls /sys/class/power_supply` (letters, digits, _ . : @ + -; no slash)");

const percent = z.number().int("a whole percent").min(0, "0 to 100").max(100, "0 to 100");

export const powerSchema = z
  .object({
    sysfsDir: z.string().min(1).default("/sys/class/power_supply").describe("the folder of the kernel's power-supply class"),
    mains: supplyName
      .optional()
      .describe("the supply whose `online` says mains is in; absent: any supply of type Mains or USB that is online counts"),
    battery: supplyName
      .optional()
      .describe("the battery supply (capacity, status); absent: the first present supply of type Battery or UPS that powers the system"),
    pollS: z.number().int("whole seconds").min(1, "at least 1 second").max(3600, "at most 3600 seconds").default(5).describe("seconds between two reads"),
    lowPercent: percent.default(25).describe("battery_low (warning) when the battery falls to this while not on mains"),
    criticalPercent: percent.default(10).describe("battery_critical (high) when it falls to this: the hub will go silent soon"),
  })
  .strict()
  .refine((p) => p.criticalPercent < p.lowPercent, { message: "criticalPercent must be below lowPercent", path: ["criticalPercent"] });

export type PowerConfig = z.infer<typeof powerSchema>;
