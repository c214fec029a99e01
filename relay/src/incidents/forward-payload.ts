// The body of one incident update for one destination. By default it carries structured fields only —
// codes, ids, times, counts — because free text is where personal data hides: an operator's note ("Mrs
// Wang fell again, her son Li is on 138…"), the resolution summary, who made the follow-up visit, a
// reference typed by hand, a provider's error message. A destination configured with `freeText: true` gets
// those too. The choice is made here, before the outbox row is written, so a payload with free text is never
// stored for a destination that may not receive it. Unknown detail keys count as free text: a field added to
// the timeline later stays home until it is listed below.
import { isMaintenance } from "./lifecycle.js";
import type { TimelineEntry } from "./repo.js";

export interface ForwardedIncident {
  id: string;
  hub: string;
  type: string;
  severity: string;
  state: string;
  openedAt: number;
  falseAlarmReason?: string | null;
}

/** What goes with an alarm's opening only (see forwarding.ts). */
export interface OpeningExtra {
  address?: string;
  riskLevel?: string;
}

/** An enum value (a false-alarm reason, a dispatch service, a call status…). */
const CODE = /^[a-z][a-z0-9_-]{0,47}$/;
/** An identifier: a ULID, a hub's device id, a care-plan id, an attempt id (`<incident>:<step>:<round>:<target>`). */
const ID = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}$/;
const code = (v: unknown) => v === null || (typeof v === "string" && CODE.test(v));
const id = (v: unknown) => v === null || (typeof v === "string" && ID.test(v));
const int = (v: unknown) => v === null || Number.isSafeInteger(v);
const codes = (v: unknown) => Array.isArray(v) && v.every((x) => typeof x === "string" && CODE.test(x));
/** Keys pressed on a call: a short choice, never a number someone typed in. */
const digits = (v: unknown) => typeof v === "string" && /^[0-9*#]{1,4}$/.test(v);

/** The timeline detail keys that are structured, and the shape a value must have to go out. */
const STRUCTURED_DETAIL: Record<string, (v: unknown) => boolean> = {
  // Operator actions: the false-alarm reason, the service sent, the operations centre, the visit's outcome.
  reason: code,
  service: code,
  centre: code,
  outcome: code,
  // Opening, joined alarms and new evidence.
  eventId: id,
  device: id,
  severity: code,
  why: codes,
  escalation: code,
  restartAtStep: int,
  policy: code,
  policyVersion: int,
  steps: int,
  // Calls, outcomes, acknowledgements and arrival checks.
  attemptId: id,
  role: code,
  target: code,
  channel: code,
  status: code,
  digits,
  meaning: code,
  resumeAtStep: int,
  arrivalCheckAt: int,
  pass: int,
  step: int,
};

/**
 * Detail keys known to be free text (everything not in STRUCTURED_DETAIL is treated the same way; this list
 * is for the documentation and the tests): the operator's note, the resolution summary, who made the
 * follow-up visit, who was sent or called, the service's and the operations centre's references, and the
 * telephony provider's own words.
 */
export const FREE_TEXT_DETAIL_KEYS = ["note", "summary", "visitedBy", "by", "serviceRef", "ref", "provider", "error"] as const;

/** Timeline actors that name a person through an API token's name or an OS account. */
export const TOKEN_ROLES: ReadonlySet<string> = new Set(["operator", "admin", "installer"]);

/** The detail without its free text; null when nothing structured is left. */
export function structuredDetail(detail: Record<string, unknown> | null): Record<string, unknown> | null {
  if (!detail) return null;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(detail)) if (Object.hasOwn(STRUCTURED_DETAIL, k) && STRUCTURED_DETAIL[k]!(v)) out[k] = v;
  return Object.keys(out).length ? out : null;
}

/**
 * Who acted, as a role and an id rather than a name. `operator:<token name>` becomes `operator:<token id>`
 * (the id resolves to the name only in the relay, through the token list), or `operator` when the token is
 * unknown; `cli:<os user>` becomes `cli`; `system`, `elder`, `hub:<id>` and `<role>:<care-plan id>` are
 * kept as they are (a care-plan id is named in timelines instead of the person).
 */
export function structuredActor(actor: string, tokenId?: string): string {
  const i = actor.indexOf(":");
  const role = i < 0 ? actor : actor.slice(0, i);
  if (!CODE.test(role)) return "unknown";
  if (TOKEN_ROLES.has(role)) return tokenId && ID.test(tokenId) ? `${role}:${tokenId}` : role;
  if (role === "cli" || i < 0) return role;
  const rest = actor.slice(i + 1);
  return ID.test(rest) ? actor : role;
}

/** Why a closed incident was closed, as a code; null while it is open. */
export function closeReason(incident: ForwardedIncident): string | null {
  if (incident.state !== "closed") return null;
  if (incident.falseAlarmReason) return "false_alarm";
  return isMaintenance(incident.type) ? "maintenance_resolved" : "follow_up_done";
}

/**
 * The payload for one destination. `freeText` false: structured fields only, and `actor` must already be
 * structuredActor's answer. The location goes with an alarm's opening to every destination the opening goes
 * to: it is what sends a responder to the right door (forwarding.ts).
 */
export function incidentPayload(
  incident: ForwardedIncident,
  entry: TimelineEntry,
  extra: OpeningExtra,
  o: { freeText: boolean; actor: string },
): Record<string, unknown> {
  const maintenance = isMaintenance(incident.type);
  return {
    v: 1,
    kind: "anxin.incident",
    freeText: o.freeText,
    incident: {
      id: incident.id,
      hub: incident.hub,
      type: incident.type,
      severity: incident.severity,
      state: incident.state,
      openedAt: incident.openedAt,
      falseAlarmReason: incident.falseAlarmReason ?? null,
      closeReason: closeReason(incident),
    },
    update: {
      id: entry.id,
      kind: entry.kind,
      from: entry.from,
      to: entry.to,
      actor: o.actor,
      // The relay's own words (`step 2: emergency contacts in turn`, `close`): never typed by a person.
      cause: entry.cause,
      at: entry.at,
      detail: o.freeText ? entry.detail : structuredDetail(entry.detail),
    },
    ...(extra.address && !maintenance ? { location: { address: extra.address } } : {}),
    ...(extra.riskLevel ? { riskLevel: extra.riskLevel } : {}),
  };
}

