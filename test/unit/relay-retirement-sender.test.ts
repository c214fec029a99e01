// The retirement sender after a district's reconnect storm: thousands of births at once must cost a few
// queries, not two per hub, and a relay that stops meanwhile must not wait for all of them.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { relayExtraMigrations } from "../../relay/src/store/relay-migrations.js";
import { RetirementSender } from "../../relay/src/households/retirement-sender.js";
import { retirementDb } from "../../relay/src/households/retirement-table.js";
import { loopDb } from "../../relay/src/store/closed-loop-schema.js";
import { openStore, type Store } from "../../relay/src/store/store.js";
import type { HubCommandRequest } from "../../protocol/messages.js";
import { withQueryHook } from "../support/query-hook.js";

const HUBS = 2000;
const hubName = (i: number) => `rt-${String(i).padStart(4, "0")}`;
const birth = Buffer.from(JSON.stringify({ online: true, boot: 2, version: "t", heartbeatS: 60 }));

async function rig(t: { after(fn: () => unknown): void }): Promise<Store> {
  const dir = mkdtempSync(join(tmpdir(), "anxin-retire-births-"));
  const store = await openStore({ kind: "sqlite", path: "relay.db" }, dir, { migrations: relayExtraMigrations });
  t.after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const now = Date.now();
  for (let i = 0; i < HUBS; i += 500) {
    const rows = Array.from({ length: Math.min(500, HUBS - i) }, (_, k) => ({
      id: hubName(i + k),
      status: "active" as const,
      password_hash: "x",
      password_salt: "x",
      key_b64: "x",
      claim_hash: "x",
      claim_salt: "x",
      claim_expires_at: now,
      claim_used_at: now,
      created_at: now,
      last_seen_at: now,
      // Every hub online but the last, which came and went again.
      online: i + k === HUBS - 1 ? 0 : 1,
      last_boot: 2,
      offline_since: null,
    }));
    await store.db.insertInto("hubs").values(rows).execute();
  }
  const retire = (id: string, hub: string, lastSentAt: number | null) => ({ id, household_id: `hh-${hub}`, hub, kind: "vital_radar", room: "bedroom", device: "radar-bed", state: "pending" as const, requested_at: now - 60_000, sends: lastSentAt === null ? 0 : 1, last_sent_at: lastSentAt, done_at: null, reason: null, report_id: null, command_id: null, outcome_event: null });
  await retirementDb(loopDb(store.db))
    .insertInto("household_retirements")
    .values([
      retire("r1", hubName(5), null),
      retire("r2", hubName(1500), now - 30_000), // sent before the birth: it may have reached nobody
      retire("r3", hubName(1998), null),
      retire("r4", hubName(HUBS - 1), null), // its hub is offline
      retire("r5", hubName(700), now + 60_000), // sent after the birth, once the hub could receive it
    ])
    .execute();
  return store;
}

/** A sender on `store` whose queries are counted (and each result delayed by `delayMs`). */
function sender(store: Store, counting: { queries: number }, sent: Array<{ hub: string; cmd: HubCommandRequest }>, delayMs = 0): RetirementSender {
  return new RetirementSender({
    db: withQueryHook(loopDb(store.db), () => void counting.queries++, delayMs),
    publish: async (hub, cmd) => void sent.push({ hub, cmd }),
    connected: () => true,
    log: pino({ level: "silent" }),
    afterBirthMs: 0,
    // Only what a birth sends, not the periodic resend.
    resendMs: 3_600_000,
  });
}

test("retirements: 2,000 births at once are looked up in a few queries; what each hub missed goes to it", async (t) => {
  const store = await rig(t);
  const counting = { queries: 0 };
  const sent: Array<{ hub: string; cmd: HubCommandRequest }> = [];
  const s = sender(store, counting, sent);
  for (let i = 0; i < HUBS; i++) s.onState(hubName(i), birth);
  await s.sweep();
  assert.deepEqual(sent.map((x) => x.hub).sort(), [hubName(5), hubName(1500), hubName(1998)]);
  for (const x of sent) assert.equal(x.cmd.cmd, "retire_device");
  // Four chunks of 500 (online hubs, their pending retirements), three claims, the periodic scan.
  assert.ok(counting.queries <= 12, `${counting.queries} queries for ${HUBS} births`);
  const again = counting.queries;
  await s.sweep();
  assert.equal(sent.length, 3, "each birth served once");
  // The offline hub's birth waits for it (one lookup), then the periodic scan.
  assert.ok(counting.queries - again <= 2, `${counting.queries - again} queries for the second pass`);
  await s.stop();
});

test("retirements: a stop during a storm's births pass ends it within one lookup", async (t) => {
  const store = await rig(t);
  const counting = { queries: 0 };
  const sent: Array<{ hub: string; cmd: HubCommandRequest }> = [];
  const s = sender(store, counting, sent, 30);
  for (let i = 0; i < HUBS; i++) s.onState(hubName(i), birth);
  const pass = s.sweep();
  await new Promise((r) => setTimeout(r, 10));
  const atStop = counting.queries;
  await s.stop();
  await pass;
  assert.ok(counting.queries - atStop <= 2, `${counting.queries - atStop} queries after the stop`);
  const after = counting.queries;
  await s.sweep();
  assert.equal(counting.queries, after, "nothing runs after the stop");
});
