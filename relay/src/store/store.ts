// One query layer (kysely) over SQLite (better-sqlite3) and PostgreSQL (pg): every query is written once.
// SQLite is the single-machine default; PostgreSQL lets several relay instances share one store, so every
// state change here is a conditional update that exactly one instance can win.
import { chmodSync, closeSync, mkdirSync, openSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import Database from "better-sqlite3";
import { CompiledQuery, Kysely, Migrator, sql, type Expression, type Migration, type Selectable } from "kysely";
import type pg from "pg";
import { ulid } from "ulid";
import type { RelayConfig } from "../config/schema.js";
import { OwnSchemaPostgresDialect } from "./own-schema-dialect.js";
import { relayMigrations, type HubsTable, type RelayDb } from "./schema.js";
import { sqliteLanes } from "./sqlite-driver.js";

export type { RelayDb } from "./schema.js";

/** The one incident type the supervisor opens. */
export const HUB_OFFLINE = "hub_offline";

/** One accepted event, as the ingest hands it to the store. */
export interface EventRow {
  id: string;
  hub: string;
  boot: number;
  seq: number;
  ts: number;
  receivedAt: number;
  kind: string;
  type: string;
  severity: string;
  device: string | null;
  /** The envelope text as received (signature included). */
  payload: string;
  skewMs: number | null;
  historical: boolean;
  /** How it reached the relay; default (absent) 'mqtt'. */
  path?: EventPath;
}

/**
 * The path an event came by: the broadband path (MQTT, the full signed envelope), the last-resort SMS (the
 * compact form, verified by its truncated HMAC), or both (an SMS first, its full envelope later).
 */
export type EventPath = "mqtt" | "sms" | "sms+mqtt";

/** The hub's periodic test of its second path: a device event that goes by SMS (protocol/sms-compact.ts). */
export const SECOND_PATH_TEST = "second_path_test";

/**
 * Rows that came by `path` (sms+mqtt by either): `path <> 'the other one'`. A literal, not a parameter:
 * PostgreSQL uses the partial index (path <> 'mqtt') only for a predicate it can match.
 */
export function cameBy(path: "mqtt" | "sms") {
  return sql<boolean>`path <> ${sql.lit(path === "mqtt" ? "sms" : "mqtt")}`;
}

/** When each path last brought an event of a hub (receipt time, ms), null if never. */
export interface PathHealth {
  mqtt: { lastAt: number | null };
  sms: { lastAt: number | null };
}

/** Filters and keyset position for {@link Store.queryEvents}. */
export interface EventQuery {
  hub?: string;
  kind?: string;
  type?: string;
  severity?: string;
  /** Event time (the hub's `ts`) at or after this, ms. */
  since?: number;
  /** Event time before this, ms. */
  until?: number;
  /** Came by this path: an event that came by both (sms+mqtt) matches either. */
  path?: "mqtt" | "sms";
  /** By receipt: "desc" newest first (the default), "asc" oldest first. */
  order?: "asc" | "desc";
  /** Continue after this row in the chosen order (the last row of the previous page). */
  after?: { receivedAt: number; id: string };
  /**
   * Only hubs this subquery selects (one column of hub ids), e.g. the homes on a caller's streets
   * (households/street-scope.ts hubsOnStreets): narrowed in SQL, so a page is never filled by dropping rows.
   */
  hubIn?: Expression<unknown>;
  limit: number;
}

export interface InsertResult {
  /** Ids that were not in the table before this transaction. */
  inserted: string[];
  /** Ids already stored for a *different* hub: not this hub's event, so not a duplicate to acknowledge. */
  foreign: string[];
}

/** A hub without its secrets (what listings and the API may show). */
export interface HubRow {
  id: string;
  status: HubsTable["status"];
  createdAt: number;
  lastSeenAt: number | null;
  online: boolean;
  lastBoot: number | null;
  offlineSince: number | null;
  claimExpiresAt: number | null;
  claimUsedAt: number | null;
  /** The installer token (id) that registered the hub, until it enrols; null otherwise. */
  claimOwner: string | null;
  enrolled: boolean;
}

/** A hub with the fields the registry needs to authenticate it. */
export interface HubAuthRow extends HubRow {
  passwordHash: string | null;
  passwordSalt: string | null;
  keyB64: string | null;
  claimHash: string | null;
  claimSalt: string | null;
}

export interface ClaimFields {
  claimHash: string;
  claimSalt: string;
  claimExpiresAt: number;
}

export interface Credentials {
  passwordHash: string;
  passwordSalt: string;
  /** As stored: sealed by the registry (key-vault.ts). */
  keyB64: string;
}

export interface HubIncident {
  id: string;
  hub: string;
  type: string;
  reason: string;
  openedAt: number;
  closedAt: number | null;
  closeReason: string | null;
}

/** A supervision state change; applied only if the hub is in the opposite state (and active). */
export type HubTransition =
  | { op: "online"; hub: string; at: number; boot?: number; reason?: string }
  | {
      op: "offline";
      hub: string;
      at: number;
      reason: string;
      /** Only if last seen before this (missed heartbeats). */
      staleBefore?: number;
      /** The boot the message speaks for (a will): ignored if the hub has since started a later boot. */
      boot?: number;
    };

export interface TransitionResult {
  hub: string;
  op: "online" | "offline";
  /** This call made the change (another instance, or an earlier message, may already have). */
  changed: boolean;
  incident: "opened" | "closed" | null;
}

export interface Store {
  readonly dialect: "sqlite" | "postgres";
  /** The kysely instance, for other parts of the relay (their tables come in through openStore's `migrations`). */
  readonly db: Kysely<RelayDb>;
  /**
   * The same tables for work whose loss in a power cut is repaired by redoing it (the escalation engine's
   * own bookkeeping, hubs' births): on SQLite committed without an fsync of its own (sqlite-driver.ts), on
   * PostgreSQL `db`.
   */
  readonly redoableDb: Kysely<RelayDb>;
  close(): Promise<void>;

  /**
   * One transaction: inserts the rows (`ON CONFLICT (id) DO NOTHING`) and reports which were new.
   * `withinCommit` runs inside the same transaction with the new ids, so work that must happen exactly once
   * per new event (an escalation start) can commit or fail together with it.
   */
  insertEvents(rows: EventRow[], opts?: { withinCommit?: (trx: Kysely<RelayDb>, inserted: string[]) => Promise<void> }): Promise<InsertResult>;
  getEvent(id: string): Promise<EventRow | undefined>;
  /** Oldest first by receipt. */
  listEvents(q?: { hub?: string; receivedAfter?: number; limit?: number }): Promise<EventRow[]>;
  countEvents(hub?: string): Promise<number>;
  /**
   * Filtered events ordered by (received_at, id), ascending or descending, starting after `after`: a keyset
   * page, so rows inserted between two pages (received later) cause neither duplicates nor gaps.
   */
  queryEvents(q: EventQuery): Promise<EventRow[]>;
  /** The latest event each path brought from `hub`. */
  pathHealth(hub: string): Promise<PathHealth>;
  /** Receipt of the latest second_path_test of `hub` that arrived by SMS (a successful test of its second path); null if none. */
  lastSecondPathTest(hub: string): Promise<number | null>;

  getHub(id: string): Promise<HubRow | undefined>;
  getHubAuth(id: string): Promise<HubAuthRow | undefined>;
  /** As getHubAuth for several hubs in one query; hubs without a row are left out. */
  getHubAuths(ids: readonly string[]): Promise<HubAuthRow[]>;
  listHubs(): Promise<HubRow[]>;
  /** Adds a pending hub with its first claim (owned by `owner`, an installer token id, if given); false if the id exists. */
  insertPendingHub(id: string, claim: ClaimFields, now: number, owner?: string | null): Promise<boolean>;
  /**
   * Replaces the claim of a hub still in `expectStatus` (and still owned by `owner`, when given); `readmit`
   * turns a revoked hub back to pending without credentials or owner.
   */
  setClaim(id: string, expectStatus: HubsTable["status"], claim: ClaimFields, opts?: { readmit?: boolean; owner?: string }): Promise<boolean>;
  /** Uses the claim (only if it is still `claimHash`, unused and unexpired, and the hub not revoked), stores new credentials and ends the claim's ownership. */
  activateHub(id: string, claimHash: string, creds: Credentials, now: number): Promise<boolean>;
  /** Revokes the hub, clears its claim and closes its open incidents; false if unknown or already revoked. */
  revokeHub(id: string, now: number): Promise<boolean>;

  /** Applies the changes in order, in one transaction. */
  applyTransitions(list: HubTransition[]): Promise<TransitionResult[]>;
  /** Raises last_seen_at (never lowers it) and brings offline hubs seen after they went offline back online. */
  recordSeen(seen: Iterable<readonly [hub: string, at: number]>): Promise<TransitionResult[]>;
  /** Active hubs marked online but not seen since `before`. */
  staleHubs(before: number): Promise<string[]>;
  countOnlineHubs(): Promise<number>;
  listIncidents(q?: { hub?: string; openOnly?: boolean; limit?: number }): Promise<HubIncident[]>;
}

export interface OpenStoreOptions {
  /** Extra migrations from other parts of the relay, merged with the store's own (applied by name order). */
  migrations?: Record<string, Migration>;
}

/** Opens (and migrates) the configured store. `dataDir` resolves a relative SQLite path. */
export async function openStore(cfg: RelayConfig["store"], dataDir: string, opts: OpenStoreOptions = {}): Promise<Store> {
  const migrations = { ...relayMigrations, ...opts.migrations };
  if (cfg.kind === "sqlite") {
    const path = isAbsolute(cfg.path) ? cfg.path : resolve(dataDir, cfg.path);
    const raw = openSqlite(path);
    const lanes = sqliteLanes(raw);
    const db = new Kysely<RelayDb>({ dialect: lanes.normal });
    await migrate(db, migrations, undefined);
    return new KyselyStore("sqlite", db, raw, new Kysely<RelayDb>({ dialect: lanes.urgent }), new Kysely<RelayDb>({ dialect: lanes.redoable }));
  }
  // Loaded here, not with the module: a relay on SQLite never needs the PostgreSQL client.
  const { default: pgLib } = await import("pg");
  await ensurePgSchema(pgLib, cfg.url, cfg.schema);
  const pooledDb = (max: number) => {
    const p = new pgLib.Pool({
      connectionString: cfg.url,
      max,
      // An unreachable server fails the commit (which is retried) instead of hanging it.
      connectionTimeoutMillis: 10_000,
      // Every connection works in the configured schema, so queries stay unqualified (and tests can isolate).
      options: `-c search_path=${quoteIdent(cfg.schema)}`,
      types: pgTypes(pgLib),
    });
    // An idle client losing its server must not crash the process; the next query reports the error.
    p.on("error", () => {});
    return new Kysely<RelayDb>({ dialect: new OwnSchemaPostgresDialect({ pool: p }, cfg.schema) });
  };
  const db = pooledDb(cfg.poolSize);
  try {
    await migrate(db, migrations, cfg.schema);
  } catch (err) {
    await db.destroy();
    throw err;
  }
  // Ingest's commits, which every hub's acks wait on, get connections of their own (as SQLite's first lane):
  // in a storm the call trees' statements would otherwise hold every pooled connection while they wait. The
  // credential and key lookups stay on the shared pool: in a small pool of their own (2 or 4 connections)
  // they queued past the pool's wait in a 5,000-hub storm and were refused, for no gain (docs/benchmarks.md).
  return new KyselyStore("postgres", db, null, pooledDb(COMMIT_PG_CONNECTIONS), db, db);
}

/** Connections beside `poolSize` for ingest's commits: its loop commits one batch at a time, and an SMS alarm's commit may come beside it. */
export const COMMIT_PG_CONNECTIONS = 2;

// int8 (bigint, count(*)) arrives as a string by default; our ms timestamps fit a double exactly.
const pgTypes = (lib: typeof pg): pg.CustomTypesConfig => ({
  getTypeParser: (oid, format) => (oid === lib.types.builtins.INT8 ? (v: string) => Number(v) : (lib.types.getTypeParser(oid, format) as (value: string) => unknown)),
});

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

async function ensurePgSchema(lib: typeof pg, url: string, schema: string): Promise<void> {
  const client = new lib.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`);
  } catch (err) {
    // Two instances starting together can race past IF NOT EXISTS; the loser sees a duplicate.
    const code = (err as { code?: string }).code;
    if (code !== "42P06" && code !== "23505") throw err;
  } finally {
    await client.end();
  }
}

async function migrate(db: Kysely<RelayDb>, migrations: Record<string, Migration>, pgSchema: string | undefined): Promise<void> {
  const migrator = new Migrator({
    db,
    provider: { getMigrations: async () => migrations },
    ...(pgSchema ? { migrationTableSchema: pgSchema } : {}),
    // Parts of the relay add migrations independently; a name sorting before an applied one is still fine.
    allowUnorderedMigrations: true,
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === "Error")?.migrationName;
    // eslint-disable-next-line @typescript-eslint/no-base-to-string -- whatever a migration threw that is not an Error: String() is all we can say of it (it stays the cause)
    throw new Error(`store: migration ${failed ?? ""} failed: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
}

// mkdir -p by hand, as the hub's journal does: recursive mkdirSync can loop where ENOENT cannot be fixed.
function ensureDir(dir: string): void {
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "EEXIST") return;
    const parent = dirname(dir);
    if (code !== "ENOENT" || parent === dir) throw err;
    ensureDir(parent);
    mkdirSync(dir, { mode: 0o700 });
  }
}

