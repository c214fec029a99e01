import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes, scrypt } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { enrolResponseSchema } from "../../protocol/messages.js";
import { ClaimError, CREDENTIAL_CACHE_MS, EnrolError, Registry, SIGNING_KEY_CACHE_MS } from "../../relay/src/registry/registry.js";
import { openStore, type Store } from "../../relay/src/store/store.js";
import { checkPassword, hashPassword } from "../../relay/src/registry/secrets.js";
import { KeyVault } from "../../relay/src/registry/key-vault.js";
import { BatchedReads } from "../../relay/src/registry/batched-reads.js";

const T0 = 1_800_000_000_000;
const TTL_S = 3600;

interface Rig {
  store: Store;
  clock: { now: number };
  registry: (o?: Partial<{ claimCodeTtlS: number }>) => Registry;
}

async function rig(t: { after(fn: () => unknown): void }): Promise<Rig> {
  const dir = mkdtempSync(join(tmpdir(), "anxin-relay-registry-"));
  const store = await openStore({ kind: "sqlite", path: "relay.db" }, dir);
  t.after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const clock = { now: T0 };
  // Sealed keys, as the daemon and the CLI always store them.
  const vault = new KeyVault(randomBytes(32));
  return {
    store,
    clock,
    registry: (o = {}) =>
      new Registry(store, { claimCodeTtlS: o.claimCodeTtlS ?? TTL_S, heartbeatS: 60, mqttUrl: "mqtts://relay.example:8883", now: () => clock.now, keys: async () => vault }),
  };
}

async function enrolError(p: Promise<unknown>, code: EnrolError["code"]): Promise<void> {
  await assert.rejects(p, (err: unknown) => err instanceof EnrolError && err.code === code);
}

test("claim and enrol: a typable one-time code becomes MQTT credentials and a 32-byte key; only hashes are stored", async (t) => {
  const { store, clock, registry } = await rig(t);
  const reg = registry();
  const { code, expiresAt } = await reg.createClaim("hub-1");
  assert.match(code, /^[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}$/);
  assert.equal(expiresAt, T0 + TTL_S * 1000);
  assert.deepEqual((await reg.list()).map((h) => [h.id, h.status]), [["hub-1", "pending"]]);

  clock.now += 1000;
  const res = await reg.enrol("hub-1", code);
  enrolResponseSchema.parse(res);
  assert.equal(res.hub, "hub-1");
  assert.deepEqual(res.mqtt.url, "mqtts://relay.example:8883");
  assert.equal(res.mqtt.username, "hub-1");
  assert.ok(Buffer.from(res.mqtt.password, "base64url").length >= 24);
  assert.equal(Buffer.from(res.key, "base64").length, 32);
  assert.equal(res.heartbeatS, 60);

  const raw = await store.db.selectFrom("hubs").selectAll().where("id", "=", "hub-1").executeTakeFirstOrThrow();
  assert.equal(raw.status, "active");
  assert.equal(raw.claim_used_at, T0 + 1000);
  const text = JSON.stringify(raw);
  assert.ok(!text.includes(res.mqtt.password), "password stored in clear");
  assert.ok(!text.includes(code) && !text.includes(code.replace(/-/g, "")), "claim code stored in clear");
  assert.match(raw.password_hash ?? "", /^sha256:[A-Za-z0-9+/]{43}=$/);
  assert.match(raw.key_b64 ?? "", /^v1:/, "the signing key is kept sealed: the relay verifies with it");
  assert.ok(!text.includes(res.key) && !text.includes(Buffer.from(res.key, "base64").toString("hex")), "signing key stored in clear");

  assert.equal(await reg.verifyCredentials("hub-1", res.mqtt.password), "hub-1");
  assert.deepEqual(await reg.signingKey("hub-1"), Buffer.from(res.key, "base64"));
});

