// The relay's announcer on both stores: an incident's news goes to its own hub once, as a signed-command request
// with a fixed announcement id; two relay instances on one store announce it once between them; nothing for an
// offline hub, a closed incident, a hub_offline incident, or news older than the window.
import assert from "node:assert/strict";
import type { Kysely } from "kysely";
import { createLogger } from "../../lib/daemon/logger.js";
import type { HubCommandRequest } from "../../protocol/messages.js";
import { Announcer, ANNOUNCE_WITHIN_MS } from "../../relay/src/announce/announcer.js";
import type { IncidentsTable, LoopDb } from "../../relay/src/store/closed-loop-schema.js";
import { testOnBothStores } from "../support/loop-store.js";

const log = createLogger({ name: "test", level: "silent" });
const NOW = 1_764_400_000_000;

function incident(o: Partial<IncidentsTable> & { id: string; hub: string }): IncidentsTable {
  return {
    type: "sos", state: "confirming", open_key: null, severity: "critical", event_id: null, source_ref: null, device: null, device_model: null,
    policy: "{}", policy_name: "sos", policy_version: 1, plan: "{}", escalation: "running", escalation_pass: 0,
    acknowledged_at: null, acknowledged_by: null, false_alarm_reason: null, follow_up_recorded: 0, alarms: 1,
    opened_at: NOW - 60_000, updated_at: NOW - 60_000, closed_at: null, ...o,
  };
}

testOnBothStores("announcements go to the incident's own hub, once across two instances", async (store) => {
  const db = store.db as unknown as Kysely<LoopDb>;
  for (const [id, online] of [["hub-a", 1], ["hub-b", 0]] as const)
    await db.insertInto("hubs").values({ id, status: "active", created_at: NOW - 86_400_000, online } as never).execute();
  await db.insertInto("incidents").values([
    incident({ id: "inc-1", hub: "hub-a", escalation: "acknowledged", acknowledged_at: NOW - 1000, acknowledged_by: "emergency_contact:son", updated_at: NOW - 1000 }),
    incident({ id: "inc-2", hub: "hub-a", type: "gas", state: "responding", escalation: "acknowledged", acknowledged_at: NOW - 2000, acknowledged_by: "operator:duty", updated_at: NOW - 500 }),
    incident({ id: "inc-3", hub: "hub-b", escalation: "acknowledged", acknowledged_at: NOW - 1000, acknowledged_by: "emergency_contact:son", updated_at: NOW - 1000 }),
    incident({ id: "inc-4", hub: "hub-a", type: "fall", state: "closed", closed_at: NOW - 100, acknowledged_at: NOW - 1000, acknowledged_by: "operator:duty", updated_at: NOW - 100 }),
    incident({ id: "inc-5", hub: "hub-a", type: "hub_offline", acknowledged_at: NOW - 1000, acknowledged_by: "operator:duty", updated_at: NOW - 1000 }),
    incident({ id: "inc-6", hub: "hub-a", type: "inactivity", acknowledged_at: NOW - ANNOUNCE_WITHIN_MS - 1, acknowledged_by: "volunteer:v", updated_at: NOW - ANNOUNCE_WITHIN_MS - 1 }),
  ]).execute();
  const sent: Array<{ hub: string; cmd: HubCommandRequest }> = [];
  const make = () => new Announcer({ db, publish: async (hub, cmd) => void sent.push({ hub, cmd }), connected: () => true, log, now: () => NOW });
  const one = make();
  const two = make();
  await Promise.all([one.sweep(), two.sweep()]);
  await Promise.all([one.sweep(), two.sweep()]);
  const got = sent.map(({ hub, cmd }) => (cmd.cmd === "announce" ? `${hub} ${cmd.incident} ${cmd.alarm} ${cmd.announcement}` : "?")).sort();
  assert.deepEqual(got, ["hub-a inc-1 sos family_coming", "hub-a inc-2 gas help_dispatched", "hub-a inc-2 gas operator_handling"]);
  assert.ok(sent.every(({ cmd }) => /^announce-[0-9A-Z]{26}$/.test(cmd.id)));
  const claims = await db.selectFrom("incident_timeline").select(["incident_id", "cause"]).where("kind", "=", "announce").orderBy("id").execute();
  assert.deepEqual(claims.map((c) => `${c.incident_id} ${c.cause}`).sort(), ["inc-1 family_coming", "inc-2 help_dispatched", "inc-2 operator_handling"]);
  // Not connected: nothing claimed, so nothing is lost for when the session is back.
  await db.updateTable("hubs").set({ online: 1 } as never).where("id", "=", "hub-b").execute();
  const down = new Announcer({ db, publish: async (hub, cmd) => void sent.push({ hub, cmd }), connected: () => false, log, now: () => NOW });
  await down.sweep();
  assert.equal(sent.length, 3);
  await one.sweep();
  assert.deepEqual(sent.slice(3).map(({ hub }) => hub), ["hub-b"], "the hub back online hears its news");
  await Promise.all([one.stop(), two.stop(), down.stop()]);
});
