// hub_offline incidents from supervision: the escalation mirrors supervision's hub_incidents rows into
// maintenance incidents, notes on them when the hub's second path (SMS) still works, and resolves and closes
// them once the hub is back.
import { cameBy, HUB_OFFLINE } from "../store/store.js";
import { addTimeline, getIncidentRow } from "../incidents/repo.js";
import { onSecondPath } from "../supervision/primary-path.js";
import { lockIncident, type EscalationContext } from "./context.js";
import type { IncidentOpener } from "./opening.js";

/** The timeline entry on a hub_offline incident whose hub's texts still arrive. */
export const SECOND_PATH_WORKING = "second_path_working";

export class HubOfflineSync {
  constructor(
    private readonly c: EscalationContext,
    private readonly opener: IncidentOpener,
  ) {}

  /**
   * Mirrors supervision's hub_offline incidents: opens a maintenance incident for each new one, and resolves
   * and closes ours once the hub is back. Derived from the store, so it survives restarts and runs on any
   * instance (source_ref is unique: one incident per supervision incident).
   */
  async syncHubOffline(): Promise<void> {
    const back = await this.c.db
      .selectFrom("incidents as i")
      .innerJoin("hub_incidents as h", "h.id", "i.source_ref")
      .select(["i.id as id", "h.close_reason as reason"])
      .where("i.type", "=", HUB_OFFLINE)
      .where("i.closed_at", "is", null)
      .where("h.closed_at", "is not", null)
      .execute();
    for (const b of back) {
      try {
        await this.c.db.transaction().execute(async (trx) => {
          const row = await getIncidentRow(trx, b.id);
          if (!row || row.closed_at !== null) return;
          const cause = `hub back: ${b.reason ?? "online"}`;
          if (row.state !== "resolved") await this.c.incidents.actIn(trx, b.id, { kind: "resolve" }, { actor: "system:supervision", cause });
          await this.c.incidents.actIn(trx, b.id, { kind: "close" }, { actor: "system:supervision", cause });
        });
      } catch (err) {
        this.c.log.warn({ err: (err as Error).message, incident: b.id }, "escalation: could not close a hub_offline incident");
      }
    }
    const fresh = await this.c.db
      .selectFrom("hub_incidents as h")
      .leftJoin("incidents as i", "i.source_ref", "h.id")
      .select(["h.id as id", "h.hub as hub", "h.reason as reason"])
      .where("h.closed_at", "is", null)
      .where("h.type", "=", HUB_OFFLINE)
      .where("i.id", "is", null)
      .limit(500)
      .execute();
    for (const f of fresh) {
      // One that cannot be opened now is tried at the next sync; it must not hold up the others.
      try {
        await this.c.db.transaction().execute((trx) =>
          this.opener.openOrJoin(trx, { hub: f.hub, type: HUB_OFFLINE, severity: "warning", sourceRef: f.id, device: null, cause: `supervision: ${f.reason}` }),
        );
      } catch (err) {
        this.c.log.warn({ err: (err as Error).message, hub: f.hub, source: f.id }, "escalation: could not open a hub_offline incident");
      }
    }
    await this.noteSecondPath();
  }

  /**
   * A hub offline over MQTT whose texts still arrive is not a silent home: its alarms reach the relay, only
   * heartbeats and readings do not. Its open hub_offline incident says so once, naming the first text after
   * the hub's last sight over MQTT (supervision/primary-path.ts onSecondPath), whether that text came before
   * or after the incident opened. Derived from the store like the rest of the sync.
   */
  private async noteSecondPath(): Promise<void> {
    const open = await this.c.db
      .selectFrom("incidents as i")
      .innerJoin("hubs as b", "b.id", "i.hub")
      .select(["i.id as id", "i.hub as hub", "b.online as online", "b.last_seen_at as lastSeenAt"])
      .where("i.type", "=", HUB_OFFLINE)
      .where("i.closed_at", "is", null)
      .where("b.online", "=", 0)
      .where((eb) => eb.not(eb.exists(eb.selectFrom("incident_timeline as t").select("t.id").whereRef("t.incident_id", "=", "i.id").where("t.kind", "=", SECOND_PATH_WORKING))))
      .limit(500)
      .execute();
    for (const o of open) {
      const lastSeenAt = o.lastSeenAt === null ? null : Number(o.lastSeenAt);
      try {
        const sms = await this.c.db
          .selectFrom("events")
          .select(["id", "received_at"])
          .where("hub", "=", o.hub)
          .where(cameBy("sms"))
          .where("received_at", ">", lastSeenAt ?? -1)
          .orderBy("received_at")
          .limit(1)
          .executeTakeFirst();
        const smsAt = sms ? Number(sms.received_at) : null;
        if (!sms || !onSecondPath({ online: Number(o.online) === 1, lastSeenAt }, smsAt)) continue;
        await this.c.db.transaction().execute(async (trx) => {
          // Taken first and checked again: another instance's sync may have noted it meanwhile.
          await lockIncident(trx, o.id);
          const row = await getIncidentRow(trx, o.id);
          const noted = await trx.selectFrom("incident_timeline").select("id").where("incident_id", "=", o.id).where("kind", "=", SECOND_PATH_WORKING).executeTakeFirst();
          if (!row || row.closed_at !== null || noted) return;
          await addTimeline(trx, o.id, { at: this.c.now(), actor: "system:supervision", kind: SECOND_PATH_WORKING, cause: `event ${sms.id}`, detail: { eventId: sms.id, smsAt } });
        });
      } catch (err) {
        this.c.log.warn({ err: (err as Error).message, incident: o.id }, "escalation: could not note a hub's working second path");
      }
    }
  }
}