test("passwords: salted SHA-256 for new ones; a legacy scrypt hash still logs in; a wrong password never does", async () => {
  const salt = Buffer.alloc(16, 7);
  const fast = hashPassword("p".repeat(32), salt);
  assert.equal(await checkPassword("p".repeat(32), salt, fast), true);
  assert.equal(await checkPassword("p".repeat(31) + "q", salt, fast), false);
  assert.equal(await checkPassword("p".repeat(32), Buffer.alloc(16, 8), fast), false, "the salt is part of it");
  // A hash stored by an earlier version (scrypt N = 2^14, r = 8, p = 1).
  const legacy = await new Promise<string>((resolve, reject) =>
    scrypt("p".repeat(32), salt, 32, { N: 16384, r: 8, p: 1, maxmem: 64 * 1024 * 1024 }, (err, key) => (err ? reject(err) : resolve(`scrypt:16384:8:1:${key.toString("base64")}`))),
  );
  assert.equal(await checkPassword("p".repeat(32), salt, legacy), true);
  assert.equal(await checkPassword("wrong", salt, legacy), false);
  assert.equal(await checkPassword("p".repeat(32), salt, "md5:abc"), false, "an unknown format never matches");
});

test("enrol refuses an unknown hub, a wrong code, a used code, an expired code and a revoked hub", async (t) => {
  const { clock, registry } = await rig(t);
  const reg = registry({ claimCodeTtlS: 60 });
  await enrolError(reg.enrol("nobody", "AAAA-BBBB-CCCC-DDDD"), "unknown_hub");

  const { code } = await reg.createClaim("hub-1");
  await enrolError(reg.enrol("hub-1", "AAAA-BBBB-CCCC-DDDD"), "bad_code");
  // What a person types: lower case, no dashes (O/0 and I/L/1 are read alike).
  await reg.enrol("hub-1", code.toLowerCase().replace(/-/g, ""));
  await enrolError(reg.enrol("hub-1", code), "used");

  const late = await reg.createClaim("hub-2");
  clock.now += 60_000;
  await enrolError(reg.enrol("hub-2", late.code), "expired");
  // A wrong code is reported as wrong, whatever the state of the right one.
  await enrolError(reg.enrol("hub-2", "AAAA-BBBB-CCCC-DDDD"), "bad_code");

  const { code: code3 } = await reg.createClaim("hub-3");
  assert.equal(await reg.revoke("hub-3"), true);
  await enrolError(reg.enrol("hub-3", code3), "revoked");
});

test("createClaim refuses bad ids and enrolled or revoked hubs unless rotating", async (t) => {
  const { registry } = await rig(t);
  const reg = registry();
  await assert.rejects(reg.createClaim("bad id!"), (e: unknown) => e instanceof ClaimError && e.code === "bad_hub_id");
  await reg.provisionDirect("hub-1");
  await assert.rejects(reg.createClaim("hub-1"), (e: unknown) => e instanceof ClaimError && e.code === "active");
  await reg.revoke("hub-1");
  await assert.rejects(reg.createClaim("hub-1"), (e: unknown) => e instanceof ClaimError && e.code === "revoked");

  // A pending hub simply gets a fresh code; the old one stops working.
  const first = await reg.createClaim("hub-2");
  const second = await reg.createClaim("hub-2");
  await enrolError(reg.enrol("hub-2", first.code), "bad_code");
  await reg.enrol("hub-2", second.code);
});

test("rotation: the old credentials work until the new code is used, then only the new ones", async (t) => {
  const { registry } = await rig(t);
  const reg = registry();
  const old = await reg.provisionDirect("hub-1");
  const { code } = await reg.createClaim("hub-1", { rotate: true });
  assert.equal(await reg.verifyCredentials("hub-1", old.mqtt.password), "hub-1");
  assert.deepEqual(await reg.signingKey("hub-1"), Buffer.from(old.key, "base64"));

  const fresh = await reg.enrol("hub-1", code);
  assert.notEqual(fresh.key, old.key);
  assert.equal(await reg.verifyCredentials("hub-1", old.mqtt.password), null, "old password must stop at once in this process");
  assert.equal(await reg.verifyCredentials("hub-1", fresh.mqtt.password), "hub-1");
  assert.deepEqual(await reg.signingKey("hub-1"), Buffer.from(fresh.key, "base64"));
});

test("a revoked hub admitted again starts from scratch: pending, no credentials, new enrolment needed", async (t) => {
  const { store, registry } = await rig(t);
  const reg = registry();
  const old = await reg.provisionDirect("hub-1");
  await reg.revoke("hub-1");
  const { code } = await reg.createClaim("hub-1", { rotate: true });
  const row = await store.getHubAuth("hub-1");
  assert.equal(row?.status, "pending");
  assert.equal(row?.keyB64, null);
  assert.equal(await reg.verifyCredentials("hub-1", old.mqtt.password), null);
  assert.equal(await reg.signingKey("hub-1"), null);
  const fresh = await reg.enrol("hub-1", code);
  assert.equal(await reg.verifyCredentials("hub-1", fresh.mqtt.password), "hub-1");
});

