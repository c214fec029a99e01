import type { Home } from "../../api/homes";
import { formatDateTime } from "../../format";
import { useT } from "../../i18n";
import { ProblemList } from "./ProblemList";
import { UrgencyBadge } from "./UrgencyBadge";

const COLUMNS = ["urgency", "home", "problems"] as const;

/** The homes needing attention as a table on a desk screen; each row becomes a card on a tablet (homes.css). */
export function HomesTable({ homes, now }: { homes: Home[]; now: number }) {
  const t = useT();
  return (
    <table class="homes" data-testid="homes">
      <thead>
        <tr>
          {COLUMNS.map((c) => (
            <th key={c} scope="col" data-col={c}>
              {t(`homes.col.${c}`)}
            </th>
          ))}
        </tr>
      </thead>
      <tbody>
        {homes.map((h) => (
          <HomeRow key={h.hub} home={h} now={now} />
        ))}
      </tbody>
    </table>
  );
}

function HomeRow({ home, now }: { home: Home; now: number }) {
  const t = useT();
  const where = [home.street, home.community].filter((x): x is string => !!x).join(" · ");
  return (
    <tr class={`home-row urg-row-${home.urgency}`} data-hub={home.hub} data-urgency={home.urgency} data-testid="home">
      <td data-col="urgency">
        <UrgencyBadge urgency={home.urgency} />
      </td>
      <td data-col="home">
        <span class="home-address">{home.homeMasked ?? t("homes.noHousehold")}</span>
        {where && <span class="home-where">{where}</span>}
        <span class="home-hub">
          {t("homes.hub", { hub: home.hub })}
          {!home.hubOnline && home.lastSeenAt !== null && <> · {t("homes.lastSeen", { time: formatDateTime(new Date(home.lastSeenAt)) })}</>}
        </span>
      </td>
      <td data-col="problems">
        <ProblemList problems={home.problems} now={now} />
        {!home.hubOnline && home.problems.length > 1 && <p class="home-note">{t("homes.lastKnown")}</p>}
      </td>
    </tr>
  );
}
