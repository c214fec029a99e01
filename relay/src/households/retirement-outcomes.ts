// The hub's answer to a retirement, taken inside ingest's batch transaction: a committed `audit/device_retired`
// event settles the device's pending retirement as done, an `audit/device_retire_refused` as refused (with the
// hub's reason and an operator alert), in the same commit as the event. The event is signed by the hub, so the
// answer is the hub's own statement; times are the relay's.
//
// The event itself is never refused here: a failure is kept to its own savepoint and logged, the event still
// commits, and the retirement stays pending, so it is sent again and the hub answers again.
import { sql, type Kysely } from "kysely";
import type { Logger } from "pino";
import type { Envelope } from "../../../protocol/envelope.js";
import type { Alerter } from "../alerts/alerter.js";
import { recordAudit } from "../careplans/audit.js";
import type { LoopDb } from "../store/closed-loop-schema.js";
import { retirementDb } from "./retirement-table.js";

export const DEVICE_RETIRED = "device_retired";
export const DEVICE_RETIRE_REFUSED = "device_retire_refused";

export type RetirementOutcomes = (trx: Kysely<LoopDb>, inserted: Envelope[]) => Promise<void>;

interface Answer {
  device: string;
  refused: boolean;
  /** The hub's reason for a refusal; for a done one, set when the hub no longer had the device. */
  reason: string | null;
  command: string | null;
}

/** What a committed event says about a retirement, if anything. */
export function answerOf(env: Envelope): Answer | undefined {
  if (env.kind !== "audit" || (env.type !== DEVICE_RETIRED && env.type !== DEVICE_RETIRE_REFUSED) || env.test) return undefined;
  const data: Record<string, unknown> = env.data ?? {};
  const device = typeof data.device === "string" ? data.device : env.device;
  if (!device) return undefined;
  const command = typeof data.command === "string" ? data.command.slice(0, 64) : null;
  if (env.type === DEVICE_RETIRE_REFUSED) return { device, refused: true, reason: (typeof data.reason === "string" && data.reason ? data.reason : "no reason given").slice(0, 200), command };
  return { device, refused: false, reason: data.already === true ? "the hub no longer had the device" : null, command };
}

export function retirementOutcomes(o: { alerts: Pick<Alerter, "raise">; log: Logger; now: () => number }): RetirementOutcomes {
  return async (trx, inserted) => {
    let n = 0;
    for (const env of inserted) {
      const a = answerOf(env);
      if (!a) continue;
      const sp = sql.raw(`anxin_retire_${n++}`);
      await sql`SAVEPOINT ${sp}`.execute(trx);
      try {
        await settle(trx, env, a, o);
        await sql`RELEASE SAVEPOINT ${sp}`.execute(trx);
      } catch (err) {
        await sql`ROLLBACK TO SAVEPOINT ${sp}`.execute(trx);
        await sql`RELEASE SAVEPOINT ${sp}`.execute(trx);
        o.log.error({ hub: env.hub, id: env.id, err: (err instanceof Error ? err.message : String(err)).slice(0, 200) }, "retirements: the hub's answer could not be recorded; the event is kept and the retirement stays pending");
      }
    }
  };
}

async function settle(trx: Kysely<LoopDb>, env: Envelope, a: Answer, o: { alerts: Pick<Alerter, "raise">; log: Logger; now: () => number }): Promise<void> {
  const at = o.now();
  const settled = await retirementDb(trx)
    .updateTable("household_retirements")
    .set({ state: a.refused ? "refused" : "done", done_at: at, reason: a.reason, outcome_event: env.id })
    .where("hub", "=", env.hub)
    .where("device", "=", a.device)
    .where("state", "=", "pending")
    .returning(["id", "household_id"])
    .execute();
  if (settled.length === 0) {
    // Nothing pending for it: an answer to a retirement settled already, or a device retired on the hub alone.
    o.log.info({ hub: env.hub, device: a.device, id: env.id, type: env.type }, "retirements: hub answer with nothing pending");
    return;
  }
  const households = [...new Set(settled.map((r) => r.household_id))].join(", ");
  const action = a.refused ? "household.device_retire_refused" : "household.device_retired";
  await recordAudit(trx, { actor: `hub:${env.hub}`, action, subject: env.hub, purpose: `event ${env.id}; household ${households}; device ${a.device}${a.command ? `; command ${a.command}` : ""}${a.reason ? `; ${a.reason}` : ""}`, at });
  o.log.info({ hub: env.hub, device: a.device, id: env.id, state: a.refused ? "refused" : "done" }, "retirements: settled by the hub");
  if (a.refused)
    await o.alerts.raise(trx, {
      kind: "device_retire_refused",
      detail: `household ${households} (hub ${env.hub}): the hub refused to retire device ${a.device} after consent was withdrawn: ${a.reason}; take it out by hand`,
      at,
      key: `${env.hub}/${a.device}`,
      hub: env.hub,
    });
}