test("verifyCredentials: wrong, unknown, pending and malformed logins are refused; repeated logins skip scrypt", async (t) => {
  const { store, registry } = await rig(t);
  const reg = registry();
  const res = await reg.provisionDirect("hub-1");
  await reg.createClaim("hub-2");
  assert.equal(await reg.verifyCredentials("hub-1", "wrong-password"), null);
  assert.equal(await reg.verifyCredentials("hub-9", res.mqtt.password), null);
  assert.equal(await reg.verifyCredentials("hub-2", res.mqtt.password), null);
  assert.equal(await reg.verifyCredentials("../etc", res.mqtt.password), null);
  assert.equal(await reg.verifyCredentials("hub-1", ""), null);

  let lookups = 0;
  const getHubAuths = store.getHubAuths.bind(store);
  store.getHubAuths = async (ids) => {
    lookups++;
    return getHubAuths(ids);
  };
  // Ten simultaneous reconnects of one hub: one store lookup, one scrypt.
  const all = await Promise.all(Array.from({ length: 10 }, () => reg.verifyCredentials("hub-1", res.mqtt.password)));
  assert.deepEqual(new Set(all), new Set(["hub-1"]));
  assert.equal(lookups, 1);
  const t0 = performance.now();
  for (let i = 0; i < 100; i++) assert.equal(await reg.verifyCredentials("hub-1", res.mqtt.password), "hub-1");
  const perLogin = (performance.now() - t0) / 100;
  assert.equal(lookups, 1, "cached logins do not touch the store");
  assert.ok(perLogin < 2, `cached login took ${perLogin} ms`);
  assert.equal(await reg.verifyCredentials("hub-1", "wrong-password"), null, "the cache is per password");
});

test("revocation: immediate in this process; another instance sees it within its cache lifetimes", async (t) => {
  const { clock, registry } = await rig(t);
  const a = registry();
  const b = registry(); // another relay instance on the same store
  const res = await a.provisionDirect("hub-1");
  assert.equal(await a.verifyCredentials("hub-1", res.mqtt.password), "hub-1");
  assert.equal(await b.verifyCredentials("hub-1", res.mqtt.password), "hub-1");
  assert.ok(await b.signingKey("hub-1"));

  assert.equal(await a.revoke("hub-1"), true);
  assert.equal(await a.verifyCredentials("hub-1", res.mqtt.password), null);
  assert.equal(await a.signingKey("hub-1"), null);

  // b still trusts its caches for a while: that is the documented bound.
  assert.equal(await b.verifyCredentials("hub-1", res.mqtt.password), "hub-1");
  assert.ok(await b.signingKey("hub-1"));
  clock.now += SIGNING_KEY_CACHE_MS;
  assert.equal(await b.signingKey("hub-1"), null);
  clock.now += CREDENTIAL_CACHE_MS;
  assert.equal(await b.verifyCredentials("hub-1", res.mqtt.password), null);

  // A process that learns of a revocation some other way (a sweep of the hub list) can drop its caches.
  const c = registry();
  const res2 = await a.provisionDirect("hub-2");
  assert.equal(await c.verifyCredentials("hub-2", res2.mqtt.password), "hub-2");
  await a.revoke("hub-2");
  c.invalidate("hub-2");
  assert.equal(await c.verifyCredentials("hub-2", res2.mqtt.password), null);
  assert.equal(await a.revoke("nobody"), false);
});

test("signingKey: concurrent lookups for one hub share one query; unknown hubs are null", async (t) => {
  const { store, registry } = await rig(t);
  const reg = registry();
  const res = await reg.provisionDirect("hub-1");
  let lookups = 0;
  const getHubAuths = store.getHubAuths.bind(store);
  store.getHubAuths = async (ids) => {
    lookups++;
    return getHubAuths(ids);
  };
  const keys = await Promise.all(Array.from({ length: 200 }, () => reg.signingKey("hub-1")));
  assert.equal(lookups, 1);
  for (const k of keys) assert.deepEqual(k, Buffer.from(res.key, "base64"));
  assert.equal(await reg.signingKey("hub-x"), null);
});

