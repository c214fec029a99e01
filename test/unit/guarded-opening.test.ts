// One alarm whose incident cannot be opened must not hold up the batch it came in: its part rolls back to
// a savepoint, the events commit, and an operator alert names it. On SQLite, and on PostgreSQL when
// ANXIN_TEST_PG_URL is set (a failed statement there aborts the transaction until the savepoint is undone).
import assert from "node:assert/strict";
import { pino } from "pino";
import { ulid } from "ulid";
import type { Envelope } from "../../protocol/envelope.js";
import { listOperatorAlerts, raiseOperatorAlert } from "../../relay/src/alerts/operator-alerts.js";
import { guardedOpening } from "../../relay/src/daemon/guarded-opening.js";
import { loopDb } from "../../relay/src/store/closed-loop-schema.js";
import type { EventRow, Store } from "../../relay/src/store/store.js";
import { testOnBothStores } from "../support/loop-store.js";

const T0 = 1_800_000_000_000;

function envelope(type: string, kind: Envelope["kind"] = "alarm"): Envelope {
  return { v: 1, hub: "hub-1", boot: 1, seq: 1, id: ulid(), ts: T0, kind, type, severity: kind === "alarm" ? "critical" : "info" };
}

function rowOf(e: Envelope): EventRow {
  return { id: e.id, hub: e.hub, boot: e.boot, seq: e.seq, ts: e.ts, receivedAt: T0, kind: e.kind, type: e.type, severity: e.severity, device: null, payload: JSON.stringify(e), skewMs: null, historical: false };
}

async function check(store: Store): Promise<void> {
  const db = loopDb(store.db);
  const raised: string[] = [];
  const alerts = {
    raise: async (trx: Parameters<typeof raiseOperatorAlert>[0], a: Parameters<typeof raiseOperatorAlert>[1]) => {
      raised.push(a.kind);
      await raiseOperatorAlert(trx, a);
    },
  };
  const good = envelope("gas");
  const bad = envelope("smoke");
  const reading = envelope("detector_level", "reading");
  const cleared = envelope("gas", "alarm_cleared");
  // Stands in for opening an incident: writes a row, then fails for the smoke alarm after its write.
  const open = guardedOpening(
    async (trx, [env]) => {
      await raiseOperatorAlert(trx, { kind: "no_care_plan", detail: `opened for ${env!.id}`, at: T0, key: env!.id });
      if (env!.type === "smoke") throw new Error("care plan unreadable");
    },
    { alerts, log: pino({ level: "silent" }), now: () => T0 },
  );
  const res = await store.insertEvents([good, bad, reading, cleared].map(rowOf), { withinCommit: (trx, ids) => open(loopDb(trx), [good, bad, reading, cleared].filter((e) => ids.includes(e.id))) });

  assert.equal(res.inserted.length, 4, "every event commits");
  const all = await listOperatorAlerts(db, {});
  const opened = all.filter((a) => a.kind === "no_care_plan").map((a) => a.detail);
  assert.deepEqual(opened.sort(), [`opened for ${cleared.id}`, `opened for ${good.id}`].sort(), "the failing alarm's writes are rolled back, the others kept; readings are not opened");
  const errors = all.filter((a) => a.kind === "escalation_error");
  assert.equal(errors.length, 1);
  assert.match(errors[0]!.detail, new RegExp(`alarm smoke ${bad.id} from hub hub-1 started no call tree: care plan unreadable`));
  assert.deepEqual(raised, ["escalation_error"]);
}

testOnBothStores("a failing incident opening rolls back alone; the batch commits and an alert names the alarm", check);
