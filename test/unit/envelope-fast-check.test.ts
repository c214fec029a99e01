// The ingest's hand-written envelope check (relay/src/ingest/envelope-fast-check.ts) against the zod schema
// it stands in for, and the rewritten canonical form (protocol/signing.ts) against the one it replaced.
// The fast check may be stricter than zod (whatever it does not accept, zod decides) but never looser:
// on a corpus of valid envelopes and many hostile mutations of them, everything it accepts zod accepts,
// with the same members and values (so the same signature), and parseEnvelope gives the verdicts and error
// messages the zod-only check gave.
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { test } from "node:test";
import { envelopeSchema, MAX_DATA_DEPTH, type Envelope } from "../../protocol/envelope.js";
import { CanonicalDepthError, canonicalJson, MAX_CANONICAL_DEPTH, signEnvelope, verifyEnvelope } from "../../protocol/signing.js";
import { fastEnvelope } from "../../relay/src/ingest/envelope-fast-check.js";
import { idOf, parseEnvelope, type Parsed } from "../../relay/src/ingest/verify-check.js";
import { seededRandom } from "../support/prng.js";

const KEY = Buffer.alloc(32, 7);
const ID = "01JD0000000000000000000000";

// ---- references: the code as it was before the fast paths

/** parseEnvelope as it was: JSON, then zod, then the hub. */
function zodParse(hubFromTopic: string, text: string): Parsed {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { ok: false, reason: "not_json" };
  }
  const parsed = envelopeSchema.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues.slice(0, 5).map((i) => `${i.path.join(".")}: ${i.code}`);
    const id = idOf(raw);
    return { ok: false, reason: "schema", ...(id ? { id } : {}), extra: { issues } };
  }
  const env = parsed.data;
  if (env.hub !== hubFromTopic) return { ok: false, reason: "hub_mismatch", id: env.id, extra: { envelopeHub: env.hub } };
  return { ok: true, env };
}

/** canonicalJson as it was (entries sorted, JSON.stringify for every primitive and key). */
function oldCanonical(value: unknown, depth = 0): string | undefined {
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  if (++depth > MAX_CANONICAL_DEPTH) throw new CanonicalDepthError();
  if (Array.isArray(value)) {
    let out = "[";
    for (let i = 0; i < value.length; i++) out += (i ? "," : "") + (oldCanonical(value[i], depth) ?? "null");
    return out + "]";
  }
  const obj = value as Record<string, unknown>;
  let out = "{";
  let first = true;
  for (const k of Object.keys(obj).sort()) {
    const v = oldCanonical(obj[k], depth);
    if (v === undefined) continue;
    out += (first ? "" : ",") + JSON.stringify(k) + ":" + v;
    first = false;
  }
  return out + "}";
}

/** The signature as it was: HMAC over the canonical form of a copy without sig and historical. */
function oldSig(e: Envelope, key: Buffer): string {
  const { sig: _s, historical: _h, ...rest } = e;
  return createHmac("sha256", key).update(oldCanonical(rest) as string).digest("hex");
}

// ---- the corpus

function nested(levels: number): Record<string, unknown> {
  let v: Record<string, unknown> = { leaf: 1 };
  for (let i = 1; i < levels; i++) v = { a: v };
  return v;
}

/** `levels` arrays, one inside the other, around a 1. */
function arrays(levels: number): unknown {
  let v: unknown = 1;
  for (let i = 0; i < levels; i++) v = [v];
  return v;
}

