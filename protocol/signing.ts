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

/** undefined for what JSON.stringify leaves out (undefined, a function, a symbol). */
function canonical(value: unknown, depth: number): string | undefined {
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  if (++depth > MAX_CANONICAL_DEPTH) throw new CanonicalDepthError();
  if (Array.isArray(value)) {
    let out = "[";
    for (let i = 0; i < value.length; i++) out += (i ? "," : "") + (canonical(value[i], depth) ?? "null");
    return out + "]";
  }
  const obj = value as Record<string, unknown>;
  let out = "{";
  let first = true;
  for (const k of Object.keys(obj).sort()) {
    const v = canonical(obj[k], depth);
    if (v === undefined) continue;
    out += (first ? "" : ",") + JSON.stringify(k) + ":" + v;
    first = false;
  }
  return out + "}";
}

/** `historical` is set by the sender when it resends, so it is left out of what is signed. */
function signedPart(e: Envelope): Omit<Envelope, "sig" | "historical"> {
  const { sig: _sig, historical: _h, ...rest } = e;
  return rest;
}

/** Keys as KeyObjects, made once per key buffer: building one from raw bytes for every event costs more. */
const keyObjects = new WeakMap<Buffer, KeyObject>();
function hmacKey(key: Buffer): KeyObject {
  let k = keyObjects.get(key);
  if (!k) keyObjects.set(key, (k = createSecretKey(key)));
  return k;
}

export function signEnvelope(e: Envelope, key: Buffer): Envelope {
  const sig = createHmac("sha256", hmacKey(key)).update(canonicalJson(signedPart(e))).digest("hex");
  return { ...e, sig };
}

export function verifyEnvelope(e: Envelope, key: Buffer): boolean {
  if (!e.sig) return false;
  const want = createHmac("sha256", hmacKey(key)).update(canonicalJson(signedPart(e))).digest();
  const got = Buffer.from(e.sig, "hex");
  return got.length === want.length && timingSafeEqual(got, want);
}
