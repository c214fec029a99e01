// Tells a hub, through its signed `cmd` topic, what happened to an incident its own alarm opened, so the hub can
// say it to the elder (docs/voice.md): a fixed announcement id, never text. It reads the incidents (no hook in
// the call tree or the operator's actions): an open incident of an alarm type on an online hub that was
//   - acknowledged by a family contact pressing "I will go to the door"  → family_coming
//   - acknowledged so by another responder in the call tree              → helper_coming
//   - acknowledged by a duty operator                                    → operator_handling
//   - moved to responding / coordinated (a dispatch was recorded)        → help_dispatched
// Best-effort and at most once per incident and announcement: each is claimed first by a timeline row with a
// fixed id (a second claim, by this or another relay instance, inserts nothing), then sent once. A send that
// fails is not repeated: the announcement is a comfort to the elder, not part of the alarm's delivery.
import type { Kysely } from "kysely";
import type { Logger } from "pino";
import { ulid } from "ulid";
import { ANNOUNCED_ALARMS, type AnnouncedAlarm, type Announcement, type HubCommandRequest } from "../../../protocol/messages.js";
import { CONTACT_ROLES } from "../careplans/schema.js";
import type { LoopDb } from "../store/closed-loop-schema.js";
import { SerialPasses } from "../../../lib/daemon/serial-passes.js";

/** How often open incidents are looked at. */
export const ANNOUNCE_POLL_MS = 1_000;
/** News older than this is not announced any more (a hub offline meanwhile, a relay that was down). */
export const ANNOUNCE_WITHIN_MS = 10 * 60_000;
/** Contacts whose "I will go to the door" is announced as family coming. */
const FAMILY: ReadonlySet<string> = new Set(["emergency_contact", "relative_neighbour"]);
const RESPONDERS: ReadonlySet<string> = new Set([...CONTACT_ROLES, "onsite_team"]);
const OPEN = ["received", "confirming", "confirmed", "responding", "coordinated"];
const DISPATCHED: ReadonlySet<string> = new Set(["responding", "coordinated"]);

export interface AnnouncerOptions {
  db: Kysely<LoopDb>;
  /** Signs and publishes a command (RelaySession.publishCommand); rejects when it cannot. */
  publish(hub: string, cmd: HubCommandRequest): Promise<void>;
  connected(): boolean;
  log: Logger;
  now?: () => number;
  pollMs?: number;
}

export interface IncidentNews {
  id: string;
  hub: string;
  type: string;
  state: string;
  acknowledged_at: number | null;
  acknowledged_by: string | null;
  updated_at: number;
}

/** What an open incident's row says is news for the elder, with when it happened. */
export function announcementsOf(i: IncidentNews): Array<{ announcement: Announcement; at: number }> {
  const out: Array<{ announcement: Announcement; at: number }> = [];
  const by = i.acknowledged_by ?? "";
  if (i.acknowledged_at !== null) {
    if (by.startsWith("operator:")) out.push({ announcement: "operator_handling", at: i.acknowledged_at });
    else {
      // A responder's acknowledgement is `<role>:<contact>`, and means "I will go to the door" (escalation/keys.ts).
      const role = by.slice(0, by.indexOf(":"));
      if (RESPONDERS.has(role)) out.push({ announcement: FAMILY.has(role) ? "family_coming" : "helper_coming", at: i.acknowledged_at });
    }
  }
  if (DISPATCHED.has(i.state)) out.push({ announcement: "help_dispatched", at: i.updated_at });
  return out;
}

export class Announcer {
  private readonly now: () => number;
  private readonly passes: SerialPasses;
  /** `incident/announcement` claimed (by anyone) or sent: not looked up again. */
  private readonly done = new Set<string>();

  constructor(private readonly o: AnnouncerOptions) {
    this.now = o.now ?? Date.now;
    this.passes = new SerialPasses({ everyMs: o.pollMs ?? ANNOUNCE_POLL_MS, what: "announce: pass", log: o.log, pass: () => this.pass() });
  }

  start(): void {
    this.passes.start();
  }

  stop(): Promise<void> {
    return this.passes.stop();
  }

  /** One pass over the open incidents of online hubs (the timer's; tests call it). */
  sweep(): Promise<void> {
    return this.passes.run();
  }

  private async pass(): Promise<void> {
    if (this.passes.isStopped || !this.o.connected()) return;
    const since = this.now() - ANNOUNCE_WITHIN_MS;
    const rows = await this.o.db
      .selectFrom("incidents as i")
      .innerJoin("hubs as h", "h.id", "i.hub")
      .select(["i.id", "i.hub", "i.type", "i.state", "i.acknowledged_at", "i.acknowledged_by", "i.updated_at"])
      .where("i.state", "in", OPEN)
      .where("i.closed_at", "is", null)
      .where("i.type", "in", [...ANNOUNCED_ALARMS])
      .where("h.online", "=", 1)
      .where("h.status", "=", "active")
      .where((eb) => eb.or([eb("i.acknowledged_at", ">=", since), eb("i.updated_at", ">=", since)]))
      .limit(500)
      .execute();
    for (const r of rows) {
      const row: IncidentNews = { ...r, acknowledged_at: r.acknowledged_at === null ? null : Number(r.acknowledged_at), updated_at: Number(r.updated_at) };
      for (const n of announcementsOf(row)) {
        if (n.at < since || this.passes.isStopped || !this.o.connected()) continue;
        const key = `${row.id}/${n.announcement}`;
        if (this.done.has(key)) continue;
        this.done.add(key);
        if (!(await this.claim(row.id, n.announcement))) continue;
        await this.o
          .publish(row.hub, { cmd: "announce", id: `announce-${ulid(this.now())}`, announcement: n.announcement, alarm: row.type as AnnouncedAlarm, incident: row.id })
          .then(
            () => this.o.log.info({ hub: row.hub, incident: row.id, announcement: n.announcement }, "announce: sent to the hub"),
            (err: Error) => this.o.log.warn({ hub: row.hub, incident: row.id, announcement: n.announcement, err: err.message }, "announce: not sent (not repeated)"),
          );
      }
    }
    // Open incidents are few; what was done is forgotten after a while (a closed incident's keys are never seen again).
    if (this.done.size > 10_000) this.done.clear();
  }

  /** True when this instance claimed the announcement (a timeline row with a fixed id; a second insert does nothing). */
  private async claim(incident: string, announcement: Announcement): Promise<boolean> {
    const r = await this.o.db
      .insertInto("incident_timeline")
      .values({ id: `${incident}:announce:${announcement}`, incident_id: incident, at: this.now(), actor: "system", kind: "announce", from_state: null, to_state: null, cause: announcement, detail: null })
      .onConflict((oc) => oc.column("id").doNothing())
      .executeTakeFirst();
    return Number(r.numInsertedOrUpdatedRows ?? 0n) === 1;
  }
}