/** Valid envelopes: every optional member present and absent, values at their bounds. */
function validCorpus(): Array<Record<string, unknown>> {
  const min = { v: 1, hub: "h", boot: 0, seq: 1, id: ID, ts: 0, kind: "heartbeat", type: "h", severity: "info" };
  const full = {
    v: 1,
    hub: "hub-7.a_b",
    boot: 2,
    seq: 41,
    id: "7ZZZZZZZZZZZZZZZZZZZZZZZZZ",
    ts: 1764390000000,
    kind: "alarm",
    type: "gas",
    severity: "critical",
    device: "gas-1",
    room: "厨房",
    data: { lel: 23.5, b: [1, { z: 1, a: null }], s: 'q"\\\n\u2028', e: {}, arr: [] },
    actions: [{ target: "valve-1", action: "valve_closed", ok: true, detail: "d".repeat(256), at: 0 }],
    historical: false,
    test: true,
    sig: "0".repeat(64),
  };
  const out: Array<Record<string, unknown>> = [min, full];
  for (const kind of ["alarm", "alarm_cleared", "device", "heartbeat", "reading", "audit"]) out.push({ ...min, kind });
  for (const severity of ["critical", "high", "warning", "info"]) out.push({ ...min, severity });
  out.push({ ...min, boot: Number.MAX_SAFE_INTEGER, seq: Number.MAX_SAFE_INTEGER, ts: Number.MAX_SAFE_INTEGER });
  out.push({ ...min, hub: "A" + "b".repeat(63), device: "Z" + "-".repeat(63), type: "a" + "_".repeat(47), room: "r".repeat(64), room2: undefined });
  out.push({ ...min, room: "" });
  out.push({ ...min, historical: true });
  out.push({ ...min, data: {} });
  out.push({ ...min, data: nested(MAX_DATA_DEPTH - 1) }); // data itself is level 1
  out.push({ ...min, data: { deep: nested(MAX_DATA_DEPTH - 1) } });
  out.push({ ...min, data: { "10": 1, "9": 2, "": 3, "ü": 4, "\ud83d\ude00": 5 } });
  out.push({ ...min, data: { n: -0, big: 1e308, tiny: 5e-324, neg: -1.5, t: true, f: false, nul: null } });
  out.push({ ...min, actions: [] });
  out.push({ ...min, actions: Array.from({ length: 32 }, (_, i) => ({ action: `a${i}` })) });
  out.push({ ...min, actions: [{ action: "x".repeat(64), target: "", at: Number.MAX_SAFE_INTEGER, ok: false, detail: "" }] });
  out.push({ ...min, sig: "0123456789abcdef".repeat(4) });
  // `room2: undefined` above: JSON leaves it out; as an object it is an unknown key (both refuse).
  return out;
}

const HOSTILE_VALUES: unknown[] = [
  null,
  true,
  false,
  0,
  -0,
  1,
  -1,
  1.5,
  2 ** 53,
  -(2 ** 53),
  1e308,
  "",
  "x",
  "0".repeat(64),
  "x".repeat(65),
  "x".repeat(257),
  "x".repeat(100_000),
  "\u0000",
  "a\nb",
  "\ud800",
  "ALARM",
  "alarm ",
  " alarm",
  "01JD0000000000000000000000\n",
  "01JD000000000000000000000I",
  "01jd0000000000000000000000",
  "g".repeat(64),
  "A".repeat(64),
  [],
  [1],
  [{ action: "x" }],
  {},
  { a: 1 },
  nested(MAX_DATA_DEPTH),
  nested(MAX_DATA_DEPTH + 1),
  nested(200),
];

/** A member set to a value, as text (so `__proto__` arrives as an own member, as from the wire). */
function withMember(base: Record<string, unknown>, key: string, value: unknown): string {
  const body = JSON.stringify(base);
  const member = `${JSON.stringify(key)}:${JSON.stringify(value) ?? "null"}`;
  return body === "{}" ? `{${member}}` : `{${member},${body.slice(1)}`;
}

