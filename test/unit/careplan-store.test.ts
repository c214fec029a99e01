// Writing care plans: each write is one statement that inserts or bumps the version, so concurrent first
// writes (two operators, two relay instances) never collide; every write is audited. SQLite, and
// PostgreSQL when ANXIN_TEST_PG_URL is set.
import assert from "node:assert/strict";
import { listAudit } from "../../relay/src/careplans/audit.js";
import { parseCarePlan, readCarePlan, setCarePlan } from "../../relay/src/careplans/store.js";
import { loopDb } from "../../relay/src/store/closed-loop-schema.js";
import type { Store } from "../../relay/src/store/store.js";
import { testOnBothStores } from "../support/loop-store.js";

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

testOnBothStores("care-plan writes are one upsert: versions bump, concurrent first writes never collide", check);
