import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "kysely";
import { ulid } from "ulid";
import { HUB_OFFLINE, isUniqueViolation, openStore, type EventRow, type Store } from "../../relay/src/store/store.js";

const T0 = 1_800_000_000_000;

async function tempStore(t: { after(fn: () => unknown): void }, path = "relay.db"): Promise<{ store: Store; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), "anxin-relay-store-"));
  const store = await openStore({ kind: "sqlite", path }, dir);
  t.after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { store, dir };
}

function row(hub: string, o: Partial<EventRow> = {}): EventRow {
  const id = o.id ?? ulid();
  return {
    id,
    hub,
    boot: 1,
    seq: 1,
    ts: T0,
    receivedAt: T0,
    kind: "alarm",
    type: "gas",
    severity: "critical",
    device: "gas-1",
    payload: JSON.stringify({ id, hub }),
    skewMs: null,
    historical: false,
    ...o,
  };
}

async function activeHub(store: Store, id: string): Promise<void> {
  assert.equal(await store.insertPendingHub(id, { claimHash: "h", claimSalt: "s", claimExpiresAt: T0 + 60_000 }, T0), true);
  assert.equal(await store.activateHub(id, "h", { passwordHash: "p", passwordSalt: "s", keyB64: "k" }, T0), true);
}

test("SQLite store: relative path under dataDir, directories created, owner-only file, WAL + FULL, reopen keeps data", async (t) => {
  const { store, dir } = await tempStore(t, "nested/deeper/relay.db");
  const file = join(dir, "nested/deeper/relay.db");
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.equal(store.dialect, "sqlite");
  const mode = await sql<{ journal_mode: string }>`pragma journal_mode`.execute(store.db);
  assert.equal(mode.rows[0]?.journal_mode, "wal");
  const sync = await sql<{ synchronous: number }>`pragma synchronous`.execute(store.db);
  assert.equal(sync.rows[0]?.synchronous, 2); // FULL
  await store.insertEvents([row("hub-1")]);

  const again = await openStore({ kind: "sqlite", path: file }, "/nonexistent"); // absolute path: dataDir unused
  try {
    assert.equal(await again.countEvents(), 1);
  } finally {
    await again.close();
  }
});

test("insertEvents: new vs already stored, one row for an id repeated in the call, other hubs' ids reported as foreign", async (t) => {
  const { store } = await tempStore(t);
  const a = row("hub-1");
  const b = row("hub-1");
  const first = await store.insertEvents([a, b, { ...a }]);
  assert.deepEqual(new Set(first.inserted), new Set([a.id, b.id]));
  assert.deepEqual(first.foreign, []);

  const c = row("hub-1");
  const squat = row("hub-2", { id: b.id });
  const second = await store.insertEvents([a, c, squat]);
  assert.deepEqual(second.inserted, [c.id]);
  assert.deepEqual(second.foreign, [b.id]);
  assert.equal(await store.countEvents(), 3);
  assert.equal((await store.getEvent(b.id))?.hub, "hub-1");
});

test("insertEvents: more rows than one statement may bind still go in one transaction", async (t) => {
  const { store } = await tempStore(t);
  const rows = Array.from({ length: 1234 }, (_, i) => row(`hub-${i % 7}`, { seq: i, historical: i % 2 === 0, skewMs: i === 3 ? -7_200_000 : null }));
  const res = await store.insertEvents(rows);
  assert.equal(res.inserted.length, 1234);
  assert.equal(await store.countEvents(), 1234);
  const got = await store.getEvent((rows[3] as EventRow).id);
  assert.equal(got?.skewMs, -7_200_000);
  assert.equal(got?.historical, false);
  assert.equal((await store.getEvent((rows[4] as EventRow).id))?.historical, true);
  assert.equal((await store.listEvents({ hub: "hub-0", limit: 5000 })).length, Math.ceil(1234 / 7));
});

