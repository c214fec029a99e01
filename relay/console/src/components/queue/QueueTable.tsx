import type { Row, User } from "../../api/types";
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
            onSelect={() => onSelect(row.id)}
            onOpen={() => onOpen(row.id)}
            onTake={() => onTake(row)}
          />
        ))}
      </tbody>
    </table>
  );
}
