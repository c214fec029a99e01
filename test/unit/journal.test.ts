import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import type { EventDraft, EventKind, Severity } from "../../protocol/envelope.js";
import { Journal, JournalClosedError, JournalCommitError, JournalDraftError } from "../../gateway/src/journal/journal.js";

function tempDb(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), "anxin-journal-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, "journal.db");
}

function draft(kind: EventKind, severity: Severity, type = kind === "alarm" ? "gas" : "note", data?: Record<string, unknown>): EventDraft {
  return { kind, type, severity, device: "dev-1", ...(data ? { data } : {}) };
}

async function waitFor(cond: () => Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}

test("boot counter increments across reopen and seq restarts at 1", async (t) => {
  const path = tempDb(t);
  const j1 = await Journal.open({ path, hub: "hub-1" });
  assert.equal(j1.boot, 1);
  const a = await j1.append(draft("alarm", "critical"));
  const b = await j1.append(draft("heartbeat", "info"));
  assert.deepEqual([a.boot, a.seq, b.seq], [1, 1, 2]);
  assert.equal(a.v, 1);
  assert.equal(a.hub, "hub-1");
  await j1.close();

  const j2 = await Journal.open({ path, hub: "hub-1" });
  assert.equal(j2.boot, 2);
  const c = await j2.append(draft("alarm", "critical"));
  assert.deepEqual([c.boot, c.seq], [2, 1]);
  assert.equal((await j2.stats()).boot, 2);
  await j2.close();
});

test("seq follows call order and ids are unique and increasing, also across a restart with the clock behind", async (t) => {
  const path = tempDb(t);
  let now = 1_800_000_000_000;
  const j1 = await Journal.open({ path, hub: "hub-1", clock: () => now });
  const single = Array.from({ length: 300 }, (_, i) => j1.append(draft("reading", "info", "gas_lel", { i })));
  const many = j1.appendMany(Array.from({ length: 50 }, () => draft("heartbeat", "info")));
  const envs = [...(await Promise.all(single)), ...(await many)];
  assert.deepEqual(envs.map((e) => e.seq), Array.from({ length: 350 }, (_, i) => i + 1));
  const ids = envs.map((e) => e.id);
  assert.equal(new Set(ids).size, ids.length);
  for (let i = 1; i < ids.length; i++) assert.ok((ids[i] as string) > (ids[i - 1] as string), `id ${i} not increasing`);
  await j1.close();

  now -= 3_600_000; // power cut, no RTC: the clock restarts an hour behind
  const j2 = await Journal.open({ path, hub: "hub-1", clock: () => now });
  const next = await j2.append(draft("alarm", "critical"));
  assert.ok(next.id > (ids.at(-1) as string), "ids keep increasing across boots");
  assert.equal(next.ts, now);
  await j2.close();
});

test("pending returns critical first, then oldest, and honours the limit", async (t) => {
  const path = tempDb(t);
  const j = await Journal.open({ path, hub: "hub-1" });
  const order: [EventKind, Severity][] = [
    ["reading", "info"],
    ["device", "warning"],
    ["alarm", "critical"],
    ["alarm", "high"],
    ["heartbeat", "info"],
    ["alarm", "critical"],
    ["device", "warning"],
  ];
  const envs: { id: string; severity: Severity }[] = [];
  for (const [kind, sev] of order) envs.push(await j.append(draft(kind, sev)));
  const rank = { critical: 0, high: 1, warning: 2, info: 3 } as const;
  const expected = envs
    .map((e, i) => ({ ...e, i }))
    .sort((a, b) => rank[a.severity] - rank[b.severity] || a.i - b.i)
    .map((e) => e.id);
  const got = await j.pending(100);
  assert.deepEqual(got.map((p) => p.envelope.id), expected);
  assert.equal(got[0]?.attempts, 0);
  assert.deepEqual((await j.pending(3)).map((p) => p.envelope.id), expected.slice(0, 3));
  assert.deepEqual(await j.pending(0), []);
  await j.close();
});