function openSqlite(path: string): Database.Database {
  ensureDir(dirname(path));
  // The file holds hubs' signing keys: owner only. SQLite gives its -wal/-shm files the same mode.
  closeSync(openSync(path, "a", 0o600));
  chmodSync(path, 0o600);
  const db = new Database(path);
  try {
    db.pragma("busy_timeout = 5000");
    const mode = db.pragma("journal_mode = WAL", { simple: true });
    if (String(mode).toLowerCase() !== "wal") throw new Error(`store: WAL mode refused (got ${String(mode)})`);
    // FULL: an acknowledged event must survive a power cut (the hub deletes it once acked).
    db.pragma("synchronous = FULL");
    db.pragma("journal_size_limit = 67108864");
  } catch (err) {
    db.close();
    throw err;
  }
  return db;
}

// SQLite allows 32766 bound parameters per statement, PostgreSQL 65535; 13 columns × 500 rows fits both.
// Event inserts on PostgreSQL go in chunks of INSERT_CHUNK rows too, which bounds one statement's size.
const INSERT_CHUNK = 500;
const SELECT_CHUNK = 500;

function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** The events columns an insert sets, in the order of the values below. */
const EVENT_COLUMNS = "id, hub, boot, seq, ts, received_at, kind, type, severity, device, payload, skew_ms, historical, path";

