// The forwarders' outbox against a real webhook receiver over HTTP and a real database (SQLite always;
// PostgreSQL too when ANXIN_TEST_PG_URL is set, in a schema of its own): signed delivery, idempotency,
// backoff on a failing receiver, dead letters, two relay instances on one database, and a restart.
// Time is a clock the test moves; jitter is fixed so every retry time is exact.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { Kysely } from "kysely";
import { pino } from "pino";
import {
  enqueueForward,
  forwarderMigrations,
  forwardersConfigSchema,
  ForwarderWorker,
  listForwards,
  requeueDead,
  resolveDestinations,
  backoffDelay,
  DEAD_ALERT_RETRY_MS,
  type ForwardDestination,
  type ForwardItem,
} from "../../relay/src/forwarders/outbox.js";
import { anxinSignature } from "../../relay/src/telephony/signature.js";
import { openStore, type Store } from "../../relay/src/store/store.js";
import { dropPgSchema, PG_URL, pgSkipReason, uniquePgSchema } from "../support/pg.js";
import { startWebhookStub, type WebhookStub } from "../support/webhook-stub.js";

const PG_SKIP = pgSkipReason("forwarders on PostgreSQL");
const SECRET = "duty-platform-secret-0123456789abcdef";
const T0 = 1_800_000_000_000;
const silent = pino({ level: "silent" });

type Backend = "sqlite" | "postgres";
type T = { after(fn: () => unknown): void; skip(msg: string): void };

interface Ctx {
  /** A new relay instance's connection to the shared database. */
  open(): Promise<Store>;
  hook: WebhookStub;
  clock: { now: number };
  dead: { item: ForwardItem; reason: string; by: string }[];
  dest(o?: Partial<ForwardDestination>): ForwardDestination;
  worker(store: Store, o?: { id?: string; dest?: Partial<ForwardDestination>; onDeadLetter?: (i: ForwardItem, r: string) => Promise<void> }): ForwarderWorker;
}

async function context(t: T, backend: Backend): Promise<Ctx> {
  const stores: Store[] = [];
  const clock = { now: T0 };
  const hook = await startWebhookStub({ secret: SECRET, now: () => clock.now });
  let open: () => Promise<Store>;
  let drop: () => Promise<void>;
  if (backend === "sqlite") {
    const dir = await mkdtemp(path.join(os.tmpdir(), "anxin-fwd-"));
    drop = () => rm(dir, { recursive: true, force: true });
    open = () => openStore({ kind: "sqlite", path: "relay.db" }, dir, { migrations: forwarderMigrations });
  } else {
    const url = PG_URL as string;
    const schema = uniquePgSchema("anxin_fwd");
    drop = () => dropPgSchema(url, schema);
    open = () => openStore({ kind: "postgres", url, schema, poolSize: 4 }, "/nonexistent", { migrations: forwarderMigrations });
  }
  const workers: ForwarderWorker[] = [];
  // One hook, in order: workers, connections, the receiver, then the database itself.
  t.after(async () => {
    for (const w of workers) await w.stop();
    for (const s of stores) await s.close().catch(() => {});
    await hook.close();
    await drop();
  });
  const dead: Ctx["dead"] = [];
  const dest = (o: Partial<ForwardDestination> = {}): ForwardDestination => ({
    name: "duty_platform",
    url: hook.url,
    secret: SECRET,
    timeoutMs: 2000,
    maxAttempts: 5,
    backoff: { initialMs: 1000, factor: 2, maxMs: 60_000, jitter: 0.2 },
    ...o,
  });
  return {
    open: async () => {
      const s = await open();
      stores.push(s);
      return s;
    },
    hook,
    clock,
    dead,
    dest,
    worker(store, o = {}) {
      const id = o.id ?? "relay-a";
      const w = new ForwarderWorker({
        db: store.db,
        destinations: [dest(o.dest)],
        log: silent,
        now: () => clock.now,
        random: () => 0.5, // jitter factor exactly 1
        instanceId: id,
        onDeadLetter: o.onDeadLetter ?? (async (item, reason) => void dead.push({ item, reason, by: id })),
      });
      workers.push(w);
      return w;
    },
  };
}

async function rowsOf(db: Kysely<any>) {
  return listForwards(db, { limit: 1000 });
}

function both(name: string, fn: (t: T, c: Ctx, backend: Backend) => Promise<void>): void {
  for (const backend of ["sqlite", "postgres"] as const) {
    test(`${backend}: ${name}`, async (t) => {
      if (backend === "postgres" && !PG_URL) return t.skip(PG_SKIP);
      const c = await context(t, backend);
      await fn(t, c, backend);
    });
  }
}

