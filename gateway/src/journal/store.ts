// The synchronous SQLite side of the journal. It runs only inside the journal worker, so its blocking
// fsyncs never stall the thread that drives valves and sirens (invariant 1).
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";
import type { EventRow, PendingRow, StoreStats } from "./messages.js";

export const SCHEMA_VERSION = 1;

/** Thinned first, oldest first, in this order; every other kind is never dropped. */
const THINNABLE_KINDS = ["reading", "heartbeat"] as const;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (
  key   TEXT PRIMARY KEY,
  value
);
CREATE TABLE IF NOT EXISTS events (
  rowid           INTEGER PRIMARY KEY,
  event_id        TEXT    NOT NULL UNIQUE,
  boot            INTEGER NOT NULL,
  seq             INTEGER NOT NULL,
  ts              INTEGER NOT NULL,
  kind            TEXT    NOT NULL,
  type            TEXT    NOT NULL,
  severity        TEXT    NOT NULL,
  rank            INTEGER NOT NULL,
  payload         TEXT    NOT NULL,
  size            INTEGER NOT NULL,
  attempts        INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL DEFAULT 0,
  created_at      INTEGER NOT NULL
);
-- (rank, rowid): the pending query walks it in send order and stops at its limit, no sort.
CREATE INDEX IF NOT EXISTS events_pending ON events (rank);
-- (kind, rowid): thinning takes the oldest rows of one kind; stats counts alarms.
CREATE INDEX IF NOT EXISTS events_kind ON events (kind);
-- The rules' state (alarm episodes, valve latches, pending windows): one JSON document, replaced in the same
-- transaction as the events of the same flush, so an alarm event and the state that knows of it commit together.
CREATE TABLE IF NOT EXISTS rule_state (
  id       INTEGER PRIMARY KEY CHECK (id = 1),
  snapshot TEXT    NOT NULL
);
`;

// mkdir -p by hand: Node's recursive mkdirSync can spin forever where a directory cannot be created
// and the error is ENOENT (seen under /proc), which would leave open() hanging.
function ensureDir(dir: string): void {
  try {
    mkdirSync(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "EEXIST") return;
    const parent = dirname(dir);
    if (code !== "ENOENT" || parent === dir) throw err;
    ensureDir(parent);
    mkdirSync(dir);
  }
}

export class JournalStore {
  readonly boot: number;
  readonly lastId: string | null;
  private readonly db: Database.Database;
  private rows: number;
  private readonly insertStmt: Database.Statement;
  private readonly thinStmt: Database.Statement;
  private readonly pendingStmt: Database.Statement;
  private readonly markStmt: Database.Statement;
  private readonly deleteStmt: Database.Statement;
  private readonly statsStmt: Database.Statement;
  private readonly getMeta: Database.Statement;
  private readonly setMeta: Database.Statement;
  private readonly raiseLastId: Database.Statement;
  private readonly putState: Database.Statement;
  private readonly getState: Database.Statement;
  private readonly markTx: Database.Transaction<(ids: string[], at: number, count: number) => void>;
  private readonly ackTx: Database.Transaction<(ids: string[]) => number>;

  constructor(path: string, private readonly maxRows: number, bumpBoot: boolean) {
    ensureDir(dirname(path));
    const db = new Database(path);
    this.db = db;
    try {
      db.pragma("busy_timeout = 5000");
      const mode = db.pragma("journal_mode = WAL", { simple: true });
      if (String(mode).toLowerCase() !== "wal") throw new Error(`journal: WAL mode refused (got ${String(mode)})`);
      // FULL: the WAL is synced on every commit, so a power cut cannot take back a resolved alarm.
      db.pragma("synchronous = FULL");
      db.pragma("journal_size_limit = 67108864");

      db.exec(SCHEMA);
      this.getMeta = db.prepare("SELECT value FROM meta WHERE key = ?").pluck();
      this.setMeta = db.prepare(
        "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
      );
      this.raiseLastId = db.prepare(
        "INSERT INTO meta (key, value) VALUES ('last_id', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value WHERE value IS NULL OR value < excluded.value",
      );

      const init = db.transaction((): number => {
        const version = this.getMeta.get("schema_version") as number | undefined;
        if (version === undefined) this.setMeta.run("schema_version", SCHEMA_VERSION);
        else if (version > SCHEMA_VERSION) {
          throw new Error(`journal: schema version ${version} is newer than this build understands (${SCHEMA_VERSION})`);
        }
        let boot = (this.getMeta.get("boot") as number | undefined) ?? 0;
        if (bumpBoot || boot === 0) {
          this.setMeta.run("boot", ++boot);
          // A new boot: whatever was in flight when the last one died is due again now, not after its backoff.
          db.prepare("UPDATE events SET next_attempt_at = 0 WHERE next_attempt_at > 0").run();
        }
        return boot;
      });
      this.boot = init.immediate();
      this.lastId = (this.getMeta.get("last_id") as string | undefined) ?? null;
      this.rows = db.prepare("SELECT count(*) FROM events").pluck().get() as number;

      this.insertStmt = db.prepare(
        `INSERT INTO events (event_id, boot, seq, ts, kind, type, severity, rank, payload, size, created_at)
         VALUES (@id, @boot, @seq, @ts, @kind, @type, @severity, @rank, @payload, @size, @createdAt)
         ON CONFLICT(event_id) DO NOTHING`,
      );
      this.thinStmt = db.prepare(
        "DELETE FROM events WHERE rowid IN (SELECT rowid FROM events WHERE kind = ? ORDER BY rowid LIMIT ?)",
      );
      this.pendingStmt = db.prepare(
        `SELECT payload, attempts, next_attempt_at AS nextAttemptAt FROM events
         WHERE next_attempt_at <= ? ORDER BY rank, rowid LIMIT ?`,
      );
      this.markStmt = db.prepare(
        "UPDATE events SET attempts = attempts + @count, next_attempt_at = @at WHERE event_id = @id",
      );
      this.deleteStmt = db.prepare("DELETE FROM events WHERE event_id = ?");
      this.statsStmt = db.prepare(
        `SELECT count(*) AS rows, coalesce(sum(kind = 'alarm'), 0) AS alarms, min(ts) AS oldestTs,
                coalesce(sum(size), 0) AS bytes FROM events`,
      );
      this.putState = db.prepare(
        "INSERT INTO rule_state (id, snapshot) VALUES (1, ?) ON CONFLICT(id) DO UPDATE SET snapshot = excluded.snapshot",
      );
      this.getState = db.prepare("SELECT snapshot FROM rule_state WHERE id = 1").pluck();
      this.appendTx = db.transaction((rows: EventRow[], state: string | undefined) => {
        if (state !== undefined) this.putState.run(state);
        return rows.length ? this.appendRows(rows) : this.rows;
      });
      this.markTx = db.transaction((ids: string[], at: number, count: number) => {
        for (const id of ids) this.markStmt.run({ at, id, count });
      });
      this.ackTx = db.transaction((ids: string[]) => {
        let removed = 0;
        for (const id of ids) removed += this.deleteStmt.run(id).changes;
        return removed;
      });
    } catch (err) {
      db.close();
      throw err;
    }
  }

  /**
   * Commits all rows in one transaction (the group commit); retried rows are ignored if already present.
   * `state`, when given, replaces the saved rules' state in that same transaction.
   */
  append(rows: EventRow[], state?: string): void {
    if (rows.length === 0 && state === undefined) return;
    // The row count is only updated once the transaction committed, so a failed commit leaves it true.
    this.rows = this.appendTx.immediate(rows, state);
  }

  private readonly appendTx: Database.Transaction<(rows: EventRow[], state: string | undefined) => number>;

  /** The rules' state as last committed, or null. Throws only if the database cannot be read. */
  readState(): string | null {
    const v = this.getState.get();
    if (v === undefined || v === null) return null;
    // Anything but text is a damaged row: handed on as it is, so the reader reports it rather than skipping it.
    return typeof v === "string" ? v : Buffer.isBuffer(v) ? v.toString() : typeof v === "number" || typeof v === "bigint" ? String(v) : JSON.stringify(v);
  }

  private appendRows(rows: EventRow[]): number {
    let maxId = "";
    let count = this.rows;
    for (const row of rows) {
      count += this.insertStmt.run(row).changes;
      if (row.id > maxId) maxId = row.id;
    }
    this.raiseLastId.run(maxId);
    return count > this.maxRows ? this.thin(count) : count;
  }

  // Runs inside the append transaction, so the cap holds at every commit.
  private thin(count: number): number {
    let dropped = 0;
    for (const kind of THINNABLE_KINDS) {
      const excess = count - this.maxRows;
      if (excess <= 0) break;
      const n = this.thinStmt.run(kind, excess).changes;
      count -= n;
      dropped += n;
    }
    if (dropped > 0) this.setMeta.run("thinned", this.thinnedTotal() + dropped);
    return count;
  }

  private thinnedTotal(): number {
    return (this.getMeta.get("thinned") as number | undefined) ?? 0;
  }

  pending(limit: number, now: number): PendingRow[] {
    return this.pendingStmt.all(now, limit) as PendingRow[];
  }

  markSent(ids: string[], nextAttemptAt: number, countAttempt = true): void {
    this.unsynced(() => this.markTx.immediate(ids, nextAttemptAt, countAttempt ? 1 : 0));
  }

  /** One transaction per call; returns how many rows were removed. */
  ack(ids: string[]): number {
    const removed = this.unsynced(() => this.ackTx.immediate(ids));
    this.rows -= removed;
    return removed;
  }

  /**
   * Bookkeeping that a power cut may undo without harm — a send record or an acked delete lost means one
   * more resend, which the relay deduplicates — commits without its own fsync. The next FULL commit
   * syncs the WAL up to and including these frames, so captured events stay exactly as durable.
   */
  private unsynced<T>(fn: () => T): T {
    this.db.pragma("synchronous = NORMAL");
    try {
      return fn();
    } finally {
      this.db.pragma("synchronous = FULL");
    }
  }

  stats(): StoreStats {
    const s = this.statsStmt.get() as Omit<StoreStats, "thinned">;
    this.rows = s.rows;
    return { ...s, thinned: this.thinnedTotal() };
  }

  /** Test hook: read or set a pragma on the writer connection itself. */
  pragma(sql: string): unknown {
    return this.db.pragma(sql, { simple: true });
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
