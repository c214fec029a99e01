import type { Row, User } from "../../api/types";
import { useMemo, useRef } from "preact/hooks";
import { useT } from "../../i18n";
import { IncidentRow } from "./IncidentRow";

const COLUMNS = ["severity", "type", "home", "age", "state", "step", "takenBy", "action"] as const;

interface Props {
  rows: Row[];
  user: User;
  now: number;
  selectedId: string | undefined;
  busy: ReadonlySet<string>;
  onSelect: (id: string) => void;
  onOpen: (id: string) => void;
  onTake: (row: Row) => void;
}

export function QueueTable({ rows, user, now, selectedId, busy, onSelect, onOpen, onTake }: Props) {
  const t = useT();
  // The rows get handlers that never change and call the latest ones given: a row redraws only when its
  // own data, the clock or its selection changes.
  const latest = useRef({ onSelect, onOpen, onTake });
  latest.current = { onSelect, onOpen, onTake };
  const stable = useMemo(
    () => ({
      select: (id: string) => latest.current.onSelect(id),
      open: (id: string) => latest.current.onOpen(id),
      take: (row: Row) => latest.current.onTake(row),
    }),
    [],
  );
  return (
    <table class="queue" data-testid="queue">
      <thead>
        <tr>
          {COLUMNS.map((c) => (
            <th key={c} scope="col" data-col={c}>
              {t(`queue.col.${c}`)}
            </th>
          ))}
        </tr>
      </thead>
      <tbody>
        {rows.map((row) => (
          <IncidentRow
            key={row.id}
            row={row}
            user={user}
            now={now}
            selected={row.id === selectedId}
            busy={busy.has(row.id)}
            onSelect={stable.select}
            onOpen={stable.open}
            onTake={stable.take}
          />
        ))}
      </tbody>
    </table>
  );
}