both("a payload is delivered signed, with its idempotency key, and marked delivered", async (_t, c) => {
  const s = await c.open();
  const w = c.worker(s);
  assert.equal(await enqueueForward(s.db, { destination: "duty_platform", idempotencyKey: "inc-1:confirmed", payload: { incident: "inc-1", state: "confirmed", 地址: "略" }, at: c.clock.now }), true);
  assert.equal(await w.runDue(), 1);
  const got = c.hook.requests[0];
  assert.ok(got);
  assert.equal(got.signatureOk, true);
  assert.equal(got.idempotencyKey, "inc-1:confirmed");
  assert.deepEqual(got.json, { incident: "inc-1", state: "confirmed", 地址: "略" });
  assert.equal(got.timestamp, c.clock.now);
  // The receiver's check, written out: HMAC-SHA256 over "<timestamp>.<body>".
  assert.equal(got.headers["x-anxin-signature"], anxinSignature(SECRET, String(got.timestamp), got.body));
  assert.equal(got.headers["content-type"], "application/json");
  const [row] = await rowsOf(s.db);
  assert.equal(row?.state, "delivered");
  assert.equal(row?.attempts, 1);
  assert.equal(row?.deliveredAt, c.clock.now);
  assert.equal(await w.runDue(), 0, "nothing left");
  assert.equal(w.counters.delivered, 1);
});

both("the same idempotency key enqueued twice is one row; a rolled-back transaction enqueues nothing", async (_t, c) => {
  const s = await c.open();
  assert.equal(await enqueueForward(s.db, { destination: "duty_platform", idempotencyKey: "k1", payload: { n: 1 }, at: T0 }), true);
  assert.equal(await enqueueForward(s.db, { destination: "duty_platform", idempotencyKey: "k1", payload: { n: 2 }, at: T0 + 5 }), false);
  await assert.rejects(
    s.db.transaction().execute(async (trx) => {
      await enqueueForward(trx, { destination: "duty_platform", idempotencyKey: "k2", payload: {}, at: T0 });
      throw new Error("the change it reports failed");
    }),
    /failed/,
  );
  const rows = await rowsOf(s.db);
  assert.deepEqual(rows.map((r) => [r.idempotencyKey, r.payload]), [["k1", { n: 1 }]]);
});

both("a failing receiver is retried with exponential backoff and the same key until it recovers", async (_t, c) => {
  const s = await c.open();
  const w = c.worker(s);
  c.hook.failNext(2, 500);
  await enqueueForward(s.db, { destination: "duty_platform", idempotencyKey: "inc-2:coordinated", payload: { p: 1 }, at: c.clock.now });
  assert.equal(await w.runDue(), 1); // try 1: 500 → due at +1000
  let [row] = await rowsOf(s.db);
  assert.deepEqual([row?.state, row?.attempts, row?.nextAttemptAt, row?.lastError], ["pending", 1, T0 + 1000, "HTTP 500"]);
  c.clock.now = T0 + 999;
  assert.equal(await w.runDue(), 0, "not due yet");
  c.clock.now = T0 + 1000;
  assert.equal(await w.runDue(), 1); // try 2: 500 → due at +2000 more
  [row] = await rowsOf(s.db);
  assert.equal(row?.nextAttemptAt, T0 + 1000 + 2000);
  c.clock.now = T0 + 3000;
  assert.equal(await w.runDue(), 1); // try 3: delivered
  [row] = await rowsOf(s.db);
  assert.deepEqual([row?.state, row?.attempts, row?.lastError], ["delivered", 3, null]);
  assert.deepEqual(c.hook.requests.map((r) => r.status), [500, 500, 200]);
  assert.deepEqual(new Set(c.hook.requests.map((r) => r.idempotencyKey)), new Set(["inc-2:coordinated"]));
  assert.deepEqual(c.hook.requests.map((r) => r.timestamp), [T0, T0 + 1000, T0 + 3000], "each try signed afresh");
  assert.equal(c.dead.length, 0);
  assert.equal(w.counters.retried, 2);
});

