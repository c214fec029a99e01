// The API's error codes as sentences in the operator's language. Codes the console does not know still get a
// translated sentence (naming the code), never the server's English message.
import type { TFunction } from "i18next";
import { ApiError } from "./client";
import { formatDateTime } from "../format";
import { hasTranslation } from "../i18n";

/** Entries of the `error` family that are not codes the relay sends (they take values, or are fallbacks). */
const NOT_CODES = new Set(["locked", "lockedNoTime", "taken", "server", "unknown"]);

export function errorMessage(t: TFunction, err: unknown): string {
  if (!(err instanceof ApiError)) return t("error.unknown", { code: "client" });
  const { code, status, body } = err;
  if (code === "locked") {
    const until = typeof body.until === "number" || typeof body.until === "string" ? new Date(body.until) : undefined;
    return until && !Number.isNaN(until.getTime()) ? t("error.locked", { until: formatDateTime(until) }) : t("error.lockedNoTime");
  }
  // The request's Origin was not this site: to the operator the same "reload and try again" as a bad token.
  if (code === "origin") return t("error.csrf");
  if (code === "taken") return t("error.taken", { name: takenByName(body) });
  // Every code the relay answers with has its sentence (test/unit/console-catalogues.test.ts checks the sources).
  if (!NOT_CODES.has(code) && hasTranslation(`error.${code}`)) return t(`error.${code}`);
  if (status === 429) return t("error.rate_limited");
  if (status >= 500) return t("error.server", { status });
  return t("error.unknown", { code });
}

/** Who holds an incident, from a 409 `taken` answer. */
export function takenByName(body: Record<string, unknown>): string {
  const by = body.takenBy;
  if (typeof by === "object" && by !== null) {
    const { displayName, username } = by as Record<string, unknown>;
    if (typeof displayName === "string" && displayName) return displayName;
    if (typeof username === "string") return username;
  }
  return "?";
}
