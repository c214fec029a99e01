// A hand-written check of the envelope schema (protocol/envelope.ts) for the ingest's hot path: the zod
// schema interpreted per event was a tenth of the relay's CPU. It only ever says "valid, here it is" or "not
// sure": whatever it does not accept goes through zod, which has the last word and the error message, so
// it can be stricter than zod but never looser (test/unit/envelope-fast-check.test.ts holds the two
// together on a corpus of valid and hostile envelopes).
//
// What it accepts, zod accepts, and the object it returns is the parsed JSON itself, which differs from
// zod's output only in key order and identity (zod copies into a fresh object in schema order): the same
// members with the same values, so the same canonical form for the signature. Where zod would drop a
// member (a `__proto__` key in `data`) it does not accept, and zod decides.
import { envelopeSchema, EVENT_KINDS, MAX_DATA_DEPTH, nestedDeeperThan, PROTOCOL_VERSION, SEVERITIES, type Envelope } from "../../../protocol/envelope.js";

// The patterns of protocol/envelope.ts (not exported there); the equivalence test keeps them in step.
const ULID = /^[0-9A-HJKMNP-TV-Z]{26}$/;
const ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const TYPE = /^[a-z][a-z0-9_]{0,47}$/;
const SIG = /^[0-9a-f]{64}$/;

const ENVELOPE_KEYS = ["v", "hub", "boot", "seq", "id", "ts", "kind", "type", "severity", "device", "room", "data", "actions", "historical", "test", "sig"];
const ACTION_KEYS = ["action", "target", "ok", "detail", "at"];
const KINDS: ReadonlySet<unknown> = new Set(EVENT_KINDS);
const SEVERITY_SET: ReadonlySet<unknown> = new Set(SEVERITIES);

/**
 * Off (everything to zod) if the schema's members are not the ones this check knows: a field added to or
 * removed from the schema must not be waved through (or refused) here before this file learns of it.
 */
const enabled = sameMembers(Object.keys(envelopeSchema.shape), ENVELOPE_KEYS);

function sameMembers(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((k) => b.includes(k));
}

/** Integer within the safe range and at least `min` (zod's .int() is a safe-integer check). */
function intAtLeast(v: unknown, min: number): boolean {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= min;
}

function optionalString(v: unknown, re: RegExp): boolean {
  return v === undefined || (typeof v === "string" && re.test(v));
}

function optionalMaxLength(v: unknown, max: number): boolean {
  return v === undefined || (typeof v === "string" && v.length <= max);
}

function plainRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** `data`: a plain object (not an array), no member zod would strip, nested no deeper than the schema allows. */
function dataOk(d: unknown): boolean {
  if (d === undefined) return true;
  if (!plainRecord(d)) return false;
  // zod leaves `__proto__` out of the record it builds; `constructor` decides what it takes for a plain
  // object. Rare on the wire: zod's answer, not ours.
  if (Object.prototype.hasOwnProperty.call(d, "__proto__") || Object.prototype.hasOwnProperty.call(d, "constructor")) return false;
  if (Object.getPrototypeOf(d) !== Object.prototype) return false;
  let nested = false;
  for (const k in d) {
    if (!Object.prototype.hasOwnProperty.call(d, k)) return false; // inherited enumerable members: zod's call
    const v = d[k];
    if (typeof v === "object" && v !== null) nested = true;
  }
  return !nested || !nestedDeeperThan(d, MAX_DATA_DEPTH);
}

function actionOk(a: unknown): boolean {
  if (!plainRecord(a)) return false;
  for (const k in a) if (!ACTION_KEYS.includes(k)) return false;
  const action = a.action;
  if (typeof action !== "string" || action.length < 1 || action.length > 64) return false;
  if (!optionalMaxLength(a.target, 64) || !optionalMaxLength(a.detail, 256)) return false;
  if (a.ok !== undefined && typeof a.ok !== "boolean") return false;
  return a.at === undefined || intAtLeast(a.at, 0);
}

function actionsOk(v: unknown): boolean {
  if (v === undefined) return true;
  if (!Array.isArray(v) || v.length > 32) return false;
  for (let i = 0; i < v.length; i++) if (!actionOk(v[i])) return false;
  return true;
}

/** The envelope when `raw` (parsed JSON) certainly satisfies envelopeSchema; undefined when zod must decide. */
export function fastEnvelope(raw: unknown): Envelope | undefined {
  if (!enabled || !plainRecord(raw)) return undefined;
  for (const k in raw) if (!ENVELOPE_KEYS.includes(k)) return undefined; // zod's strict object sees the same keys (for…in)
  const e = raw;
  if (e.v !== PROTOCOL_VERSION) return undefined;
  if (typeof e.hub !== "string" || !ID.test(e.hub)) return undefined;
  if (!intAtLeast(e.boot, 0) || !intAtLeast(e.seq, 1) || !intAtLeast(e.ts, 0)) return undefined;
  if (typeof e.id !== "string" || !ULID.test(e.id)) return undefined;
  if (!KINDS.has(e.kind) || !SEVERITY_SET.has(e.severity)) return undefined;
  if (typeof e.type !== "string" || !TYPE.test(e.type)) return undefined;
  if (!optionalString(e.device, ID) || !optionalMaxLength(e.room, 64) || !optionalString(e.sig, SIG)) return undefined;
  if (e.historical !== undefined && typeof e.historical !== "boolean") return undefined;
  if (e.test !== undefined && e.test !== true) return undefined;
  if (!dataOk(e.data) || !actionsOk(e.actions)) return undefined;
  return e as Envelope;
}