both("4xx (other than 408/429) is dead at once and raises the dead-letter callback; 408 and 429 are retried", async (_t, c) => {
  const s = await c.open();
  const w = c.worker(s);
  c.hook.failNext(1, 404);
  await enqueueForward(s.db, { destination: "duty_platform", idempotencyKey: "gone", payload: { a: 1 }, at: c.clock.now });
  await w.runDue();
  assert.equal(c.dead.length, 1);
  assert.equal(c.dead[0]?.reason, "HTTP 404");
  assert.deepEqual([c.dead[0]?.item.idempotencyKey, c.dead[0]?.item.payload, c.dead[0]?.item.attempts], ["gone", { a: 1 }, 1]);
  assert.equal((await rowsOf(s.db))[0]?.state, "dead");
  for (const code of [408, 429]) {
    c.hook.failNext(1, code);
    await enqueueForward(s.db, { destination: "duty_platform", idempotencyKey: `k${code}`, payload: {}, at: c.clock.now });
    await w.runDue();
    const r = (await rowsOf(s.db)).find((x) => x.idempotencyKey === `k${code}`);
    assert.deepEqual([r?.state, r?.lastError], ["pending", `HTTP ${code}`]);
  }
  assert.equal(c.dead.length, 1);
  // Dead-letter reported once, not again on later runs.
  c.clock.now += 60_000;
  await w.runDue();
  assert.equal(c.dead.length, 1);
});

both("a receiver that never recovers: dead after maxAttempts, with the reason; an operator can requeue it", async (_t, c) => {
  const s = await c.open();
  const w = c.worker(s, { dest: { maxAttempts: 3 } });
  c.hook.setStatus(503);
  await enqueueForward(s.db, { destination: "duty_platform", idempotencyKey: "never", payload: {}, at: c.clock.now });
  for (let i = 0; i < 3; i++) {
    await w.runDue();
    c.clock.now += 10 * 60_000;
  }
  assert.equal(c.hook.requests.length, 3);
  assert.equal(c.dead.length, 1);
  assert.equal(c.dead[0]?.reason, "HTTP 503 (after 3 attempts)");
  const [row] = await rowsOf(s.db);
  assert.deepEqual([row?.state, row?.attempts], ["dead", 3]);
  await w.runDue();
  assert.equal(c.hook.requests.length, 3, "a dead row is not tried again");
  c.hook.setStatus(null);
  assert.equal(await requeueDead(s.db, row?.id as string, c.clock.now), true);
  await w.runDue();
  assert.equal((await rowsOf(s.db))[0]?.state, "delivered");
});

both("a failed dead-letter alert is retried on later runs until it goes through, then never again", async (_t, c) => {
  const s = await c.open();
  let fail = 2;
  const alerts: string[] = [];
  const w = c.worker(s, {
    onDeadLetter: async (item) => {
      if (fail-- > 0) throw new Error("alerts table unavailable");
      alerts.push(item.idempotencyKey);
    },
  });
  c.hook.failNext(1, 400);
  await enqueueForward(s.db, { destination: "duty_platform", idempotencyKey: "bad-request", payload: {}, at: c.clock.now });
  await w.runDue(); // dead; alert fails
  await w.runDue(); // too soon to try the alert again
  c.clock.now += DEAD_ALERT_RETRY_MS;
  await w.runDue(); // alert fails again
  assert.deepEqual(alerts, []);
  c.clock.now += DEAD_ALERT_RETRY_MS;
  await w.runDue(); // goes through
  c.clock.now += DEAD_ALERT_RETRY_MS;
  await w.runDue();
  assert.deepEqual(alerts, ["bad-request"]);
  assert.equal(c.hook.requests.length, 1);
});

both("two relay instances on one database never deliver the same row twice", async (_t, c) => {
  const a = await c.open();
  const b = await c.open();
  const wa = c.worker(a, { id: "relay-a" });
  const wb = c.worker(b, { id: "relay-b" });
  c.hook.setDelay(5);
  const N = 60;
  for (let i = 0; i < N; i++) await enqueueForward(i % 2 ? a.db : b.db, { destination: "duty_platform", idempotencyKey: `k${i}`, payload: { i }, at: T0 });
  // Both run at once, several rounds, as two pollers would.
  for (let round = 0; round < 3; round++) await Promise.all([wa.runDue(), wb.runDue(), wa.runDue(), wb.runDue()]);
  const byKey = c.hook.deliveriesByKey();
  assert.equal(byKey.size, N, "every row delivered");
  assert.deepEqual([...byKey.values()].filter((n) => n !== 1), [], "none twice");
  assert.equal(c.hook.requests.length, N);
  assert.ok(wa.counters.delivered > 0 && wb.counters.delivered > 0, `both instances took part (a ${wa.counters.delivered}, b ${wb.counters.delivered})`);
  assert.equal(wa.counters.delivered + wb.counters.delivered, N);
});

