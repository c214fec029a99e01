// The tables of the closed loop after an alarm: care plans, the audit log, incidents and their timeline,
// escalation timers, call attempts, operator alerts and API tokens. Written once for SQLite and PostgreSQL,
// with the same conventions as schema.ts (ms timestamps as bigint, 0/1 flags, JSON as text).
//
// "At most one of these is open" is kept with a nullable unique column (`open_key`) rather than a partial
// index: both databases allow many NULLs in a unique column, and `INSERT … ON CONFLICT (open_key) DO NOTHING`
// then lets two relay instances race to open the same incident without either transaction failing.
import type { Kysely, Migration } from "kysely";
import { consoleQueueMigrations } from "../console/queue/table.js";
import type { RelayDb } from "./schema.js";

export interface CarePlansTable {
  hub: string;
  /** The validated care plan as JSON (personal data: read only through the audited path). */
  plan: string;
  version: number;
  updated_at: number;
  updated_by: string;
}

export interface AuditLogTable {
  id: string;
  at: number;
  /** Who: `operator:<token name>`, `cli:<os user>`, `system:escalation`. */
  actor: string;
  /** What: e.g. `careplan.read`, `careplan.write`. */
  action: string;
  /** Which record (a hub id for care plans). */
  subject: string;
  /** Why, or through which path (`api`, `cli`, `call`). */
  purpose: string;
}

export interface IncidentsTable {
  id: string;
  hub: string;
  type: string;
  state: string;
  /** `hub/type` while the incident can still be joined by a repeated alarm; NULL afterwards. */
  open_key: string | null;
  severity: string;
  /** The event that opened it (NULL for hub_offline, which comes from supervision). */
  event_id: string | null;
  /** The hub_incidents row behind a hub_offline incident. */
  source_ref: string | null;
  device: string | null;
  device_model: string | null;
  /** The policy as it was when the incident started (JSON), with its name and version. */
  policy: string;
  policy_name: string;
  policy_version: number;
  /** The policy expanded against the care plan: the concrete steps (JSON). */
  plan: string;
  /** running | acknowledged | exhausted | stopped */
  escalation: string;
  /**
   * How many times the call tree was started again (new evidence, an arrival not confirmed): 0 for the first
   * run. Timer and call-attempt ids carry it, so a later pass never collides with an earlier one's rows.
   */
  escalation_pass: number;
  acknowledged_at: number | null;
  acknowledged_by: string | null;
  false_alarm_reason: string | null;
  follow_up_recorded: number;
  alarms: number;
  opened_at: number;
  updated_at: number;
  closed_at: number | null;
}

export interface IncidentTimelineTable {
  id: string;
  incident_id: string;
  at: number;
  actor: string;
  /** transition | joined | new_evidence | call | outcome | acknowledged | arrival | arrival_unconfirmed | dispatch | ticket | follow_up | note | alarm_cleared | escalation | taken (the duty console) */
  kind: string;
  from_state: string | null;
  to_state: string | null;
  cause: string | null;
  /** JSON; never phone numbers (contacts are named by their care-plan id). */
  detail: string | null;
}

export interface EscalationTimersTable {
  /**
   * `<incident>:<step>:<round>` (`<incident>:p<pass>:<step>:<round>` after a restart), `…:end`,
   * `<incident>:follow_up`, `<incident>:arrival:…`: a second insert of the same timer is a no-op.
   */
  id: string;
  incident_id: string;
  kind: string;
  step: number;
  round: number;
  due_at: number;
  claimed_by: string | null;
  claimed_until: number | null;
  done_at: number | null;
  /** ran | cancelled | skipped */
  result: string | null;
}

export interface CallAttemptsTable {
  /** `<incident>:<step>:<round>:<target>`: the idempotency key towards the provider as well. */
  id: string;
  incident_id: string;
  step: number;
  round: number;
  /** elder | a contact role | onsite_team */
  role: string;
  /** The care-plan id of the contact (never the number). */
  target: string;
  channel: string;
  /** requested | placed | unavailable | answered | no_answer | busy | failed | delivered | undelivered */
  status: string;
  digits: string | null;
  provider_ref: string | null;
  requested_at: number;
  placed_at: number | null;
  outcome_at: number | null;
  detail: string | null;
}

