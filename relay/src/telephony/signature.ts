// The signature on every HTTP message the relay exchanges with its telephony gateway and forwards to
// receivers: HMAC-SHA256 over "<timestamp>.<raw body>", so a captured message cannot be replayed later
// under a fresh timestamp. Headers: X-Anxin-Timestamp (ms since epoch), X-Anxin-Signature (sha256=<hex>).
import { createHmac, timingSafeEqual } from "node:crypto";

export const SIGNATURE_HEADER = "x-anxin-signature";
export const TIMESTAMP_HEADER = "x-anxin-timestamp";

export function anxinSignature(secret: string | Buffer, timestamp: number | string, body: string | Buffer): string {
  return `sha256=${createHmac("sha256", secret).update(`${timestamp}.`).update(body).digest("hex")}`;
}

/** The two headers for `body` signed at `timestamp`. */
export function signedHeaders(secret: string | Buffer, timestamp: number, body: string | Buffer): Record<string, string> {
  return { "X-Anxin-Timestamp": String(timestamp), "X-Anxin-Signature": anxinSignature(secret, timestamp, body) };
}

export type SignatureCheck = { ok: true; timestamp: number } | { ok: false; reason: "missing" | "malformed" | "stale" | "mismatch" };

/**
 * Checks a received message. `windowMs`: how far the timestamp may be from `now` either way. Constant-time
 * comparison; the reason is for logs and metrics, never for the caller's reply.
 */
export function verifyAnxinSignature(
  secret: string | Buffer,
  headers: { timestamp: string | string[] | undefined; signature: string | string[] | undefined },
  body: string | Buffer,
  now: number,
  windowMs: number,
): SignatureCheck {
  const ts = headers.timestamp;
  const sig = headers.signature;
  if (typeof ts !== "string" || typeof sig !== "string") return { ok: false, reason: "missing" };
  if (!/^\d{1,16}$/.test(ts) || !/^sha256=[0-9a-f]{64}$/.test(sig)) return { ok: false, reason: "malformed" };
  const t = Number(ts);
  if (Math.abs(now - t) > windowMs) return { ok: false, reason: "stale" };
  const want = Buffer.from(anxinSignature(secret, ts, body));
  const got = Buffer.from(sig);
  if (want.length !== got.length || !timingSafeEqual(want, got)) return { ok: false, reason: "mismatch" };
  return { ok: true, timestamp: t };
}