function mutations(base: Record<string, unknown>): string[] {
  const texts: string[] = [JSON.stringify(base)];
  const keys = [...Object.keys(base), "device", "room", "data", "actions", "historical", "test", "sig"];
  for (const k of keys) {
    const { [k]: _gone, ...without } = base;
    texts.push(JSON.stringify(without));
    for (const v of HOSTILE_VALUES) texts.push(withMember(without, k, v));
  }
  for (const extra of ["extra", "__proto__", "constructor", "toString", "hasOwnProperty", "Sig", "v ", ""]) {
    for (const v of [1, null, {}, { v: 1 }, "x"]) texts.push(withMember(base, extra, v));
  }
  // data: members zod strips or judges itself, shapes it refuses
  for (const data of [
    '{"__proto__":{"x":1}}',
    '{"__proto__":1,"a":2}',
    '{"constructor":1}',
    '{"constructor":{"prototype":1}}',
    '{"a":{"__proto__":{"b":1}}}',
    "[]",
    "[1,2]",
    "null",
    '"x"',
    "1",
    JSON.stringify(nested(MAX_DATA_DEPTH)),
    JSON.stringify(nested(MAX_DATA_DEPTH + 1)),
    JSON.stringify({ a: arrays(MAX_DATA_DEPTH - 1) }),
    JSON.stringify({ a: arrays(MAX_DATA_DEPTH) }),
  ]) {
    const { data: _d, ...without } = base;
    texts.push(`{"data":${data},${JSON.stringify(without).slice(1)}`);
  }
  // actions: each member of an action mutated, extra members, too many, not objects
  const action = { action: "valve_closed", target: "valve-1", ok: true, detail: "d", at: 5 };
  const { actions: _a, ...noActions } = base;
  const actionTexts: string[] = [];
  for (const k of [...Object.keys(action), "extra", "__proto__", "constructor"]) {
    const { [k]: _gone, ...rest } = action as Record<string, unknown>;
    actionTexts.push(JSON.stringify(rest));
    for (const v of HOSTILE_VALUES) actionTexts.push(withMember(rest, k, v));
  }
  for (const a of actionTexts) texts.push(`{"actions":[${a}],${JSON.stringify(noActions).slice(1)}`);
  texts.push(`{"actions":[${Array(33).fill('{"action":"a"}').join(",")}],${JSON.stringify(noActions).slice(1)}`);
  for (const a of ["null", "1", '"x"', "[]", "[[]]", '{"action":"a"}']) texts.push(`{"actions":${a === '{"action":"a"}' ? a : `[${a}]`},${JSON.stringify(noActions).slice(1)}`);
  return texts;
}

/** Random combinations of member mutations, several at once, some nested in data and actions. */
function randomTexts(bases: Array<Record<string, unknown>>, n: number): string[] {
  const rnd = seededRandom(14);
  const pick = <T>(a: readonly T[]): T => a[Math.floor(rnd() * a.length)] as T;
  const keys = ["v", "hub", "boot", "seq", "id", "ts", "kind", "type", "severity", "device", "room", "data", "actions", "historical", "test", "sig", "extra"];
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const e: Record<string, unknown> = structuredClone(pick(bases));
    for (let m = 1 + Math.floor(rnd() * 3); m > 0; m--) {
      const k = pick(keys);
      const r = rnd();
      if (r < 0.2) delete e[k];
      else if (r < 0.9) e[k] = structuredClone(pick(HOSTILE_VALUES));
      else {
        const a: unknown = Array.isArray(e.actions) ? e.actions[0] : undefined;
        if (a !== null && typeof a === "object" && !Array.isArray(a)) (a as Record<string, unknown>)[pick(["action", "target", "ok", "detail", "at", "x"])] = structuredClone(pick(HOSTILE_VALUES));
      }
    }
    out.push(JSON.stringify(e));
  }
  return out;
}