/**
 * Up to INSERT_CHUNK rows of a batch on PostgreSQL in one statement (the default batch is one statement):
 * the columns as 14 array parameters (unnest) rather than 14 parameters per row, so neither kysely nor pg
 * builds and sends thousands of parameters and the server parses the same short text every time. The
 * stored values are the same (pg's array literals quote every element). Returns the new ids.
 */
async function insertPg(trx: Kysely<RelayDb>, rows: EventRow[]): Promise<string[]> {
  const n = rows.length;
  const cols: unknown[][] = [];
  for (let c = 0; c < 14; c++) cols.push(new Array<unknown>(n));
  for (let i = 0; i < n; i++) {
    const r = rows[i] as EventRow;
    (cols[0] as unknown[])[i] = r.id;
    (cols[1] as unknown[])[i] = r.hub;
    (cols[2] as unknown[])[i] = r.boot;
    (cols[3] as unknown[])[i] = r.seq;
    (cols[4] as unknown[])[i] = r.ts;
    (cols[5] as unknown[])[i] = r.receivedAt;
    (cols[6] as unknown[])[i] = r.kind;
    (cols[7] as unknown[])[i] = r.type;
    (cols[8] as unknown[])[i] = r.severity;
    (cols[9] as unknown[])[i] = r.device;
    (cols[10] as unknown[])[i] = r.payload;
    (cols[11] as unknown[])[i] = r.skewMs;
    (cols[12] as unknown[])[i] = r.historical ? 1 : 0;
    (cols[13] as unknown[])[i] = r.path ?? "mqtt";
  }
  const got = await trx.executeQuery<{ id: string }>(CompiledQuery.raw(INSERT_PG, cols));
  return got.rows.map((g) => g.id);
}

