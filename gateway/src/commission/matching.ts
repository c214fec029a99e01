// Which hub device serves a planned slot: one whose roles fit the planned kind, in the slot's room first,
// then by the kind's preferred role (a fall radar before a plain presence sensor). Both the commissioning
// steps and the set-up that writes the configuration from the plan match this one way.
import type { PlanDeviceKind } from "../../../protocol/commissioning.js";
import { KINDS } from "./texts.js";

export interface Matchable {
  id: string;
  roles: readonly string[];
  room?: string;
}

export function fits(kind: PlanDeviceKind, d: Matchable): boolean {
  return KINDS[kind].roles.some((r) => d.roles.includes(r));
}

/** The best device for a slot among those not taken, or undefined. */
export function pickDevice<T extends Matchable>(kind: PlanDeviceKind, room: string, devices: readonly T[], taken: ReadonlySet<string>): T | undefined {
  const rank = (x: T) => (x.room === room ? 0 : 2) + KINDS[kind].roles.findIndex((r) => x.roles.includes(r));
  return devices.filter((x) => !taken.has(x.id) && fits(kind, x)).sort((a, b) => rank(a) - rank(b))[0];
}
