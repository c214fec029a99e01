// GET /v1/events and `anxin-relay events`: what hubs sent, read back filtered and in keyset pages, role-checked
// (installers only for a pending hub whose claim they own) and audited (one audit_log row per read, never a
// payload in the log). Every check runs on SQLite and, with ANXIN_TEST_PG_URL, on PostgreSQL.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createRequire } from "node:module";
import { sql } from "kysely";
import pino from "pino";
import { stringify } from "yaml";
import { serveOperatorApi } from "../support/operator-api.js";
import { operatorRoutes } from "../../relay/src/api/operator/routes.js";
import { addToken } from "../../relay/src/auth/tokens.js";
import { listAudit } from "../../relay/src/careplans/audit.js";
import { verifyToken } from "../../relay/src/auth/tokens.js";
import { loopDb, type LoopDb } from "../../relay/src/store/closed-loop-schema.js";
import type { EventRow, Store } from "../../relay/src/store/store.js";
import type { Kysely } from "kysely";
import { testOnBothStores } from "../support/loop-store.js";
import { PG_URL } from "../support/pg.js";

/** A room name: personal data that must reach the reader but never the log. */
const SECRET_ROOM = "Grandma Wang's bedroom";
const T0 = Date.parse("2026-03-01T00:00:00Z");

interface Api {
  db: Kysely<LoopDb>;
  store: Store;
  logs: string[];
  get(pathAndQuery: string, token?: string): Promise<{ status: number; json: any }>;
  close(): Promise<void>;
}