test("markSent bumps attempts and hides rows until next_attempt_at", async (t) => {
  const path = tempDb(t);
  let now = 1_000_000;
  const j = await Journal.open({ path, hub: "hub-1", clock: () => now });
  const a = await j.append(draft("alarm", "critical"));
  const b = await j.append(draft("alarm", "high"));
  await j.markSent([a.id], now + 5000);
  assert.deepEqual((await j.pending(10)).map((p) => p.envelope.id), [b.id]);
  now += 5000;
  const due = await j.pending(10);
  assert.deepEqual(due.map((p) => p.envelope.id), [a.id, b.id]);
  assert.deepEqual([due[0]?.attempts, due[0]?.nextAttemptAt], [1, now]);
  await j.markSent([a.id], now + 1);
  assert.deepEqual(
    (await j.pending(10, now + 1)).map((p) => [p.envelope.id, p.attempts]),
    [[a.id, 2], [b.id, 0]],
  );
  // Taking an event back after a dropped connection reschedules it without counting a send.
  await j.markSent([a.id], now + 2, false);
  assert.deepEqual((await j.pending(10, now + 2)).map((p) => [p.envelope.id, p.attempts, p.nextAttemptAt]), [[a.id, 2, now + 2], [b.id, 0, 0]]);
  await j.close();
});

test("a new boot makes rows that were in flight due at once, not after their backoff", async (t) => {
  const path = tempDb(t);
  const j = await Journal.open({ path, hub: "hub-1" });
  const a = await j.append(draft("alarm", "critical"));
  await j.markSent([a.id], Date.now() + 5 * 60_000);
  assert.deepEqual(await j.pending(10), []);
  await j.close();
  const again = await Journal.open({ path, hub: "hub-1" });
  const due = await again.pending(10);
  assert.deepEqual(due.map((p) => [p.envelope.id, p.attempts]), [[a.id, 1]], "due now, and it keeps its attempt count");
  await again.close();
});

test("ack removes only the acknowledged ids and ignores unknown ones", async (t) => {
  const path = tempDb(t);
  const j = await Journal.open({ path, hub: "hub-1" });
  const envs = await j.appendMany([draft("alarm", "critical"), draft("audit", "info", "valve_reopen"), draft("device", "warning", "offline")]);
  const [a, b, c] = envs.map((e) => e.id) as [string, string, string];
  assert.equal(await j.ack([b, "01ZZZZZZZZZZZZZZZZZZZZZZZZ"]), 1);
  assert.equal(await j.ack([b]), 0);
  assert.deepEqual((await j.pending(10)).map((p) => p.envelope.id), [a, c]);
  assert.equal(await j.ack([]), 0);
  const s = await j.stats();
  assert.equal(s.rows, 2);
  assert.equal(s.alarms, 1);
  await j.close();
});

test("thinning drops readings, then heartbeats, oldest first, and never protected kinds", async (t) => {
  const path = tempDb(t);
  const j = await Journal.open({ path, hub: "hub-1", maxRows: 6 });
  const protectedEnvs = await j.appendMany([
    draft("alarm", "critical"),
    draft("alarm_cleared", "info", "gas"),
    draft("audit", "info", "valve_reopen"),
    draft("device", "warning", "offline"),
  ]);
  const hb1 = await j.append(draft("heartbeat", "info"));
  const r1 = await j.append(draft("reading", "info", "gas_lel"));
  const r2 = await j.append(draft("reading", "info", "gas_lel")); // 7 rows: r1 goes
  let ids = new Set((await j.pending(100)).map((p) => p.envelope.id));
  assert.ok(!ids.has(r1.id) && ids.has(r2.id) && ids.has(hb1.id));
  const hb2 = await j.append(draft("heartbeat", "info")); // r2 goes
  ids = new Set((await j.pending(100)).map((p) => p.envelope.id));
  assert.ok(!ids.has(r2.id) && ids.has(hb1.id) && ids.has(hb2.id));
  await j.append(draft("alarm", "critical")); // no readings left: oldest heartbeat goes
  ids = new Set((await j.pending(100)).map((p) => p.envelope.id));
  assert.ok(!ids.has(hb1.id) && ids.has(hb2.id));
  assert.equal((await j.stats()).thinned, 3);

  // Only protected rows left over the cap: all kept, visible as rows > maxRows.
  const more = await j.appendMany([draft("alarm", "critical"), draft("audit", "info", "x"), draft("device", "info", "online")]);
  ids = new Set((await j.pending(100)).map((p) => p.envelope.id));
  for (const e of [...protectedEnvs, ...more]) assert.ok(ids.has(e.id), `${e.kind} row was dropped`);
  assert.ok(!ids.has(hb2.id), "the last heartbeat went before any protected row");
  const s = await j.stats();
  assert.equal(s.rows, 8);
  assert.ok(s.rows > 6);
  assert.equal(s.thinned, 4);
  await j.close();

  const again = await Journal.open({ path, hub: "hub-1", maxRows: 6 });
  assert.equal((await again.stats()).thinned, 4, "the thinned count survives a restart");
  await again.close();
});

