// The call tree drawn as its steps: who each step calls (role, masked name and number, call or SMS), what
// each call came to, which step it stands at, and a live countdown to the next.
import type { CallTreeView, TreeAttempt, TreeStep, TreeTarget } from "../../api/incident";
import { formatAge } from "../../format";
import { useT } from "../../i18n";
import { remainingMs } from "../../incident/countdown";
import { formatClock } from "../../incident/format";
import { useNow } from "../../queue/useNow";
import { tIncident } from "./words";

// The step's standing as a mark as well as a word (never colour alone).
const MARK: Record<TreeStep["status"], string> = { done: "✓", current: "▶", next: "…", not_reached: "○" };

export function CallTree({ view, offset }: { view: CallTreeView; offset: number }) {
  const t = useT();
  const { tree } = view;
  return (
    <section class="panel call-tree" data-testid="call-tree" data-escalation={tree.escalation} aria-labelledby="call-tree-title">
      <h2 id="call-tree-title">{t("incident.tree.heading")}</h2>
      <p class="tree-status" data-testid="tree-status">
        {tIncident(t, "escalation", tree.escalation)}
        {tree.pass > 0 && <span class="muted"> · {t("incident.tree.pass", { n: tree.pass + 1 })}</span>}
      </p>
      {tree.current && <Countdown current={tree.current} offset={offset} />}
      {tree.steps.length === 0 ? (
        <p class="muted">{t("incident.tree.empty")}</p>
      ) : (
        <ol class="tree-steps">
          {tree.steps.map((s) => (
            <Step key={s.index} step={s} of={tree.steps.length} />
          ))}
        </ol>
      )}
    </section>
  );
}

function Countdown({ current, offset }: { current: NonNullable<CallTreeView["tree"]["current"]>; offset: number }) {
  const t = useT();
  const now = useNow();
  const { nextAt } = current;
  return (
    <p class="tree-current" data-testid="tree-current">
      <span>{t("incident.tree.at", { index: current.index, of: current.of, label: current.label })}</span>
      {nextAt === undefined ? (
        <span class="muted"> · {t("incident.tree.calling")}</span>
      ) : (
        <span class="countdown" data-testid="countdown" data-next-at={nextAt} role="timer" aria-live="off">
          {" · "}
          {remainingMs(nextAt, now, offset) > 0 ? t("incident.tree.nextIn", { age: formatAge(t, remainingMs(nextAt, now, offset)) }) : t("incident.tree.nextNow")}
        </span>
      )}
    </p>
  );
}

function Step({ step, of }: { step: TreeStep; of: number }) {
  const t = useT();
  return (
    <li class={`tree-step step-${step.status}`} data-testid="tree-step" data-status={step.status} aria-current={step.status === "current" ? "step" : undefined}>
      <div class="step-head">
        <span class="step-mark" aria-hidden="true">
          {MARK[step.status]}
        </span>
        <span class="step-name">{t("incident.tree.step", { index: step.index, of, label: step.name })}</span>
        <span class="step-status">{t(`incident.tree.status.${step.status}`)}</span>
        <span class="muted step-wait">{t("incident.tree.wait", { age: formatAge(t, step.waitS * 1000) })}{step.repeat > 0 ? ` · ${t("incident.tree.repeat", { n: step.repeat })}` : ""}</span>
      </div>
      <ul class="step-targets">
        {step.targets.map((tg) => (
          <Target key={tg.ref} target={tg} />
        ))}
      </ul>
    </li>
  );
}

function Target({ target }: { target: TreeTarget }) {
  const t = useT();
  return (
    <li class="tree-target" data-testid="tree-target" data-ref={target.ref}>
      <span class="target-role">{tIncident(t, "contactRole", target.role)}</span>{" "}
      {target.who ? (
        <span class="target-who" data-testid="target-who">
          {target.who.name} <span class="phone">{target.who.phone}</span>
        </span>
      ) : (
        <span class="muted">{t("incident.tree.notInPlan")}</span>
      )}
      <span class="muted"> · {tIncident(t, "channel", target.channel)}</span>
      {target.attempts.length > 0 && (
        <ul class="attempts">
          {target.attempts.map((a) => (
            <Attempt key={a.id} attempt={a} />
          ))}
        </ul>
      )}
    </li>
  );
}

function Attempt({ attempt: a }: { attempt: TreeAttempt }) {
  const t = useT();
  const at = a.outcomeAt ?? a.placedAt ?? a.requestedAt;
  return (
    <li class={`attempt attempt-${a.status}`} data-testid="attempt" data-status={a.status}>
      <time>{formatClock(at)}</time> {a.arrivalCheck ? `${t("incident.tree.arrivalCheck")} · ` : ""}
      {t("incident.tree.round", { n: a.round + 1 })} · {tIncident(t, "callStatus", a.status)}
      {a.meaning && <strong class="meaning"> · {tIncident(t, "meaning", a.meaning)}</strong>}
    </li>
  );
}
