// Who may hand out a hub's claim code: an installer only for a hub the relay does not know yet (which is then
// theirs) or one of theirs that has not enrolled; rotation and re-admission of a revoked hub are an admin's.
// Every claim is in the audit log with its actor. Also: ids from the URL holding a control character (NUL
// breaks PostgreSQL) are a 400, never a 500. On SQLite always, on PostgreSQL too with ANXIN_TEST_PG_URL.
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { addToken, revokeToken } from "../../relay/src/auth/tokens.js";
import { listAudit } from "../../relay/src/careplans/audit.js";
import type { RunningRelay } from "../../relay/src/daemon/run.js";
import { ClaimError, Registry } from "../../relay/src/registry/registry.js";
import { openStore, type Store } from "../../relay/src/store/store.js";
import { api } from "../support/care-plan-fixture.js";
import { startRelayForTest } from "../support/relay-rig.js";
import { dropPgSchema, PG_URL, uniquePgSchema } from "../support/pg.js";

const T0 = 1_800_000_000_000;

type Backend = { name: string; store?: (t: TestContext) => Record<string, unknown> };
const BACKENDS: Backend[] = [
  { name: "SQLite" },
  {
    name: "PostgreSQL",
    store: (t) => {
      const schema = uniquePgSchema("anxin_claims");
      t.after(() => dropPgSchema(PG_URL as string, schema));
      return { kind: "postgres", url: PG_URL, schema, poolSize: 4 };
    },
  },
];

function each(name: string, fn: (t: TestContext, b: Backend) => Promise<void>): void {
  for (const b of BACKENDS)
    test(`${name} [${b.name}]`, async (t) => {
      if (b.store && !PG_URL) return t.skip("ANXIN_TEST_PG_URL not set");
      await fn(t, b);
    });
}

async function relayFor(t: TestContext, b: Backend): Promise<RunningRelay> {
  // After the schema drop registered by b.store, so the relay closes its pool first.
  const config = b.store ? { store: b.store(t) } : {};
  const rig = await startRelayForTest({ config });
  t.after(() => rig.stop());
  return rig.relay;
}

async function enrol(relay: RunningRelay, hub: string, code: string): Promise<number> {
  const res = await fetch(`${relay.httpUrl}/v1/enrol`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ hub, code }) });
  await res.arrayBuffer();
  return res.status;
}

const audit = async (relay: RunningRelay, hub: string) => (await listAudit(relay.db, { subject: hub })).map((e) => `${e.actor} ${e.action} ${e.purpose}`);

each("an installer registers new hubs and renews its own; never rotates, re-admits or takes over another's", async (t, b) => {
  const relay = await relayFor(t, b);
  const now = Date.now();
  const ivan = (await addToken(relay.db, "ivan", "installer", now)).token;
  const olga = (await addToken(relay.db, "olga", "installer", now)).token;
  const root = (await addToken(relay.db, "root", "admin", now)).token;
  const claim = (token: string, hub: string, body: unknown = {}) => api(relay, token, "POST", `/v1/hubs/${hub}/claim`, body);

  // A new hub: ivan's from now on, and only ivan may ask for another code while it has not enrolled.
  const first = await claim(ivan, "hub-a");
  assert.equal(first.status, 201);
  const again = await claim(ivan, "hub-a");
  assert.equal(again.status, 201, "the same installer may ask again (a lost or expired code)");
  const other = await claim(olga, "hub-a");
  assert.equal(other.status, 403, "another installer may not replace the code of a hub that is not theirs");
  assert.equal(other.json.error, "forbidden");
  assert.equal((await claim(olga, "hub-a", { rotate: true })).status, 403);
  assert.equal(await enrol(relay, "hub-a", first.json.code), 403, "the renewal replaced the first code");
  assert.equal(await enrol(relay, "hub-a", again.json.code), 200, "the latest code works");

  // Enrolled: the installer's assignment is over; a new code (rotation) is an admin's.
  const active = await claim(ivan, "hub-a");
  assert.equal(active.status, 409);
  assert.equal(active.json.error, "active");
  assert.match(active.json.message, /only an admin/);
  const rot = await claim(ivan, "hub-a", { rotate: true });
  assert.equal(rot.status, 403, "an installer may not rotate an enrolled hub's credentials (it would become the hub)");
  assert.equal(rot.json.error, "forbidden");
  assert.equal((await relay.store.getHub("hub-a"))?.status, "active");
  const adminRot = await claim(root, "hub-a", { rotate: true });
  assert.equal(adminRot.status, 201);

  // Revoked: only an admin admits it again, and then no installer owns it.
  assert.equal(await relay.revoke("hub-a"), true);
  assert.equal((await claim(ivan, "hub-a", { rotate: true })).status, 403, "an installer may not re-admit a revoked (perhaps stolen) hub");
  const revoked = await claim(ivan, "hub-a");
  assert.equal(revoked.status, 409);
  assert.equal(revoked.json.error, "revoked");
  assert.equal((await relay.store.getHub("hub-a"))?.status, "revoked");
  assert.equal((await claim(root, "hub-a", { rotate: true })).status, 201);
  assert.equal((await relay.store.getHub("hub-a"))?.status, "pending");
  assert.equal((await claim(ivan, "hub-a")).status, 403, "a re-admitted hub is not the first installer's again");
  assert.equal((await claim(root, "hub-a")).status, 201, "an admin may");

  // A hub an admin (or the CLI) registered is the admin's to hand out.
  await relay.registry.createClaim("hub-cli");
  assert.equal((await claim(ivan, "hub-cli")).status, 403);
  assert.equal((await claim(root, "hub-admin")).status, 201);
  assert.equal((await claim(ivan, "hub-admin")).status, 403);

  // Ownership is the token, not its name: a revoked token's name given to a new token owns nothing.
  assert.equal((await claim(ivan, "hub-b")).status, 201);
  await revokeToken(relay.db, "ivan", now);
  const ivan2 = (await addToken(relay.db, "ivan", "installer", now)).token;
  assert.equal((await claim(ivan2, "hub-b")).status, 403);

  assert.deepEqual(await audit(relay, "hub-a"), [
    "installer:ivan hub.claim api",
    "installer:ivan hub.claim_renewed api",
    "installer:olga hub.claim_refused:forbidden api",
    "installer:olga hub.claim_refused:forbidden api",
    "installer:ivan hub.claim_refused:active api",
    "installer:ivan hub.claim_refused:forbidden api",
    "admin:root hub.rotate api",
    "installer:ivan hub.claim_refused:forbidden api",
    "installer:ivan hub.claim_refused:revoked api",
    "admin:root hub.readmit api",
    "installer:ivan hub.claim_refused:forbidden api",
    "admin:root hub.claim_renewed api",
  ]);
  assert.deepEqual(await audit(relay, "hub-admin"), ["admin:root hub.claim api", "installer:ivan hub.claim_refused:forbidden api"]);
});

