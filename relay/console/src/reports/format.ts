// How the reports page writes its figures, in the operator's language.
import type { TFunction } from "i18next";
import { formatAge } from "../format";
import { currentLanguage, tCode } from "../i18n";

/** 0.25 → "25%" / "25%"; one decimal at most. */
export function formatRate(rate: number): string {
  return new Intl.NumberFormat(currentLanguage(), { style: "percent", maximumFractionDigits: 1 }).format(rate);
}

export function formatCount(n: number): string {
  return new Intl.NumberFormat(currentLanguage()).format(n);
}

/** A time to confirmation, or a dash when nothing was confirmed. */
export function formatDuration(t: TFunction, ms: number | null): string {
  return ms === null ? t("reports.none") : formatAge(t, ms);
}

/** The period's days as the operator reads them: the last day shown is the one before `until`. */
export function formatPeriod(t: TFunction, since: number, until: number): string {
  const f = new Intl.DateTimeFormat(currentLanguage(), { dateStyle: "medium", timeStyle: "short" });
  return t("reports.period.shown", { from: f.format(new Date(since)), to: f.format(new Date(until)) });
}

/** "Cooking smoke 2, Device test 1": the reasons given, most frequent first. */
export function formatReasons(t: TFunction, reasons: Record<string, number>): string {
  const parts = Object.entries(reasons)
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    .map(([code, n]) => t("reports.reasonCount", { reason: reasonName(t, code), count: n }));
  return parts.length ? parts.join(t("reports.listSeparator")) : t("reports.none");
}

export const reasonName = (t: TFunction, code: string): string => tCode(t, "reports.reason", code);
