// The signed-in console: header, navigation and the page the route names. The incident list and the alarm
// live here rather than on the queue page, so a critical incident sounds whichever page is open.
import type { Session } from "../api/types";
import { useT } from "../i18n";
import { useAlarm } from "../queue/useAlarm";
import { useIncidents } from "../queue/useIncidents";
import { isUnattendedCritical } from "../queue/sort";
import { useRoute } from "../router";
import { Header } from "./Header";
import { Nav } from "./Nav";
import { Placeholder } from "./Placeholder";
import { QueuePage } from "./queue/QueuePage";

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
        {route.page === "homes" && <Placeholder text={t("placeholder.homes")} />}
        {route.page === "reports" && <Placeholder text={t("placeholder.reports")} />}
        {route.page === "incident" && <Placeholder text={t("placeholder.incident", { id: route.id })} />}
      </main>
    </div>
  );
}
