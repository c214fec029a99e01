// Everything that happened, newest first: each call, answer, key, dispatch, ticket, note and change of state,
// with its time and who did it.
import type { TimelineEntry } from "../../api/incident";
import type { User } from "../../api/types";
import { tCode, useT } from "../../i18n";
import { formatTime } from "../../incident/format";
import { actorOf, causeOf, detailsOf, newestFirst } from "../../incident/timeline";
import { tIncident } from "./words";

export function Timeline({ entries, user }: { entries: readonly TimelineEntry[]; user: User }) {
  const t = useT();
  return (
    <section class="panel timeline" data-testid="timeline" aria-labelledby="timeline-title">
      <h2 id="timeline-title">{t("incident.timeline.heading")}</h2>
      <ol class="timeline-list">
        {newestFirst(entries).map((e) => (
          <Entry key={e.id} entry={e} user={user} />
        ))}
      </ol>
    </section>
  );
}

function Entry({ entry: e, user }: { entry: TimelineEntry; user: User }) {
  const t = useT();
  const cause = causeOf(e);
  return (
    <li class={`timeline-entry kind-${e.kind}`} data-testid="timeline-entry" data-kind={e.kind} data-actor={e.actor}>
      <time class="entry-at">{formatTime(e.at)}</time>
      <span class="entry-kind">{tIncident(t, "kind", e.kind)}</span>
      {e.to !== null && e.from !== e.to && (
        <span class="entry-states">
          {e.from !== null && `${tCode(t, "state", e.from)} → `}
          {tCode(t, "state", e.to)}
        </span>
      )}
      <span class="entry-actor">{actorText(t, e.actor, user)}</span>
      {cause && <span class="entry-cause muted">{"text" in cause ? cause.text : "family" in cause ? tIncident(t, cause.family, cause.code) : causeText(t, cause.key, cause.params)}</span>}
      {detailsOf(e).length > 0 && (
        <dl class="entry-details">
          {detailsOf(e).map((d) => (
            <div key={d.key}>
              <dt>{t(`incident.field.${d.key}`)}</dt>
              <dd data-field={d.key}>{d.family ? tIncident(t, d.family, d.value) : d.value}</dd>
            </div>
          ))}
        </dl>
      )}
    </li>
  );
}

function causeText(t: ReturnType<typeof useT>, key: string, params: Record<string, string>): string {
  // A state named in the cause is translated like every other state.
  const state = params.state === undefined ? {} : { state: tCode(t, "state", params.state) };
  return t(`incident.cause.${key}`, { ...params, ...state });
}

function actorText(t: ReturnType<typeof useT>, actor: string, user: User): string {
  const a = actorOf(actor);
  switch (a.kind) {
    case "user":
      return a.name === user.username ? t("incident.actor.you", { name: a.name }) : t("incident.actor.user", { name: a.name });
    case "system":
      return t("incident.actor.system");
    case "elder":
      return t("incident.actor.elder");
    case "hub":
      return t("incident.actor.hub", { name: a.name });
    case "operator":
      return t("incident.actor.token", { name: a.name });
    case "contact":
      return `${tIncident(t, "contactRole", a.role ?? "")} ${a.name}`;
    default:
      return a.name;
  }
}
