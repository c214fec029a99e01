// An alarm that came by SMS from a hub whose MQTT session is down is the sign of a broadband outage at that
// home, and so is the hub's own notice that its primary path is down: a maintenance alert for the duty
// operator ("not a silent home": alarms still arrive, heartbeats and readings do not), raised once per outage.
// The periodic test of the second path raises none: the hub sends it whatever the state of its broadband. An outage is named by the hub's last sight over MQTT, which
// does not move while it lasts (texts are not sightings); a new outage after the hub came back is a new
// alert. The open alert's key folds repeats from other instances; this instance also remembers what it
// raised, so an operator who acknowledged it is not alerted again for the same outage.
import type { Kysely } from "kysely";
import type { Logger } from "pino";
import type { CompactAlarm } from "../../../protocol/sms-compact.js";
import type { Alerter } from "../alerts/alerter.js";
import type { LoopDb } from "../store/closed-loop-schema.js";
import type { HubRow } from "../store/store.js";

export const PRIMARY_PATH_DOWN = "primary_path_down";

export interface PrimaryPathDeps {
  db: Kysely<LoopDb>;
  alerts: Pick<Alerter, "raise">;
  getHub(hub: string): Promise<HubRow | undefined>;
  /** MQTT silence beyond this counts as the session being down even before supervision marks the hub offline (its heartbeat window). */
  silentAfterMs: number;
  log: Logger;
  now: () => number;
}

/** Whether the hub's MQTT session is down now: marked offline, never seen, or silent past its window. */
export function mqttDown(h: Pick<HubRow, "online" | "lastSeenAt">, now: number, silentAfterMs: number): boolean {
  return !h.online || h.lastSeenAt === null || now - h.lastSeenAt > silentAfterMs;
}

/**
 * Whether a hub that supervision marks offline is "on its second path": something verified arrived from it by
 * SMS after its last sight over MQTT. Texts are not sightings, so that last sight is the outage's start for
 * as long as it lasts. The API's path health, the homes board and the hub_offline incident all decide by it.
 */
export function onSecondPath(h: { online: boolean; lastSeenAt: number | null }, smsLastAt: number | null): boolean {
  return !h.online && smsLastAt !== null && smsLastAt > (h.lastSeenAt ?? -Infinity);
}

export class PrimaryPathWatch {
  private readonly raised = new Map<string, string>(); // hub → the outage this instance alerted on

  constructor(private readonly d: PrimaryPathDeps) {}

  /** A verified event of `hub` arrived by SMS. Never throws: the event is stored whatever becomes of the alert. */
  async smsEvent(hub: string, kind: CompactAlarm["kind"], type: string): Promise<void> {
    const notice = kind === "device" && type === PRIMARY_PATH_DOWN;
    if (kind === "device" && !notice) return; // the path test: no sign of an outage
    try {
      const h = await this.d.getHub(hub);
      const now = this.d.now();
      if (!h || !mqttDown(h, now, this.d.silentAfterMs)) return;
      const outage = `${hub}@${h.lastSeenAt ?? "never"}`;
      if (this.raised.get(hub) === outage) return;
      this.raised.set(hub, outage);
      if (this.raised.size > 10_000) this.raised.delete(this.raised.keys().next().value as string);
      const since = h.lastSeenAt === null ? "it has never connected over MQTT" : `nothing over MQTT since ${new Date(h.lastSeenAt).toISOString()}`;
      await this.d.alerts.raise(this.d.db, {
        kind: PRIMARY_PATH_DOWN,
        key: outage,
        hub,
        at: now,
        detail: `hub ${hub}: ${notice ? "the hub says by SMS that its primary path is down" : "an alarm arrived by SMS"} while its MQTT session is down (${since}); the home's broadband is probably out. Not a silent home: alarms still arrive by SMS, but heartbeats and readings do not. Have the household's internet connection checked.`,
      });
    } catch (err) {
      this.d.log.error({ hub, err: (err as Error).message }, "primary path alert not raised");
    }
  }
}