test("signingKey and logins of many hubs at once: a few queries between them, each hub its own answer", async (t) => {
  const { store, registry } = await rig(t);
  const reg = registry();
  const enrolled = [];
  for (let i = 0; i < 30; i++) enrolled.push(await reg.provisionDirect(`hub-${i}`));
  await reg.createClaim("hub-pending");
  await reg.revoke("hub-29");
  const fresh = registry(); // nothing cached
  const queries: number[] = [];
  const getHubAuths = store.getHubAuths.bind(store);
  store.getHubAuths = async (ids) => {
    queries.push(ids.length);
    return getHubAuths(ids);
  };
  const [keys, logins] = await Promise.all([
    Promise.all([...enrolled.map((e) => fresh.signingKey(e.hub)), fresh.signingKey("hub-pending"), fresh.signingKey("hub-unknown")]),
    Promise.all([...enrolled.map((e) => fresh.verifyCredentials(e.hub, e.mqtt.password)), fresh.verifyCredentials("hub-3", enrolled[4]!.mqtt.password)]),
  ]);
  assert.equal(queries.length, 1, `one query for 62 lookups, not one each: ${queries.join(",")}`);
  enrolled.forEach((e, i) => {
    assert.deepEqual(keys[i], i === 29 ? null : Buffer.from(e.key, "base64"), e.hub);
    assert.equal(logins[i], i === 29 ? null : e.hub, e.hub);
  });
  assert.deepEqual(keys.slice(30), [null, null], "pending and unknown hubs have no key");
  assert.equal(logins[30], null, "another hub's password does not open hub-3");
});

test("signingKey: a store that fails refuses the lookups of that query only; the next lookup asks again", async (t) => {
  const { store, registry } = await rig(t);
  const a = await registry().provisionDirect("hub-a");
  const reg = registry();
  const getHubAuths = store.getHubAuths.bind(store);
  let fail = true;
  store.getHubAuths = async (ids) => {
    if (fail) throw new Error("connection refused");
    return getHubAuths(ids);
  };
  const refused = await Promise.allSettled([reg.signingKey("hub-a"), reg.signingKey("hub-b")]);
  assert.deepEqual(refused.map((r) => r.status), ["rejected", "rejected"]);
  fail = false;
  assert.deepEqual(await reg.signingKey("hub-a"), Buffer.from(a.key, "base64"), "nothing of the failure was cached");
});

test("batched reads: ids asked for while a query runs go together in the next one, never into the running one", async () => {
  const queries: string[][] = [];
  const held: Array<() => void> = [];
  const table = new Map([["a", 1], ["b", 2], ["c", 3]]);
  const reads = new BatchedReads<number>(async (ids) => {
    queries.push([...ids]);
    // What the query sees is decided when it starts, like a database snapshot.
    const seen = new Map(ids.filter((id) => table.has(id)).map((id) => [id, table.get(id) as number]));
    await new Promise<void>((r) => held.push(r));
    return seen;
  }, 2);
  const first = [reads.get("a"), reads.get("a"), reads.get("b"), reads.get("c")];
  while (queries.length < 1) await new Promise((r) => setImmediate(r));
  assert.deepEqual(queries, [["a", "b"]], "at most maxIds per query; one query at a time");
  table.set("a", 10); // changed while the first query runs
  const later = reads.get("a");
  held.shift()?.();
  while (queries.length < 2) await new Promise((r) => setImmediate(r));
  assert.deepEqual(queries[1], ["c", "a"], "the rest, with the id asked for meanwhile");
  held.shift()?.();
  assert.deepEqual(await Promise.all(first), [1, 1, 2, 3]);
  assert.equal(await later, 10, "asked after the change: answered by a query that started after it");
});

test("two enrolments racing with one code: exactly one wins", async (t) => {
  const { registry } = await rig(t);
  const reg = registry();
  const other = registry();
  const { code } = await reg.createClaim("hub-1");
  const results = await Promise.allSettled([reg.enrol("hub-1", code), other.enrol("hub-1", code)]);
  assert.equal(results.filter((r) => r.status === "fulfilled").length, 1);
  const failed = results.find((r) => r.status === "rejected");
  assert.ok(failed && failed.status === "rejected" && failed.reason instanceof EnrolError && failed.reason.code === "used");
});