each("ids with control characters in the path or query are a 400, never a 500", async (t, b) => {
  const relay = await relayFor(t, b);
  const op = (await addToken(relay.db, "alice", "operator", Date.now())).token;
  const inst = (await addToken(relay.db, "ivan", "installer", Date.now())).token;
  for (const [token, method, p] of [
    [op, "GET", "/v1/incidents/%00"],
    [op, "GET", "/v1/incidents/abc%00def/timeline"],
    [op, "POST", "/v1/incidents/%00/acknowledge"],
    [op, "POST", "/v1/alerts/%00/ack"],
    [op, "GET", "/v1/incidents?hub=%00"],
    [op, "GET", "/v1/incidents/%1B%5B2J"],
    [op, "GET", "/v1/careplans/%7F"],
    [inst, "GET", "/v1/hubs/hub%00"],
    [inst, "POST", "/v1/hubs/hub%0A/claim"],
    [undefined, "GET", "/v1/incidents/%00"],
    [undefined, "GET", "/v1/telephony/%00"],
  ] as const) {
    const r = await api(relay, token, method, p, method === "POST" ? {} : undefined);
    assert.equal(r.status, 400, `${method} ${p}: ${JSON.stringify(r.json)}`);
    assert.equal(r.json.error, "bad_path");
    assert.match(r.json.message, /control character/);
  }
  // Ordinary misses are still 404s, and the relay is fine afterwards.
  assert.equal((await api(relay, op, "GET", "/v1/incidents/nope")).status, 404);
  assert.equal((await api(relay, op, "GET", "/v1/incidents?hub=hub-1")).status, 200);
});

// The rules themselves, at the registry (what the API route and the CLI call).
each("Registry.createClaim with an installer: conditional on the owner, cleared by enrolment", async (t, b) => {
  const dir = mkdtempSync(join(tmpdir(), "anxin-claims-"));
  let store: Store;
  if (b.store) {
    const cfg = b.store(t) as { kind: "postgres"; url: string; schema: string; poolSize: number };
    store = await openStore(cfg, "/nonexistent");
  } else store = await openStore({ kind: "sqlite", path: "relay.db" }, dir);
  t.after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const reg = new Registry(store, { claimCodeTtlS: 3600, heartbeatS: 60, mqttUrl: "mqtt://relay:1883", now: () => T0 });
  const refused = (code: ClaimError["code"]) => (e: unknown) => e instanceof ClaimError && e.code === code;

  assert.equal((await reg.createClaim("hub-1", { installer: "tok-A" })).action, "created");
  assert.equal((await store.getHub("hub-1"))?.claimOwner, "tok-A");
  assert.equal((await reg.createClaim("hub-1", { installer: "tok-A" })).action, "renewed");
  await assert.rejects(reg.createClaim("hub-1", { installer: "tok-B" }), refused("forbidden"));
  await assert.rejects(reg.createClaim("hub-1", { installer: "tok-A", rotate: true }), refused("forbidden"));
  // Two installers racing for one new hub: exactly one gets it.
  const race = await Promise.allSettled([reg.createClaim("hub-2", { installer: "tok-A" }), reg.createClaim("hub-2", { installer: "tok-B" })]);
  assert.equal(race.filter((r) => r.status === "fulfilled").length, 1);
  assert.ok(["tok-A", "tok-B"].includes((await store.getHub("hub-2"))?.claimOwner as string));

  const { code } = await reg.createClaim("hub-1", { installer: "tok-A" });
  await reg.enrol("hub-1", code);
  assert.equal((await store.getHub("hub-1"))?.claimOwner, null, "enrolment ends the assignment");
  await assert.rejects(reg.createClaim("hub-1", { installer: "tok-A" }), refused("active"));
  assert.equal((await reg.createClaim("hub-1", { rotate: true })).action, "rotated");
  await reg.revoke("hub-1");
  await assert.rejects(reg.createClaim("hub-1", { installer: "tok-A" }), refused("revoked"));
  assert.equal((await reg.createClaim("hub-1", { rotate: true })).action, "readmitted");
  await assert.rejects(reg.createClaim("hub-1", { installer: "tok-A" }), refused("forbidden"));
  // The admin path (no installer) is as before.
  assert.equal((await reg.createClaim("hub-1")).action, "renewed");
});
