// The open incidents: the list once, then the server's stream of changes. The stream opens before the list
// is asked for, and changes that arrive while the list is on its way are applied on top of it, so none is lost.
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { API, getSession, listIncidents } from "../api/client";
import type { Row } from "../api/types";

export interface Incidents {
  rows: Map<string, Row>;
  /** The stream is connected (false while the browser reconnects). */
  live: boolean;
  /** The list could not be loaded: the error to show. */
  loadError: unknown;
  upsert: (row: Row) => void;
}

const RETRY_MS = 5000;

type Change = { kind: "upsert"; row: Row } | { kind: "remove"; id: string };

function apply(rows: Map<string, Row>, change: Change): Map<string, Row> {
  const next = new Map(rows);
  if (change.kind === "upsert") next.set(change.row.id, change.row);
  else next.delete(change.id);
  return next;
}

function isRow(v: unknown): v is Row {
  const r = v as Partial<Row> | null;
  return typeof r === "object" && r !== null && typeof r.id === "string" && typeof r.receivedAt === "number" && typeof r.severity === "string";
}

function parse(data: unknown): unknown {
  try {
    return typeof data === "string" ? JSON.parse(data) : undefined;
  } catch {
    return undefined; // a malformed message is dropped; the next reload corrects the list
  }
}

export function useIncidents(): Incidents {
  const [rows, setRows] = useState<Map<string, Row>>(() => new Map());
  const [live, setLive] = useState(false);
  const [loadError, setLoadError] = useState<unknown>(undefined);
  // Changes seen while a list request is in flight; undefined when none is.
  const pending = useRef<Change[] | undefined>(undefined);

  const change = useCallback((c: Change) => {
    pending.current?.push(c);
    setRows((rows) => apply(rows, c));
  }, []);

  const reload = useCallback(async () => {
    pending.current = [];
    try {
      const { incidents } = await listIncidents();
      const seen = pending.current;
      setRows(seen.reduce(apply, new Map(incidents.filter(isRow).map((r) => [r.id, r]))));
      setLoadError(undefined);
    } catch (err) {
      setLoadError(err);
    } finally {
      pending.current = undefined;
    }
  }, []);

  useEffect(() => {
    let stream: EventSource | undefined;
    let retry: ReturnType<typeof setTimeout> | undefined;
    let interrupted = false;
    let stopped = false;
    const connect = () => {
      const es = new EventSource(`${API}/stream`);
      stream = es;
      es.addEventListener("incident", (e) => {
        const row = parse(e.data);
        if (isRow(row)) change({ kind: "upsert", row });
      });
      es.addEventListener("removed", (e) => {
        const msg = parse(e.data) as { id?: unknown } | undefined;
        if (typeof msg?.id === "string") change({ kind: "remove", id: msg.id });
      });
      es.addEventListener("open", () => {
        setLive(true);
        // Whatever changed while disconnected never reached the stream: read the list again.
        if (interrupted) void reload();
      });
      es.addEventListener("error", () => {
        setLive(false);
        interrupted = true;
        // The browser retries by itself unless the server refused the stream. A refusal because the session
        // ended signs the console out (the session check's 401); otherwise try again a little later.
        if (es.readyState === EventSource.CLOSED) {
          void getSession(false).then(
            () => {
              if (!stopped) retry = setTimeout(connect, RETRY_MS);
            },
            () => undefined,
          );
        }
      });
    };
    connect();
    void reload();
    return () => {
      stopped = true;
      clearTimeout(retry);
      stream?.close();
    };
  }, [change, reload]);

  const upsert = useCallback((row: Row) => change({ kind: "upsert", row }), [change]);
  return { rows, live, loadError, upsert };
}
