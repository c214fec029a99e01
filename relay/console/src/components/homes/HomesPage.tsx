// The homes board: every home whose hub needs attention (hub offline, devices offline / low battery /
// faulty, gas valves latched closed or not closing), most urgent first, beside the open operator alerts.
// Refreshed every few seconds, and soon after the incident stream moves (hubs going offline and valve
// faults arrive there as incidents).
import { useCallback } from "preact/hooks";
import { getHomesBoard, type HomesBoard } from "../../api/homes";
import type { User } from "../../api/types";
import { formatDateTime } from "../../format";
import { useT } from "../../i18n";
import { useAlerts } from "../../homes/useAlerts";
import { usePolled } from "../../homes/usePolled";
import { useStreamNudge } from "../../homes/useStreamNudge";
import { useNow } from "../../queue/useNow";
import { ErrorBanner } from "../ErrorBanner";
import { AlertsPanel } from "./AlertsPanel";
import { HomesTable } from "./HomesTable";

/** How often the board and the alerts are asked for again. */
export const REFRESH_MS = 10_000;

export function HomesPage({ user }: { user: User }) {
  const t = useT();
  const now = useNow(5000);
  const board = usePolled(getHomesBoard, REFRESH_MS);
  const alerts = useAlerts(REFRESH_MS);
  const { refresh } = board;
  const alertsRefresh = alerts.refresh;
  useStreamNudge(
    useCallback(() => {
      refresh();
      alertsRefresh();
    }, [refresh, alertsRefresh]),
  );
  return (
    <div class="homes-page" data-role={user.role}>
      <section class="homes-board" aria-labelledby="homes-heading">
        <div class="homes-head">
          <h1 id="homes-heading">{t("homes.heading")}</h1>
          {board.data && <Summary board={board.data} />}
          <span class="homes-updated" role="status" data-testid="updated">
            {board.loadedAt !== undefined && t("homes.updated", { time: formatDateTime(new Date(board.loadedAt)) })}
          </span>
          <button type="button" class="homes-refresh" onClick={board.refresh} disabled={board.loading}>
            {t(board.loading ? "homes.refreshing" : "homes.refresh")}
          </button>
        </div>
        <ErrorBanner error={board.error} />
        {board.data === undefined ? (
          !board.error && <p class="homes-loading">{t("app.loading")}</p>
        ) : board.data.homes.length === 0 ? (
          <p class="empty" data-testid="homes-empty">
            {t("homes.empty")}
          </p>
        ) : (
          <>
            <HomesTable homes={board.data.homes} now={now} />
            {board.data.total > board.data.homes.length && <p class="hint">{t("homes.truncated", { shown: board.data.homes.length, total: board.data.total })}</p>}
          </>
        )}
      </section>
      <AlertsPanel alerts={alerts} />
    </div>
  );
}

function Summary({ board }: { board: HomesBoard }) {
  const t = useT();
  return (
    <span class="homes-count" data-testid="homes-summary">
      {t("homes.summary", { total: board.total, urgent: board.counts.urgent, attention: board.counts.attention, notice: board.counts.notice })}
    </span>
  );
}
