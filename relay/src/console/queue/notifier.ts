// The in-process nudge: where this relay commits a change to an incident (ingest, the incident service, the
// escalation engine) it calls notifyQueue(), and the console's change feed looks at once instead of at its
// next poll. It carries no data: the feed reads what changed from the database, which is also how changes
// made by other relay instances arrive, so a missed or extra nudge costs nothing but latency.

export interface QueueNotifier {
  /** Something about the open incidents may have changed (after the commit, never inside a transaction). */
  changed(): void;
  /** Calls `fn` on every change from now on; returns the unsubscribe. */
  subscribe(fn: () => void): () => void;
}

export function createQueueNotifier(): QueueNotifier {
  const listeners = new Set<() => void>();
  return {
    changed() {
      // Called from ingest and the engine after their commits: a listener's fault must not become theirs.
      for (const fn of listeners) {
        try {
          fn();
        } catch {
          // the listener logs its own failures; the poll covers what it missed
        }
      }
    },
    subscribe(fn) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
  };
}

/** The relay process's notifier: the hooks call it, and the daemon hands it to consoleQueuePlugin. */
export const queueNotifier: QueueNotifier = createQueueNotifier();

/** The one-line hook. */
export function notifyQueue(): void {
  queueNotifier.changed();
}
