// The envelope's bounds: seq starts at 1 (as the protocol says), and `data` nests at most MAX_DATA_DEPTH
// levels. A deeply nested signed event once overflowed the canonical form's recursion at the relay, was logged
// as an internal error and never counted; now it is refused by the schema and counted like any bad event,
// with the checks inline and in verify threads alike.
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { ulid } from "ulid";
import { envelopeSchema, MAX_DATA_DEPTH, nestedDeeperThan, type Envelope } from "../../protocol/envelope.js";
import { CanonicalDepthError, canonicalJson, signEnvelope, verifyEnvelope } from "../../protocol/signing.js";
import { Ingest } from "../../relay/src/ingest/ingest.js";
import { checkSignature } from "../../relay/src/ingest/verify-check.js";
import { createMetrics, type Metrics } from "../../relay/src/metrics.js";
import { Registry } from "../../relay/src/registry/registry.js";
import { openStore } from "../../relay/src/store/store.js";

const T0 = 1_800_000_000_000;
const KEY = Buffer.alloc(32, 9);

const base = (o: Partial<Envelope> = {}): Envelope => ({ v: 1, hub: "hub-1", boot: 1, seq: 1, id: ulid(T0), ts: T0, kind: "heartbeat", type: "heartbeat", severity: "info", ...o });

/** `{ "a": { "a": … 1 } }` with `levels` objects. */
function nested(levels: number): Record<string, unknown> {
  let v: Record<string, unknown> = { leaf: 1 };
  for (let i = 1; i < levels; i++) v = { a: v };
  return v;
}

test("seq: 0 is refused, 1 and up are accepted (the protocol counts from 1)", () => {
  assert.equal(envelopeSchema.safeParse(base({ seq: 1 })).success, true);
  assert.equal(envelopeSchema.safeParse(base({ seq: 987_654 })).success, true);
  const zero = envelopeSchema.safeParse(base({ seq: 0 }));
  assert.equal(zero.success, false);
  assert.deepEqual(zero.error?.issues.map((i) => i.path.join(".")), ["seq"]);
  assert.equal(envelopeSchema.safeParse(base({ seq: -1 })).success, false);
});

test("data: up to MAX_DATA_DEPTH levels are fine, one more is refused by the schema", () => {
  assert.equal(MAX_DATA_DEPTH, 16);
  assert.equal(envelopeSchema.safeParse(base({ data: nested(MAX_DATA_DEPTH) })).success, true);
  assert.equal(envelopeSchema.safeParse(base({ data: { list: [[[[1]]]], flat: 2 } })).success, true);
  const deep = envelopeSchema.safeParse(base({ data: nested(MAX_DATA_DEPTH + 1) }));
  assert.equal(deep.success, false);
  assert.deepEqual(deep.error?.issues.map((i) => [i.path.join("."), i.message]), [["data", `nested deeper than ${MAX_DATA_DEPTH} levels`]]);
  // Arrays count as levels too, and the check itself does not recurse (100,000 levels is no problem).
  let arr: unknown = 1;
  for (let i = 0; i < 100_000; i++) arr = [arr];
  assert.equal(nestedDeeperThan({ x: arr }, MAX_DATA_DEPTH), true);
  assert.equal(envelopeSchema.safeParse(base({ data: { x: arr } })).success, false);
  assert.equal(nestedDeeperThan({ a: [1, { b: null }] }, 3), false);
  assert.equal(nestedDeeperThan({ a: [1, { b: [] }] }, 3), true);
});

