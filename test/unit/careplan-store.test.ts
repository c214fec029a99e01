// Writing care plans: each write is one statement that inserts or bumps the version, so concurrent first
// writes (two operators, two relay instances) never collide; every write is audited. SQLite, and
// PostgreSQL when ANXIN_TEST_PG_URL is set.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { listAudit } from "../../relay/src/careplans/audit.js";
import { parseCarePlan, readCarePlan, setCarePlan } from "../../relay/src/careplans/store.js";
import { relayExtraMigrations } from "../../relay/src/daemon/run.js";
import { loopDb } from "../../relay/src/store/closed-loop-schema.js";
import { openStore, type Store } from "../../relay/src/store/store.js";
import { dropPgSchema, PG_URL, pgSkipReason, uniquePgSchema } from "../support/pg.js";

const plan = (n: number) =>
  parseCarePlan(
    {
      elder: { name: "Test Elder", phone: "+8613800000001", address: "Room 1, Test Lane", riskLevel: "high" },
      contacts: [{ id: "c1", name: `Contact ${n}`, phone: "+8613800000002", role: "emergency_contact" }],
      onsiteTeam: { name: "Team", phone: "+8613800000003" },
    },
    "test",
  );

async function check(store: Store): Promise<void> {
  const db = loopDb(store.db);
  const by = (i: number) => ({ actor: `op-${i}`, purpose: "test", at: 1_800_000_000_000 + i });
  assert.equal(await setCarePlan(db, "hub-1", plan(0), by(0)), 1);
  assert.equal(await setCarePlan(db, "hub-1", plan(1), by(1)), 2);
  // Five first writes for another hub at once: none fails, versions 1..5, the last write wins.
  const versions = await Promise.all([1, 2, 3, 4, 5].map((i) => setCarePlan(db, "hub-2", plan(i), by(i))));
  assert.deepEqual([...versions].sort(), [1, 2, 3, 4, 5]);
  const got = await readCarePlan(db, "hub-2", { actor: "test", purpose: "check", at: 1 });
  assert.equal(got?.version, 5);
  const last = versions.indexOf(5) + 1;
  assert.equal(got?.plan.contacts?.[0]?.name, `Contact ${last}`);
  const audit = await listAudit(db, { subject: "hub-2" });
  assert.equal(audit.filter((a) => a.action === "careplan.write").length, 5);
}

test("SQLite: care-plan writes bump the version in one statement", async () => {
  const dir = mkdtempSync(join(tmpdir(), "anxin-careplan-"));
  const store = await openStore({ kind: "sqlite", path: "relay.db" }, dir, { migrations: relayExtraMigrations });
  try {
    await check(store);
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("PostgreSQL: concurrent first writes do not collide", { skip: PG_URL ? false : pgSkipReason("care-plan store on PostgreSQL") }, async () => {
  const schema = uniquePgSchema("anxin_test");
  const store = await openStore({ kind: "postgres", url: PG_URL!, schema, poolSize: 5 }, "/nonexistent", { migrations: relayExtraMigrations });
  try {
    await check(store);
  } finally {
    await store.close();
    await dropPgSchema(PG_URL!, schema);
  }
});
