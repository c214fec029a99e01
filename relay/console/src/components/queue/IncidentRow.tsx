import { memo } from "preact/compat";
import type { Row, User } from "../../api/types";
import { formatAge } from "../../format";
import { tCode, useT } from "../../i18n";
import { isUnattendedCritical } from "../../queue/sort";
import { SeverityBadge } from "./SeverityBadge";

interface Props {
  row: Row;
  user: User;
  now: number;
  selected: boolean;
  busy: boolean;
  /** Stable across renders (QueueTable), so an unchanged row is not drawn again. */
  onSelect: (id: string) => void;
  onOpen: (id: string) => void;
  onTake: (row: Row) => void;
}

/**
 * Memoised: a stream message changes one row, and with a hundred open incidents redrawing all of them for
 * each message (as the stream's first burst does) kept the page from showing the list for over a second.
 */
export const IncidentRow = memo(IncidentRowView);

function IncidentRowView({ row, user, now, selected, busy, onSelect, onOpen, onTake }: Props) {
  const t = useT();
  const alarm = isUnattendedCritical(row);
  const classes = ["incident", `sev-row-${row.severity}`, alarm && "alarm", selected && "selected"].filter(Boolean).join(" ");
  return (
    <tr class={classes} data-id={row.id} data-severity={row.severity} data-alarm={alarm ? "on" : "off"} aria-selected={selected} onClick={() => onSelect(row.id)} onDblClick={() => onOpen(row.id)}>
      <td data-col="severity">
        <SeverityBadge severity={row.severity} />
      </td>
      <td data-col="type">{tCode(t, "type", row.type)}</td>
      <td data-col="home">
        <span class="home">{row.homeMasked}</span>
        <span class="hub">{row.hub}</span>
      </td>
      <td data-col="age" data-label={t("queue.col.age")} data-testid="age">
        {formatAge(t, now - row.receivedAt)}
      </td>
      <td data-col="state" data-label={t("queue.col.state")}>{tCode(t, "state", row.state)}</td>
      <td data-col="step" data-label={t("queue.col.step")}>
        <StepText row={row} now={now} />
      </td>
      <td data-col="takenBy" data-testid="taken-by">
        <TakenBy row={row} user={user} />
      </td>
      <td data-col="action">
        {row.takenBy?.username !== user.username && (
          <button type="button" class="take" data-testid="take" disabled={busy} onClick={() => onTake(row)}>
            {t(busy ? "queue.taking" : "queue.take")}
          </button>
        )}
      </td>
    </tr>
  );
}

function StepText({ row, now }: { row: Row; now: number }) {
  const t = useT();
  const { step } = row;
  if (!step) return <>{t("queue.noStep")}</>;
  return (
    <>
      {t("queue.step", { index: step.index, of: step.of, label: step.label })}
      {step.nextAt !== undefined && <span class="next">{t("queue.nextIn", { age: formatAge(t, step.nextAt - now) })}</span>}
    </>
  );
}

function TakenBy({ row, user }: { row: Row; user: User }) {
  const t = useT();
  if (!row.takenBy) return <span class="not-taken">{t("queue.notTaken")}</span>;
  if (row.takenBy.username === user.username) return <span class="taken-mine">{t("queue.takenByYou")}</span>;
  return <span class="taken">{t("queue.takenBy", { name: row.takenBy.displayName })}</span>;
}
