// The relay's tables and their migrations, written once for both SQLite and PostgreSQL.
// Times are ms since epoch (bigint in PostgreSQL, read back as numbers); flags are 0/1 integers because
// better-sqlite3 cannot bind booleans, and one representation keeps every query identical on both dialects.
import { sql, type Generated, type Migration } from "kysely";

export interface HubsTable {
  id: string;
  status: "pending" | "active" | "revoked";
  /** `sha256:<base64>` (salted; the passwords are 192 random bits), or a legacy `scrypt:N:r:p:<base64>`. */
  password_hash: string | null;
  password_salt: string | null;
  /**
   * The HMAC key, sealed under the relay's master key (`v1:…`, registry/key-vault.ts): the relay must verify
   * signatures with it, so it cannot be hashed. Clear base64 in rows an earlier version wrote, sealed at start.
   */
  key_b64: string | null;
  claim_hash: string | null;
  claim_salt: string | null;
  claim_expires_at: number | null;
  claim_used_at: number | null;
  /**
   * The installer token (its id) that registered the hub with its first claim; only that installer may ask
   * for another code, and only until the hub enrols (cleared then). NULL for hubs an admin or the CLI
   * registered, which only an admin may claim again.
   */
  claim_owner: Generated<string | null>;
  created_at: number;
  last_seen_at: number | null;
  online: number;
  last_boot: number | null;
  offline_since: number | null;
}

export interface EventsTable {
  id: string;
  hub: string;
  boot: number;
  seq: number;
  /** The hub's clock; `skew_ms` is set when it was far from `received_at` (the relay's clock). */
  ts: number;
  received_at: number;
  kind: string;
  type: string;
  severity: string;
  device: string | null;
  /** The envelope exactly as received, signature included. */
  payload: string;
  skew_ms: number | null;
  historical: number;
  /**
   * How the event reached the relay (EventPath): 'mqtt', 'sms' (the compact text form, no signature in
   * `payload` until the full envelope arrives) or 'sms+mqtt' (both; `payload` is then the full signed envelope).
   */
  path: Generated<string>;
}

export interface HubIncidentsTable {
  id: string;
  hub: string;
  type: string;
  reason: string;
  opened_at: number;
  closed_at: number | null;
  close_reason: string | null;
}

export interface RelayDb {
  hubs: HubsTable;
  events: EventsTable;
  hub_incidents: HubIncidentsTable;
}

// Names sort in application order; other parts of the relay add theirs through openStore's `migrations`.
export const relayMigrations: Record<string, Migration> = {
  "0001_relay_core": {
    async up(db): Promise<void> {
      await db.schema
        .createTable("hubs")
        .ifNotExists()
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("status", "text", (c) => c.notNull())
        .addColumn("password_hash", "text")
        .addColumn("password_salt", "text")
        .addColumn("key_b64", "text")
        .addColumn("claim_hash", "text")
        .addColumn("claim_salt", "text")
        .addColumn("claim_expires_at", "bigint")
        .addColumn("claim_used_at", "bigint")
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .addColumn("last_seen_at", "bigint")
        .addColumn("online", "integer", (c) => c.notNull().defaultTo(0))
        .addColumn("last_boot", "bigint")
        .addColumn("offline_since", "bigint")
        .execute();
      // Supervision scans active, online hubs by last sight.
      await db.schema.createIndex("hubs_supervision").ifNotExists().on("hubs").columns(["status", "online", "last_seen_at"]).execute();

      await db.schema
        .createTable("events")
        .ifNotExists()
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("hub", "text", (c) => c.notNull())
        .addColumn("boot", "bigint", (c) => c.notNull())
        .addColumn("seq", "bigint", (c) => c.notNull())
        .addColumn("ts", "bigint", (c) => c.notNull())
        .addColumn("received_at", "bigint", (c) => c.notNull())
        .addColumn("kind", "text", (c) => c.notNull())
        .addColumn("type", "text", (c) => c.notNull())
        .addColumn("severity", "text", (c) => c.notNull())
        .addColumn("device", "text")
        .addColumn("payload", "text", (c) => c.notNull())
        .addColumn("skew_ms", "bigint")
        .addColumn("historical", "integer", (c) => c.notNull().defaultTo(0))
        .execute();
      await db.schema.createIndex("events_hub_received").ifNotExists().on("events").columns(["hub", "received_at"]).execute();

      await db.schema
        .createTable("hub_incidents")
        .ifNotExists()
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("hub", "text", (c) => c.notNull())
        .addColumn("type", "text", (c) => c.notNull())
        .addColumn("reason", "text", (c) => c.notNull())
        .addColumn("opened_at", "bigint", (c) => c.notNull())
        .addColumn("closed_at", "bigint")
        .addColumn("close_reason", "text")
        .execute();
      // The backstop behind the conditional updates: at most one open incident per hub and type, whichever
      // relay instance tries to open it.
      await db.schema
        .createIndex("hub_incidents_one_open")
        .ifNotExists()
        .unique()
        .on("hub_incidents")
        .columns(["hub", "type"])
        .where(sql.ref("closed_at"), "is", null)
        .execute();
      await db.schema.createIndex("hub_incidents_hub_opened").ifNotExists().on("hub_incidents").columns(["hub", "opened_at"]).execute();
    },
  },
  // Who may ask for a hub's next claim code before it first enrols (an installer's own registrations).
  "0002_hub_claim_owner": {
    async up(db): Promise<void> {
      await db.schema.alterTable("hubs").addColumn("claim_owner", "text").execute();
    },
  },
  // Which path each event came by: the broadband path (MQTT) or the last-resort SMS (docs/relay.md). Rows
  // from before are MQTT's. The partial index finds a hub's latest SMS without touching MQTT-only rows, so
  // it costs the MQTT inserts nothing.
  "0003_event_path": {
    async up(db): Promise<void> {
      await db.schema.alterTable("events").addColumn("path", "text", (c) => c.notNull().defaultTo("mqtt")).execute();
      await db.schema
        .createIndex("events_hub_second_path")
        .ifNotExists()
        .on("events")
        .columns(["hub", "received_at"])
        .where(sql.ref("path"), "<>", "mqtt")
        .execute();
    },
  },
};
