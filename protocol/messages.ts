// The other messages of wire contract v1: acknowledgements, hub state (birth, will and the signed planned
// stop), remote commands, and the enrolment exchange over HTTP.
import { createHmac, timingSafeEqual } from "node:crypto";
import { z } from "zod";
import { canonicalJson } from "./signing.js";

const hubId = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/);
const ulid = z.string().regex(/^[0-9A-HJKMNP-TV-Z]{26}$/);

/** relay → hub on `anxin/v1/{hub}/ack`, sent only after the relay committed these events. */
export const ackSchema = z
  .object({
    ids: z.array(ulid).min(1).max(5000),
    /** The relay's clock (ms since epoch) when it sent the ack: a hub without a real-time clock learns the time here. */
    now: z.number().int().nonnegative(),
  })
  .strict();
export type Ack = z.infer<typeof ackSchema>;

/**
 * hub → relay on `anxin/v1/{hub}/state`, retained. Birth on connect; the MQTT will says offline. On a clean
 * stop the hub says so last, signed with its key: `{online: false, boot, ts, planned: true, reason,
 * expectBackWithinS, sig}` (see signState). Only a planned stop is signed; births and wills are not.
 */
export const stateSchema = z
  .object({
    online: z.boolean(),
    boot: z.number().int().nonnegative(),
    version: z.string().max(32).optional(),
    heartbeatS: z.number().int().positive().optional(),
    ts: z.number().int().nonnegative().optional(),
    /** A clean stop announced by the hub (only with `online: false`, only valid with a good `sig`). */
    planned: z.literal(true).optional(),
    /** Why it stops, a short token: `stopping` (SIGTERM: a restart, an update, a shutdown). */
    reason: z.string().regex(/^[a-z][a-z0-9_]{0,31}$/).optional(),
    /** When the hub expects to be back; the relay waits the lesser of this and its own grace. */
    expectBackWithinS: z.number().int().nonnegative().max(7 * 86400).optional(),
    /** HMAC-SHA256 with the hub's key over the canonical form of the rest (as for events), hex. */
    sig: z.string().max(128).optional(),
  })
  .strict();
export type HubState = z.infer<typeof stateSchema>;

/** The canonical form a state message is signed over: every field but `sig`, keys sorted (as for events). */
function stateMac(s: HubState, key: Buffer): Buffer {
  const { sig: _sig, ...rest } = s;
  return createHmac("sha256", key).update(canonicalJson(rest)).digest();
}

/** Signs a state message with the hub's key (the planned stop). */
export function signState(s: HubState, key: Buffer): HubState {
  return { ...s, sig: stateMac(s, key).toString("hex") };
}

/** True when `sig` is the hub's HMAC over the rest of the message (constant-time compare). */
export function verifyState(s: HubState, key: Buffer): boolean {
  if (!s.sig || !/^[0-9a-f]{64}$/.test(s.sig)) return false;
  const want = stateMac(s, key);
  const got = Buffer.from(s.sig, "hex");
  return got.length === want.length && timingSafeEqual(got, want);
}

/** relay → hub on `anxin/v1/{hub}/cmd`. There is deliberately no command that opens a valve. */
export const commandSchema = z.discriminatedUnion("cmd", [
  z.object({ cmd: z.literal("ping"), id: z.string().max(64) }).strict(),
  z.object({ cmd: z.literal("siren_test"), id: z.string().max(64), seconds: z.number().int().min(1).max(30).default(3) }).strict(),
]);
export type HubCommand = z.infer<typeof commandSchema>;

/** POST {relay}/v1/enrol: a one-time claim code exchanged for the hub's credentials and signing key. */
export const enrolRequestSchema = z.object({ hub: hubId, code: z.string().min(8).max(64) }).strict();
export type EnrolRequest = z.infer<typeof enrolRequestSchema>;

export const enrolResponseSchema = z
  .object({
    hub: hubId,
    mqtt: z.object({ url: z.string(), username: z.string(), password: z.string() }).strict(),
    /** HMAC-SHA256 key for event signatures, base64 (32 bytes). */
    key: z.string().min(40).max(64),
    heartbeatS: z.number().int().positive(),
  })
  .strict();
export type EnrolResponse = z.infer<typeof enrolResponseSchema>;
