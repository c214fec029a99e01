// The behaviour rules' parameters (falls, stillness, vital signs, inactivity) from the install configuration.
import type { BehaviourParams, InactivityParams } from "../rules/behaviour-params.js";
import type { HubConfig } from "./schema.js";

const minutes = (hhmm: string) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));

export function behaviourParamsFrom(config: HubConfig): BehaviourParams {
  const r = config.rules;
  // The older zigbee.fallConfirmMs, when given, still sets the confirmation window for every radar.
  const confirmMs = config.zigbee?.fallConfirmMs ?? r.fall.confirmMs;
  return {
    defaults: {
      fall: { ...r.fall, confirmMs },
      stillness: { dangerous: false, windowMs: r.stillness.windowMs },
      vitals: { ...r.vitals },
    },
    rooms: Object.fromEntries(Object.entries(config.rooms).map(([room, o]) => [room, { ...o }])),
  };
}

export function inactivityParamsFrom(config: HubConfig): InactivityParams {
  const i = config.rules.inactivity;
  return {
    enabled: i.enabled,
    spanMs: i.spanMs,
    night: i.night ? { fromMin: minutes(i.night.from), toMin: minutes(i.night.to) } : null,
    timeZone: i.timeZone,
  };
}
