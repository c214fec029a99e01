// The relay's SQLite driver for kysely: one better-sqlite3 connection, shared by two lanes.
//
// SQLite has one connection and kysely queues everyone for it. In a burst of alarms the escalation's small
// writes (timer claims, call attempts, audits: each a transaction, each an fsync) filled that queue, and a
// hub's login (its credential lookup) and the ingest commits that lead to acks waited behind all of them:
// a reconnect storm of 2,000 hubs needed over a minute to log them in. The `urgent` lane is served first
// whenever the connection frees: ingest's commits and the credential and key lookups use it. Between two of
// its turns the normal lane gets the connection at least once, so escalation is slowed, never starved.
//
// Statements are prepared once per SQL text (kysely's own driver prepares every query anew).
import type Database from "better-sqlite3";
import { CompiledQuery, SelectQueryNode, SqliteDialect, type DatabaseConnection, type Driver, type QueryResult } from "kysely";

/** Distinct statements kept prepared; the relay issues a few hundred. */
const STATEMENT_CACHE = 512;

export type SqliteLane = "normal" | "urgent";

/** The connection and its queue, shared by the dialects of both lanes (see sqliteLanes). */
export class SharedSqliteConnection {
  private held = false;
  private readonly waiting: Record<SqliteLane, Array<() => void>> = { urgent: [], normal: [] };
  /** The lane served last: after an urgent turn a waiting normal one goes next. */
  private lastUrgent = false;
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
      this.lastUrgent = lane === "urgent";
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiting[lane].push(resolve));
  }

  release(): void {
    const { urgent, normal } = this.waiting;
    const takeUrgent = urgent.length > 0 && !(this.lastUrgent && normal.length > 0);
    const next = takeUrgent ? urgent.shift() : normal.shift();
    if (!next) {
      this.held = false;
      return;
    }
    this.lastUrgent = takeUrgent;
    next();
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
    // The normal lane owns the connection; the urgent lane's destroy leaves it open.
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

/** The two lanes' dialects over one better-sqlite3 connection: give each to its own Kysely instance. */
export function sqliteLanes(raw: Database.Database): Record<SqliteLane, SqliteDialect> {
  const shared = new SharedSqliteConnection(raw);
  return { normal: new LaneDialect(shared, "normal"), urgent: new LaneDialect(shared, "urgent") };
}
