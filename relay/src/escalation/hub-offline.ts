// hub_offline incidents from supervision: the escalation mirrors supervision's hub_incidents rows into
// maintenance incidents, and resolves and closes them once the hub is back.
import { HUB_OFFLINE } from "../store/store.js";
import { getIncidentRow } from "../incidents/repo.js";
import type { EscalationContext } from "./context.js";
import type { IncidentOpener } from "./opening.js";

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
  }
}
