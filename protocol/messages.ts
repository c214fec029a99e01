// The other messages of wire contract v1: acknowledgements, hub state (birth and will), remote
// commands, and the enrolment exchange over HTTP.
import { z } from "zod";

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

/** hub → relay on `anxin/v1/{hub}/state`, retained. Birth on connect; the MQTT will says offline. */
export const stateSchema = z
  .object({
    online: z.boolean(),
    boot: z.number().int().nonnegative(),
    version: z.string().max(32).optional(),
    heartbeatS: z.number().int().positive().optional(),
    ts: z.number().int().nonnegative().optional(),
  })
  .strict();
export type HubState = z.infer<typeof stateSchema>;

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
