// Carries out lifecycle actions (an operator's through the API, the relay's own) in one transaction each:
// the state change, its timeline entry, stopping the escalation where the new state makes calls pointless,
// the follow-up timer after resolution, and the forwards that tell the platform and operations centres.
import type { Kysely } from "kysely";
import type { Logger } from "pino";
import type { Alerter } from "../alerts/alerter.js";
import { addTimer, cancelTimers } from "../escalation/timers.js";
import { notifyQueue } from "../console/queue/notifier.js";
import type { LoopDb } from "../store/closed-loop-schema.js";
import type { IncidentForwarding } from "./forwarding.js";
import { isMaintenance, stopsEscalation, transition, type IncidentAction, type IncidentState } from "./lifecycle.js";
import { addTimeline, getIncidentRow, setState, toIncident, type Incident, type TimelineEntry } from "./repo.js";

export class IncidentError extends Error {
  constructor(
    readonly status: 404 | 409,
    readonly code: "not_found" | "not_allowed" | "conflict",
    message: string,
  ) {
    super(message);
    this.name = "IncidentError";
  }
}

export interface Actor {
  /** `operator:<token name>`, `system`, `elder`, `contact:<id>` … */
  actor: string;
  cause?: string;
  /** Free text from the operator; stored in the timeline, never logged. */
  note?: string;
  /** Structured detail for the timeline (no phone numbers). */
  detail?: Record<string, unknown>;
}

export interface IncidentServiceOptions {
  db: Kysely<LoopDb>;
  log: Logger;
  alerts: Alerter;
  forwarding: IncidentForwarding;
  now: () => number;
  /** Seconds from resolution to the follow-up (return visit) falling due. */
  followUpAfterS: number;
}

const TIMELINE_KIND: Partial<Record<IncidentAction["kind"], string>> = {
  record_dispatch: "dispatch",
  record_ticket: "ticket",
  record_follow_up: "follow_up",
};

export class IncidentService {
  constructor(private readonly o: IncidentServiceOptions) {}

  get db(): Kysely<LoopDb> {
    return this.o.db;
  }

  /** Applies an action; throws IncidentError (404 unknown, 409 not allowed now or changed meanwhile). */
  async act(id: string, action: IncidentAction, by: Actor): Promise<{ incident: Incident; entry: TimelineEntry }> {
    return this.o.db.transaction().execute((trx) => this.actIn(trx, id, action, by)).finally(notifyQueue);
  }

  /** The same inside a caller's transaction. */
  async actIn(trx: Kysely<LoopDb>, id: string, action: IncidentAction, by: Actor): Promise<{ incident: Incident; entry: TimelineEntry }> {
    const at = this.o.now();
    const row = await getIncidentRow(trx, id);
    if (!row) throw new IncidentError(404, "not_found", `no incident ${id}`);
    const from = row.state as IncidentState;
    const res = transition(from, action, { type: row.type, followUpRecorded: row.follow_up_recorded === 1 });
    if (!res.ok) throw new IncidentError(409, "not_allowed", res.error);
    const extra: Parameters<typeof setState>[5] = {};
    if (action.kind === "mark_false_alarm") extra.false_alarm_reason = action.reason;
    if (action.kind === "record_follow_up") extra.follow_up_recorded = 1;
    const stopping = stopsEscalation(res.to) && row.escalation === "running";
    if (stopping) extra.escalation = "stopped";
    if (res.changed || Object.keys(extra).length > 0) {
      if (!(await setState(trx, id, from, res.to, at, extra))) throw new IncidentError(409, "conflict", `incident ${id} changed meanwhile; read it again`);
    }
    const detail: Record<string, unknown> = { ...by.detail };
    if (action.kind === "mark_false_alarm") detail.reason = action.reason;
    if (action.kind === "record_dispatch") detail.service = action.service;
    if (action.kind === "record_ticket") Object.assign(detail, { centre: action.centre, ref: action.ref });
    if (by.note) detail.note = by.note;
    const entry = await addTimeline(trx, id, {
      at,
      actor: by.actor,
      kind: res.changed ? "transition" : (TIMELINE_KIND[action.kind] ?? "transition"),
      from,
      to: res.to,
      cause: by.cause ?? action.kind,
      detail: Object.keys(detail).length ? detail : null,
    });
    if (stopping) {
      await cancelTimers(trx, id, at, ["step", "end"]);
      await addTimeline(trx, id, { at, actor: by.actor, kind: "escalation", cause: `stopped: incident ${res.to}` });
    }
    if (res.to === "resolved" && res.changed && !isMaintenance(row.type))
      await addTimer(trx, { id: `${id}:follow_up`, incidentId: id, kind: "follow_up", step: 0, round: 0, dueAt: at + this.o.followUpAfterS * 1000 });
    // Resolved: nobody needs to confirm arriving any more (a false alarm or closing cancels every timer below).
    if (res.to === "resolved" && res.changed) await cancelTimers(trx, id, at, ["arrival", "arrival_end"]);
    if (res.to === "closed" || res.to === "false_alarm") await cancelTimers(trx, id, at);
    const after = await getIncidentRow(trx, id);
    const incident = toIncident(after ?? row);
    // A start_confirming that changed nothing (a later call) is not news.
    if (res.changed || action.kind !== "start_confirming") await this.o.forwarding.push(trx, incident, entry);
    return { incident, entry };
  }

  /** An operator takes the incident in hand: the calls stop; the state is unchanged. */
  async acknowledge(id: string, by: Actor): Promise<{ incident: Incident; entry: TimelineEntry }> {
    return this.o.db.transaction().execute(async (trx) => {
      const at = this.o.now();
      const row = await getIncidentRow(trx, id);
      if (!row) throw new IncidentError(404, "not_found", `no incident ${id}`);
      if (row.closed_at !== null) throw new IncidentError(409, "not_allowed", `incident ${id} is closed`);
      const r = await trx
        .updateTable("incidents")
        .set({ escalation: "acknowledged", acknowledged_at: at, acknowledged_by: by.actor, updated_at: at })
        .where("id", "=", id)
        .where("escalation", "in", ["running", "exhausted"])
        .executeTakeFirst();
      const won = Number(r.numUpdatedRows) === 1;
      if (won) await cancelTimers(trx, id, at, ["step", "end"]);
      const entry = await addTimeline(trx, id, {
        at,
        actor: by.actor,
        kind: "acknowledged",
        cause: won ? (by.cause ?? "operator") : "already acknowledged or stopped",
        detail: by.note ? { note: by.note } : null,
      });
      const incident = toIncident((await getIncidentRow(trx, id)) ?? row);
      if (won) await this.o.forwarding.push(trx, incident, entry);
      return { incident, entry };
    }).finally(notifyQueue);
  }
}