const INSERT_PG = `INSERT INTO events (${EVENT_COLUMNS})
  SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::bigint[], $13::integer[], $14::text[])
  ON CONFLICT (id) DO NOTHING RETURNING id`;

type HubSelect = Pick<Selectable<HubsTable>, "id" | "status" | "created_at" | "last_seen_at" | "online" | "last_boot" | "offline_since" | "claim_expires_at" | "claim_used_at" | "claim_owner" | "key_b64">;

function toHubAuthRow(r: Selectable<HubsTable>): HubAuthRow {
  return {
    ...toHubRow(r),
    passwordHash: r.password_hash,
    passwordSalt: r.password_salt,
    keyB64: r.key_b64,
    claimHash: r.claim_hash,
    claimSalt: r.claim_salt,
  };
}

function toHubRow(r: HubSelect): HubRow {
  return {
    id: r.id,
    status: r.status,
    createdAt: r.created_at,
    lastSeenAt: r.last_seen_at,
    online: r.online === 1,
    lastBoot: r.last_boot,
    offlineSince: r.offline_since,
    claimExpiresAt: r.claim_expires_at,
    claimUsedAt: r.claim_used_at,
    claimOwner: r.claim_owner,
    enrolled: r.key_b64 !== null,
  };
}

const HUB_COLUMNS = ["id", "status", "created_at", "last_seen_at", "online", "last_boot", "offline_since", "claim_expires_at", "claim_used_at", "claim_owner", "key_b64"] as const;

class KyselyStore implements Store {
  /** The event insert, prepared once (SQLite). */
  private insertEvent: Database.Statement | null = null;

  constructor(
    readonly dialect: "sqlite" | "postgres",
    readonly db: Kysely<RelayDb>,
    /** The one connection kysely's SQLite dialect runs on, for statements prepared once (null on PostgreSQL). */
    private readonly sqlite: Database.Database | null = null,
    /**
     * Ingest's commits, which every hub's acks follow. SQLite: the lane served before everything else
     * (sqlite-driver.ts); PostgreSQL: a pool of its own.
     */
    private readonly commits: Kysely<RelayDb> = db,
    readonly redoableDb: Kysely<RelayDb> = db,
    /**
     * The hubs' credential and key lookups. SQLite: the same first lane. PostgreSQL: `db`, not the commits'
     * pool: in a storm thousands of logins queue there, and the commits must not wait behind them.
     */
    private readonly logins: Kysely<RelayDb> = commits,
  ) {}

