// Times and durations in the operator's language.
import type { TFunction } from "i18next";
import { currentLanguage } from "./i18n";

export function formatDateTime(d: Date): string {
  return new Intl.DateTimeFormat(currentLanguage(), { dateStyle: "short", timeStyle: "short" }).format(d);
}

/** "3 min 5 s" / "3 分 5 秒": how long an incident has waited; never negative (clocks may differ slightly). */
export function formatAge(t: TFunction, ms: number): string {
  const total = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  if (h > 0) return t("age.hours", { h, m });
  if (m > 0) return t("age.minutes", { m, s });
  return t("age.seconds", { s });
}
