// The open operator alerts and acknowledging them. An acknowledged alert leaves the list at once and for good
// (an acknowledged alert never opens again: a repeat is a new alert), even if a refresh that started before
// the acknowledgement still lists it; one someone else acknowledged first (404) leaves it too, saying so.
import { useCallback, useMemo, useState } from "preact/hooks";
import { ApiError } from "../api/client";
import { ackAlert, listOpenAlerts, type OperatorAlert } from "../api/homes";
import { usePolled } from "./usePolled";

export type AckOutcome = { id: string; kind: string; result: "acked" | "gone" };

export interface Alerts {
  alerts: OperatorAlert[] | undefined;
  error: unknown;
  busy: ReadonlySet<string>;
  /** The last acknowledgement's outcome, for a status line. */
  outcome: AckOutcome | undefined;
  ackError: unknown;
  acknowledge: (a: OperatorAlert) => Promise<void>;
  dismissAckError: () => void;
  refresh: () => void;
}

const loadAlerts = async () => (await listOpenAlerts()).alerts;

export function useAlerts(everyMs: number): Alerts {
  const polled = usePolled(loadAlerts, everyMs);
  const [busy, setBusy] = useState<ReadonlySet<string>>(() => new Set());
  const [outcome, setOutcome] = useState<AckOutcome | undefined>(undefined);
  const [ackError, setAckError] = useState<unknown>(undefined);
  const [hidden, setHidden] = useState<ReadonlySet<string>>(() => new Set());
  const { refresh } = polled;
  const hide = useCallback((id: string) => setHidden((h) => new Set(h).add(id)), []);

  const acknowledge = useCallback(
    async (a: OperatorAlert) => {
      setBusy((b) => new Set(b).add(a.id));
      setAckError(undefined);
      setOutcome(undefined);
      try {
        await ackAlert(a.id);
        setOutcome({ id: a.id, kind: a.kind, result: "acked" });
        hide(a.id);
      } catch (err) {
        if (err instanceof ApiError && err.status === 404) {
          setOutcome({ id: a.id, kind: a.kind, result: "gone" });
          hide(a.id);
        } else setAckError(err);
      } finally {
        setBusy((b) => {
          const next = new Set(b);
          next.delete(a.id);
          return next;
        });
        refresh();
      }
    },
    [hide, refresh],
  );

  const alerts = useMemo(() => polled.data?.filter((a) => !hidden.has(a.id)), [polled.data, hidden]);
  return { alerts, error: polled.error, busy, outcome, ackError, acknowledge, dismissAckError: () => setAckError(undefined), refresh };
}