test("an invalid draft is rejected with an error naming the field and never written", async (t) => {
  const path = tempDb(t);
  const j = await Journal.open({ path, hub: "hub-1" });
  const cases: [unknown, string][] = [
    [{ ...draft("alarm", "critical"), severity: "urgent" }, "severity"],
    [{ type: "gas", severity: "critical" }, "kind"],
    [{ ...draft("alarm", "critical"), type: "Gas Leak" }, "type"],
    [{ ...draft("alarm", "critical"), colour: "red" }, "colour"],
    [{ ...draft("alarm", "critical"), seq: 7 }, "seq"],
    [{ ...draft("alarm", "critical"), sig: "0".repeat(64) }, "sig"],
    [{ ...draft("alarm", "critical"), ts: -1 }, "ts"],
    [{ ...draft("alarm", "critical"), actions: [{ action: "" }] }, "actions.0.action"],
    [{ ...draft("alarm", "critical"), data: { n: 1n } }, "data"],
    [null, "draft"],
  ];
  for (const [bad, field] of cases) {
    await assert.rejects(j.append(bad as EventDraft), (err: unknown) => {
      assert.ok(err instanceof JournalDraftError, String(err));
      assert.equal(err.field, field);
      assert.match(err.message, new RegExp(field.replace(/\./g, "\\.")));
      return true;
    });
  }
  await assert.rejects(j.appendMany([draft("alarm", "critical"), { kind: "alarm" } as EventDraft]), (err: unknown) => {
    assert.ok(err instanceof JournalDraftError);
    assert.equal(err.field, "drafts[1].type");
    return true;
  });
  const ok = await j.append(draft("alarm", "critical"));
  assert.equal(ok.seq, 1, "rejected drafts leave no gap in seq");
  assert.equal((await j.stats()).rows, 1);
  await j.close();
});

test("WAL and synchronous=FULL are in effect", async (t) => {
  const path = tempDb(t);
  const j = await Journal.open({ path, hub: "hub-1" });
  await j.append(draft("alarm", "critical"));
  // journal_mode is a property of the file: a separate read-only connection sees it.
  const ro = new Database(path, { readonly: true });
  try {
    assert.equal(ro.pragma("journal_mode", { simple: true }), "wal");
    assert.equal(ro.prepare("SELECT value FROM meta WHERE key = 'boot'").pluck().get(), 1);
  } finally {
    ro.close();
  }
  // synchronous, busy_timeout and journal_size_limit belong to each connection: ask the writer's own.
  assert.equal(await j._testPragma("synchronous"), 2);
  assert.equal(await j._testPragma("busy_timeout"), 5000);
  assert.equal(await j._testPragma("journal_size_limit"), 67108864);
  await j.close();
});

