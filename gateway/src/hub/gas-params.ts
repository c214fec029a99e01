// The gas/CO rule's parameters for this home: the install's set points and, per valve, its rated closing time and
// re-send period. Derived and never edited in place: a valve joining or leaving gives a new object, so the pure
// rule never sees its parameters change under it.
import type { RulesConfig } from "../config/schema.js";
import type { Device } from "../devices/device.js";
import type { HubDevice } from "../devices/hub-device.js";
import type { GasRuleParams, ValveParams } from "../rules/gas.js";

/** A reading older than this cannot prove the air is clear. */
const STALE_MS = 10_000;

/** The install's own rated time first, then the valve's profile, then the install-wide default. */
export function valveParams(v: HubDevice, rules: RulesConfig): ValveParams {
  const profile = (v as Partial<Device>).profile;
  return {
    ratedCloseMs: v.ratedCloseMs ?? profile?.commands.close?.ratedMs ?? rules.valve.ratedCloseMs,
    retryMs: profile?.commands.close?.retryMs ?? rules.valve.retryMs,
  };
}

export function gasRuleParams(rules: RulesConfig, valves: readonly HubDevice[], hasSiren: boolean): GasRuleParams {
  return {
    gas: rules.gas,
    co: rules.co,
    staleMs: STALE_MS,
    valves: Object.fromEntries(valves.map((v) => [v.id, valveParams(v, rules)])),
    hasSiren,
  };
}

export function withValve(p: GasRuleParams, id: string, v: ValveParams): GasRuleParams {
  return { ...p, valves: { ...p.valves, [id]: v } };
}

export function withoutValve(p: GasRuleParams, id: string): GasRuleParams {
  if (!(id in p.valves)) return p;
  const { [id]: _gone, ...valves } = p.valves;
  return { ...p, valves };
}