  async close(): Promise<void> {
    if (this.commits !== this.db) await this.commits.destroy();
    if (this.redoableDb !== this.db) await this.redoableDb.destroy();
    await this.db.destroy();
  }

  // ---- events

  async insertEvents(rows: EventRow[], opts: { withinCommit?: (trx: Kysely<RelayDb>, inserted: string[]) => Promise<void> } = {}): Promise<InsertResult> {
    const byId = new Map<string, EventRow>();
    for (const r of rows) if (!byId.has(r.id)) byId.set(r.id, r);
    if (byId.size === 0) return { inserted: [], foreign: [] };
    // Sorted, so two PostgreSQL transactions inserting overlapping ids take their index locks in the same
    // order and cannot deadlock.
    const unique = [...byId.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return this.commits.transaction().execute(async (trx) => {
      let inserted: string[];
      if (this.sqlite) inserted = this.insertSqlite(unique);
      else {
        inserted = [];
        for (const part of chunks(unique, INSERT_CHUNK)) inserted.push(...(await insertPg(trx, part)));
      }
      const isNew = new Set(inserted);
      const known = unique.filter((r) => !isNew.has(r.id));
      const foreign: string[] = [];
      for (const part of chunks(known, SELECT_CHUNK)) {
        const owners = await trx.selectFrom("events").select(["id", "hub", "path"]).where("id", "in", part.map((r) => r.id)).execute();
        for (const o of owners) {
          const row = byId.get(o.id) as EventRow;
          if (o.hub !== row.hub) foreign.push(o.id);
          else if (!o.path.includes(row.path ?? "mqtt")) await completePath(trx, row);
        }
      }
      if (opts.withinCommit) await opts.withinCommit(trx, inserted);
      return { inserted, foreign };
    });
  }

  /**
   * The rows of one batch on SQLite, inside the transaction kysely opened (better-sqlite3 has one connection,
   * and kysely holds it for the transaction, so these statements are part of it): one prepared statement
   * run per row instead of a multi-row statement built and prepared per batch. Returns the new ids in
   * row order (a conflict changes no row).
   */
  private insertSqlite(rows: EventRow[]): string[] {
    const stmt = (this.insertEvent ??= (this.sqlite as Database.Database).prepare(`INSERT INTO events (${EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`));
    const inserted: string[] = [];
    for (const r of rows) {
      const res = stmt.run(r.id, r.hub, r.boot, r.seq, r.ts, r.receivedAt, r.kind, r.type, r.severity, r.device, r.payload, r.skewMs, r.historical ? 1 : 0, r.path ?? "mqtt");
      if (res.changes === 1) inserted.push(r.id);
    }
    return inserted;
  }

  async getEvent(id: string): Promise<EventRow | undefined> {
    const r = await this.db.selectFrom("events").selectAll().where("id", "=", id).executeTakeFirst();
    return r ? toEventRow(r) : undefined;
  }

  async listEvents(q: { hub?: string; receivedAfter?: number; limit?: number } = {}): Promise<EventRow[]> {
    let query = this.db.selectFrom("events").selectAll();
    if (q.hub !== undefined) query = query.where("hub", "=", q.hub);
    if (q.receivedAfter !== undefined) query = query.where("received_at", ">", q.receivedAfter);
    const rows = await query.orderBy("received_at").orderBy("id").limit(q.limit ?? 1000).execute();
    return rows.map(toEventRow);
  }

  async queryEvents(q: EventQuery): Promise<EventRow[]> {
    const desc = (q.order ?? "desc") === "desc";
    let query = this.db.selectFrom("events").selectAll();
    if (q.hubIn !== undefined) query = query.where("hub", "in", q.hubIn as Expression<string>);
    if (q.hub !== undefined) query = query.where("hub", "=", q.hub);
    if (q.kind !== undefined) query = query.where("kind", "=", q.kind);
    if (q.type !== undefined) query = query.where("type", "=", q.type);
    if (q.severity !== undefined) query = query.where("severity", "=", q.severity);
    if (q.since !== undefined) query = query.where("ts", ">=", q.since);
    if (q.until !== undefined) query = query.where("ts", "<", q.until);
    // The same literal predicate as pathHealth's, so PostgreSQL can use the partial index for path=sms.
    if (q.path !== undefined) query = query.where(cameBy(q.path));
    const after = q.after;
    if (after !== undefined) {
      const op = desc ? "<" : ">";
      query = query.where((eb) => eb.or([eb("received_at", op, after.receivedAt), eb.and([eb("received_at", "=", after.receivedAt), eb("id", op, after.id)])]));
    }
    const dir = desc ? "desc" : "asc";
    const rows = await query.orderBy("received_at", dir).orderBy("id", dir).limit(q.limit).execute();
    return rows.map(toEventRow);
  }

  async pathHealth(hub: string): Promise<PathHealth> {
    // Both walk the hub's newest rows by index: MQTT's are nearly all of them, SMS ones have an index of their own.
    const latest = async (path: "mqtt" | "sms"): Promise<number | null> => {
      const r = await this.db
        .selectFrom("events")
        .select("received_at")
        .where("hub", "=", hub)
        .where(cameBy(path))
        .orderBy("received_at", "desc")
        .limit(1)
        .executeTakeFirst();
      return r ? Number(r.received_at) : null;
    };
    return { mqtt: { lastAt: await latest("mqtt") }, sms: { lastAt: await latest("sms") } };
  }

  async lastSecondPathTest(hub: string): Promise<number | null> {
    // The partial index again: a test that came only over MQTT (its text lost) is no success of the SMS path.
    const r = await this.db
      .selectFrom("events")
      .select("received_at")
      .where("hub", "=", hub)
      .where(cameBy("sms"))
      .where("kind", "=", "device")
      .where("type", "=", SECOND_PATH_TEST)
      .orderBy("received_at", "desc")
      .limit(1)
      .executeTakeFirst();
    return r ? Number(r.received_at) : null;
  }

  async countEvents(hub?: string): Promise<number> {
    let query = this.db.selectFrom("events").select((eb) => eb.fn.countAll<number>().as("n"));
    if (hub !== undefined) query = query.where("hub", "=", hub);
    const r = await query.executeTakeFirstOrThrow();
    return Number(r.n);
  }

  // ---- hubs

  async getHub(id: string): Promise<HubRow | undefined> {
    const r = await this.db.selectFrom("hubs").select(HUB_COLUMNS).where("id", "=", id).executeTakeFirst();
    return r ? toHubRow(r) : undefined;
  }

  async getHubAuth(id: string): Promise<HubAuthRow | undefined> {
    const r = await this.logins.selectFrom("hubs").selectAll().where("id", "=", id).executeTakeFirst();
    return r ? toHubAuthRow(r) : undefined;
  }

  async getHubAuths(ids: readonly string[]): Promise<HubAuthRow[]> {
    if (ids.length === 0) return [];
    const rows = await this.logins.selectFrom("hubs").selectAll().where("id", "in", ids).execute();
    return rows.map(toHubAuthRow);
  }

  async listHubs(): Promise<HubRow[]> {
    const rows = await this.db.selectFrom("hubs").select(HUB_COLUMNS).orderBy("id").execute();
    return rows.map(toHubRow);
  }

  async insertPendingHub(id: string, claim: ClaimFields, now: number, owner: string | null = null): Promise<boolean> {
    const got = await this.db
      .insertInto("hubs")
      .values({
        id,
        status: "pending",
        password_hash: null,
        password_salt: null,
        key_b64: null,
        claim_hash: claim.claimHash,
        claim_salt: claim.claimSalt,
        claim_expires_at: claim.claimExpiresAt,
        claim_used_at: null,
        claim_owner: owner,
        created_at: now,
        last_seen_at: null,
        online: 0,
        last_boot: null,
        offline_since: null,
      })
      .onConflict((oc) => oc.column("id").doNothing())
      .returning("id")
      .execute();
    return got.length === 1;
  }

  async setClaim(id: string, expectStatus: HubsTable["status"], claim: ClaimFields, opts: { readmit?: boolean; owner?: string } = {}): Promise<boolean> {
    let q = this.db
      .updateTable("hubs")
      .set({
        claim_hash: claim.claimHash,
        claim_salt: claim.claimSalt,
        claim_expires_at: claim.claimExpiresAt,
        claim_used_at: null,
        // A revoked hub comes back only through a new enrolment: its old credentials are gone for good.
        ...(opts.readmit ? { status: "pending" as const, password_hash: null, password_salt: null, key_b64: null, online: 0, claim_owner: null } : {}),
      })
      .where("id", "=", id)
      .where("status", "=", expectStatus);
    if (opts.owner !== undefined) q = q.where("claim_owner", "=", opts.owner);
    const r = await q.executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  async activateHub(id: string, claimHash: string, creds: Credentials, now: number): Promise<boolean> {
    // One statement, so two enrolments racing with the same code cannot both win.
    const r = await this.db
      .updateTable("hubs")
      .set({
        status: "active",
        password_hash: creds.passwordHash,
        password_salt: creds.passwordSalt,
        key_b64: creds.keyB64,
        claim_used_at: now,
        // Enrolled: no installer owns its claims any more (a rotation is an admin's).
        claim_owner: null,
      })
      .where("id", "=", id)
      .where("claim_hash", "=", claimHash)
      .where("claim_used_at", "is", null)
      .where("claim_expires_at", ">", now)
      .where("status", "<>", "revoked")
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  async revokeHub(id: string, now: number): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      const r = await trx
        .updateTable("hubs")
        .set({ status: "revoked", online: 0, claim_hash: null, claim_salt: null, claim_expires_at: null })
        .where("id", "=", id)
        .where("status", "<>", "revoked")
        .executeTakeFirst();
      if (Number(r.numUpdatedRows) !== 1) return false;
      await trx
        .updateTable("hub_incidents")
        .set({ closed_at: now, close_reason: "revoked" })
        .where("hub", "=", id)
        .where("closed_at", "is", null)
        .execute();
      return true;
    });
  }

