import type { HomeProblem } from "../../api/homes";
import { tCode, useT } from "../../i18n";
import { problemText, sinceText } from "../../homes/describe";
import { UrgencyIcon } from "./UrgencyBadge";

/** A home's problems, most urgent first: each with its urgency's shape (and word for screen readers) and since when. */
export function ProblemList({ problems, now }: { problems: HomeProblem[]; now: number }) {
  const t = useT();
  return (
    <ul class="problems">
      {problems.map((p) => (
        <li key={`${p.kind}:${p.device ?? ""}`} class={`problem urg-text-${p.urgency}`} data-kind={p.kind} data-device={p.device ?? ""}>
          <UrgencyIcon urgency={p.urgency} />
          <span class="homes-sr">{tCode(t, "homes.urgency", p.urgency)}: </span>
          <span class="problem-what">{problemText(t, p)}</span>
          {p.since !== null && <span class="problem-since">{sinceText(t, p.since, now)}</span>}
        </li>
      ))}
    </ul>
  );
}
