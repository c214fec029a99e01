// HMAC-SHA256 over a canonical form of the envelope, so any broker may carry it unchanged.
import { createHmac, createSecretKey, timingSafeEqual, type KeyObject } from "node:crypto";
import type { Envelope } from "./envelope.js";

/**
 * JSON with object keys sorted at every depth; arrays keep their order. Written as loops over sorted keys
 * (not entries/filter/map): it runs once per event on both sides and was a visible share of ingest CPU.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  if (Array.isArray(value)) {
    let out = "[";
    for (let i = 0; i < value.length; i++) out += (i ? "," : "") + (canonicalJson(value[i]) ?? "");
    return out + "]";
  }
  const obj = value as Record<string, unknown>;
  let out = "{";
  let first = true;
  for (const k of Object.keys(obj).sort()) {
    const v = obj[k];
    if (v === undefined) continue;
    out += (first ? "" : ",") + JSON.stringify(k) + ":" + canonicalJson(v);
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
