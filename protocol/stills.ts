// Camera stills of an alarm, hub → relay over HTTPS (never MQTT): one JPEG per request, its facts in headers,
// signed with the hub's own key like its events (HMAC-SHA256 over a canonical JSON form). `t: "still"` keeps
// this signature apart from events, state, acks and commands, so none can be replayed as another. docs/camera.md.
import { createHmac, timingSafeEqual } from "node:crypto";
import { z } from "zod";
import { canonicalJson } from "./signing.js";

/** Where a hub posts a still, below the relay's base URL. */
export const STILLS_UPLOAD_PATH = "/v1/stills";

/** The headers of an upload (lower case, as node gives them). */
export const STILL_HEADERS = {
  hub: "x-anxin-hub",
  event: "x-anxin-event",
  still: "x-anxin-still",
  index: "x-anxin-still-index",
  takenAt: "x-anxin-taken-at",
  ts: "x-anxin-ts",
  sha256: "x-anxin-sha256",
  sig: "x-anxin-signature",
} as const;

/** The largest still either side accepts (a 1080p snapshot at ordinary quality is 150–600 KB). */
export const STILL_MAX_BYTES = 2 * 1024 * 1024;
/** How far (either way) an upload's `ts` may be from the relay's clock; the refusal carries the relay's clock. */
export const STILL_MAX_SKEW_MS = 5 * 60_000;

const ULID = /^[0-9A-HJKMNP-TV-Z]{26}$/;

/** What a signature covers: who, which alarm, which still, when, and the bytes (their SHA-256 and length). */
export const stillClaimSchema = z
  .object({
    hub: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/),
    /** The alarm event's id (the envelope's `id`). */
    event: z.string().regex(ULID),
    /** This still's own id: a relay stores each id once, so a replayed upload is refused. */
    still: z.string().regex(ULID),
    /** 1.. within the alarm's burst. */
    index: z.number().int().min(1).max(100),
    /** When the hub read it from the camera (hub clock, ms). */
    takenAt: z.number().int().nonnegative(),
    /** When the hub signed the upload, on its best idea of the relay's clock (ms). */
    ts: z.number().int().nonnegative(),
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
    bytes: z.number().int().min(1).max(64 * 1024 * 1024),
  })
  .strict();
export type StillClaim = z.infer<typeof stillClaimSchema>;

function mac(c: StillClaim, key: Buffer): Buffer {
  return createHmac("sha256", key).update(canonicalJson({ ...c, t: "still" })).digest();
}

/** The hub's signature over a still's claim, hex. */
export function signStill(c: StillClaim, key: Buffer): string {
  return mac(c, key).toString("hex");
}

/** True when `sig` is the HMAC of `c` with `key` (constant-time compare). */
export function verifyStill(c: StillClaim, sig: string, key: Buffer): boolean {
  if (!/^[0-9a-f]{64}$/.test(sig)) return false;
  const want = mac(c, key);
  const got = Buffer.from(sig, "hex");
  return got.length === want.length && timingSafeEqual(got, want);
}

/** The claim as headers (numbers in decimal), plus the signature. */
export function stillHeaders(c: StillClaim, sig: string): Record<string, string> {
  const h = STILL_HEADERS;
  return {
    [h.hub]: c.hub,
    [h.event]: c.event,
    [h.still]: c.still,
    [h.index]: String(c.index),
    [h.takenAt]: String(c.takenAt),
    [h.ts]: String(c.ts),
    [h.sha256]: c.sha256,
    [h.sig]: sig,
  };
}

/** JPEG files start with SOI and another marker: FF D8 FF. */
export function looksLikeJpeg(b: Uint8Array): boolean {
  return b.length >= 4 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff;
}
