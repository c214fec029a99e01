// HMAC-SHA256 over a canonical form of the envelope, so any broker may carry it unchanged.
import { createHmac, createSecretKey, timingSafeEqual, type KeyObject } from "node:crypto";
import type { Envelope } from "./envelope.js";

/**
 * Nesting the canonical form follows before it gives up: the envelope (1), its `data` (2) and the
 * MAX_DATA_DEPTH levels the schema allows inside, with room to spare. The schema refuses deeper events
 * first; this bound only keeps an unvalidated value from exhausting the stack.
 */
export const MAX_CANONICAL_DEPTH = 32;

/** Thrown by canonicalJson for a value nested deeper than MAX_CANONICAL_DEPTH. */
export class CanonicalDepthError extends Error {
  override name = "CanonicalDepthError";
  constructor() {
    super(`nested deeper than ${MAX_CANONICAL_DEPTH} levels`);
  }
}

/**
 * JSON with object keys sorted at every depth; arrays keep their order. Defined over JSON values (what
 * JSON.parse yields); for the values JSON has no spelling for it does as JSON.stringify does, so what is
 * signed is what is sent: an undefined (or function) member is left out, an undefined array element is
 * `null` (docs/wire-protocol.md, "Canonical form"; vectors in protocol/test-vectors.json). Written as loops
 * over sorted keys (not entries/filter/map): it runs once per event on both sides and was a visible share of
 * ingest CPU.
 * Throws CanonicalDepthError past MAX_CANONICAL_DEPTH levels.
 */
export function canonicalJson(value: unknown): string {
  return canonical(value, 0) as string;
}

/**
 * What JSON.stringify makes of a string: the string in quotes when nothing in it needs escaping (no quote,
 * backslash, control character or surrogate, paired or not), else JSON.stringify's own answer.
 */
// eslint-disable-next-line no-control-regex -- the control characters are exactly what JSON escapes
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;
function quote(s: string): string {
  return NEEDS_ESCAPE.test(s) ? JSON.stringify(s) : `"${s}"`;
}

/** undefined for what JSON.stringify leaves out (undefined, a function, a symbol). */
function canonical(value: unknown, depth: number): string | undefined {
  // The primitives as JSON.stringify spells them, without a call into it for the common ones.
  switch (typeof value) {
    case "string":
      return quote(value);
    case "number":
      return Number.isFinite(value) ? String(value) : "null";
    case "boolean":
      return value ? "true" : "false";
    case "object":
      if (value === null) return "null";
      break;
    default:
      return JSON.stringify(value); // undefined, a function or a symbol (left out); a bigint throws as JSON.stringify does
  }
  if (++depth > MAX_CANONICAL_DEPTH) throw new CanonicalDepthError();
  if (Array.isArray(value)) {
    let out = "[";
    for (let i = 0; i < value.length; i++) out += (i ? "," : "") + (canonical(value[i], depth) ?? "null");
    return out + "]";
  }
  return members(value as Record<string, unknown>, depth, false);
}

/**
 * Object.keys(obj).sort(), remembered for the last few key sequences: every envelope of a kind has the same
 * keys in the same order, and sorting them was a visible share of the canonical form. A sequence is only
 * reused when it is the same, key for key, so the answer is always what sorting would give.
 */
const SORTED_CACHE_SIZE = 8;
const SORTED_CACHE_MAX_KEYS = 32;
const SORTED_CACHE_MAX_CHARS = 1024;
const sortedCache: Array<{ keys: string[]; sorted: string[] }> = [];
function sortedKeys(obj: object): string[] {
  const keys = Object.keys(obj);
  const n = keys.length;
  if (n < 2) return keys;
  if (n > SORTED_CACHE_MAX_KEYS) return keys.sort();
  search: for (let c = 0; c < sortedCache.length; c++) {
    const entry = sortedCache[c] as { keys: string[]; sorted: string[] };
    const known = entry.keys;
    if (known.length !== n) continue;
    for (let i = 0; i < n; i++) if (known[i] !== keys[i]) continue search;
    return entry.sorted;
  }
  const sorted = keys.slice().sort();
  let chars = 0;
  for (let i = 0; i < n; i++) chars += (keys[i] as string).length;
  if (chars > SORTED_CACHE_MAX_CHARS) return sorted; // not kept: what the cache holds stays small whatever arrives
  if (sortedCache.length >= SORTED_CACHE_SIZE) sortedCache.pop();
  sortedCache.unshift({ keys, sorted });
  return sorted;
}

/** An object's members with sorted keys; `unsigned` leaves out what is not signed (sig, historical). */
function members(obj: Record<string, unknown>, depth: number, unsigned: boolean): string {
  let out = "{";
  let first = true;
  for (const k of sortedKeys(obj)) {
    if (unsigned && (k === "sig" || k === "historical")) continue;
    const v = canonical(obj[k], depth);
    if (v === undefined) continue;
    out += (first ? "" : ",") + quote(k) + ":" + v;
    first = false;
  }
  return out + "}";
}

/**
 * canonicalJson of the envelope without `sig` and `historical` (the sender sets `historical` when it
 * resends, so it is left out of what is signed), built without copying the envelope first.
 */
function signedCanonical(e: Envelope): string {
  return members(e, 1, true);
}

/** Keys as KeyObjects, made once per key buffer: building one from raw bytes for every event costs more. */
const keyObjects = new WeakMap<Buffer, KeyObject>();
function hmacKey(key: Buffer): KeyObject {
  let k = keyObjects.get(key);
  if (!k) keyObjects.set(key, (k = createSecretKey(key)));
  return k;
}

export function signEnvelope(e: Envelope, key: Buffer): Envelope {
  const sig = createHmac("sha256", hmacKey(key)).update(signedCanonical(e)).digest("hex");
  return { ...e, sig };
}

export function verifyEnvelope(e: Envelope, key: Buffer): boolean {
  if (!e.sig) return false;
  const want = createHmac("sha256", hmacKey(key)).update(signedCanonical(e)).digest();
  const got = Buffer.from(e.sig, "hex");
  return got.length === want.length && timingSafeEqual(got, want);
}
