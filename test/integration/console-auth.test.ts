// The console's sign-in over real HTTP, on SQLite and on PostgreSQL (ANXIN_TEST_PG_URL): a fastify app of
// its own with only the console-auth plugin and one protected route (GET and POST) behind app.consoleUser(),
// plus an admin-only one. Cookie attributes, CSRF and Origin checks, wrong passwords and the lockout, idle and
// absolute expiry on an injected clock, sign-out, disabled accounts and new passwords ending sessions,
// roles, and the audit log (which never holds a password).
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fastifyCookie from "@fastify/cookie";
import Fastify, { type FastifyInstance } from "fastify";
import { listAudit } from "../../relay/src/careplans/audit.js";
import {
  AccountError,
  createAccount,
  disableAccount,
  enableAccount,
  getAccount,
  LOCKOUT,
  setPassword,
  unlockAccount,
  type ChangeBy,
} from "../../relay/src/console/auth/accounts.js";
import { cookieIsSecure } from "../../relay/src/console/auth/cookie.js";
import { consoleAuthPlugin } from "../../relay/src/console/auth/plugin.js";
import { auditDb, consoleAuthDb, consoleAuthMigrations, type ConsoleAuthDb } from "../../relay/src/console/auth/tables.js";
import { relayExtraMigrations } from "../../relay/src/store/relay-migrations.js";
import { openStore, type Store } from "../../relay/src/store/store.js";
import type { Kysely } from "kysely";
import { ConsoleClient } from "../support/console-client.js";
import { dropPgSchema, PG_URL, pgSkipReason, uniquePgSchema } from "../support/pg.js";

const T0 = Date.UTC(2026, 11, 8, 8, 0, 0);
const MIN = 60_000;
const PASSWORDS = { alice: "correct horse battery", bob: "admin staple 2026!", carol: "installer-pass-phrase" } as const;
const migrations = { ...relayExtraMigrations, ...consoleAuthMigrations };

interface Rig {
  db: Kysely<ConsoleAuthDb>;
  url: string;
  clock: { t: number };
  /** Everything the plugin logged, as JSON lines. */
  logged: string[];
  app: FastifyInstance;
  client(): ConsoleClient;
}

async function startRig(store: Store, t: { after(fn: () => unknown): void }, signIn = { maxFailuresPerAddress: 1000, windowMinutes: 15 }): Promise<Rig> {
  const db = consoleAuthDb(store.db);
  const clock = { t: T0 };
  const logged: string[] = [];
  const log = { info: (...a: unknown[]) => void logged.push(JSON.stringify(a)), warn: (...a: unknown[]) => void logged.push(JSON.stringify(a)) };
  const app = Fastify();
  await app.register(consoleAuthPlugin, { db: store.db, now: () => clock.t, log: log as never, config: { console: { session: { idleMinutes: 30, maxHours: 12 }, signIn } } });
  app.get("/console/api/probe", { preHandler: app.consoleUser() }, async (req) => ({ actor: req.consoleUser!.actor, streets: req.consoleUser!.streets ?? null }));
  app.post("/console/api/probe", { preHandler: app.consoleUser() }, async (req) => ({ ok: true, actor: req.consoleUser!.actor }));
  app.post("/console/api/admin-only", { preHandler: app.consoleUser(["admin"]) }, async (req) => ({ ok: true, actor: req.consoleUser!.actor }));
  await app.listen({ host: "127.0.0.1", port: 0 });
  t.after(() => app.close());
  const by: ChangeBy = { actor: "cli:test", purpose: "test", at: T0 };
  await createAccount(db, { username: "Alice", displayName: "李丽", role: "operator", streets: ["长寿路街道"], password: PASSWORDS.alice }, by);
  await createAccount(db, { username: "bob", displayName: "Bob Wang", role: "admin", password: PASSWORDS.bob }, by);
  await createAccount(db, { username: "carol.w", displayName: "Carol", role: "installer", password: PASSWORDS.carol }, by);
  const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  return { db, url, clock, logged, app, client: () => new ConsoleClient(url) };
}

