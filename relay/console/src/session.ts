// Who is signed in: asked once on load, set by sign-in, ended by sign-out or by any 401 while signed in.
import { useCallback, useEffect, useState } from "preact/hooks";
import { ApiError, getSession, setCsrfToken, setUnauthorizedHandler, signIn, signOut } from "./api/client";
import type { Session } from "./api/types";

/** Why the sign-in page shows: a notice for the operator when there is something to say. */
export type SignedOutReason = "none" | "session_expired" | "signed_out";

export type SessionState = { status: "loading" } | { status: "signedOut"; reason: SignedOutReason; error?: unknown } | { status: "signedIn"; session: Session };

export interface SessionControl {
  state: SessionState;
  /** Throws the API's error (bad_credentials, locked, disabled…) for the sign-in page to show. */
  signIn: (username: string, password: string) => Promise<void>;
  signOut: () => Promise<void>;
}

/** At most one "still here" request per this while the person is using the page. */
const ACTIVITY_PING_MS = 60_000;
const ACTIVITY_EVENTS = ["keydown", "pointerdown", "wheel", "touchstart"] as const;

/**
 * The idle timeout means "nobody has used this page": an open live queue alone does not keep a session
 * alive, but a person reading it and scrolling or typing does, through a light session check at most once a
 * minute. A check that comes back 401 signs the page out like any other request.
 */
function useActivityPing(active: boolean): void {
  useEffect(() => {
    if (!active) return;
    let last = 0;
    const onActivity = () => {
      if (Date.now() - last < ACTIVITY_PING_MS) return;
      last = Date.now();
      getSession().catch(() => undefined);
    };
    for (const e of ACTIVITY_EVENTS) window.addEventListener(e, onActivity, { passive: true });
    return () => {
      for (const e of ACTIVITY_EVENTS) window.removeEventListener(e, onActivity);
    };
  }, [active]);
}

export function useSession(): SessionControl {
  const [state, setState] = useState<SessionState>({ status: "loading" });

  const begin = useCallback((session: Session) => {
    setCsrfToken(session.csrfToken);
    setState({ status: "signedIn", session });
  }, []);
  const end = useCallback((reason: SignedOutReason, error?: unknown) => {
    setCsrfToken(undefined);
    setState({ status: "signedOut", reason, error });
  }, []);

  useEffect(() => {
    setUnauthorizedHandler(() => end("session_expired"));
    getSession().then(begin, (err: unknown) => {
      if (err instanceof ApiError && err.code === "session_expired") end("session_expired");
      else if (err instanceof ApiError && err.status === 401) end("none");
      else end("none", err); // the relay is unreachable or failing: say so on the sign-in page
    });
    return () => setUnauthorizedHandler(undefined);
  }, [begin, end]);

  useActivityPing(state.status === "signedIn");

  return {
    state,
    signIn: async (username, password) => begin(await signIn(username, password)),
    signOut: async () => {
      try {
        await signOut();
      } finally {
        // Even if the relay could not be told, this browser forgets the session.
        end("signed_out");
      }
    },
  };
}
