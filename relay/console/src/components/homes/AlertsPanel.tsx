import type { OperatorAlert } from "../../api/homes";
import { formatDateTime } from "../../format";
import { tCode, useT } from "../../i18n";
import type { Alerts } from "../../homes/useAlerts";
import { hrefFor } from "../../router";
import { ErrorBanner } from "../ErrorBanner";

/** The open operator alerts (telephony down, forwards dead-lettered, …), each acknowledged with one click. */
export function AlertsPanel({ alerts }: { alerts: Alerts }) {
  const t = useT();
  const list = alerts.alerts;
  return (
    <section class="alerts-panel" aria-labelledby="alerts-heading" data-testid="alerts">
      <div class="homes-head">
        <h2 id="alerts-heading">{t("homes.alerts.heading")}</h2>
        {list && <span class="homes-count">{t("homes.alerts.count", { count: list.length })}</span>}
      </div>
      <ErrorBanner error={alerts.error} />
      <ErrorBanner error={alerts.ackError} onDismiss={alerts.dismissAckError} />
      {alerts.outcome && (
        <p class={`ack-outcome ack-${alerts.outcome.result}`} role="status" data-testid="ack-outcome">
          {t(alerts.outcome.result === "acked" ? "homes.alerts.acked" : "homes.alerts.gone", { kind: tCode(t, "homes.alertKind", alerts.outcome.kind) })}
        </p>
      )}
      {list === undefined ? (
        !alerts.error && <p class="homes-loading">{t("app.loading")}</p>
      ) : list.length === 0 ? (
        <p class="empty" data-testid="alerts-empty">
          {t("homes.alerts.empty")}
        </p>
      ) : (
        <ul class="alert-list">
          {list.map((a) => (
            <AlertItem key={a.id} alert={a} busy={alerts.busy.has(a.id)} onAck={() => void alerts.acknowledge(a)} />
          ))}
        </ul>
      )}
    </section>
  );
}

function AlertItem({ alert, busy, onAck }: { alert: OperatorAlert; busy: boolean; onAck: () => void }) {
  const t = useT();
  const kind = tCode(t, "homes.alertKind", alert.kind);
  const when =
    alert.count > 1
      ? t("homes.alerts.repeated", { count: alert.count, first: formatDateTime(new Date(alert.firstAt)), last: formatDateTime(new Date(alert.lastAt)) })
      : t("homes.alerts.raised", { time: formatDateTime(new Date(alert.lastAt)) });
  return (
    <li class="alert-item" data-id={alert.id} data-kind={alert.kind} data-testid="alert">
      <div class="alert-main">
        <strong class="alert-kind">{kind}</strong>
        <span class="alert-when">{when}</span>
        {alert.callCount > 0 && <span class="alert-calls">{t("homes.alerts.calls", { count: alert.callCount })}</span>}
        {alert.incidentId && (
          <a class="alert-incident" href={hrefFor({ page: "incident", id: alert.incidentId })}>
            {t("homes.alerts.incident")}
          </a>
        )}
        {/* Written by the relay itself (ids and dates, no personal data): shown as it comes, for the details. */}
        <span class="alert-detail" lang="en">
          {alert.detail}
        </span>
      </div>
      <button type="button" class="alert-ack" data-testid="ack" disabled={busy} onClick={onAck} aria-label={`${t("homes.alerts.ack")}: ${kind}`}>
        {t(busy ? "homes.alerts.acking" : "homes.alerts.ack")}
      </button>
    </li>
  );
}