test("insertEvents: a failing withinCommit rolls the whole batch back", async (t) => {
  const { store } = await tempStore(t);
  const rows = [row("hub-1"), row("hub-1")];
  await assert.rejects(
    store.insertEvents(rows, {
      withinCommit: async (_trx, ids) => {
        assert.equal(ids.length, 2);
        throw new Error("escalation table unavailable");
      },
    }),
    /escalation table unavailable/,
  );
  assert.equal(await store.countEvents(), 0);
  let seen: string[] = [];
  await store.insertEvents(rows, { withinCommit: async (_trx, ids) => void (seen = ids) });
  assert.equal(seen.length, 2);
  await store.insertEvents(rows, { withinCommit: async (_trx, ids) => void (seen = ids) });
  assert.deepEqual(seen, [], "duplicates are not new");
});

test("transitions: offline opens one incident, a repeat changes nothing, online closes it; the partial unique index backs it up", async (t) => {
  const { store } = await tempStore(t);
  await activeHub(store, "hub-1");
  let [r] = await store.applyTransitions([{ op: "online", hub: "hub-1", at: T0, boot: 4 }]);
  assert.deepEqual(r, { hub: "hub-1", op: "online", changed: true, incident: null });
  assert.equal((await store.getHub("hub-1"))?.lastBoot, 4);

  [r] = await store.applyTransitions([{ op: "offline", hub: "hub-1", at: T0 + 10, reason: "will: connection lost" }]);
  assert.deepEqual(r, { hub: "hub-1", op: "offline", changed: true, incident: "opened" });
  [r] = await store.applyTransitions([{ op: "offline", hub: "hub-1", at: T0 + 20, reason: "missed heartbeats" }]);
  assert.equal(r?.changed, false);
  const open = await store.listIncidents({ hub: "hub-1", openOnly: true });
  assert.equal(open.length, 1);
  assert.equal(open[0]?.type, HUB_OFFLINE);
  assert.equal(open[0]?.reason, "will: connection lost");

  await assert.rejects(
    store.db.insertInto("hub_incidents").values({ id: ulid(), hub: "hub-1", type: HUB_OFFLINE, reason: "x", opened_at: T0, closed_at: null, close_reason: null }).execute(),
    (err: unknown) => isUniqueViolation(err),
  );

  [r] = await store.applyTransitions([{ op: "online", hub: "hub-1", at: T0 + 30, boot: 5 }]);
  assert.deepEqual(r, { hub: "hub-1", op: "online", changed: true, incident: "closed" });
  const all = await store.listIncidents({ hub: "hub-1" });
  assert.equal(all.length, 1);
  assert.equal(all[0]?.closedAt, T0 + 30);
  assert.equal(all[0]?.closeReason, "recovered");
  const hub = await store.getHub("hub-1");
  assert.equal(hub?.online, true);
  assert.equal(hub?.lastBoot, 5);
  assert.equal(hub?.offlineSince, null);
});

test("transitions: births alone commit on the redoable lane (no fsync of their own); a list with a will or a missed heartbeat stays durable", async (t) => {
  const { store } = await tempStore(t);
  await activeHub(store, "hub-1");
  await activeHub(store, "hub-2");
  assert.notEqual(store.redoableDb, store.db, "on SQLite the redoable lane is a connection turn of its own");
  const lanes: string[] = [];
  for (const [lane, db] of [["durable", store.db], ["redoable", store.redoableDb]] as const) {
    const own = db.transaction.bind(db);
    Object.assign(db, { transaction: () => (lanes.push(lane), own()) });
  }
  await store.applyTransitions([
    { op: "online", hub: "hub-1", at: T0, boot: 1 },
    { op: "online", hub: "hub-2", at: T0, boot: 1 },
  ]);
  assert.deepEqual(lanes, ["redoable"]);
  assert.equal(await store.countOnlineHubs(), 2);
  await store.applyTransitions([
    { op: "online", hub: "hub-1", at: T0 + 10, boot: 2 },
    { op: "offline", hub: "hub-2", at: T0 + 10, reason: "will: connection lost" },
  ]);
  await store.applyTransitions([{ op: "offline", hub: "hub-1", at: T0 + 20, reason: "missed heartbeats" }]);
  assert.deepEqual(lanes, ["redoable", "durable", "durable"]);
  assert.equal((await store.listIncidents({ openOnly: true })).length, 2);
});

