// HMAC-SHA256 over a canonical form of the envelope, so any broker may carry it unchanged.
import { createHmac, timingSafeEqual } from "node:crypto";
import type { Envelope } from "./envelope.js";

/** JSON with object keys sorted at every depth; arrays keep their order. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
}

/** `historical` is set by the sender when it resends, so it is left out of what is signed. */
function signedPart(e: Envelope): Omit<Envelope, "sig" | "historical"> {
  const { sig: _sig, historical: _h, ...rest } = e;
  return rest;
}

export function signEnvelope(e: Envelope, key: Buffer): Envelope {
  const sig = createHmac("sha256", key).update(canonicalJson(signedPart(e))).digest("hex");
  return { ...e, sig };
}

export function verifyEnvelope(e: Envelope, key: Buffer): boolean {
  if (!e.sig) return false;
  const want = createHmac("sha256", key).update(canonicalJson(signedPart(e))).digest();
  const got = Buffer.from(e.sig, "hex");
  return got.length === want.length && timingSafeEqual(got, want);
}