test("a full disk rejects the append, counts the failure, and the event is committed by a retry", async (t) => {
  const path = tempDb(t);
  const j = await Journal.open({ path, hub: "hub-1" });
  await j.append(draft("alarm", "critical"));
  const pages = await j._testPragma("page_count");
  await j._testPragma(`max_page_count = ${Number(pages)}`); // the database cannot grow: SQLITE_FULL
  const big = { blob: "x".repeat(20_000) };
  let failedIds: string[] = [];
  await assert.rejects(j.append(draft("alarm", "critical", "smoke", big)), (err: unknown) => {
    assert.ok(err instanceof JournalCommitError, String(err));
    assert.equal(err.code, "SQLITE_FULL");
    failedIds = err.ids;
    return true;
  });
  let s = await j.stats();
  assert.ok(s.commitFailures >= 1);
  assert.equal(s.retryQueued, 1);
  assert.equal(s.rows, 1);

  await j._testPragma("max_page_count = 1073741823"); // space again
  await waitFor(async () => (await j.stats()).retryQueued === 0);
  s = await j.stats();
  assert.equal(s.rows, 2);
  assert.ok((await j.pending(10)).some((p) => p.envelope.id === failedIds[0]));
  const after = await j.append(draft("alarm", "critical"));
  assert.equal(after.seq, 3);
  await j.close();
});

test("a database refusing writes rejects appends instead of crashing, and recovers", async (t) => {
  const path = tempDb(t);
  const j = await Journal.open({ path, hub: "hub-1" });
  await j._testPragma("query_only = 1");
  const results = await Promise.allSettled([j.append(draft("alarm", "critical")), j.append(draft("alarm", "critical", "sos"))]);
  for (const r of results) {
    assert.equal(r.status, "rejected");
    assert.ok(r.reason instanceof JournalCommitError);
  }
  assert.equal((results[0] as PromiseRejectedResult).reason.code, "SQLITE_READONLY");
  assert.ok((await j.stats()).commitFailures >= 1);
  await j._testPragma("query_only = 0");
  await waitFor(async () => (await j.stats()).retryQueued === 0);
  assert.equal((await j.stats()).rows, 2);
  await j.close();
});

test("close drains appends still in flight, is idempotent, and later appends are refused", async (t) => {
  const path = tempDb(t);
  const j = await Journal.open({ path, hub: "hub-1" });
  const inflight = Array.from({ length: 500 }, () => j.append(draft("alarm", "critical")));
  const closed = j.close();
  assert.equal(j.close(), closed);
  await closed;
  const envs = await Promise.all(inflight);
  await assert.rejects(j.append(draft("alarm", "critical")), JournalClosedError);
  await assert.rejects(j.stats(), JournalClosedError);

  const ro = new Database(path, { readonly: true });
  try {
    assert.equal(ro.prepare("SELECT count(*) FROM events").pluck().get(), 500);
    assert.equal(ro.prepare("SELECT max(seq) FROM events").pluck().get(), envs.at(-1)?.seq);
  } finally {
    ro.close();
  }
});

test("a crashed worker is restarted and the events in flight are committed by retry", async (t) => {
  const path = tempDb(t);
  const j = await Journal.open({ path, hub: "hub-1" });
  const first = await j.append(draft("alarm", "critical"));
  const inflight = Array.from({ length: 50 }, () => j.append(draft("alarm", "critical")));
  await j._testKillWorker();
  const settled = await Promise.allSettled(inflight);
  await waitFor(async () => (await j.stats()).retryQueued === 0);
  const s = await j.stats();
  assert.equal(s.rows, 51);
  assert.equal(s.boot, first.boot, "a worker restart is not a new boot");
  const later = await j.append(draft("alarm", "critical"));
  assert.equal(later.seq, 52);
  assert.ok(settled.every((r) => r.status === "fulfilled" || r.reason instanceof JournalCommitError));
  await j.close();
});

test("close reports events it could not commit instead of dropping them silently", async (t) => {
  const path = tempDb(t);
  const j = await Journal.open({ path, hub: "hub-1" });
  await j._testPragma("query_only = 1");
  const failed = await j.append(draft("alarm", "critical")).catch((e: unknown) => e);
  assert.ok(failed instanceof JournalCommitError);
  await assert.rejects(j.close(), (err: unknown) => {
    assert.ok(err instanceof JournalCommitError);
    assert.match(err.message, /1 event\(s\) that could not be committed/);
    assert.deepEqual(err.ids, failed.ids);
    return true;
  });
});
