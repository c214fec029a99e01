// The relay's SQLite driver for kysely: one better-sqlite3 connection, shared by three lanes.
//
// better-sqlite3 runs on the relay's only thread, so every commit's fsync stops everything: sockets, logins,
// acks. In a burst of alarms the escalation's small transactions (timer claims, call attempts, next steps:
// each an fsync) kept the relay frozen most of the time, and kysely's one queue made a hub's login and the
// ingest commits its acks follow wait behind all of them: a reconnect storm of 2,000 hubs needed over a
// minute to log them in. So:
//   urgent     ingest's commits and the credential and key lookups: served first whenever the connection
//              frees (the others still get every other turn, so they are slowed, never starved);
//   normal     everything else, durable at commit (synchronous=FULL), as before;
//   redoable   the escalation engine's own bookkeeping and hubs' births, committed without their own fsync
//              (synchronous=NORMAL). WAL keeps the database consistent, a crash of the process loses
//              nothing, and the next durable commit (an ingest batch, within milliseconds while hubs are
//              connected) syncs these too. Only a power cut in between can lose them, and every such loss
//              is repaired by redoing it: a claim or a next step is claimed and run again, a call is placed
//              again under the same idempotency key, a lost acknowledgement means more calls, never fewer;
//              a birth comes again once the relay is back (the hub logs in again, or the broker replays it).
//              Incidents themselves open inside ingest's commits, and operators' actions are normal.
//
// Statements are prepared once per SQL text (kysely's own driver prepares every query anew).
import type Database from "better-sqlite3";
import { CompiledQuery, SelectQueryNode, SqliteDialect, type DatabaseConnection, type Driver, type QueryResult } from "kysely";

/** Distinct statements kept prepared; the relay issues a few hundred. */
const STATEMENT_CACHE = 512;

export type SqliteLane = "urgent" | "normal" | "redoable";

/** The connection and its queue, shared by the dialects of the lanes (see sqliteLanes). */
export class SharedSqliteConnection {
  private held = false;
  private readonly urgent: Array<() => void> = [];
  /** The normal and redoable lanes wait in one queue, in order. */
  private readonly others: Array<{ lane: SqliteLane; go: () => void }> = [];
  /** After an urgent turn, a waiting other one goes next. */
  private lastUrgent = false;
  private durable = true;
  private readonly statements = new Map<string, Database.Statement>();
  readonly connection: DatabaseConnection;
  private closed = false;

  constructor(readonly raw: Database.Database) {
    this.connection = {
      executeQuery: <R>(q: CompiledQuery) => Promise.resolve(this.execute<R>(q)),
      streamQuery: <R>(q: CompiledQuery) => this.stream<R>(q),
    };
  }

  acquire(lane: SqliteLane): Promise<void> {
    if (!this.held) {
      this.held = true;
      this.take(lane);
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      if (lane === "urgent") this.urgent.push(resolve);
      else this.others.push({ lane, go: resolve });
    });
  }

  release(): void {
    if (this.urgent.length > 0 && !(this.lastUrgent && this.others.length > 0)) {
      this.take("urgent");
      (this.urgent.shift() as () => void)();
      return;
    }
    const next = this.others.shift();
    if (!next) {
      this.held = false;
      return;
    }
    this.take(next.lane);
    next.go();
  }

  /** The lane now holding the connection; no transaction is open here, so the sync level may change. */
  private take(lane: SqliteLane): void {
    this.lastUrgent = lane === "urgent";
    const durable = lane !== "redoable";
    if (durable === this.durable || this.closed) return;
    this.raw.pragma(`synchronous = ${durable ? "FULL" : "NORMAL"}`);
    this.durable = durable;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.statements.clear();
    this.raw.close();
  }

  private prepare(sql: string): Database.Statement {
    let stmt = this.statements.get(sql);
    if (stmt) return stmt;
    stmt = this.raw.prepare(sql);
    if (this.statements.size >= STATEMENT_CACHE) this.statements.delete(this.statements.keys().next().value as string);
    this.statements.set(sql, stmt);
    return stmt;
  }

  private execute<R>(q: CompiledQuery): QueryResult<R> {
    const stmt = this.prepare(q.sql);
    const params = q.parameters as unknown[];
    if (stmt.reader) return { rows: stmt.all(params) as R[] };
    const { changes, lastInsertRowid } = stmt.run(params);
    return { numAffectedRows: BigInt(changes), insertId: BigInt(lastInsertRowid), rows: [] };
  }

  private async *stream<R>(q: CompiledQuery): AsyncIterableIterator<QueryResult<R>> {
    if (!SelectQueryNode.is(q.query)) throw new Error("the SQLite driver streams only select queries");
    // Not from the cache: a statement being iterated cannot run anything else meanwhile.
    for (const row of this.raw.prepare(q.sql).iterate(q.parameters)) yield { rows: [row as R] };
  }
}

class LaneDriver implements Driver {
  constructor(
    private readonly shared: SharedSqliteConnection,
    private readonly lane: SqliteLane,
  ) {}

  async init(): Promise<void> {}

  async acquireConnection(): Promise<DatabaseConnection> {
    await this.shared.acquire(this.lane);
    return this.shared.connection;
  }

  async beginTransaction(c: DatabaseConnection): Promise<void> {
    await c.executeQuery(CompiledQuery.raw("begin"));
  }

  async commitTransaction(c: DatabaseConnection): Promise<void> {
    await c.executeQuery(CompiledQuery.raw("commit"));
  }

  async rollbackTransaction(c: DatabaseConnection): Promise<void> {
    await c.executeQuery(CompiledQuery.raw("rollback"));
  }

  // Savepoints keep one alarm's failure inside ingest's transaction from undoing the whole batch.
  async savepoint(c: DatabaseConnection, name: string): Promise<void> {
    await c.executeQuery(CompiledQuery.raw(`savepoint ${quoteName(name)}`));
  }

  async rollbackToSavepoint(c: DatabaseConnection, name: string): Promise<void> {
    await c.executeQuery(CompiledQuery.raw(`rollback to ${quoteName(name)}`));
  }

  async releaseSavepoint(c: DatabaseConnection, name: string): Promise<void> {
    await c.executeQuery(CompiledQuery.raw(`release ${quoteName(name)}`));
  }

  async releaseConnection(): Promise<void> {
    this.shared.release();
  }

  async destroy(): Promise<void> {
    // The normal lane owns the connection; the other lanes' destroy leaves it open.
    if (this.lane === "normal") this.shared.close();
  }
}

const quoteName = (name: string): string => `"${name.replace(/"/g, '""')}"`;

/** kysely's SQLite dialect (compiler, adapter, introspector) over one lane of the shared connection. */
class LaneDialect extends SqliteDialect {
  constructor(
    private readonly shared: SharedSqliteConnection,
    private readonly lane: SqliteLane,
  ) {
    super({ database: shared.raw });
  }

  override createDriver(): Driver {
    return new LaneDriver(this.shared, this.lane);
  }
}

/**
 * The lanes' dialects over one better-sqlite3 connection opened with synchronous=FULL: give each to its own
 * Kysely instance.
 */
export function sqliteLanes(raw: Database.Database): Record<SqliteLane, SqliteDialect> {
  const shared = new SharedSqliteConnection(raw);
  return { urgent: new LaneDialect(shared, "urgent"), normal: new LaneDialect(shared, "normal"), redoable: new LaneDialect(shared, "redoable") };
}
