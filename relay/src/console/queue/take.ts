// Taking an incident at the console: one person says "I have this one" so the others on duty leave it.
// It changes neither the lifecycle state nor the call tree (that is the lifecycle's acknowledge). Taking one
// someone else holds needs `force` and is recorded as a hand-over. The take row, its timeline entry and the
// audit row commit together; the unique current_key makes two people taking at once one winner and one 409.
import type { Kysely } from "kysely";
import { ulid } from "ulid";
import { recordAudit } from "../../careplans/audit.js";
import type { HouseholdTables } from "../../households/tables.js";
import { inStreetScope } from "../../households/street-scope.js";
import { addTimeline } from "../../incidents/repo.js";
import type { LoopDb } from "../../store/closed-loop-schema.js";
import type { IncidentTakesTable, QueueDb } from "./table.js";
import type { ConsoleUser } from "./user.js";

export interface Taker {
  username: string;
  displayName: string;
  at: number;
}

export class TakeError extends Error {
  constructor(
    readonly status: 404 | 409,
    readonly code: "not_found" | "taken" | "conflict",
    message: string,
    readonly takenBy?: Taker,
  ) {
    super(message);
    this.name = "TakeError";
  }
}

const takerOf = (r: IncidentTakesTable): Taker => ({ username: r.username, displayName: r.display_name, at: Number(r.taken_at) });
const takenError = (id: string, r: IncidentTakesTable) => new TakeError(409, "taken", `incident ${id} is taken by ${r.username}; take it over with force`, takerOf(r));

/** Takes `id` for `user` (a no-op when it is theirs already). Throws TakeError: 404 not open or not on the person's streets, 409 taken. */
export async function takeIncident(db0: Kysely<LoopDb>, id: string, user: ConsoleUser, force: boolean, at: number): Promise<void> {
  await db0.transaction().execute(async (trx0) => {
    const trx = trx0 as unknown as Kysely<QueueDb & HouseholdTables>;
    const inc = await trx.selectFrom("incidents as i").leftJoin("households as h", "h.hub", "i.hub").select(["i.state", "h.street"]).where("i.id", "=", id).executeTakeFirst();
    // Outside the person's streets answers as an unknown incident would (households/street-scope.ts).
    if (!inc || inc.state === "closed" || !inStreetScope(user.streets, inc.street ?? undefined)) throw new TakeError(404, "not_found", `no open incident ${id}`);
    const current = () => trx.selectFrom("console_incident_takes").selectAll().where("current_key", "=", id).executeTakeFirst();
    const prev = await current();
    if (prev?.user_id === user.id) return;
    if (prev && !force) throw takenError(id, prev);
    if (prev) {
      const r = await trx.updateTable("console_incident_takes").set({ current_key: null, ended_at: at, ended_by: user.actor }).where("id", "=", prev.id).where("current_key", "=", id).executeTakeFirst();
      if (Number(r.numUpdatedRows) !== 1) throw new TakeError(409, "conflict", `incident ${id} changed hands meanwhile; read it again`);
    }
    const row: IncidentTakesTable = {
      id: ulid(at),
      incident_id: id,
      current_key: id,
      user_id: user.id,
      username: user.username,
      display_name: user.displayName,
      actor: user.actor,
      taken_at: at,
      previous_id: prev?.id ?? null,
      ended_at: null,
      ended_by: null,
    };
    const got = await trx.insertInto("console_incident_takes").values(row).onConflict((oc) => oc.column("current_key").doNothing()).returning("id").execute();
    if (got.length === 0) {
      // Someone took it between our look and our insert.
      const winner = await current();
      throw winner && !force ? takenError(id, winner) : new TakeError(409, "conflict", `incident ${id} changed hands meanwhile; read it again`);
    }
    await addTimeline(trx0, id, { at, actor: user.actor, kind: "taken", cause: prev ? "taken over at the console" : "taken at the console", detail: prev ? { from: prev.actor } : null });
    await recordAudit(trx0, { actor: user.actor, action: prev ? "incident.take_over" : "incident.take", subject: id, purpose: "console", at });
  });
}
