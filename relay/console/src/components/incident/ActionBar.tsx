// The lifecycle steps the relay allows now, one button each (with its key), and the last action's result.
import type { ActionName } from "../../api/incident";
import { tCode, useT } from "../../i18n";
import { ACTIONS, CAUTION, SHORTCUTS } from "../../incident/actions";
import { formatClock } from "../../incident/format";
import type { ActionState } from "../../incident/useAction";
import { useShortcuts } from "../../queue/useShortcuts";
import { navigate } from "../../router";

export function ActionBar({ allowed, action }: { allowed: readonly ActionName[]; action: ActionState }) {
  const t = useT();
  const shown = ACTIONS.filter((a) => allowed.includes(a));
  const keys: Record<string, () => void> = { q: () => navigate({ page: "queue" }) };
  for (const a of shown) keys[SHORTCUTS[a]] = () => action.start(a);
  useShortcuts(keys);
  return (
    <div class="incident-actions-wrap">
      <div class="incident-actions" role="toolbar" aria-label={t("incident.actions.label")} data-testid="actions">
        {shown.length === 0 && <span class="muted">{t("incident.actions.none")}</span>}
        {shown.map((a) => (
          <button
            key={a}
            type="button"
            class={CAUTION.has(a) ? "action action-caution" : "action primary"}
            data-action={a}
            data-testid={`action-${a}`}
            aria-keyshortcuts={SHORTCUTS[a]}
            disabled={action.busy}
            onClick={() => action.start(a)}
          >
            {t(`incident.action.${a}`)}
            <kbd>{SHORTCUTS[a]}</kbd>
          </button>
        ))}
      </div>
      {action.done && (
        <div class="banner banner-ok" role="status" data-testid="action-result">
          <span>
            {t("incident.done", {
              action: t(`incident.action.${action.done.action}`),
              state: tCode(t, "state", action.done.incident.state),
              time: formatClock(action.done.at),
            })}
          </span>
          <button type="button" class="banner-close" onClick={action.dismissDone} aria-label={t("common.dismiss")}>
            ×
          </button>
        </div>
      )}
      <p class="hint">{t("incident.hint")}</p>
    </div>
  );
}
