// The incident stream as a hint that homes changed: a hub going offline, a valve that did not close, an
// alarm — each arrives there as an incident. The board does not read the rows; it asks for itself again,
// once per burst (the stream starts with every open incident, and a busy minute brings many).
import { useEffect, useRef } from "preact/hooks";
import { API } from "../api/client";

export function useStreamNudge(onChange: () => void, quietMs = 1000): void {
  const callback = useRef(onChange);
  callback.current = onChange;
  useEffect(() => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const nudge = () => {
      clearTimeout(timer);
      timer = setTimeout(() => callback.current(), quietMs);
    };
    // The browser reconnects by itself; a stream the server refuses (a session ended) is left closed: the
    // periodic refresh meets the same 401 and the console signs out.
    const es = new EventSource(`${API}/stream`);
    es.addEventListener("incident", nudge);
    es.addEventListener("removed", nudge);
    return () => {
      clearTimeout(timer);
      es.close();
    };
  }, [quietMs]);
}