test("recordSeen: last_seen only rises; a sighting from before the hub went offline does not bring it back", async (t) => {
  const { store } = await tempStore(t);
  await activeHub(store, "hub-1");
  await store.applyTransitions([{ op: "online", hub: "hub-1", at: T0 }]);
  await store.recordSeen([["hub-1", T0 + 500]]);
  await store.recordSeen([["hub-1", T0 + 100]]);
  assert.equal((await store.getHub("hub-1"))?.lastSeenAt, T0 + 500);

  await store.applyTransitions([{ op: "offline", hub: "hub-1", at: T0 + 1000, reason: "will: connection lost" }]);
  assert.deepEqual(await store.recordSeen([["hub-1", T0 + 900]]), []);
  assert.equal((await store.getHub("hub-1"))?.online, false);
  const res = await store.recordSeen([["hub-1", T0 + 1500], ["unknown-hub", T0]]);
  assert.deepEqual(res, [{ hub: "hub-1", op: "online", changed: true, incident: "closed" }]);
  assert.equal((await store.getHub("hub-1"))?.lastSeenAt, T0 + 1500);
});

test("recordSeen for 1,200 online hubs at once (three statements): each keeps its latest sighting", async (t) => {
  const { store } = await tempStore(t);
  const hubs = Array.from({ length: 1200 }, (_, i) => `hub-${String(i).padStart(4, "0")}`);
  for (const h of hubs) await activeHub(store, h);
  await store.applyTransitions(hubs.map((hub) => ({ op: "online" as const, hub, at: T0 })));
  await store.recordSeen(hubs.map((h, i) => [h, T0 + 1000 + i] as const));
  // Older sightings for the even ones must not move them back; newer ones for the odd ones do.
  assert.deepEqual(await store.recordSeen(hubs.map((h, i) => [h, i % 2 ? T0 + 5000 + i : T0 + 10] as const)), []);
  for (const [i, h] of hubs.entries()) assert.equal((await store.getHub(h))?.lastSeenAt, i % 2 ? T0 + 5000 + i : T0 + 1000 + i, h);
});

test("staleHubs and offline with staleBefore only take hubs not seen since; revoking closes open incidents", async (t) => {
  const { store } = await tempStore(t);
  await activeHub(store, "hub-1");
  await activeHub(store, "hub-2");
  await store.applyTransitions([
    { op: "online", hub: "hub-1", at: T0 },
    { op: "online", hub: "hub-2", at: T0 },
  ]);
  await store.recordSeen([["hub-2", T0 + 60_000]]);
  assert.deepEqual(await store.staleHubs(T0 + 30_000), ["hub-1"]);
  assert.equal(await store.countOnlineHubs(), 2);
  // hub-2 is not stale at this cutoff, so the conditional update leaves it alone.
  const res = await store.applyTransitions([{ op: "offline", hub: "hub-2", at: T0 + 61_000, reason: "missed heartbeats", staleBefore: T0 + 30_000 }]);
  assert.equal(res[0]?.changed, false);
  await store.applyTransitions([{ op: "offline", hub: "hub-1", at: T0 + 61_000, reason: "missed heartbeats", staleBefore: T0 + 30_000 }]);
  assert.equal(await store.countOnlineHubs(), 1);

  assert.equal(await store.revokeHub("hub-1", T0 + 70_000), true);
  assert.equal(await store.revokeHub("hub-1", T0 + 70_000), false);
  assert.equal((await store.listIncidents({ openOnly: true })).length, 0);
  assert.equal((await store.listIncidents({ hub: "hub-1" }))[0]?.closeReason, "revoked");
  assert.deepEqual(await store.staleHubs(T0 + 10_000_000), ["hub-2"]);
});
