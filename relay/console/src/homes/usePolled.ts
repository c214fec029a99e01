// A list the page keeps fresh by asking again every few seconds, and at once when told to (the incident
// stream moved, an action succeeded). Only one request at a time; a failed one keeps the last good answer
// on screen beside the error, so a network blip does not blank the board.
import { useCallback, useEffect, useRef, useState } from "preact/hooks";

export interface Polled<T> {
  data: T | undefined;
  /** The last request failed: the error to show (data, if any, is older). */
  error: unknown;
  /** When the last good answer arrived (the browser's clock). */
  loadedAt: number | undefined;
  loading: boolean;
  refresh: () => void;
}

export function usePolled<T>(load: () => Promise<T>, everyMs: number): Polled<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<unknown>(undefined);
  const [loadedAt, setLoadedAt] = useState<number | undefined>(undefined);
  const [loading, setLoading] = useState(false);
  const inFlight = useRef(false);
  // Asked again while a request was out: one more once it is back, so a change is never missed.
  const again = useRef(false);
  const alive = useRef(true);

  const refresh = useCallback(() => {
    if (inFlight.current) {
      again.current = true;
      return;
    }
    inFlight.current = true;
    setLoading(true);
    void load()
      .then(
        (d) => {
          if (!alive.current) return;
          setData(d);
          setError(undefined);
          setLoadedAt(Date.now());
        },
        (err: unknown) => {
          if (alive.current) setError(err);
        },
      )
      .finally(() => {
        inFlight.current = false;
        if (!alive.current) return;
        setLoading(false);
        if (again.current) {
          again.current = false;
          refresh();
        }
      });
  }, [load]);

  useEffect(() => {
    alive.current = true;
    refresh();
    const timer = setInterval(refresh, everyMs);
    return () => {
      alive.current = false;
      clearInterval(timer);
    };
  }, [refresh, everyMs]);

  return { data, error, loadedAt, loading, refresh };
}