/** The real router and route table over `store`, on a loopback port. */
async function serve(store: Store, now = () => T0 + 10 * 86_400_000): Promise<Api> {
  const db = loopDb(store.db);
  const logs: string[] = [];
  const log = pino({ level: "info" }, { write: (l: string) => void logs.push(l) });
  const unused = new Proxy({}, { get: () => () => Promise.reject(new Error("not in this test")) });
  const routes = operatorRoutes({ db, store, incidents: unused as never, registry: unused as never, now, openapi: () => ({}) });
  const server = await serveOperatorApi(routes, { verify: (t) => verifyToken(db, t), log });
  const base = server.base;
  return {
    db,
    store,
    logs,
    get: async (p, token) => {
      const res = await fetch(`${base}${p}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
      return { status: res.status, json: await res.json() };
    },
    close: () => server.close(),
  };
}

let n = 0;
function ev(hub: string, o: Partial<EventRow> & { room?: string } = {}): EventRow {
  n += 1;
  const id = o.id ?? `01J${String(n).padStart(23, "0")}`;
  const ts = o.ts ?? T0 + n * 1000;
  const kind = o.kind ?? "alarm";
  const type = o.type ?? "smoke";
  const severity = o.severity ?? "critical";
  const envelope = { v: 1, hub, boot: 1, seq: n, id, ts, kind, type, severity, device: "d-1", data: { room: o.room ?? SECRET_ROOM }, sig: "ab".repeat(32) };
  return { id, hub, boot: 1, seq: n, ts, receivedAt: o.receivedAt ?? ts + 5, kind, type, severity, device: "d-1", payload: JSON.stringify(envelope), skewMs: 3, historical: o.historical ?? false };
}

const ids = (page: { events: Array<{ id: string }> }) => page.events.map((e) => e.id);
const eventsAudit = async (db: Kysely<LoopDb>) => (await listAudit(db)).filter((a) => a.action.startsWith("events."));

testOnBothStores("events API: filters, order, the stored envelope, one audit row per read, no payload in the log", async (store) => {
  const api = await serve(store);
  try {
    const op = (await addToken(api.db, "olga", "operator", T0)).token;
    const adm = (await addToken(api.db, "root", "admin", T0)).token;
    const rows = [
      ev("hub-a", { type: "smoke", severity: "critical", ts: T0 + 1000 }),
      ev("hub-a", { kind: "reading", type: "temperature", severity: "info", ts: T0 + 2000 }),
      ev("hub-a", { type: "fall", severity: "high", ts: T0 + 3000 }),
      ev("hub-b", { type: "fall", severity: "high", ts: T0 + 4000 }),
      ev("hub-a", { kind: "heartbeat", type: "heartbeat", severity: "info", ts: T0 + 5000, historical: true }),
    ];
    await store.insertEvents(rows);

    const all = await api.get("/v1/events", op);
    assert.equal(all.status, 200);
    assert.deepEqual(ids(all.json), rows.map((r) => r.id).reverse(), "newest first by receipt");
    assert.equal(all.json.nextCursor, null);
    const first = all.json.events.at(-1);
    assert.equal(first.receivedAt, rows[0]!.receivedAt, "the relay's receipt time");
    assert.deepEqual(first.envelope, JSON.parse(rows[0]!.payload), "the envelope as stored, signature and data included");
    assert.equal(first.envelope.data.room, SECRET_ROOM);

    const asc = await api.get("/v1/events?order=asc", adm);
    assert.equal(asc.status, 200, "admins may read too");
    assert.deepEqual(ids(asc.json), rows.map((r) => r.id));

    const q = async (query: string) => {
      const r = await api.get(`/v1/events?${query}&order=asc`, op);
      assert.equal(r.status, 200, `${query}: ${JSON.stringify(r.json)}`);
      return ids(r.json);
    };
    const idOf = (...i: number[]) => i.map((k) => rows[k]!.id);
    assert.deepEqual(await q("hub=hub-b"), idOf(3));
    assert.deepEqual(await q("hub=hub-a&type=fall"), idOf(2));
    assert.deepEqual(await q("kind=reading"), idOf(1));
    assert.deepEqual(await q("severity=high"), idOf(2, 3));
    assert.deepEqual(await q("severity=info&hub=hub-a&kind=heartbeat"), idOf(4));
    assert.deepEqual(await q(`since=${new Date(T0 + 2000).toISOString()}&until=${new Date(T0 + 4000).toISOString()}`), idOf(1, 2), "since inclusive, until exclusive (event time)");
    assert.deepEqual(await q(`since=${T0 + 4000}`), idOf(3, 4), "ms since epoch too");
    assert.deepEqual(await q(`since=2026-03-01T08:00:02%2B08:00`), idOf(1, 2, 3, 4), "an ISO time with an offset");
    assert.deepEqual(await q("type=sos"), []);
    assert.deepEqual(await q("limit=2"), idOf(0, 1));

    // One row per request (12 reads above), with who, the query, the hubs and the count; never the payload.
    const audit = await eventsAudit(api.db);
    assert.equal(audit.length, 12);
    assert.ok(audit.every((a) => a.action === "events.read"));
    const byHub = audit.find((a) => a.purpose.includes("hub=hub-a&type=fall"));
    assert.ok(byHub, JSON.stringify(audit));
    assert.equal(byHub.actor, "operator:olga");
    assert.equal(byHub.subject, "hub-a");
    assert.match(byHub.purpose, /^api; 1 event\(s\) of hub-a; /);
    const unfiltered = audit[0]!;
    assert.equal(unfiltered.subject, "*");
    assert.match(unfiltered.purpose, /5 event\(s\) of hub-a,hub-b/);
    assert.ok(audit.every((a) => !JSON.stringify(a).includes(SECRET_ROOM)));
    assert.ok(api.logs.length > 0 && api.logs.every((l) => !l.includes(SECRET_ROOM) && !l.includes(op)), "no payloads or tokens in the log");
  } finally {
    await api.close();
  }
});

testOnBothStores("events API: keyset pages have neither duplicates nor gaps when events arrive between pages", async (store) => {
  const api = await serve(store);
  try {
    const op = (await addToken(api.db, "olga", "operator", T0)).token;
    // Several events in the same receipt millisecond: the id breaks the tie.
    const base = Array.from({ length: 7 }, (_, i) => ev("hub-p", { receivedAt: T0 + 100 * Math.floor(i / 3), ts: T0 + i }));
    await store.insertEvents(base);
    let later = T0 + 10_000;

    for (const order of ["desc", "asc"] as const) {
      const seen: string[] = [];
      const added: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const r: { status: number; json: any } = await api.get(`/v1/events?hub=hub-p&limit=3&order=${order}${cursor ? `&cursor=${cursor}` : ""}`, op);
        assert.equal(r.status, 200, JSON.stringify(r.json));
        assert.ok(r.json.events.length <= 3);
        seen.push(...ids(r.json));
        cursor = r.json.nextCursor;
        // A new event arrives between pages (and a late one from the hub's journal, with an old event time).
        const fresh = [ev("hub-p", { receivedAt: (later += 10) }), ev("hub-p", { receivedAt: (later += 10), ts: T0 - 50_000, historical: true })];
        await store.insertEvents(fresh);
        added.push(...fresh.map((e) => e.id));
        pages += 1;
        assert.ok(pages < 20, "pagination ends");
      } while (cursor);
      assert.equal(new Set(seen).size, seen.length, `${order}: no duplicates`);
      const before = base.map((e) => e.id);
      if (order === "desc") {
        // Newest first: what arrived after the first page is newer than it, so a walk shows exactly what was there.
        const expected = (await store.listEvents({ hub: "hub-p", limit: 1000 })).map((e) => e.id).filter((id) => !added.includes(id)).reverse();
        assert.deepEqual(seen, expected, "desc: every event stored before the walk, newest first, no gaps");
        assert.ok(before.every((id) => seen.includes(id)));
      } else {
        // Oldest first: the walk reaches the end, so it sees everything, the arrivals between pages included
        // (all but the ones added after the last page).
        const stored = (await store.listEvents({ hub: "hub-p", limit: 1000 })).map((e) => e.id);
        assert.deepEqual(seen, stored.slice(0, seen.length), "asc: receipt order, no gaps");
        assert.deepEqual(stored.slice(seen.length).sort(), added.slice(-2).sort(), "only the last arrivals come after the last page");
      }
    }
  } finally {
    await api.close();
  }
});

testOnBothStores("events API: bad filters are 400 with the field named, and are not read", async (store) => {
  const api = await serve(store);
  try {
    const op = (await addToken(api.db, "olga", "operator", T0)).token;
    await store.insertEvents([ev("hub-a"), ev("hub-a")]);
    const cur = (await api.get("/v1/events?limit=1", op)).json.nextCursor as string;
    assert.ok(cur);
    const bad: Array<[string, RegExp]> = [
      ["hub=../etc", /hub: not a hub id/],
      ["kind=explosion", /kind:/],
      ["type=Fall!", /type: an event type/],
      ["severity=urgent", /severity:/],
      ["since=yesterday", /since: an ISO 8601 date-time with a zone/],
      ["until=2026-03-01T00:00:00", /until:/],
      [`since=${T0 + 5}&until=${T0}`, /since: since must be before until/],
      ["limit=0", /limit:/],
      ["limit=1001", /limit:/],
      ["limit=ten", /limit:/],
      ["order=newest", /order:/],
      ["hubs=hub-a", /hubs|unrecognized/i],
      ["cursor=not-a-cursor", /cursor: not a cursor/],
      [`cursor=${cur}&order=asc`, /cursor: it belongs to order=desc/],
    ];
    for (const [query, message] of bad) {
      const r = await api.get(`/v1/events?${query}`, op);
      assert.equal(r.status, 400, `${query}: ${JSON.stringify(r.json)}`);
      assert.equal(r.json.error, "bad_query", query);
      assert.match(r.json.message, message, query);
    }
    assert.equal((await api.get(`/v1/events?cursor=${cur}`, op)).status, 200, "the same cursor in its own order");
    assert.equal((await eventsAudit(api.db)).length, 2, "only the two reads that returned events are in the audit log");
  } finally {
    await api.close();
  }
});

testOnBothStores("events API: roles — staff read any hub, installers only their own pending hub, no token 401; refusals audited", async (store) => {
  const api = await serve(store);
  try {
    const op = (await addToken(api.db, "olga", "operator", T0)).token;
    const ivan = await addToken(api.db, "ivan", "installer", T0);
    const other = await addToken(api.db, "ines", "installer", T0);
    const claim = { claimHash: "h", claimSalt: "s", claimExpiresAt: T0 + 3_600_000 };
    // hub-live: enrolled (its claim ownership ended); hub-mine: pending, registered by ivan; hub-theirs: by ines.
    assert.ok(await store.insertPendingHub("hub-live", claim, T0, ivan.id));
    assert.ok(await store.activateHub("hub-live", "h", { passwordHash: "p", passwordSalt: "s", keyB64: Buffer.alloc(32).toString("base64") }, T0));
    assert.ok(await store.insertPendingHub("hub-mine", claim, T0, ivan.id));
    assert.ok(await store.insertPendingHub("hub-theirs", claim, T0, other.id));
    await store.insertEvents([ev("hub-live"), ev("hub-mine")]);

    assert.equal((await api.get("/v1/events")).status, 401, "no token");
    assert.equal((await api.get("/v1/events", "anx_unknown")).status, 401, "unknown token");
    const staff = await api.get("/v1/events?hub=hub-live", op);
    assert.equal(staff.status, 200);
    assert.equal(staff.json.events.length, 1);

    for (const query of ["", "?hub=hub-live", "?hub=hub-theirs", "?hub=hub-unknown"]) {
      const r = await api.get(`/v1/events${query}`, ivan.token);
      assert.equal(r.status, 403, `installer ${query}: ${JSON.stringify(r.json)}`);
      assert.equal(r.json.error, "forbidden");
    }
    const own = await api.get("/v1/events?hub=hub-mine", ivan.token);
    assert.equal(own.status, 200, JSON.stringify(own.json));
    assert.deepEqual(own.json.events.map((e: { hub: string }) => e.hub), ["hub-mine"]);

    const audit = await eventsAudit(api.db);
    assert.deepEqual(
      audit.map((a) => [a.actor, a.action, a.subject]),
      [
        ["operator:olga", "events.read", "hub-live"],
        ["installer:ivan", "events.read_refused", "*"],
        ["installer:ivan", "events.read_refused", "hub-live"],
        ["installer:ivan", "events.read_refused", "hub-theirs"],
        ["installer:ivan", "events.read_refused", "hub-unknown"],
        ["installer:ivan", "events.read", "hub-mine"],
      ],
    );
  } finally {
    await api.close();
  }
});

const tsx = createRequire(import.meta.url).resolve("tsx");

testOnBothStores("anxin-relay events: filters, text and --json output, audited as cli:<os user>", async (store) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), "anxin-events-cli-"));
  try {
    // The CLI opens the very store this test holds: the SQLite file, or the PostgreSQL schema.
    let storeCfg: Record<string, unknown>;
    if (store.dialect === "sqlite") {
      const files = await sql<{ name: string; file: string }>`PRAGMA database_list`.execute(store.db);
      storeCfg = { kind: "sqlite", path: files.rows.find((f) => f.name === "main")!.file };
    } else {
      const s = await sql<{ schema: string }>`SELECT current_schema() AS schema`.execute(store.db);
      storeCfg = { kind: "postgres", url: PG_URL, schema: s.rows[0]!.schema, poolSize: 2 };
    }
    const configFile = path.join(dir, "relay.yaml");
    await writeFile(
      configFile,
      stringify({
        relay: { id: "cli-relay", dataDir: dir },
        log: { level: "info" },
        store: storeCfg,
        broker: { kind: "embedded", host: "127.0.0.1", port: 1, publicUrl: "mqtt://127.0.0.1:1" },
        http: { host: "127.0.0.1", port: 1, publicUrl: "http://127.0.0.1:1" },
      }),
    );
    const cli = (...args: string[]) => spawnSync(process.execPath, ["--import", tsx, path.resolve("relay/src/cli/main.ts"), "events", ...args, "--config", configFile], { encoding: "utf8", timeout: 60_000 });

    const rows = [ev("hub-c", { type: "smoke", ts: T0 + 1000 }), ev("hub-c", { type: "fall", severity: "high", ts: T0 + 2000 }), ev("hub-c", { type: "fall", severity: "high", ts: T0 + 3000 }), ev("hub-d", { type: "fall" })];
    await store.insertEvents(rows);

    let r = cli("--hub", "hub-c", "--type", "fall", "--json");
    assert.equal(r.status, 0, r.stderr);
    const page = JSON.parse(r.stdout) as { events: Array<{ id: string; envelope: { data: { room: string } } }>; nextCursor: string | null };
    assert.deepEqual(page.events.map((e) => e.id), [rows[2]!.id, rows[1]!.id]);
    assert.equal(page.events[0]!.envelope.data.room, SECRET_ROOM);
    assert.equal(page.nextCursor, null);

    r = cli("--hub", "hub-c", "--since", new Date(T0 + 1500).toISOString(), "--until", new Date(T0 + 2500).toISOString());
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trim().split("\n");
    assert.equal(lines.length, 1, r.stdout);
    assert.match(lines[0]!, new RegExp(`2026-03-01 00:00:02 UTC  hub-c  alarm/fall  high  d-1  ${rows[1]!.id}`));
    assert.ok(!r.stdout.includes(SECRET_ROOM), "the text listing leaves the data out");

    r = cli("--hub", "hub-c", "--limit", "1", "--severity", "critical", "--json");
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout).events.map((e: { id: string }) => e.id), [rows[0]!.id]);

    r = cli("--hub", "hub-c", "--since", "last tuesday");
    assert.equal(r.status, 2, "bad input");
    assert.match(r.stderr, /--since:/);
    r = cli("--type", "fall");
    assert.notEqual(r.status, 0, "--hub is required");

    const user = os.userInfo().username;
    const audit = await eventsAudit(loopDb(store.db));
    assert.equal(audit.length, 3, JSON.stringify(audit));
    assert.ok(audit.every((a) => a.actor === `cli:${user}` && a.subject === "hub-c" && a.action === "events.read"));
    assert.match(audit[0]!.purpose, /^cli; 2 event\(s\) of hub-c; hub=hub-c&type=fall/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