export interface OperatorAlertsTable {
  id: string;
  kind: string;
  detail: string;
  incident_id: string | null;
  /** Same kind+key while unacknowledged → one row with a count, not a flood. NULL once acknowledged. */
  open_key: string | null;
  count: number;
  first_at: number;
  last_at: number;
  acked_at: number | null;
  acked_by: string | null;
}

export interface ApiTokensTable {
  id: string;
  name: string;
  role: string;
  /** sha256 of the token (tokens are 256 random bits, so a fast hash suffices). */
  hash: string;
  created_at: number;
  revoked_at: number | null;
  /** JSON array of the streets (街道) the token is limited to; NULL: every street. */
  streets: string | null;
}

export interface ClosedLoopTables {
  care_plans: CarePlansTable;
  audit_log: AuditLogTable;
  incidents: IncidentsTable;
  incident_timeline: IncidentTimelineTable;
  escalation_timers: EscalationTimersTable;
  call_attempts: CallAttemptsTable;
  operator_alerts: OperatorAlertsTable;
  api_tokens: ApiTokensTable;
}

/** The relay's database with the closed-loop tables. */
export type LoopDb = RelayDb & ClosedLoopTables;

/**
 * A kysely instance (or transaction) on the relay's database, typed with either view of it. Parts that keep
 * their own tables (the forwarders' outbox, retention) take this and look at it through their own type.
 */
export type RelayDbHandle = Kysely<RelayDb> | Kysely<LoopDb>;

/** The same kysely instance (or transaction), seen with the closed-loop tables. */
export function loopDb(db: RelayDbHandle): Kysely<LoopDb> {
  return db as unknown as Kysely<LoopDb>;
}

