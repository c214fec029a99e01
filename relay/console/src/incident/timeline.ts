// How a timeline entry reads on the page: who did it, and which of its details to show, each with the
// catalogue family that translates its value. Pure, so the rules are tested without a browser.

/** One entry of an incident's timeline as the operator API sends it. */
export interface TimelineEntry {
  id: string;
  at: number;
  actor: string;
  kind: string;
  from: string | null;
  to: string | null;
  cause: string | null;
  detail: Record<string, unknown> | null;
}

export type ActorKind = "user" | "operator" | "system" | "elder" | "hub" | "contact" | "other";

/** `user:wang` → a person at the console; `system:escalation` → the relay; `emergency_contact:son` → a contact. */
export function actorOf(actor: string): { kind: ActorKind; name: string; role?: string } {
  const i = actor.indexOf(":");
  const head = i < 0 ? actor : actor.slice(0, i);
  const rest = i < 0 ? "" : actor.slice(i + 1);
  if (head === "user") return { kind: "user", name: rest };
  if (head === "system" || head === "cli") return { kind: "system", name: rest };
  if (head === "elder") return { kind: "elder", name: "" };
  if (head === "hub") return { kind: "hub", name: rest };
  if (head === "operator" || head === "admin" || head === "installer") return { kind: "operator", name: rest, role: head };
  if (rest !== "") return { kind: "contact", name: rest, role: head };
  return { kind: "other", name: actor };
}

/**
 * The detail fields the page shows, in this order; `family` translates a coded value (`incident.<family>.<v>`),
 * none means the value is shown as entered (a reference, a summary, a note).
 */
const FIELDS: readonly { key: string; family?: string }[] = [
  { key: "reason", family: "reason" },
  { key: "service", family: "service" },
  { key: "serviceRef" },
  { key: "centre", family: "centre" },
  { key: "ref" },
  { key: "by" },
  { key: "summary" },
  { key: "visitedBy" },
  { key: "outcome", family: "outcome" },
  { key: "role", family: "contactRole" },
  { key: "target" },
  { key: "channel", family: "channel" },
  { key: "status", family: "callStatus" },
  { key: "meaning", family: "meaning" },
  { key: "digits" },
  { key: "note" },
];

export interface ShownDetail {
  key: string;
  value: string;
  family?: string;
}

export function detailsOf(e: TimelineEntry): ShownDetail[] {
  const d = e.detail ?? {};
  const out: ShownDetail[] = [];
  for (const f of FIELDS) {
    const v = d[f.key];
    if (typeof v !== "string" && typeof v !== "number") continue;
    const value = String(v);
    if (value === "") continue;
    out.push(f.family ? { key: f.key, value, family: f.family } : { key: f.key, value });
  }
  return out;
}

// Causes that only repeat what the entry's kind and states already say (the action's own name).
const PLAIN_CAUSES = new Set(["confirm", "mark_false_alarm", "record_dispatch", "record_ticket", "resolve", "record_follow_up", "close", "operator", "start_confirming", "follow_up_due"]);

/** A cause the catalogue words (`incident.cause.<key>`), or the relay's own text when it has no pattern here. */
export type Cause = { key: string; params: Record<string, string> } | { family: string; code: string } | { text: string };

// The relay's wordings (escalation/, incidents/service.ts), most specific first; what follows the colon of
// "step 2: …" is the policy's step name, shown as it comes like the call tree's labels.
const PATTERNS: readonly [RegExp, string, readonly string[]][] = [
  [/^step (\d+) round (\d+): (.*)$/s, "stepRound", ["step", "round", "label"]],
  [/^step (\d+): (.*)$/s, "step", ["step", "label"]],
  [/^stopped: incident (\w+)$/, "stopped", ["state"]],
  [/^exhausted: /, "exhausted", []],
  [/^restarted at step (\d+): /, "restarted", ["step"]],
  [/^arrival check: /, "arrivalCheck", []],
  [/^alarm (\S+)$/, "alarm", ["event"]],
  [/^reading (\S+)/, "reading", ["event"]],
  [/^event (\S+)$/, "event", ["event"]],
  [/^supervision: /, "supervision", []],
  [/^return visit due$/, "returnVisitDue", []],
  [/^with the elder$/, "withElder", []],
  [/^the elder pressed 1: needs help$/, "elderNeedsHelp", []],
  [/^already acknowledged or stopped$/, "alreadyAcknowledged", []],
];

/** The cause to show, or undefined when it adds nothing to the entry. */
export function causeOf(e: TimelineEntry): Cause | undefined {
  if (!e.cause || PLAIN_CAUSES.has(e.cause)) return undefined;
  // An answer's meaning and status are among its details already.
  if (e.kind === "outcome") return undefined;
  // A contact's or the elder's acknowledgement names what their key meant (going_to_door, fine…).
  if (e.kind === "acknowledged" && /^[a-z_]+$/.test(e.cause)) return { family: "meaning", code: e.cause };
  for (const [re, key, names] of PATTERNS) {
    const m = re.exec(e.cause);
    if (m) return { key, params: Object.fromEntries(names.map((n, i) => [n, m[i + 1] ?? ""])) };
  }
  return { text: e.cause };
}

/** Newest first: the operator reads what just happened at the top. */
export const newestFirst = (entries: readonly TimelineEntry[]): TimelineEntry[] => [...entries].sort((a, b) => b.at - a.at || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
