// The period a report covers: the last 7, 30 or 90 days up to now, or whole days from one date to another
// (both included, in the browser's time zone, which is the duty room's).

export const PRESET_DAYS = [7, 30, 90] as const;
export type PresetDays = (typeof PRESET_DAYS)[number];

export type PeriodChoice = { kind: "last"; days: PresetDays } | { kind: "range"; from: string; to: string };

export interface Period {
  since: number;
  until: number;
}

const DAY_MS = 86_400_000;

/** "2025-01-31" → local midnight of that day, or undefined for anything else. */
export function parseDay(value: string): Date | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value);
  if (!m) return undefined;
  const d = new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
  // new Date rolls 2025-02-30 over into March: such a date was not a day.
  return d.getFullYear() === Number(m[1]) && d.getMonth() === Number(m[2]) - 1 && d.getDate() === Number(m[3]) ? d : undefined;
}

/** A local date as the value of an <input type="date">. */
export function dayValue(d: Date): string {
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

/** The period chosen, or a reason it is not one ("from_after_to", "bad_date"). */
export function periodOf(choice: PeriodChoice, now: number): Period | { error: "bad_date" | "from_after_to" } {
  if (choice.kind === "last") return { since: now - choice.days * DAY_MS, until: now };
  const from = parseDay(choice.from);
  const to = parseDay(choice.to);
  if (!from || !to) return { error: "bad_date" };
  if (from.getTime() > to.getTime()) return { error: "from_after_to" };
  // The end day is included: the period ends at the next local midnight (setDate keeps DST days whole).
  const end = new Date(to);
  end.setDate(end.getDate() + 1);
  return { since: from.getTime(), until: end.getTime() };
}