  // ---- supervision

  async applyTransitions(list: HubTransition[]): Promise<TransitionResult[]> {
    if (list.length === 0) return [];
    // Births alone need no fsync of their own: one lost to a power cut is redone when the relay is back, as
    // every hub logs in to the restarted embedded broker again, or an external broker hands over the
    // retained births again. A will or a missed heartbeat opens an incident, so a list with one stays durable.
    const db = list.every((t) => t.op === "online") ? this.redoableDb : this.db;
    return db.transaction().execute(async (trx) => {
      const out: TransitionResult[] = [];
      for (const t of list) out.push(t.op === "online" ? await goOnline(trx, t.hub, t.at, t.boot, false, t.reason) : await goOffline(trx, t));
      return out;
    });
  }

  async recordSeen(seen: Iterable<readonly [string, number]>): Promise<TransitionResult[]> {
    // Sorted by hub: the same lock order as every other multi-hub transaction (no PostgreSQL deadlocks).
    const list = [...seen].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    if (list.length === 0) return [];
    return this.db.transaction().execute(async (trx) => {
      const offline = new Set<string>();
      for (const part of chunks(list, SELECT_CHUNK)) {
        const q = trx
          .selectFrom("hubs")
          .select(["id", "online"])
          .where("id", "in", part.map(([h]) => h))
          .where("status", "=", "active")
          .orderBy("id");
        // On PostgreSQL every row is locked here, in hub order: the hubs brought back online below are written
        // before the others, and a second instance writing the same hubs would otherwise take them the other
        // way round (a deadlock). SQLite has one writer at a time.
        const rows = await (this.dialect === "postgres" ? q.forUpdate() : q).execute();
        for (const r of rows) if (Number(r.online) === 0) offline.add(r.id);
      }
      const out: TransitionResult[] = [];
      const online: Array<readonly [string, number]> = [];
      for (const [hub, at] of list) {
        if (!offline.has(hub)) {
          online.push([hub, at]);
          continue;
        }
        const res = await goOnline(trx, hub, at, undefined, true, "recovered");
        if (res.changed) out.push(res);
      }
      // The common case, hubs already online, is one statement per chunk instead of one per hub: on SQLite
      // this runs on the relay's only thread, and 1,000 single updates held it for 40–65 ms.
      for (const part of chunks(online, INSERT_CHUNK)) await touchMany(trx, part);
      return out;
    });
  }