function checkText(text: string, counts: { fast: number; zodOnly: number; refused: number }): void {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return;
  }
  const z = envelopeSchema.safeParse(raw);
  const fast = fastEnvelope(raw);
  if (fast !== undefined) {
    counts.fast++;
    assert.ok(z.success, `fast check accepted what zod refuses: ${text.slice(0, 300)}`);
    // The same members with the same values: the same canonical form, so the same signature.
    assert.equal(canonicalJson(fast), canonicalJson(z.data), text.slice(0, 300));
    assert.deepEqual({ ...fast }, { ...z.data });
    assert.equal(signEnvelope(fast, KEY).sig, signEnvelope(z.data, KEY).sig);
  } else if (z.success) counts.zodOnly++;
  else counts.refused++;
  // End to end the verdict, id and issues are those of the zod-only check.
  for (const hub of [typeof (raw as { hub?: unknown } | null)?.hub === "string" ? (raw as { hub: string }).hub : "h", "other-hub"]) {
    const got = parseEnvelope(hub, text);
    const want = zodParse(hub, text);
    if (got.ok && want.ok) assert.deepEqual({ ...got.env }, { ...want.env });
    else assert.deepEqual(got, want, text.slice(0, 300));
  }
}

test("fast check: every valid envelope of the corpus is accepted by it, as by zod, with the same members", () => {
  for (const e of validCorpus()) {
    const text = JSON.stringify(e);
    const raw: unknown = JSON.parse(text);
    const z = envelopeSchema.safeParse(raw);
    assert.ok(z.success, text);
    const fast = fastEnvelope(raw);
    assert.ok(fast !== undefined, `fast check left a plain valid envelope to zod: ${text.slice(0, 200)}`);
    assert.deepEqual({ ...fast }, { ...z.data });
    assert.equal(canonicalJson(fast), canonicalJson(z.data));
  }
});

test("fast check: never accepts what zod refuses, on systematic mutations (missing, wrong types, out of range, extra and prototype keys, huge strings)", () => {
  const counts = { fast: 0, zodOnly: 0, refused: 0 };
  let n = 0;
  for (const base of validCorpus()) {
    for (const text of mutations(base)) {
      checkText(text, counts);
      n++;
    }
  }
  assert.ok(n > 20_000, `corpus of ${n}`);
  // Both sides are exercised: many accepted on the fast path, many refused.
  assert.ok(counts.fast > 1000 && counts.refused > 10_000, JSON.stringify(counts));
});

test("fast check: never accepts what zod refuses, on random combinations of mutations", () => {
  const counts = { fast: 0, zodOnly: 0, refused: 0 };
  for (const text of randomTexts(validCorpus(), 20_000)) checkText(text, counts);
  assert.ok(counts.fast > 500 && counts.refused > 5_000, JSON.stringify(counts));
});

test("fast check: members zod would strip or judge (a __proto__ or constructor in data) are left to zod", () => {
  const text = `{"data":{"__proto__":{"polluted":1},"a":1},${JSON.stringify({ v: 1, hub: "h", boot: 0, seq: 1, id: ID, ts: 0, kind: "reading", type: "t", severity: "info" }).slice(1)}`;
  const raw: unknown = JSON.parse(text);
  assert.equal(fastEnvelope(raw), undefined);
  const z = envelopeSchema.safeParse(raw);
  assert.ok(z.success);
  assert.equal(Object.prototype.hasOwnProperty.call(z.data.data, "__proto__"), false);
  const p = parseEnvelope("h", text);
  assert.ok(p.ok);
  assert.equal(canonicalJson(p.env), canonicalJson(z.data));
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});

test("fast check: objects that are not plain JSON go to zod", () => {
  const ok = { v: 1, hub: "h", boot: 0, seq: 1, id: ID, ts: 0, kind: "reading", type: "t", severity: "info" };
  assert.ok(fastEnvelope(ok));
  assert.equal(fastEnvelope([ok]), undefined);
  assert.equal(fastEnvelope(null), undefined);
  assert.equal(fastEnvelope("x"), undefined);
  assert.equal(fastEnvelope({ ...ok, data: new Map() }), undefined);
  assert.equal(fastEnvelope({ ...ok, data: Object.create({ inherited: 1 }) as object }), undefined);
  assert.equal(fastEnvelope({ ...ok, ts: 1.5 }), undefined);
  assert.equal(fastEnvelope({ ...ok, ts: Number.NaN }), undefined);
  assert.equal(fastEnvelope({ ...ok, ts: Infinity }), undefined);
  assert.equal(fastEnvelope({ ...ok, boot: -0 })?.boot, -0); // zod takes -0 as a non-negative integer too
  assert.ok(envelopeSchema.safeParse({ ...ok, boot: -0 }).success);
  assert.equal(fastEnvelope({ ...ok, kind: new String("alarm") }), undefined);
});

