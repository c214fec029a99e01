// Times on the incident page: to the second (the timeline orders what happened within a minute).
import { currentLanguage } from "../i18n";

export function formatTime(ms: number): string {
  return new Intl.DateTimeFormat(currentLanguage(), { dateStyle: "short", timeStyle: "medium" }).format(new Date(ms));
}

/** Only the time of day: the reveal notice and the call tree's attempts (the date is the incident's). */
export function formatClock(ms: number): string {
  return new Intl.DateTimeFormat(currentLanguage(), { timeStyle: "medium" }).format(new Date(ms));
}