export const closedLoopMigrations: Record<string, Migration> = {
  "0100_closed_loop": {
    async up(db): Promise<void> {
      await db.schema
        .createTable("care_plans")
        .ifNotExists()
        .addColumn("hub", "text", (c) => c.primaryKey())
        .addColumn("plan", "text", (c) => c.notNull())
        .addColumn("version", "integer", (c) => c.notNull())
        .addColumn("updated_at", "bigint", (c) => c.notNull())
        .addColumn("updated_by", "text", (c) => c.notNull())
        .execute();

      await db.schema
        .createTable("audit_log")
        .ifNotExists()
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("at", "bigint", (c) => c.notNull())
        .addColumn("actor", "text", (c) => c.notNull())
        .addColumn("action", "text", (c) => c.notNull())
        .addColumn("subject", "text", (c) => c.notNull())
        .addColumn("purpose", "text", (c) => c.notNull())
        .execute();
      await db.schema.createIndex("audit_log_subject_at").ifNotExists().on("audit_log").columns(["subject", "at"]).execute();

      await db.schema
        .createTable("incidents")
        .ifNotExists()
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("hub", "text", (c) => c.notNull())
        .addColumn("type", "text", (c) => c.notNull())
        .addColumn("state", "text", (c) => c.notNull())
        .addColumn("open_key", "text", (c) => c.unique())
        .addColumn("severity", "text", (c) => c.notNull())
        .addColumn("event_id", "text")
        .addColumn("source_ref", "text", (c) => c.unique())
        .addColumn("device", "text")
        .addColumn("device_model", "text")
        .addColumn("policy", "text", (c) => c.notNull())
        .addColumn("policy_name", "text", (c) => c.notNull())
        .addColumn("policy_version", "integer", (c) => c.notNull())
        .addColumn("plan", "text", (c) => c.notNull())
        .addColumn("escalation", "text", (c) => c.notNull())
        .addColumn("acknowledged_at", "bigint")
        .addColumn("acknowledged_by", "text")
        .addColumn("false_alarm_reason", "text")
        .addColumn("follow_up_recorded", "integer", (c) => c.notNull().defaultTo(0))
        .addColumn("alarms", "integer", (c) => c.notNull().defaultTo(1))
        .addColumn("opened_at", "bigint", (c) => c.notNull())
        .addColumn("updated_at", "bigint", (c) => c.notNull())
        .addColumn("closed_at", "bigint")
        .execute();
      await db.schema.createIndex("incidents_state").ifNotExists().on("incidents").columns(["state", "opened_at"]).execute();
      await db.schema.createIndex("incidents_hub_opened").ifNotExists().on("incidents").columns(["hub", "opened_at"]).execute();

      await db.schema
        .createTable("incident_timeline")
        .ifNotExists()
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("incident_id", "text", (c) => c.notNull())
        .addColumn("at", "bigint", (c) => c.notNull())
        .addColumn("actor", "text", (c) => c.notNull())
        .addColumn("kind", "text", (c) => c.notNull())
        .addColumn("from_state", "text")
        .addColumn("to_state", "text")
        .addColumn("cause", "text")
        .addColumn("detail", "text")
        .execute();
      await db.schema.createIndex("incident_timeline_incident").ifNotExists().on("incident_timeline").columns(["incident_id", "at", "id"]).execute();

      await db.schema
        .createTable("escalation_timers")
        .ifNotExists()
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("incident_id", "text", (c) => c.notNull())
        .addColumn("kind", "text", (c) => c.notNull())
        .addColumn("step", "integer", (c) => c.notNull())
        .addColumn("round", "integer", (c) => c.notNull())
        .addColumn("due_at", "bigint", (c) => c.notNull())
        .addColumn("claimed_by", "text")
        .addColumn("claimed_until", "bigint")
        .addColumn("done_at", "bigint")
        .addColumn("result", "text")
        .execute();
      // The poll looks for pending timers by due time.
      await db.schema.createIndex("escalation_timers_due").ifNotExists().on("escalation_timers").columns(["done_at", "due_at"]).execute();
      await db.schema.createIndex("escalation_timers_incident").ifNotExists().on("escalation_timers").columns(["incident_id"]).execute();

      await db.schema
        .createTable("call_attempts")
        .ifNotExists()
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("incident_id", "text", (c) => c.notNull())
        .addColumn("step", "integer", (c) => c.notNull())
        .addColumn("round", "integer", (c) => c.notNull())
        .addColumn("role", "text", (c) => c.notNull())
        .addColumn("target", "text", (c) => c.notNull())
        .addColumn("channel", "text", (c) => c.notNull())
        .addColumn("status", "text", (c) => c.notNull())
        .addColumn("digits", "text")
        .addColumn("provider_ref", "text")
        .addColumn("requested_at", "bigint", (c) => c.notNull())
        .addColumn("placed_at", "bigint")
        .addColumn("outcome_at", "bigint")
        .addColumn("detail", "text")
        .execute();
      await db.schema.createIndex("call_attempts_incident").ifNotExists().on("call_attempts").columns(["incident_id", "step", "round"]).execute();

      await db.schema
        .createTable("operator_alerts")
        .ifNotExists()
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("kind", "text", (c) => c.notNull())
        .addColumn("detail", "text", (c) => c.notNull())
        .addColumn("incident_id", "text")
        .addColumn("open_key", "text", (c) => c.unique())
        .addColumn("count", "integer", (c) => c.notNull().defaultTo(1))
        .addColumn("first_at", "bigint", (c) => c.notNull())
        .addColumn("last_at", "bigint", (c) => c.notNull())
        .addColumn("acked_at", "bigint")
        .addColumn("acked_by", "text")
        .execute();
      await db.schema.createIndex("operator_alerts_acked").ifNotExists().on("operator_alerts").columns(["acked_at", "last_at"]).execute();

      await db.schema
        .createTable("api_tokens")
        .ifNotExists()
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("name", "text", (c) => c.notNull().unique())
        .addColumn("role", "text", (c) => c.notNull())
        .addColumn("hash", "text", (c) => c.notNull().unique())
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .addColumn("revoked_at", "bigint")
        .execute();
    },
  },
  // The call tree's pass (escalation restarted on new evidence or after an arrival not confirmed).
  "0110_incident_escalation_pass": {
    async up(db): Promise<void> {
      await db.schema.alterTable("incidents").addColumn("escalation_pass", "integer", (c) => c.notNull().defaultTo(0)).execute();
    },
  },
  // Per-street access (docs/households.md): existing tokens stay unlimited (NULL).
  "0120_api_token_streets": {
    async up(db): Promise<void> {
      await db.schema.alterTable("api_tokens").addColumn("streets", "text").execute();
    },
  },
  // Who has taken which incident at the duty console (console/queue/table.ts).
  ...consoleQueueMigrations,
};