// ---- the canonical form and signature, rewritten for speed

const CANONICAL_CASES: unknown[] = [
  null,
  true,
  false,
  0,
  -0,
  1.5,
  1e21,
  5e-324,
  Number.NaN,
  Infinity,
  -Infinity,
  "",
  "plain",
  'q"\\\n\t\r\b\f\u0000\u001f\u007f\u2028\u2029',
  "\ud800",
  "\udc00x",
  "\ud83d\ude00",
  "厨房 ü é",
  undefined,
  () => 1,
  Symbol("s"),
  [],
  [undefined, () => 1, Symbol("s"), null, 1],
  {},
  { b: undefined, a: [3, 2, 1], "10": 1, "9": 2, "": 0, "\ud800": 1, 'k"\n': 2 },
  { z: { y: { x: [{ b: 1, a: 2 }] } }, a: new Date(0), m: new Map([[1, 2]]), s: new String("s"), n: new Number(1) },
  JSON.parse('{"__proto__":{"a":1},"b":2}') as unknown,
  Object.assign(Object.create({ inherited: 1 }) as object, { own: 1 }),
  nested(MAX_CANONICAL_DEPTH - 1),
];

test("canonical form: identical to the implementation it replaced, for JSON values and what JSON has no spelling for", () => {
  for (const v of CANONICAL_CASES) assert.equal(canonicalJson(v), oldCanonical(v), String(typeof v));
  // The key-order cache: the same keys in another order, or other keys of the same count, still sort afresh.
  const keys = ["v", "hub", "boot", "seq", "id", "ts", "kind", "type", "severity", "device"];
  const rnd = seededRandom(7);
  for (let i = 0; i < 2000; i++) {
    const o: Record<string, unknown> = {};
    const ks = [...keys].sort(() => rnd() - 0.5).slice(0, 2 + Math.floor(rnd() * 9));
    if (rnd() < 0.3) ks.push(`k${Math.floor(rnd() * 50)}`);
    for (const k of ks) o[k] = rnd() < 0.2 ? { [ks[0] as string]: 1, a: [k] } : k;
    assert.equal(canonicalJson(o), oldCanonical(o));
  }
  assert.throws(() => canonicalJson(nested(MAX_CANONICAL_DEPTH + 1)), CanonicalDepthError);
  assert.throws(() => oldCanonical(nested(MAX_CANONICAL_DEPTH + 1)), CanonicalDepthError);
  assert.throws(() => canonicalJson({ a: 1n }), TypeError);
});

test("signature: the same as before for the corpus, with and without historical and sig, in any key order", () => {
  for (const base of validCorpus()) {
    const e = JSON.parse(JSON.stringify(base)) as Envelope;
    const sig = oldSig(e, KEY);
    assert.equal(signEnvelope(e, KEY).sig, sig);
    const signed = { ...e, sig } as Envelope;
    assert.equal(verifyEnvelope(signed, KEY), true);
    assert.equal(verifyEnvelope(Object.fromEntries(Object.entries(signed).reverse()) as Envelope, KEY), true);
    assert.equal(verifyEnvelope({ ...signed, historical: !signed.historical }, KEY), true);
    assert.equal(verifyEnvelope({ ...signed, seq: signed.seq + 1 }, KEY), false);
    assert.equal(verifyEnvelope({ ...signed, sig: undefined }, KEY), false);
    // A member only the relay's copy has (e.g. zod would have stripped it) changes the signature.
    assert.equal(verifyEnvelope(JSON.parse(`{"__proto__":1,${JSON.stringify(signed).slice(1)}`) as Envelope, KEY), false);
  }
});
