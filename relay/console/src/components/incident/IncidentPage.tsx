// One incident: what happened and who was called (timeline, call tree), the lifecycle step the state allows
// now, the care plan (masked until revealed, and the reveal recorded), and the camera stills.
import type { User } from "../../api/types";
import { useT } from "../../i18n";
import { useAction } from "../../incident/useAction";
import { useIncident } from "../../incident/useIncident";
import { hrefFor } from "../../router";
import { ErrorBanner } from "../ErrorBanner";
import { ActionBar } from "./ActionBar";
import { ActionDialog } from "./ActionDialog";
import { CallTree } from "./CallTree";
import { CarePlanPanel } from "./CarePlanPanel";
import { IncidentHeader } from "./IncidentHeader";
import { Stills } from "./Stills";
import { Timeline } from "./Timeline";

export function IncidentPage({ id, user }: { id: string; user: User }) {
  const t = useT();
  const data = useIncident(id);
  const action = useAction(id, data.reload);
  const { detail, tree } = data;
  const back = (
    <a class="incident-back" href={hrefFor({ page: "queue" })} data-testid="back">
      ← {t("incident.back")}
    </a>
  );
  if (!detail || !tree) {
    return (
      <section class="incident-page" data-testid="incident-page" data-state="unloaded">
        {back}
        {data.loadError !== undefined ? <ErrorBanner error={data.loadError} /> : <p class="incident-loading">{t("app.loading")}</p>}
      </section>
    );
  }
  return (
    <section class="incident-page" data-testid="incident-page" data-id={id} data-state={tree.incident.state}>
      {back}
      <IncidentHeader view={tree} incident={detail.incident} user={user} onTaken={data.reload} />
      <ErrorBanner error={data.loadError} />
      <ActionBar allowed={tree.allowedActions} action={action} />
      <div class="incident-grid">
        <div class="incident-main">
          <CallTree view={tree} offset={data.offset} />
          <Timeline entries={detail.timeline} user={user} />
        </div>
        <aside class="incident-side">
          <CarePlanPanel id={id} user={user} />
          <Stills incidentId={id} />
        </aside>
      </div>
      {action.open && <ActionDialog action={action} />}
    </section>
  );
}