both("a restart resumes pending rows; a crashed instance's claim lapses after its lease", async (_t, c) => {
  const first = await c.open();
  const w1 = c.worker(first, { id: "relay-a" });
  c.hook.failNext(1, 502);
  await enqueueForward(first.db, { destination: "duty_platform", idempotencyKey: "retry-after-restart", payload: { x: 1 }, at: c.clock.now });
  await enqueueForward(first.db, { destination: "duty_platform", idempotencyKey: "claimed-by-crashed", payload: { x: 2 }, at: c.clock.now });
  // The second row is held by an instance that crashed mid-delivery (lease until T0 + 62 s).
  await first.db.updateTable("forward_outbox" as never).set({ claimed_by: "relay-crashed", claimed_until: T0 + 62_000 } as never).where("idempotency_key" as never, "=", "claimed-by-crashed" as never).execute();
  assert.equal(await w1.runDue(), 1);
  await w1.stop();
  await first.close();

  const second = await c.open(); // the relay restarted
  const w2 = c.worker(second, { id: "relay-a2" });
  c.clock.now = T0 + 1000;
  assert.equal(await w2.runDue(), 1, "the retry resumes; the crashed instance's row is still leased");
  c.clock.now = T0 + 62_000;
  assert.equal(await w2.runDue(), 1, "lease lapsed: taken over");
  const rows = await rowsOf(second.db);
  assert.deepEqual(rows.map((r) => [r.idempotencyKey, r.state]).sort(), [["claimed-by-crashed", "delivered"], ["retry-after-restart", "delivered"]]);
  assert.equal(c.hook.deliveriesByKey().get("retry-after-restart"), 1);
});

both("a receiver that does not answer in time is retried (timeout), and an unknown destination is dead", async (_t, c) => {
  const s = await c.open();
  const w = c.worker(s, { dest: { timeoutMs: 150 } });
  c.hook.setDelay(2000);
  await enqueueForward(s.db, { destination: "duty_platform", idempotencyKey: "slow", payload: {}, at: c.clock.now });
  await enqueueForward(s.db, { destination: "nowhere", idempotencyKey: "lost", payload: {}, at: c.clock.now });
  await w.runDue();
  const rows = await rowsOf(s.db);
  const slow = rows.find((r) => r.idempotencyKey === "slow");
  assert.deepEqual([slow?.state, slow?.lastError], ["pending", "timeout after 150 ms"]);
  assert.equal(rows.find((r) => r.idempotencyKey === "lost")?.state, "dead");
  assert.match(c.dead[0]?.reason ?? "", /unknown destination "nowhere"/);
  c.hook.setDelay(0);
});

test("the poll loop delivers without runDue calls and stops cleanly", async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), "anxin-fwd-"));
  const hook = await startWebhookStub({ secret: SECRET });
  const s = await openStore({ kind: "sqlite", path: "relay.db" }, dir, { migrations: forwarderMigrations });
  const w = new ForwarderWorker({
    db: s.db,
    destinations: [{ name: "street_centre", url: hook.url, secret: SECRET, timeoutMs: 2000, maxAttempts: 3, backoff: { initialMs: 100, factor: 2, maxMs: 1000, jitter: 0 } }],
    log: silent,
    instanceId: "relay-loop",
    onDeadLetter: async () => {},
  });
  t.after(async () => {
    await w.stop();
    await s.close();
    await hook.close();
    await rm(dir, { recursive: true, force: true });
  });
  w.start(20);
  await enqueueForward(s.db, { destination: "street_centre", idempotencyKey: "loop-1", payload: { ok: true }, at: Date.now() });
  w.wake();
  await hook.waitFor(1);
  // The loop keeps polling after a wake: a row enqueued without one is delivered too.
  await enqueueForward(s.db, { destination: "street_centre", idempotencyKey: "loop-2", payload: { ok: true }, at: Date.now() });
  await hook.waitFor(2);
  await w.stop();
  assert.deepEqual((await rowsOf(s.db)).map((r) => r.state), ["delivered", "delivered"]);
  // Stopped: nothing more goes out.
  await enqueueForward(s.db, { destination: "street_centre", idempotencyKey: "loop-3", payload: {}, at: Date.now() });
  w.wake();
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(hook.requests.length, 2);
});

