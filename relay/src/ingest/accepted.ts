// An event that passed its checks, as the batch, the row, the acks and the callbacks need it.
import type { Envelope } from "../../../protocol/envelope.js";
import type { EventRow } from "../store/store.js";
import type { Facts as WireFacts } from "./verify-wire.js";

/** What a row, the batch and the acks need of an accepted event. */
export type Facts = Pick<Envelope, "id" | "hub" | "boot" | "seq" | "ts" | "kind" | "type" | "severity" | "device" | "historical">;

export interface Accepted {
  hub: string;
  id: string;
  kind: Envelope["kind"];
  /** Committed ahead of routine events (isUrgent). */
  urgent: boolean;
  /** The parsed envelope when the checks ran here; from a worker it is parsed again only if a callback needs it. */
  env: Envelope | undefined;
  row: EventRow;
}

/** The facts a verify thread sends back (a flat tuple, see verify-wire.ts) for a message of `hub`. */
export function factsFromWire(hub: string, out: WireFacts): Facts {
  const [id, boot, seq, ts, kind, type, severity, device, historical] = out;
  return { id, hub, boot, seq, ts, kind, type, severity, ...(device === null ? {} : { device }), ...(historical ? { historical: true } : {}) };
}

/**
 * Events the relay commits and acknowledges ahead of routine ones, as the hub sends them first: every alarm
 * and its clearing (whatever the severity: an inactivity alarm comes as "warning"), and anything critical or
 * high (a valve closing, smoke spreading). In a reconnect storm an alarm then waits for one commit, not for
 * the thousands of readings other hubs sent before it.
 */
export function isUrgent(f: Pick<Facts, "kind" | "severity">): boolean {
  return f.kind === "alarm" || f.kind === "alarm_cleared" || f.severity === "critical" || f.severity === "high";
}

/**
 * The same judgement on a message not yet parsed, for the backlog's reserve only (verify threads parse after
 * admission): unchecked, so at worst a hub's own malformed message takes a reserved place until its checks
 * fail. A hub sends compact JSON, so the keys appear exactly so there.
 */
export function looksUrgent(text: string): boolean {
  return text.includes('"kind":"alarm') || text.includes('"severity":"critical"') || text.includes('"severity":"high"');
}

/**
 * How far the hub's clock is off when it should be flagged, else null. Invariant 8: a wrong clock never
 * costs an alarm; the event is kept with the relay's time beside it. A historical event is old by nature
 * (sent late from the hub's journal), so its age says nothing about the hub's clock; only events sent as
 * they happen are judged.
 */
export function skewToFlag(f: Pick<Facts, "ts" | "historical">, receivedAt: number, flagMs: number): number | null {
  const skew = f.ts - receivedAt;
  return !f.historical && Math.abs(skew) > flagMs ? skew : null;
}

/** The event as it goes into a batch: `text` is stored exactly as it was checked. */
export function accepted(f: Facts, parsed: Envelope | undefined, text: string, receivedAt: number, skewMs: number | null): Accepted {
  return {
    hub: f.hub,
    id: f.id,
    kind: f.kind,
    urgent: isUrgent(f),
    env: parsed,
    row: {
      id: f.id,
      hub: f.hub,
      boot: f.boot,
      seq: f.seq,
      ts: f.ts,
      receivedAt,
      kind: f.kind,
      type: f.type,
      severity: f.severity,
      device: f.device ?? null,
      payload: text,
      skewMs,
      historical: f.historical === true,
    },
  };
}

export function envelopeOf(a: Accepted): Envelope {
  // Already validated and verified: the stored text is exactly what was checked.
  return (a.env ??= JSON.parse(a.row.payload) as Envelope);
}
