// Incidents open inside ingest's batch transaction, so an alarm and its call tree commit together or not at
// all. A failure there (a bug, a broken care plan) must not hold up every hub's events behind one alarm: each
// alarm opens under its own savepoint; if that fails, only its part is rolled back, the events still commit
// and are acknowledged, and an operator alert names the alarm that started no call tree. Many alarms opening
// incidents at once are first opened together (openFresh) under one savepoint; if that fails, it is rolled
// back and each alarm is taken on its own as above, so the one that fails is found and named.
import { sql, type Kysely } from "kysely";
import type { Logger } from "pino";
import type { Envelope } from "../../../protocol/envelope.js";
import type { Alerter } from "../alerts/alerter.js";
import { reachesIncidents } from "../escalation/opening.js";
import type { LoopDb } from "../store/closed-loop-schema.js";

export type Opening = (trx: Kysely<LoopDb>, inserted: Envelope[]) => Promise<void>;
/** Opens what it can of `inserted` together; returns the ids of the events it handled. */
export type OpenFresh = (trx: Kysely<LoopDb>, inserted: Envelope[]) => Promise<Set<string>>;

export function guardedOpening(open: Opening, o: { alerts: Pick<Alerter, "raise">; log: Logger; now: () => number; openFresh?: OpenFresh }): Opening {
  return async (trx, inserted) => {
    // Only a batch with several such events can have several to open (and the savepoint costs round trips).
    const several = inserted.filter(reachesIncidents).length > 1;
    const handled = o.openFresh && several ? await together(trx, inserted, o.openFresh, o.log) : new Set<string>();
    let n = 0;
    for (const env of inserted) {
      if (!reachesIncidents(env) || handled.has(env.id)) continue;
      const sp = sql.raw(`anxin_incident_${n++}`);
      await sql`SAVEPOINT ${sp}`.execute(trx);
      try {
        await open(trx, [env]);
        await sql`RELEASE SAVEPOINT ${sp}`.execute(trx);
      } catch (err) {
        await sql`ROLLBACK TO SAVEPOINT ${sp}`.execute(trx);
        await sql`RELEASE SAVEPOINT ${sp}`.execute(trx);
        // The message only, shortened: the event's data stays out of logs and alerts.
        const why = (err instanceof Error ? err.message : String(err)).slice(0, 200);
        o.log.error({ hub: env.hub, id: env.id, type: env.type, err: why }, "escalation: could not open or update the incident; the event is kept");
        await o.alerts.raise(trx, {
          kind: "escalation_error",
          detail: `${env.kind} ${env.type} ${env.id} from hub ${env.hub} started no call tree: ${why}`,
          at: o.now(),
          key: env.id,
          hub: env.hub,
        });
      }
    }
  };
}

async function together(trx: Kysely<LoopDb>, inserted: Envelope[], openFresh: OpenFresh, log: Logger): Promise<Set<string>> {
  await sql`SAVEPOINT anxin_incidents_together`.execute(trx);
  try {
    const handled = await openFresh(trx, inserted);
    await sql`RELEASE SAVEPOINT anxin_incidents_together`.execute(trx);
    return handled;
  } catch (err) {
    await sql`ROLLBACK TO SAVEPOINT anxin_incidents_together`.execute(trx);
    await sql`RELEASE SAVEPOINT anxin_incidents_together`.execute(trx);
    const why = (err instanceof Error ? err.message : String(err)).slice(0, 200);
    log.warn({ err: why }, "escalation: opening incidents together failed; opening each on its own");
    return new Set();
  }
}