test("forwarders config: defaults, one secret source, unique names; secrets read from owner-only files", async (t) => {
  const cfg = forwardersConfigSchema.parse({ destinations: [{ name: "duty_platform", url: "https://duty.example/hook", secretEnv: "DUTY_SECRET" }] });
  assert.deepEqual(cfg.destinations[0]?.backoff, { initialMs: 1000, factor: 2, maxMs: 300_000, jitter: 0.2 });
  assert.equal(cfg.destinations[0]?.maxAttempts, 12);
  assert.equal(cfg.pollMs, 1000);
  assert.deepEqual(resolveDestinations(cfg, { env: { DUTY_SECRET: "s".repeat(32) } })[0]?.secret, "s".repeat(32));
  assert.equal(forwardersConfigSchema.safeParse({ destinations: [{ name: "a", url: "https://x.example" }] }).success, false);
  const twice = forwardersConfigSchema.safeParse({ destinations: [{ name: "a", url: "https://x.example", secretEnv: "A" }, { name: "a", url: "https://y.example", secretEnv: "B" }] });
  assert.match(JSON.stringify(twice.error?.issues), /used twice/);
  const dir = await mkdtemp(path.join(os.tmpdir(), "anxin-fwd-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const { writeFile } = await import("node:fs/promises");
  await writeFile(path.join(dir, "duty.secret"), "file-secret-value-0123456789\n", { mode: 0o640 });
  const fileCfg = forwardersConfigSchema.parse({ destinations: [{ name: "duty_platform", url: "https://duty.example/hook", secretFile: "duty.secret" }] });
  assert.throws(() => resolveDestinations(fileCfg, { baseDir: dir }), /chmod 600/);
  const { chmod } = await import("node:fs/promises");
  await chmod(path.join(dir, "duty.secret"), 0o600);
  assert.equal(resolveDestinations(fileCfg, { baseDir: dir })[0]?.secret, "file-secret-value-0123456789");
  // Backoff: exponential, capped, jitter spreads ±20 %.
  const b = { initialMs: 1000, factor: 2, maxMs: 5000, jitter: 0.2 };
  assert.deepEqual([1, 2, 3, 4, 5].map((n) => backoffDelay(b, n, () => 0.5)), [1000, 2000, 4000, 5000, 5000]);
  assert.equal(backoffDelay(b, 1, () => 0), 800);
  assert.equal(backoffDelay(b, 1, () => 0.999999), 1200);
});

both("a payload that carries free text is never sent to a destination not allowed it (freeText turned off with rows waiting)", async (_t, c) => {
  const s = await c.open();
  const closed = c.worker(s, { id: "relay-closed" });
  await enqueueForward(s.db, { destination: "duty_platform", idempotencyKey: "with-note", payload: { v: 1, freeText: true, update: { detail: { note: "unique-note-4f1c" } } }, at: c.clock.now });
  await enqueueForward(s.db, { destination: "duty_platform", idempotencyKey: "codes-only", payload: { v: 1, freeText: false, update: { detail: { reason: "cooking_smoke" } } }, at: c.clock.now });
  assert.equal(await closed.runDue(), 2);
  assert.deepEqual(c.hook.requests.map((r) => r.idempotencyKey), ["codes-only"], "only the structured one went out");
  assert.ok(!c.hook.requests.some((r) => r.body.includes("unique-note-4f1c")));
  const dead = (await rowsOf(s.db)).find((r) => r.idempotencyKey === "with-note");
  assert.equal(dead?.state, "dead");
  assert.match(dead?.lastError ?? "", /carries free text.*freeText/);
  assert.equal(c.dead.length, 1, "the operator is told");
  // A destination allowed free text gets it (after a resend, once the setting is back).
  const open = c.worker(s, { id: "relay-open", dest: { freeText: true } });
  assert.equal(await requeueDead(s.db, dead.id, c.clock.now), true);
  assert.equal(await open.runDue(), 1);
  assert.ok(c.hook.requests.at(-1)?.body.includes("unique-note-4f1c"));
});

test("forwarders config: freeText is off unless a destination says true; anything but a boolean is refused where it stands", () => {
  const cfg = forwardersConfigSchema.parse({
    destinations: [
      { name: "duty_platform", url: "https://duty.example/hook", secretEnv: "DUTY_SECRET", freeText: true },
      { name: "district_centre", url: "https://district.example/hook", secretEnv: "DISTRICT_SECRET" },
    ],
  });
  assert.deepEqual(cfg.destinations.map((d) => [d.name, d.freeText]), [["duty_platform", true], ["district_centre", false]]);
  const env = { DUTY_SECRET: "d".repeat(32), DISTRICT_SECRET: "s".repeat(32) };
  assert.deepEqual(resolveDestinations(cfg, { env }).map((d) => d.freeText), [true, false]);
  const bad = forwardersConfigSchema.safeParse({ destinations: [{ name: "street_centre", url: "https://street.example/hook", secretEnv: "S", freeText: "yes" }] });
  assert.equal(bad.success, false);
  assert.deepEqual(bad.error?.issues.map((i) => i.path), [["destinations", 0, "freeText"]]);
  assert.match(bad.error?.issues[0]?.message ?? "", /boolean/);
});
