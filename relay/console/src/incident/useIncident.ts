// One incident, kept current: its detail (timeline) and its call tree, read together; read again after every
// action, whenever the queue's event stream says this incident changed, and every few seconds besides
// (a call that goes unanswered changes the timeline without changing the queue's row).
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { API } from "../api/client";
import { getCallTree, getIncidentDetail, type CallTreeView, type IncidentDetail } from "../api/incident";
import { clockOffset } from "./countdown";

export interface IncidentData {
  detail: IncidentDetail | undefined;
  tree: CallTreeView | undefined;
  /** The relay's clock minus the browser's (ms). */
  offset: number;
  /** The last read failed: the error to show (the last good data stays on screen). */
  loadError: unknown;
  loading: boolean;
  reload: () => Promise<void>;
}

const POLL_MS = 5000;

function idOf(data: unknown): string | undefined {
  try {
    const v = typeof data === "string" ? (JSON.parse(data) as { id?: unknown }) : undefined;
    return typeof v?.id === "string" ? v.id : undefined;
  } catch {
    return undefined;
  }
}

export function useIncident(id: string): IncidentData {
  const [detail, setDetail] = useState<IncidentDetail | undefined>(undefined);
  const [tree, setTree] = useState<CallTreeView | undefined>(undefined);
  const [offset, setOffset] = useState(0);
  const [loadError, setLoadError] = useState<unknown>(undefined);
  const [loading, setLoading] = useState(true);
  // Only the newest read's answer is applied: an older one arriving late must not undo a newer one.
  const generation = useRef(0);
  // A closed incident changes no more: the stream's "removed" still triggers a last read, the poll stops.
  const closed = useRef(false);

  const reload = useCallback(async () => {
    const mine = ++generation.current;
    try {
      const [d, t] = await Promise.all([getIncidentDetail(id), getCallTree(id)]);
      if (mine !== generation.current) return;
      setDetail(d);
      setTree(t);
      closed.current = d.incident.closedAt !== null;
      setOffset(clockOffset(t.serverNow, Date.now()));
      setLoadError(undefined);
    } catch (err) {
      if (mine === generation.current) setLoadError(err);
    } finally {
      if (mine === generation.current) setLoading(false);
    }
  }, [id]);

  useEffect(() => {
    setDetail(undefined);
    setTree(undefined);
    setLoading(true);
    closed.current = false;
    void reload();
    const stream = new EventSource(`${API}/stream`);
    const onChange = (e: MessageEvent) => {
      if (idOf(e.data) === id) void reload();
    };
    stream.addEventListener("incident", onChange);
    stream.addEventListener("removed", onChange);
    // The page may be a stale tab: a refused stream (signed out, a role without the queue) is not retried here.
    stream.addEventListener("error", () => {
      if (stream.readyState === EventSource.CLOSED) stream.close();
    });
    const poll = setInterval(() => {
      if (!closed.current) void reload();
    }, POLL_MS);
    return () => {
      stream.close();
      clearInterval(poll);
      generation.current++;
    };
  }, [id, reload]);

  return { detail, tree, offset, loadError, loading, reload };
}
