// The plan the installer commissions against: the relay's household plan (GET /v1/households/{id}/plan, or
// the same JSON saved to a file when offline), reduced to what the hub needs: one slot per planned device.
import { z } from "zod";
import { PLAN_DEVICE_KINDS, PLAN_LEVELS, type PlanDeviceKind } from "../../../protocol/commissioning.js";

const relayPlanItem = z
  .object({
    kind: z.enum(PLAN_DEVICE_KINDS),
    room: z.string().min(1).max(32),
    count: z.number().int().min(1).max(20),
    retiredAt: z.number().int().optional(),
  })
  .passthrough();

/** The relay's plan as its API returns it; fields the hub does not use (why, status, …) pass through unread. */
export const relayPlanSchema = z
  .object({
    version: z.number().int().min(0),
    level: z.enum(PLAN_LEVELS),
    items: z.array(relayPlanItem).min(1).max(60),
  })
  .passthrough();
export type RelayPlan = z.infer<typeof relayPlanSchema>;

/** One planned device: the n-th of its plan item. */
export interface Slot {
  key: string;
  kind: PlanDeviceKind;
  room: string;
}

export class PlanError extends Error {
  override name = "PlanError";
}

/** Accepts the plan itself or the household detail (`{plan: …}`) the relay returns; throws saying what is wrong. */
export function parsePlan(input: unknown, where: string): RelayPlan {
  const candidate = typeof input === "object" && input !== null && "plan" in input && !("items" in input) ? (input).plan : input;
  if (candidate === null) throw new PlanError(`${where}: the household has no plan yet (assess it at the relay first)`);
  const r = relayPlanSchema.safeParse(candidate);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw new PlanError(`${where}: not a household plan: ${i.path.join(".") || "(top)"}: ${i.message}`);
  }
  return r.data;
}

/** The devices to find and test, in the plan's order; retired items (consent withdrawn) are not installed. */
export function slotsOf(plan: RelayPlan): Slot[] {
  const out: Slot[] = [];
  const order = (k: PlanDeviceKind) => PLAN_DEVICE_KINDS.indexOf(k);
  const items = plan.items.filter((i) => i.retiredAt === undefined).sort((a, b) => order(a.kind) - order(b.kind));
  for (const it of items) for (let n = 1; n <= it.count; n++) out.push({ key: `${it.kind}@${it.room}#${n}`, kind: it.kind, room: it.room });
  return out;
}

/** The plan as the report carries it (kinds, counts, rooms). */
export function reportPlanItems(plan: RelayPlan): Array<{ kind: PlanDeviceKind; count: number; rooms: string[] }> {
  return plan.items.filter((i) => i.retiredAt === undefined).map((i) => ({ kind: i.kind, count: i.count, rooms: [i.room] }));
}
