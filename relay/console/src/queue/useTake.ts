// Taking an incident: one request, and when someone else was quicker, the question whether to take it over.
import { useCallback, useState } from "preact/hooks";
import { ApiError, takeIncident } from "../api/client";
import { takenByName } from "../api/errors";
import type { Row } from "../api/types";

export interface TakeConflict {
  row: Row;
  holder: string;
}

export interface Take {
  /** Ids with a take request in flight. */
  busy: ReadonlySet<string>;
  /** Taken by someone else: waiting for the operator's answer. */
  conflict: TakeConflict | undefined;
  error: unknown;
  take: (row: Row, force?: boolean) => Promise<void>;
  answer: (takeOver: boolean) => void;
  dismissError: () => void;
}

export function useTake(onTaken: (row: Row) => void): Take {
  const [busy, setBusy] = useState<ReadonlySet<string>>(() => new Set());
  const [conflict, setConflict] = useState<TakeConflict | undefined>(undefined);
  const [error, setError] = useState<unknown>(undefined);

  const take = useCallback(
    async (row: Row, force = false) => {
      setBusy((b) => new Set(b).add(row.id));
      setError(undefined);
      try {
        onTaken(await takeIncident(row.id, force));
      } catch (err) {
        if (err instanceof ApiError && err.code === "taken" && !force) setConflict({ row, holder: takenByName(err.body) });
        else setError(err);
      } finally {
        setBusy((b) => {
          const next = new Set(b);
          next.delete(row.id);
          return next;
        });
      }
    },
    [onTaken],
  );

  const answer = useCallback(
    (takeOver: boolean) => {
      const c = conflict;
      setConflict(undefined);
      if (takeOver && c) void take(c.row, true);
    },
    [conflict, take],
  );

  return { busy, conflict, error, take, answer, dismissError: () => setError(undefined) };
}