test("canonicalJson gives up with a clear error past its bound instead of overflowing the stack", () => {
  let v: unknown = 1;
  for (let i = 0; i < 50_000; i++) v = [v];
  assert.throws(() => canonicalJson(v), CanonicalDepthError);
  assert.throws(() => signEnvelope(base({ data: { x: v } }), KEY), CanonicalDepthError);
  // The relay's signature check turns it into a counted rejection, not an exception.
  const forged = { ...base({ data: { x: v } }), sig: "0".repeat(64) } as Envelope;
  assert.throws(() => verifyEnvelope(forged, KEY), CanonicalDepthError);
  assert.deepEqual(checkSignature(forged, KEY), { ok: false, reason: "schema", id: forged.id, extra: { issues: ["(envelope): nested deeper than 32 levels"] } });
  // What the schema allows is well inside the bound.
  const ok = signEnvelope(base({ data: nested(MAX_DATA_DEPTH) }), KEY);
  assert.equal(verifyEnvelope(ok, KEY), true);
});

async function counter(m: Metrics, name: string, labels: Record<string, string> = {}): Promise<number> {
  const got = await m.registry.getSingleMetric(name)?.get();
  assert.ok(got, `no metric ${name}`);
  return got.values.filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x)).reduce((a, v) => a + v.value, 0);
}

for (const threads of [0, 2])
  test(`ingest: a deeply nested signed event and a seq 0 are counted rejections; the next good event is committed [${threads ? `${threads} verify threads` : "inline"}]`, async (t: TestContext) => {
    const dir = mkdtempSync(join(tmpdir(), "anxin-bounds-"));
    const store = await openStore({ kind: "sqlite", path: "relay.db" }, dir);
    const registry = new Registry(store, { claimCodeTtlS: 3600, heartbeatS: 60, mqttUrl: "mqtt://127.0.0.1:1883", now: () => T0 });
    const key = Buffer.from((await registry.provisionDirect("hub-1")).key, "base64");
    const metrics = createMetrics();
    const logs: string[] = [];
    const acks: string[] = [];
    const ingest = new Ingest({
      store,
      registry,
      metrics,
      log: pino({ level: "debug" }, { write: (line: string) => void logs.push(line) }),
      batchMaxEvents: 100,
      batchMaxWaitMs: 2,
      maxPayloadBytes: 65536,
      clockSkewFlagMs: 300_000,
      onAck: (_hub, ids) => void acks.push(...ids),
      now: () => T0,
      verifyThreads: threads,
      verifyInlineBelow: 0,
    });
    await ingest._verifyThreadsReady();
    t.after(async () => {
      await ingest.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    });

    // 20,000 levels of arrays fit in 40 KB, well under the payload limit, and used to overflow canonicalJson.
    // The signature is a well-formed one (the sender's canonical form cannot be computed either).
    const depth = 20_000;
    const deep = `{"v":1,"hub":"hub-1","boot":1,"seq":1,"id":"${ulid(T0)}","ts":${T0},"kind":"alarm","type":"sos","severity":"critical","data":{"x":${"[".repeat(depth)}1${"]".repeat(depth)}},"sig":"${"a".repeat(64)}"}`;
    assert.ok(deep.length < 65536);
    ingest.handle("hub-1", Buffer.from(deep));
    const zero = signEnvelope(base({ seq: 0 }), key);
    ingest.handle("hub-1", Buffer.from(JSON.stringify(zero)));
    const good = signEnvelope(base({ seq: 2, id: ulid(T0 + 1) }), key);
    ingest.handle("hub-1", Buffer.from(JSON.stringify(good)));
    await ingest.flush();

    assert.equal(await counter(metrics, "anxin_relay_events_rejected_total", { reason: "schema" }), 2);
    assert.equal(await counter(metrics, "anxin_relay_events_rejected_total"), 2);
    assert.deepEqual(acks, [good.id]);
    assert.equal(await store.countEvents("hub-1"), 1);
    assert.equal(ingest.pending, 0, "nothing left counted in the backlog");
    const all = logs.join("");
    assert.doesNotMatch(all, /internal error|worker.*(exit|fail)/i);
    assert.match(all, /"reason":"schema".*data: custom/);
    assert.match(all, /"reason":"schema".*seq: too_small/);
  });
