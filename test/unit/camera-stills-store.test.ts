// The relay's stills table on SQLite and PostgreSQL: its own migration beside the relay's, the image bytes
// kept exactly, a replayed id refused, the reads leaving out what is past its retention, the sweep deleting it
// (a controlled clock), and the camera consent read from the household's records.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { Kysely } from "kysely";
import { relayExtraMigrations } from "../../relay/src/store/relay-migrations.js";
import { createHousehold, recordConsent } from "../../relay/src/households/store.js";
import type { LoopDb } from "../../relay/src/store/closed-loop-schema.js";
import { openStore } from "../../relay/src/store/store.js";
import { cameraConsented, getStill, HOUR_MS, insertStill, listStills, sweepStills } from "../../relay/src/stills/repo.js";
import { PG_URL, pgSkipReason, tempPgSchema } from "../support/pg.js";
import { STANDIN_JPEG } from "../support/camera-standin.js";

const cleanups: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
});

async function exercise(db: Kysely<LoopDb>) {
  const T = 1_800_000_000_000;
  const R = 72 * HOUR_MS;
  const row = (id: string, idx: number, at: number) => ({ id, hub: "hub-s", event_id: "01JEVENT000000000000000000", incident_id: "INC1", idx, taken_at: at - 100, received_at: at, sha256: "0".repeat(64), size: STANDIN_JPEG.length, data: STANDIN_JPEG });
  assert.equal(await insertStill(db, row("01JSTILL000000000000000001", 1, T)), true);
  assert.equal(await insertStill(db, row("01JSTILL000000000000000002", 2, T + 1000)), true);
  assert.equal(await insertStill(db, row("01JSTILL000000000000000001", 1, T)), false, "the same id again: a replay");
  const list = await listStills(db, "INC1", T + 2000, R);
  assert.deepEqual(list.map((s) => s.index), [1, 2]);
  assert.equal(list[0]!.expiresAt, T + R);
  const one = await getStill(db, "INC1", "01JSTILL000000000000000002", T + 2000, R);
  assert.ok(one?.data.equals(STANDIN_JPEG), "the bytes exactly");
  assert.equal(await getStill(db, "OTHER", "01JSTILL000000000000000002", T + 2000, R), undefined, "only under its own incident");
  // Past the retention of the first, not yet of the second: hidden at once, deleted by the sweep.
  const later = T + R + 500;
  assert.deepEqual((await listStills(db, "INC1", later, R)).map((s) => s.index), [2]);
  assert.equal(await getStill(db, "INC1", "01JSTILL000000000000000001", later, R), undefined);
  assert.equal(await sweepStills(db, later, R), 1);
  assert.equal(await sweepStills(db, T + R + 1000, R), 1);
  assert.equal((await listStills(db, "INC1", T, R)).length, 0);

  const who = { actor: "test", purpose: "test", at: T };
  assert.equal(await cameraConsented(db, "hub-s"), false, "no household");
  const h = await createHousehold(db, { hub: "hub-s", elder: { name: "Wang Lan" }, address: "1 Road", street: "S1", community: "C1" }, { ...who, owner: null });
  assert.equal(await cameraConsented(db, "hub-s"), false, "no record");
  await recordConsent(db, h.id, { device: "camera", granted: true, givenBy: "elder" }, { ...who, at: T + 1 });
  assert.equal(await cameraConsented(db, "hub-s"), true);
  await recordConsent(db, h.id, { device: "vital_radar", granted: false, givenBy: "elder" }, { ...who, at: T + 2 });
  assert.equal(await cameraConsented(db, "hub-s"), true, "another device's record changes nothing");
  await recordConsent(db, h.id, { device: "camera", granted: false, givenBy: "elder" }, { ...who, at: T + 3 });
  assert.equal(await cameraConsented(db, "hub-s"), false, "withdrawn");
}

test("stills table on SQLite", async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), "anxin-stills-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const cfg = { kind: "sqlite" as const, path: "relay.db" };
  const store = await openStore(cfg, dir, { migrations: relayExtraMigrations });
  cleanups.push(() => store.close());
  await exercise(store.db as unknown as Kysely<LoopDb>);
  // The relay's own migrator still opens the store (it does not see the stills' migration table's rows).
  const again = await openStore(cfg, dir, { migrations: relayExtraMigrations });
  await again.close();
});

test("stills table on PostgreSQL", { skip: PG_URL ? false : pgSkipReason("stills on PostgreSQL") }, async () => {
  const { url, schema } = tempPgSchema("stills", (fn) => cleanups.push(fn));
  const cfg = { kind: "postgres" as const, url, schema, poolSize: 2 };
  const store = await openStore(cfg, "/nonexistent", { migrations: relayExtraMigrations });
  cleanups.push(() => store.close());
  await exercise(store.db as unknown as Kysely<LoopDb>);
  const again = await openStore(cfg, "/nonexistent", { migrations: relayExtraMigrations });
  await again.close();
});
