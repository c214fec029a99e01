// Cross-site request forgery. The cookie alone never authorises a change: every request other than
// GET/HEAD/OPTIONS must also carry the session's CSRF token in `x-csrf-token`, which a page on another site
// cannot read. The token is derived from the session id (HMAC-SHA256 keyed with it), so each session has its
// own, it ends with the session, and the store holds nothing more than the session's hash. A browser's
// Origin header, when present, must name this host as well: a second, independent check (and the only one on
// the sign-in itself, which has no session yet).
import { createHmac, timingSafeEqual } from "node:crypto";

export const CSRF_HEADER = "x-csrf-token";

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

export const needsCsrf = (method: string) => !SAFE_METHODS.has(method.toUpperCase());

export function csrfTokenFor(sessionId: string): string {
  return createHmac("sha256", sessionId).update("anxin console csrf v1").digest("base64url");
}

/** Whether `presented` (the header's value) is the session's token, compared in constant time. */
export function csrfTokenMatches(sessionId: string, presented: string | string[] | undefined): boolean {
  if (typeof presented !== "string") return false;
  const want = Buffer.from(csrfTokenFor(sessionId));
  const got = Buffer.from(presented);
  return got.length === want.length && timingSafeEqual(got, want);
}

/**
 * Whether a request's Origin header (when it has one) is this host: `host` as the request named it (the
 * Host header, or X-Forwarded-Host behind a trusted proxy). "null" and anything unparsable do not match.
 */
export function originMatches(origin: string | undefined, host: string): boolean {
  if (origin === undefined) return true;
  try {
    return new URL(origin).host.toLowerCase() === new URL(`http://${host}`).host.toLowerCase();
  } catch {
    return false;
  }
}
