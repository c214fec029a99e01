// The event insert on both stores (a statement prepared once on SQLite, array parameters on PostgreSQL):
// every column stored exactly as handed in (the payload byte for byte, whatever it quotes or escapes),
// new and known ids told apart, and more rows than one statement takes still in one transaction.
import assert from "node:assert/strict";
import { ulid } from "ulid";
import type { EventRow } from "../../relay/src/store/store.js";
import { testOnBothStores } from "../support/loop-store.js";

const T0 = 1_800_000_000_000;

const PAYLOADS = [
  "{}",
  '{"a":"q\\"uote","b":"back\\\\slash","c":"{brace},[comma]","d":"NULL","e":null}',
  '{"s":"厨房 ü é \u2028 \ud83d\ude00","t":"\\u0000\\n\\t"}',
  'with "quotes", {braces}, \\backslashes\\ and a trailing backslash \\',
  "NULL",
  "",
  " leading and trailing spaces ",
  "x".repeat(70_000),
];

function rows(): EventRow[] {
  return PAYLOADS.map((payload, i) => ({
    id: ulid(T0 + i),
    hub: `hub-${i % 3}`,
    boot: i,
    seq: i + 1,
    ts: T0 - i,
    receivedAt: T0 + i,
    kind: i % 2 ? "reading" : "alarm",
    type: "t",
    severity: "info",
    device: i % 3 === 0 ? null : i % 3 === 1 ? "" : `dev-${i}`,
    payload,
    skewMs: i % 2 ? null : 500 - i * 1000,
    historical: i % 4 === 1,
  }));
}

testOnBothStores("insertEvents stores every column as handed in, the payload byte for byte", async (store) => {
  const batch = rows();
  const res = await store.insertEvents(batch);
  assert.deepEqual(new Set(res.inserted), new Set(batch.map((r) => r.id)));
  assert.deepEqual(res.foreign, []);
  for (const r of batch) assert.deepEqual(await store.getEvent(r.id), { ...r, path: "mqtt" });
  // The same again, with one new row and one id of another hub: known ids are not new, the squatter is foreign.
  const fresh = { ...(batch[0] as EventRow), id: ulid(T0 + 100) };
  const squat = { ...(batch[1] as EventRow), hub: "hub-other" };
  const again = await store.insertEvents([batch[0] as EventRow, fresh, squat]);
  assert.deepEqual(again.inserted, [fresh.id]);
  assert.deepEqual(again.foreign, [squat.id]);
  assert.equal(await store.countEvents(), batch.length + 1);
});

testOnBothStores("insertEvents: 1,201 rows (three statements on PostgreSQL) in one transaction, new ids in id order", async (store) => {
  const many: EventRow[] = Array.from({ length: 1201 }, (_, i) => ({
    id: ulid(T0 + i),
    hub: "hub-1",
    boot: 1,
    seq: i + 1,
    ts: T0,
    receivedAt: T0,
    kind: "reading",
    type: "t",
    severity: "info",
    device: null,
    payload: `{"i":${i}}`,
    skewMs: null,
    historical: false,
  }));
  const shuffled = [...many].reverse();
  let inTrx: string[] = [];
  const res = await store.insertEvents(shuffled, { withinCommit: async (_trx, ids) => void (inTrx = ids) });
  assert.deepEqual(res.inserted, many.map((r) => r.id));
  assert.deepEqual(inTrx, res.inserted);
  await assert.rejects(
    store.insertEvents([{ ...(many[0] as EventRow), id: ulid(T0 + 5000) }], {
      withinCommit: async () => {
        throw new Error("hook failed");
      },
    }),
    /hook failed/,
  );
  assert.equal(await store.countEvents(), 1201);
});