  async staleHubs(before: number): Promise<string[]> {
    const rows = await this.db
      .selectFrom("hubs")
      .select("id")
      .where("status", "=", "active")
      .where("online", "=", 1)
      .where((eb) => eb.or([eb("last_seen_at", "is", null), eb("last_seen_at", "<", before)]))
      .orderBy("id")
      .execute();
    return rows.map((r) => r.id);
  }

  async countOnlineHubs(): Promise<number> {
    const r = await this.db
      .selectFrom("hubs")
      .select((eb) => eb.fn.countAll<number>().as("n"))
      .where("status", "=", "active")
      .where("online", "=", 1)
      .executeTakeFirstOrThrow();
    return Number(r.n);
  }

  async listIncidents(q: { hub?: string; openOnly?: boolean; limit?: number } = {}): Promise<HubIncident[]> {
    let query = this.db.selectFrom("hub_incidents").selectAll();
    if (q.hub !== undefined) query = query.where("hub", "=", q.hub);
    if (q.openOnly) query = query.where("closed_at", "is", null);
    const rows = await query.orderBy("opened_at").orderBy("id").limit(q.limit ?? 1000).execute();
    return rows.map((r) => ({
      id: r.id,
      hub: r.hub,
      type: r.type,
      reason: r.reason,
      openedAt: r.opened_at,
      closedAt: r.closed_at,
      closeReason: r.close_reason,
    }));
  }
}

function toEventRow(r: Selectable<RelayDb["events"]>): EventRow {
  return {
    id: r.id,
    hub: r.hub,
    boot: r.boot,
    seq: r.seq,
    ts: r.ts,
    receivedAt: r.received_at,
    kind: r.kind,
    type: r.type,
    severity: r.severity,
    device: r.device,
    payload: r.payload,
    skewMs: r.skew_ms,
    historical: r.historical === 1,
    path: r.path as EventPath,
  };
}

