// The queue's order: the most severe first; within a severity the one waiting longest first.
import type { Row } from "../api/types";

const RANK: Record<string, number> = { critical: 0, high: 1, warning: 2, info: 3 };
const rank = (severity: string) => RANK[severity] ?? 4;

export function sortRows(rows: Iterable<Row>): Row[] {
  return [...rows].sort((a, b) => rank(a.severity) - rank(b.severity) || a.receivedAt - b.receivedAt || a.id.localeCompare(b.id));
}

/** A critical incident nobody has taken: it flashes and the alarm sounds. */
export const isUnattendedCritical = (row: Row): boolean => row.severity === "critical" && row.takenBy === null;
