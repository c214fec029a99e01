// A home's problems as words in the operator's language. Kinds the console does not know yet still read as a
// sentence naming the code, never as a blank; a hub never seen says so instead of "offline since ?".
import type { TFunction } from "i18next";
import type { HomeProblem } from "../api/homes";
import { formatAge, formatDateTime } from "../format";

const KNOWN = new Set(["valve_fault", "valve_latched", "hub_offline", "primary_path_down", "device_offline", "device_fault", "battery_low", "second_path_untested"]);

export function problemText(t: TFunction, p: HomeProblem): string {
  const device = p.device ?? "";
  if (p.kind === "hub_offline") return t(p.since === null ? "homes.problem.hub_never_seen" : "homes.problem.hub_offline");
  // Its `since` is the last successful test: none at all reads as "never", not as a date.
  if (p.kind === "second_path_untested" && p.since === null) return t("homes.problem.second_path_never_tested");
  if (p.kind === "battery_low" && typeof p.battery === "number") return t("homes.problem.battery_level", { device, battery: p.battery });
  if (KNOWN.has(p.kind)) return t(`homes.problem.${p.kind}`, { device });
  return t("homes.problem.unknown", { code: p.kind, device });
}

/** "since 14:03 (2 h 5 min)"; empty when the start is not known. */
export function sinceText(t: TFunction, since: number | null, now: number): string {
  if (since === null) return "";
  return t("homes.since", { time: formatDateTime(new Date(since)), age: formatAge(t, now - since) });
}
