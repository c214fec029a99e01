// Which lifecycle actions the incident page may offer now, asked of the relay's own lifecycle table
// (incidents/lifecycle.ts) so the page never offers a step the server would refuse for the state alone.
// Pure: the incident row's fields in, the action names out, in the order the page shows them.
import { transition, type IncidentAction, type IncidentState } from "../../incidents/lifecycle.js";

/** The page's actions, each one route of the operator API (POST /v1/incidents/{id}/<path>). */
export const CONSOLE_ACTIONS = ["acknowledge", "confirm", "false_alarm", "dispatch", "ticket", "resolve", "follow_up", "close"] as const;
export type ConsoleAction = (typeof CONSOLE_ACTIONS)[number];

export interface ActionFacts {
  state: IncidentState;
  type: string;
  /** running | acknowledged | exhausted | stopped */
  escalation: string;
  followUpRecorded: boolean;
  closedAt: number | null;
}

// A representative of each lifecycle action: the reason or centre does not change whether it is allowed.
const PROBES: Record<Exclude<ConsoleAction, "acknowledge">, IncidentAction> = {
  confirm: { kind: "confirm" },
  false_alarm: { kind: "mark_false_alarm", reason: "other" },
  dispatch: { kind: "record_dispatch", service: "door" },
  ticket: { kind: "record_ticket", centre: "street", ref: "-" },
  resolve: { kind: "resolve" },
  follow_up: { kind: "record_follow_up" },
  close: { kind: "close" },
};

// Allowed without changing the state, and still worth doing: another dispatch, another ticket, a further visit.
const REPEATABLE: ReadonlySet<ConsoleAction> = new Set(["dispatch", "ticket", "follow_up"]);

export function allowedActions(f: ActionFacts): ConsoleAction[] {
  const out: ConsoleAction[] = [];
  // Taking it in hand stops calls that are still going (or that ran out); acknowledge.ts refuses a closed incident.
  if (f.closedAt === null && (f.escalation === "running" || f.escalation === "exhausted")) out.push("acknowledge");
  for (const [name, probe] of Object.entries(PROBES) as [Exclude<ConsoleAction, "acknowledge">, IncidentAction][]) {
    const r = transition(f.state, probe, { type: f.type, followUpRecorded: f.followUpRecorded });
    // Confirming a confirmed incident is allowed by the table but changes nothing: not a step to offer.
    if (r.ok && (r.changed || REPEATABLE.has(name))) out.push(name);
  }
  return out;
}
