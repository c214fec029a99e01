// The message contract between the journal's main-thread API and its SQLite worker.

/** One event as the worker stores it; the envelope is already validated and serialised. */
export interface EventRow {
  id: string;
  boot: number;
  seq: number;
  ts: number;
  kind: string;
  type: string;
  severity: string;
  rank: number;
  payload: string;
  size: number;
  createdAt: number;
}

export interface PendingRow {
  payload: string;
  attempts: number;
  nextAttemptAt: number;
}

export interface StoreStats {
  rows: number;
  alarms: number;
  oldestTs: number | null;
  bytes: number;
  thinned: number;
}

export interface OpenResult {
  boot: number;
  /** The newest event id ever committed, so ids stay increasing across restarts. */
  lastId: string | null;
  /** The rules' state as last committed (an opaque JSON document), or null if none was ever saved. */
  state: string | null;
  /** Set when the saved state could not be read at all (the rest of the journal opened). */
  stateError?: string;
}

export type Request =
  | { op: "open"; path: string; maxRows: number; bumpBoot: boolean }
  /** `state`, when present, replaces the saved rules' state in the same transaction as the rows. */
  | { op: "append"; rows: EventRow[]; state?: string }
  | { op: "pending"; limit: number; now: number }
  | { op: "markSent"; ids: string[]; nextAttemptAt: number; countAttempt: boolean }
  | { op: "ack"; ids: string[] }
  | { op: "stats" }
  | { op: "pragma"; sql: string }
  | { op: "close" };

export type RequestMessage = Request & { rid: number };

export interface WireError {
  message: string;
  code?: string;
}

export type Reply = { rid: number; ok: true; value: unknown } | { rid: number; ok: false; error: WireError };