/**
 * The same event again by the other path. Its full envelope over MQTT completes an SMS-derived row (the
 * signed payload replaces the compact fields); an SMS after the MQTT copy only notes the path. Either way
 * it stays one event: no second incident, and the id is acknowledged as a duplicate.
 */
async function completePath(trx: Kysely<RelayDb>, row: EventRow): Promise<void> {
  const fromMqtt = (row.path ?? "mqtt") === "mqtt";
  await trx
    .updateTable("events")
    .set(fromMqtt ? { path: "sms+mqtt", payload: row.payload, skew_ms: row.skewMs, historical: row.historical ? 1 : 0 } : { path: "sms+mqtt" })
    .where("id", "=", row.id)
    .where("hub", "=", row.hub)
    .execute();
}

/** `touch` for many hubs at once; VALUES columns are column1, column2 on both SQLite and PostgreSQL. */
async function touchMany(db: Kysely<RelayDb>, seen: ReadonlyArray<readonly [string, number]>): Promise<void> {
  if (seen.length === 0) return;
  const values = sql.join(seen.map(([hub, at]) => sql`(CAST(${hub} AS text), CAST(${at} AS bigint))`));
  await sql`UPDATE hubs SET last_seen_at = v.column2 FROM (VALUES ${values}) AS v
    WHERE hubs.id = v.column1 AND (hubs.last_seen_at IS NULL OR hubs.last_seen_at < v.column2)`.execute(db);
}

async function touch(db: Kysely<RelayDb>, hub: string, at: number): Promise<void> {
  await db
    .updateTable("hubs")
    .set({ last_seen_at: at })
    .where("id", "=", hub)
    .where((eb) => eb.or([eb("last_seen_at", "is", null), eb("last_seen_at", "<", at)]))
    .execute();
}

async function goOnline(db: Kysely<RelayDb>, hub: string, at: number, boot: number | undefined, seen: boolean, reason = "recovered"): Promise<TransitionResult> {
  // Sight from before the hub went offline (a batch flushed late, a message queued behind the will) is
  // not a recovery.
  const r = await db
    .updateTable("hubs")
    .set({ online: 1, offline_since: null })
    .where("id", "=", hub)
    .where("online", "=", 0)
    .where("status", "=", "active")
    .where((eb) => eb.or([eb("offline_since", "is", null), eb("offline_since", "<", at)]))
    .executeTakeFirst();
  const changed = Number(r.numUpdatedRows) === 1;
  // A retained birth replayed to a restarted relay is not fresh sight of an already-online hub.
  if (changed || seen) await touch(db, hub, at);
  if (boot !== undefined) await db.updateTable("hubs").set({ last_boot: boot }).where("id", "=", hub).execute();
  let incident: TransitionResult["incident"] = null;
  if (changed) {
    const c = await db
      .updateTable("hub_incidents")
      .set({ closed_at: at, close_reason: reason })
      .where("hub", "=", hub)
      .where("type", "=", HUB_OFFLINE)
      .where("closed_at", "is", null)
      .executeTakeFirst();
    if (Number(c.numUpdatedRows) > 0) incident = "closed";
  }
  return { hub, op: "online", changed, incident };
}

async function goOffline(db: Kysely<RelayDb>, t: Extract<HubTransition, { op: "offline" }>): Promise<TransitionResult> {
  let q = db
    .updateTable("hubs")
    .set({ online: 0, offline_since: t.at })
    .where("id", "=", t.hub)
    .where("online", "=", 1)
    .where("status", "=", "active");
  const before = t.staleBefore;
  if (before !== undefined) q = q.where((eb) => eb.or([eb("last_seen_at", "is", null), eb("last_seen_at", "<", before)]));
  const boot = t.boot;
  // A will from an earlier boot, delivered after the hub's new birth, is old news.
  if (boot !== undefined) q = q.where((eb) => eb.or([eb("last_boot", "is", null), eb("last_boot", "<=", boot)]));
  const r = await q.executeTakeFirst();
  const changed = Number(r.numUpdatedRows) === 1;
  let incident: TransitionResult["incident"] = null;
  if (changed) {
    // The partial unique index is the backstop: if an incident is somehow still open, keep that one.
    const got = await db
      .insertInto("hub_incidents")
      .values({ id: ulid(), hub: t.hub, type: HUB_OFFLINE, reason: t.reason, opened_at: t.at, closed_at: null, close_reason: null })
      .onConflict((oc) => oc.columns(["hub", "type"]).where("closed_at", "is", null).doNothing())
      .returning("id")
      .execute();
    if (got.length === 1) incident = "opened";
  }
  return { hub: t.hub, op: "offline", changed, incident };
}

/** A unique-constraint violation on either dialect (someone else inserted first). */
export function isUniqueViolation(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === "23505" || code === "SQLITE_CONSTRAINT_UNIQUE" || code === "SQLITE_CONSTRAINT_PRIMARYKEY";
}