async function scenario(store: Store, t: { after(fn: () => unknown): void; test: (name: string, fn: () => Promise<void>) => Promise<void> }): Promise<void> {
  const rig = await startRig(store, t);
  const { db, clock } = rig;
  const secrets: string[] = [...Object.values(PASSWORDS)];

  await t.test("sign-in sets an HttpOnly, SameSite=Strict session cookie (not Secure over http to loopback) and returns the user and a CSRF token", async () => {
    const c = rig.client();
    const r = await c.signIn("ALICE", PASSWORDS.alice);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(r.body.user, { username: "alice", displayName: "李丽", role: "operator", streets: ["长寿路街道"] });
    assert.match(r.body.csrfToken, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(r.headers.get("cache-control"), "no-store");
    const cookie = r.setCookies.find((x) => x.name === "anxin_console");
    assert.ok(cookie, "the session cookie is set");
    assert.match(cookie.value, /^[A-Za-z0-9_-]{43}$/, "32 random bytes, base64url");
    assert.equal(cookie.attrs.get("httponly"), true);
    assert.equal(cookie.attrs.get("samesite"), "Strict");
    assert.equal(cookie.attrs.get("path"), "/");
    assert.equal(cookie.attrs.has("secure"), false, "plain http to 127.0.0.1");
    secrets.push(cookie.value, r.body.csrfToken);
    // Only the id's hash is stored.
    const rows = await db.selectFrom("console_sessions").selectAll().execute();
    assert.deepEqual(
      rows.map((s) => s.id_hash),
      [createHash("sha256").update(cookie.value).digest("hex")],
    );

    const again = await c.request("GET", "/console/api/session");
    assert.equal(again.status, 200);
    assert.deepEqual(again.body, r.body, "the same user and CSRF token for the live session");
    const probe = await c.request("GET", "/console/api/probe");
    assert.deepEqual(probe.body, { actor: "user:alice", streets: ["长寿路街道"] });
  });

  await t.test("the cookie is Secure unless the request came over plain http to a loopback address", async () => {
    for (const hostname of ["127.0.0.1", "127.8.9.10", "localhost", "[::1]"]) assert.equal(cookieIsSecure({ protocol: "http", hostname }), false, hostname);
    for (const hostname of ["console.example", "10.0.0.5", "0.0.0.0", "[2001:db8::1]", "localhost.example"]) assert.equal(cookieIsSecure({ protocol: "http", hostname }), true, hostname);
    assert.equal(cookieIsSecure({ protocol: "https", hostname: "127.0.0.1" }), true);
    // Over the wire: the same relay reached by another name sets a Secure cookie.
    const r = await rig.app.inject({ method: "POST", url: "/console/api/session", headers: { host: "console.example" }, payload: { username: "bob", password: PASSWORDS.bob } });
    assert.equal(r.statusCode, 200);
    assert.match(String(r.headers["set-cookie"]), /; Secure/);
    await rig.app.inject({ method: "DELETE", url: "/console/api/session", headers: { host: "console.example", cookie: `anxin_console=${r.cookies[0]!.value}`, "x-csrf-token": r.json<{ csrfToken: string }>().csrfToken } });
  });

  await t.test("changes need the session's CSRF token; Origin must match Host", async () => {
    const c = rig.client();
    assert.equal((await c.signIn("alice", PASSWORDS.alice)).status, 200);
    secrets.push(...c.jar.values(), c.csrfToken!);
    let r = await c.request("POST", "/console/api/probe", { body: {}, csrf: false });
    assert.deepEqual([r.status, r.body], [403, { error: "csrf" }]);
    r = await c.request("POST", "/console/api/probe", { body: {}, csrf: "A".repeat(43) });
    assert.deepEqual([r.status, r.body], [403, { error: "csrf" }]);
    const other = rig.client();
    await other.signIn("bob", PASSWORDS.bob);
    r = await c.request("POST", "/console/api/probe", { body: {}, csrf: other.csrfToken });
    assert.deepEqual([r.status, r.body], [403, { error: "csrf" }], "another session's token does not do");
    r = await c.request("POST", "/console/api/probe", { body: {} });
    assert.deepEqual([r.status, r.body], [200, { ok: true, actor: "user:alice" }]);
    r = await c.request("POST", "/console/api/probe", { body: {}, origin: null });
    assert.equal(r.status, 200, "no Origin: the CSRF token alone decides");

    for (const origin of ["http://evil.example", "null", `http://127.0.0.1:1`]) {
      r = await c.request("POST", "/console/api/probe", { body: {}, origin });
      assert.deepEqual([r.status, r.body], [403, { error: "origin" }], origin);
    }
    r = await c.request("GET", "/console/api/probe", { origin: "http://evil.example" });
    assert.deepEqual([r.status, r.body], [403, { error: "origin" }]);
    r = await rig.client().signIn("alice", PASSWORDS.alice, { origin: "http://evil.example" });
    assert.deepEqual([r.status, r.body], [403, { error: "origin" }], "nobody else's page signs a browser in");

    r = await rig.client().request("GET", "/console/api/probe");
    assert.deepEqual([r.status, r.body], [401, { error: "no_session" }]);
    r = await rig.client().request("GET", "/console/api/session", { headers: { cookie: "anxin_console=not-a-session" } });
    assert.deepEqual([r.status, r.body], [401, { error: "no_session" }]);
  });

  await t.test("a role not allowed is refused", async () => {
    const alice = rig.client();
    await alice.signIn("alice", PASSWORDS.alice);
    let r = await alice.request("POST", "/console/api/admin-only", { body: {} });
    assert.deepEqual([r.status, r.body], [403, { error: "forbidden" }]);
    const bob = rig.client();
    await bob.signIn("bob", PASSWORDS.bob);
    r = await bob.request("POST", "/console/api/admin-only", { body: {} });
    assert.deepEqual([r.status, r.body], [200, { ok: true, actor: "user:bob" }]);
    r = await bob.request("POST", "/console/api/admin-only", { body: {}, csrf: false });
    assert.deepEqual([r.status, r.body], [403, { error: "csrf" }], "CSRF is checked before the role");
  });

  await t.test("idle timeout: activity keeps a session; 30 minutes without ends it", async () => {
    const c = rig.client();
    await c.signIn("alice", PASSWORDS.alice);
    clock.t += 20 * MIN;
    assert.equal((await c.request("GET", "/console/api/probe")).status, 200);
    clock.t += 20 * MIN;
    assert.equal((await c.request("GET", "/console/api/probe")).status, 200, "40 minutes after sign-in, 20 since the last request");
    clock.t += 30 * MIN;
    const r = await c.request("GET", "/console/api/probe");
    assert.deepEqual([r.status, r.body], [401, { error: "session_expired" }]);
    assert.ok(r.setCookies.some((x) => x.name === "anxin_console" && (x.attrs.get("max-age") === "0" || x.attrs.has("expires"))), "the cookie is cleared");
    assert.equal(c.jar.size, 0);
    const audit = await listAudit(auditDb(db), { subject: "user:alice" });
    assert.ok(audit.some((e) => e.action === "console.session_expired" && e.purpose === "idle" && e.at === clock.t && e.actor === "user:alice"));
  });

  await t.test("absolute lifetime: 12 hours after sign-in the session ends however busy it was", async () => {
    const c = rig.client();
    const start = clock.t;
    await c.signIn("bob", PASSWORDS.bob);
    while (clock.t + 25 * MIN < start + 12 * 60 * MIN) {
      clock.t += 25 * MIN;
      assert.equal((await c.request("GET", "/console/api/probe")).status, 200);
    }
    clock.t = start + 12 * 60 * MIN;
    const r = await c.request("GET", "/console/api/session");
    assert.deepEqual([r.status, r.body], [401, { error: "session_expired" }]);
    const audit = await listAudit(auditDb(db), { subject: "user:bob" });
    assert.ok(audit.some((e) => e.action === "console.session_expired" && e.purpose === "lifetime"));
    assert.equal((await c.request("GET", "/console/api/session")).body.error, "no_session", "told once; the cookie is gone");
  });

  await t.test("sign-out needs CSRF, ends the session and clears the cookie", async () => {
    const c = rig.client();
    await c.signIn("alice", PASSWORDS.alice);
    const cookie = `anxin_console=${c.jar.get("anxin_console")}`;
    let r = await c.request("DELETE", "/console/api/session", { csrf: false });
    assert.deepEqual([r.status, r.body], [403, { error: "csrf" }]);
    r = await c.request("DELETE", "/console/api/session");
    assert.equal(r.status, 204);
    assert.equal(c.jar.size, 0, "cleared");
    r = await rig.client().request("GET", "/console/api/probe", { headers: { cookie } });
    assert.deepEqual([r.status, r.body], [401, { error: "no_session" }], "the old cookie is worth nothing");
  });

  await t.test("wrong passwords: 401 for a wrong password and an unknown user alike, counted; the fifth locks for 5 minutes; unlock", async () => {
    const c = rig.client();
    let r = await c.signIn("nobody-here", "whatever whatever");
    assert.deepEqual([r.status, r.body], [401, { error: "bad_credentials" }]);
    r = await c.signIn("x", "short");
    assert.deepEqual([r.status, r.body], [401, { error: "bad_credentials" }], "not even a possible username: the same answer");
    for (let i = 1; i < LOCKOUT.failures; i++) {
      r = await c.signIn("carol.w", `wrong password ${i}`);
      assert.deepEqual([r.status, r.body], [401, { error: "bad_credentials" }]);
      assert.equal((await getAccount(db, "carol.w"))!.failedLogins, i);
    }
    r = await c.signIn("carol.w", "wrong password 5");
    assert.equal(r.status, 423);
    assert.deepEqual(r.body, { error: "locked", until: clock.t + 5 * MIN });
    r = await c.signIn("carol.w", PASSWORDS.carol);
    assert.deepEqual([r.status, r.body], [423, { error: "locked", until: clock.t + 5 * MIN }], "locked even with the right password");
    clock.t += 5 * MIN;
    r = await c.signIn("carol.w", PASSWORDS.carol);
    assert.equal(r.status, 200, "the lock runs out");
    assert.equal((await getAccount(db, "carol.w"))!.failedLogins, 0);

    for (let i = 1; i <= LOCKOUT.failures; i++) r = await c.signIn("carol.w", `wrong again ${i}`);
    assert.equal(r.status, 423);
    // What `anxin-relay operators unlock` runs.
    await unlockAccount(db, "carol.w", { actor: "cli:test", purpose: "cli", at: clock.t });
    r = await c.signIn("carol.w", PASSWORDS.carol);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const audit = await listAudit(auditDb(db), { subject: "user:carol.w" });
    assert.equal(audit.filter((e) => e.action === "console.lockout").length, 2);
    assert.ok(audit.some((e) => e.action === "console.account_unlock" && e.actor === "cli:test"));
  });

  await t.test("a disabled account is refused and its sessions end; a new password ends sessions too", async () => {
    const c = rig.client();
    await c.signIn("carol.w", PASSWORDS.carol);
    assert.equal((await c.request("GET", "/console/api/probe")).status, 200);
    await disableAccount(db, "carol.w", { actor: "cli:test", purpose: "cli", at: clock.t });
    let r = await c.request("GET", "/console/api/probe");
    assert.deepEqual([r.status, r.body], [401, { error: "no_session" }]);
    r = await rig.client().signIn("carol.w", PASSWORDS.carol);
    assert.deepEqual([r.status, r.body], [403, { error: "disabled" }]);
    r = await rig.client().signIn("carol.w", "not the password");
    assert.deepEqual([r.status, r.body], [401, { error: "bad_credentials" }], "only the right password learns that it is disabled");
    await enableAccount(db, "carol.w", { actor: "cli:test", purpose: "cli", at: clock.t });
    assert.equal((await c.signIn("carol.w", PASSWORDS.carol)).status, 200);

    await setPassword(db, "carol.w", "a brand new passphrase", { actor: "cli:test", purpose: "cli", at: clock.t });
    secrets.push("a brand new passphrase");
    r = await c.request("GET", "/console/api/probe");
    assert.deepEqual([r.status, r.body], [401, { error: "no_session" }]);
    assert.equal((await rig.client().signIn("carol.w", PASSWORDS.carol)).status, 401);
    assert.equal((await rig.client().signIn("carol.w", "a brand new passphrase")).status, 200);
  });

  await t.test("password policy and usernames", async () => {
    const by = { actor: "cli:test", purpose: "test", at: clock.t };
    await assert.rejects(createAccount(db, { username: "dave", displayName: "D", role: "operator", password: "elevenchars" }, by), (e: AccountError) => {
      assert.equal(e.code, "bad_input");
      assert.equal(e.message, "the password must be at least 12 characters long (this one has 11)");
      return true;
    });
    await assert.rejects(createAccount(db, { username: "dave", displayName: "D", role: "operator", password: "short" }, by), /at least 12 characters long \(this one has 5\)/);
    await assert.rejects(createAccount(db, { username: "longusername", displayName: "L", role: "operator", password: "LongUserName" }, by), /must not be the username/);
    await assert.rejects(createAccount(db, { username: "d", displayName: "D", role: "operator", password: "a good long password" }, by), /2 to 32/);
    await assert.rejects(createAccount(db, { username: "dave smith", displayName: "D", role: "operator", password: "a good long password" }, by), /2 to 32/);
    await assert.rejects(createAccount(db, { username: "ALICE", displayName: "A", role: "operator", password: "a good long password" }, by), (e: AccountError) => e.code === "exists");
    await assert.rejects(createAccount(db, { username: "root2", displayName: "R", role: "admin", streets: ["长寿路街道"], password: "a good long password" }, by), /admin account is not limited/);
  });

  await t.test("the audit log has every sign-in, failure, lockout, sign-out and expiry, attributed, and no secret", async () => {
    const all = await listAudit(auditDb(db), { limit: 10_000 });
    const of = (action: string) => all.filter((e) => e.action === action);
    assert.ok(of("console.signin").some((e) => e.actor === "user:alice" && e.subject === "user:alice" && e.purpose === "console"));
    assert.ok(of("console.signin_failed").some((e) => e.actor === "user:nobody-here" && e.purpose === "unknown_user"));
    assert.ok(of("console.signin_failed").some((e) => e.actor === "user:carol.w" && e.purpose === "wrong_password"));
    assert.ok(of("console.signin_failed").some((e) => e.actor === "user:carol.w" && e.purpose === "locked"));
    assert.ok(of("console.signin_failed").some((e) => e.actor === "user:carol.w" && e.purpose === "disabled"));
    assert.ok(of("console.lockout").length >= 2);
    assert.ok(of("console.signout").some((e) => e.actor === "user:alice"));
    // The two seen by their browsers, and sessions left behind that sign-ins ended on the way.
    assert.ok(of("console.session_expired").some((e) => e.purpose === "idle"));
    assert.ok(of("console.session_expired").some((e) => e.purpose === "lifetime"));
    assert.ok(of("console.account_disable").some((e) => e.subject === "user:carol.w" && e.actor === "cli:test"));
    assert.ok(of("console.account_passwd").some((e) => e.subject === "user:carol.w"));
    const text = JSON.stringify(all) + rig.logged.join("\n");
    for (const s of secrets) assert.ok(!text.includes(s), "no password, session id or CSRF token in the audit log or the log");
  });

  await t.test("a failed attempt's username is recorded trimmed and capped", async () => {
    await rig.client().signIn(`  ${"Z".repeat(150)}\n`, "whatever whatever");
    const failed = (await listAudit(auditDb(db), { limit: 10_000 })).filter((e) => e.action === "console.signin_failed").at(-1)!;
    assert.equal(failed.actor, `user:${"z".repeat(64)}`);
  });
}

test("failed sign-ins from one address, whatever the usernames, are cut off until the window ends; a right password then waits too", async (t) => {
  const store = await sqliteStore(t);
  const rig = await startRig(store, t, { maxFailuresPerAddress: 5, windowMinutes: 10 });
  const c = rig.client();
  for (const u of ["alice", "bob", "carol.w", "nobody", "alice"]) assert.equal((await c.signIn(u, "not the password at all")).status, 401);
  const cut = await c.signIn("bob", PASSWORDS.bob);
  assert.equal(cut.status, 429);
  assert.equal(cut.body.error, "rate_limited");
  assert.ok(Number(cut.headers.get("retry-after")) > 0);
  assert.equal(cut.setCookies.length, 0, "no session while limited");
  // The accounts themselves are not locked by this (two failures each at most).
  rig.clock.t += 10 * MIN + 1;
  assert.equal((await c.signIn("bob", PASSWORDS.bob)).status, 200);
  assert.ok(rig.logged.some((l) => l.includes("too many failures from this address")));
});

async function sqliteStore(t: { after(fn: () => unknown): void }): Promise<Store> {
  const dir = mkdtempSync(join(tmpdir(), "anxin-console-auth-"));
  const store = await openStore({ kind: "sqlite", path: "relay.db" }, dir, { migrations });
  t.after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return store;
}

test("console sign-in on SQLite", async (t) => {
  await scenario(await sqliteStore(t), t);
});

test("console sign-in on PostgreSQL", { skip: PG_URL ? false : pgSkipReason("console sign-in on PostgreSQL") }, async (t) => {
  const schema = uniquePgSchema("anxin_console");
  const store = await openStore({ kind: "postgres", url: PG_URL!, schema, poolSize: 5 }, "/nonexistent", { migrations });
  t.after(async () => {
    await store.close();
    await dropPgSchema(PG_URL!, schema);
  });
  await scenario(store, t);
});

test("an app that registered @fastify/cookie itself keeps it; the plugin does not register it twice", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "anxin-console-auth-"));
  const store = await openStore({ kind: "sqlite", path: "relay.db" }, dir, { migrations });
  const app = Fastify();
  t.after(async () => {
    await app.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  await app.register(fastifyCookie);
  await app.register(consoleAuthPlugin, { db: store.db, now: Date.now, log: { info() {}, warn() {} } as never, config: { console: { session: { idleMinutes: 30, maxHours: 12 }, signIn: { maxFailuresPerAddress: 30, windowMinutes: 15 } } } });
  await app.ready();
  assert.equal(typeof app.consoleUser, "function");
  const r = await app.inject({ method: "GET", url: "/console/api/session" });
  assert.deepEqual(r.json(), { error: "no_session" });
});
