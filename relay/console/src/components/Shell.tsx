// The signed-in console: header, navigation and the page the route names. The incident list and the alarm
// live here rather than on the queue page, so a critical incident sounds whichever page is open.
import { lazy, Suspense } from "preact/compat";
import type { Session } from "../api/types";
import { useT } from "../i18n";
import { useAlarm } from "../queue/useAlarm";
import { useIncidents } from "../queue/useIncidents";
import { isUnattendedCritical } from "../queue/sort";
import { useRoute } from "../router";
import { Header } from "./Header";
import { Nav } from "./Nav";
import { HomesPage } from "./homes/HomesPage";
import { IncidentPage } from "./incident/IncidentPage";
import { QueuePage } from "./queue/QueuePage";

// The reports page carries the chart library (more than the rest of the console together): loaded the first
// time it is opened, so the queue, which must be up at once, does not wait for it.
const ReportsPage = lazy(() => import("./reports/ReportsPage").then((m) => m.ReportsPage));

export function Shell({ session, onSignOut }: { session: Session; onSignOut: () => Promise<void> }) {
  const t = useT();
  const route = useRoute();
  const incidents = useIncidents();
  const alarmBlocked = useAlarm([...incidents.rows.values()].some(isUnattendedCritical));
  return (
    <div class="app">
      <Header user={session.user} onSignOut={() => void onSignOut()} />
      <Nav route={route} openCount={incidents.rows.size} />
      {alarmBlocked && (
        <p class="banner banner-alarm" role="alert" data-testid="alarm-blocked">
          {t("queue.alarmBlocked")}
        </p>
      )}
      <main class="app-main">
        {route.page === "queue" && <QueuePage user={session.user} incidents={incidents} />}
        {route.page === "homes" && <HomesPage user={session.user} />}
        {route.page === "reports" && (
          <Suspense fallback={<p class="loading">{t("app.loading")}</p>}>
            <ReportsPage user={session.user} />
          </Suspense>
        )}
        {route.page === "incident" && <IncidentPage id={route.id} user={session.user} />}
      </main>
    </div>
  );
}
