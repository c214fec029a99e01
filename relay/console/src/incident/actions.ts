// The page's lifecycle actions as data: the form each one asks for, its keyboard shortcut, and the request
// body made from what was entered. Which actions are offered is the relay's answer (allowedActions of the
// call-tree endpoint); this module only knows how to ask for each one.

/** The page's lifecycle actions: the relay's allowedActions names them. */
export type ActionName = "acknowledge" | "confirm" | "false_alarm" | "dispatch" | "ticket" | "resolve" | "follow_up" | "close";

export const FALSE_ALARM_REASONS = ["cooking_smoke", "device_test", "device_fault", "pressed_by_mistake", "lying_down_to_rest", "out_of_radar_range", "visitor", "pet", "other"] as const;
export const DISPATCH_SERVICES = ["fire_119", "ambulance_120", "police_110", "gas_company", "door"] as const;
export const OPS_CENTRES = ["street", "district"] as const;
export const VISIT_OUTCOMES = ["well", "needs_support", "referred", "not_home"] as const;

export type Field =
  | { name: string; kind: "select"; options: readonly string[]; required: true }
  | { name: string; kind: "text" | "textarea"; required: boolean; max: number };

const note: Field = { name: "note", kind: "textarea", required: false, max: 1000 };

/** The order the page shows them in: the lifecycle's own. */
export const ACTIONS: readonly ActionName[] = ["acknowledge", "confirm", "false_alarm", "dispatch", "ticket", "resolve", "follow_up", "close"];

export const FIELDS: Record<ActionName, readonly Field[]> = {
  acknowledge: [note],
  confirm: [note],
  false_alarm: [{ name: "reason", kind: "select", options: FALSE_ALARM_REASONS, required: true }, note],
  dispatch: [
    { name: "service", kind: "select", options: DISPATCH_SERVICES, required: true },
    { name: "ref", kind: "text", required: false, max: 120 },
    { name: "by", kind: "text", required: false, max: 120 },
    note,
  ],
  ticket: [
    { name: "centre", kind: "select", options: OPS_CENTRES, required: true },
    { name: "ref", kind: "text", required: true, max: 120 },
    note,
  ],
  resolve: [{ name: "summary", kind: "textarea", required: true, max: 1000 }],
  follow_up: [
    { name: "visitedBy", kind: "text", required: true, max: 120 },
    { name: "outcome", kind: "select", options: VISIT_OUTCOMES, required: true },
    note,
  ],
  close: [note],
};

/** Single keys on the incident page (never while typing or under a dialog: useShortcuts). */
export const SHORTCUTS: Record<ActionName, string> = {
  acknowledge: "a",
  confirm: "c",
  false_alarm: "f",
  dispatch: "d",
  ticket: "o",
  resolve: "r",
  follow_up: "v",
  close: "x",
};

/** Actions that end or turn back the emergency: drawn apart so they are not pressed by habit. */
export const CAUTION: ReadonlySet<ActionName> = new Set(["false_alarm", "close"]);

export type FormValues = Record<string, string>;

/** The form as it opens: every select on nothing chosen, every text empty. */
export function emptyValues(action: ActionName): FormValues {
  return Object.fromEntries(FIELDS[action].map((f) => [f.name, ""]));
}

/** The first field that still needs something (or is too long), or undefined when the form can be sent. */
export function missingField(action: ActionName, values: FormValues): { field: string; problem: "required" | "too_long" } | undefined {
  for (const f of FIELDS[action]) {
    const v = (values[f.name] ?? "").trim();
    if (f.required && v === "") return { field: f.name, problem: "required" };
    if (f.kind === "select" && v !== "" && !f.options.includes(v)) return { field: f.name, problem: "required" };
    if (f.kind !== "select" && v.length > f.max) return { field: f.name, problem: "too_long" };
  }
  return undefined;
}

/** The request body: trimmed values, optional ones left out when empty (the API refuses unknown or empty fields). */
export function bodyOf(action: ActionName, values: FormValues): Record<string, string> {
  const body: Record<string, string> = {};
  for (const f of FIELDS[action]) {
    const v = (values[f.name] ?? "").trim();
    if (v !== "") body[f.name] = v;
  }
  return body;
}
