// The incident at a glance: severity (word and shape), type, state, the home (masked), since when, and who
// has it in hand — with taking it, as on the queue.
import type { Incident, CallTreeView } from "../../api/incident";
import type { Row, User } from "../../api/types";
import { tCode, useT } from "../../i18n";
import { formatTime } from "../../incident/format";
import { useTake } from "../../queue/useTake";
import { ErrorBanner } from "../ErrorBanner";
import { SeverityBadge } from "../queue/SeverityBadge";
import { TakeOverDialog } from "../queue/TakeOverDialog";

interface Props {
  view: CallTreeView;
  incident: Incident;
  user: User;
  onTaken: () => Promise<void>;
}

export function IncidentHeader({ view, incident, user, onTaken }: Props) {
  const t = useT();
  const take = useTake(() => void onTaken());
  const v = view.incident;
  const mine = view.takenBy?.username === user.username;
  // The queue's take works on a queue row; this is the same incident as one.
  const asRow = (): Row => ({ id: v.id, type: v.type, severity: v.severity, hub: v.hub, homeMasked: v.homeMasked, receivedAt: v.openedAt, state: v.state, step: null, takenBy: view.takenBy });
  return (
    <header class="incident-head">
      <div class="incident-title">
        <SeverityBadge severity={v.severity} />
        <h1 data-testid="incident-type">{tCode(t, "type", v.type)}</h1>
        <span class={`incident-state state-${v.state}`} data-testid="incident-state">
          {tCode(t, "state", v.state)}
        </span>
      </div>
      <dl class="incident-facts">
        <div>
          <dt>{t("incident.home")}</dt>
          <dd data-testid="incident-home">
            {v.homeMasked} <span class="muted">{v.hub}</span>
          </dd>
        </div>
        <div>
          <dt>{t("incident.opened")}</dt>
          <dd>{formatTime(v.openedAt)}</dd>
        </div>
        {incident.alarms > 1 && (
          <div>
            <dt>{t("incident.alarms")}</dt>
            <dd>{incident.alarms}</dd>
          </div>
        )}
        <div>
          <dt>{t("incident.takenBy")}</dt>
          <dd data-testid="incident-taken-by">
            {view.takenBy ? (mine ? t("queue.takenByYou") : t("queue.takenBy", { name: view.takenBy.displayName })) : t("queue.notTaken")}
            {!mine && v.closedAt === null && (
              <button type="button" class="take" data-testid="incident-take" disabled={take.busy.has(v.id)} onClick={() => void take.take(asRow())}>
                {t(take.busy.has(v.id) ? "queue.taking" : "queue.take")}
              </button>
            )}
          </dd>
        </div>
      </dl>
      <ErrorBanner error={take.error} onDismiss={take.dismissError} />
      {take.conflict && <TakeOverDialog holder={take.conflict.holder} onAnswer={take.answer} />}
    </header>
  );
}
