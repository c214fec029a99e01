// Point values → the fixed signal vocabulary the rules understand (gas_lel, co_ppm, alarm, valve_closed ...).
import type { Profile, SignalName } from "../profiles/schema.js";
import type { Decoded, PointValue } from "./decode.js";

export type Signals = Partial<Record<SignalName, number | boolean>>;

interface Condition {
  point: string;
  equals?: number | string | boolean;
  in?: Array<number | string>;
  above?: number;
  invert?: boolean;
}

function matches(value: PointValue, label: string | undefined, want: number | string | boolean): boolean {
  if (typeof want === "string") return label === want;
  if (typeof want === "boolean") return (value === true || (typeof value === "number" && value !== 0)) === want;
  return Number(value) === want;
}

/** undefined when the point it needs was not read (or was rejected). */
function evaluate(c: Condition, d: Decoded): number | boolean | undefined {
  const value = d.values[c.point];
  if (value === undefined) return undefined;
  const label = d.labels[c.point];
  let r: number | boolean;
  if (c.equals !== undefined) r = matches(value, label, c.equals);
  else if (c.in) r = c.in.some((w) => matches(value, label, w));
  else if (c.above !== undefined) r = Number(value) > c.above;
  else r = value;
  return c.invert ? !(r === true || (typeof r === "number" && r !== 0)) : r;
}

export function deriveSignals(profile: Profile, d: Decoded): Signals {
  const out: Signals = {};
  for (const [name, src] of Object.entries(profile.signals) as Array<[SignalName, Condition & { any?: Condition[] }]>) {
    if (!src) continue;
    if (src.any) {
      // true if any is true; unknown only if none is true and some could not be read
      const rs = src.any.map((c) => evaluate(c, d));
      const on = rs.some((r) => r === true || (typeof r === "number" && r !== 0));
      const v = on ? true : rs.some((r) => r === undefined) ? undefined : false;
      if (v !== undefined) out[name] = src.invert ? !v : v;
      continue;
    }
    const v = evaluate(src, d);
    if (v !== undefined) out[name] = v;
  }
  return out;
}
