// The other messages of wire contract v1: acknowledgements and remote commands (signed by the relay), hub
// state (birth, will and the signed planned stop), and the enrolment exchange over HTTP.
import { createHmac, timingSafeEqual } from "node:crypto";
import { z } from "zod";
import { canonicalJson } from "./signing.js";
import { ULID_PATTERN } from "./envelope.js";

const hubId = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/);
const ulid = z.string().regex(ULID_PATTERN);
/** The most event ids one ack carries. */
export const ACK_MAX_IDS = 5000;

/** relay → hub on `anxin/v1/{hub}/ack`, sent only after the relay committed these events. */
export const ackSchema = z
  .object({
    ids: z.array(ulid).min(1).max(ACK_MAX_IDS),
    /** The relay's clock (ms since epoch) when it sent the ack: a hub without a real-time clock learns the time here. */
    now: z.number().int().nonnegative(),
    /**
     * HMAC-SHA256 with the hub's key over `{t: "ack", hub, ids, now}` (see signAck), hex. Optional here only so
     * that a hub can tell an unsigned ack from a badly signed one when it refuses it: a hub acts on no ack
     * without a good signature.
     */
    sig: z.string().max(128).optional(),
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

/**
 * relay → hub on `anxin/v1/{hub}/cmd`. There is deliberately no command that opens a valve. Every command
 * carries the relay's clock (`ts`, ms since epoch) and is signed like an ack (`t: "cmd"`, see signCommand):
 * the hub runs only a signed command younger than COMMAND_MAX_AGE_MS whose id it has not run yet. `sig` is
 * optional here only so that an unsigned command is reported as such.
 */
/**
 * What the relay may ask a hub to say about an incident of its own: `family_coming`, a family contact
 * (emergency contact, relative or neighbour) pressed "I will go to the door"; `helper_coming`, another responder
 * in the call tree did (committee, volunteer, on-site team); `operator_handling`, a duty operator acknowledged;
 * `help_dispatched`, an operator recorded a dispatch (110/119/120, the gas company, someone sent to the door).
 */
export const ANNOUNCEMENTS = ["family_coming", "helper_coming", "operator_handling", "help_dispatched"] as const;
export type Announcement = (typeof ANNOUNCEMENTS)[number];
/** The alarm types an announcement can be about: those a hub raises locally and can check are still open. */
export const ANNOUNCED_ALARMS = ["sos", "fall", "inactivity", "gas", "co", "smoke", "vital_absent", "vital_abnormal", "valve_fault"] as const;
export type AnnouncedAlarm = (typeof ANNOUNCED_ALARMS)[number];

const commandFields = {
  id: z.string().max(64),
  ts: z.number().int().nonnegative(),
  sig: z.string().max(128).optional(),
};
export const commandSchema = z.discriminatedUnion("cmd", [
  z.object({ cmd: z.literal("ping"), ...commandFields }).strict(),
  z.object({ cmd: z.literal("siren_test"), ...commandFields, seconds: z.number().int().min(1).max(30).default(3) }).strict(),
  /**
   * Take a device out of service because the elder withdrew consent to it: `device` is the hub's own device
   * id. The hub refuses it for any safety device (detectors, valves, SOS buttons); see docs/wire-protocol.md.
   */
  z.object({ cmd: z.literal("retire_device"), ...commandFields, device: z.string().min(1).max(64), reason: z.literal("consent_withdrawn") }).strict(),
  /**
   * Tell the elder, through the hub's speaker, what happened to the incident its alarm opened: one of a fixed
   * set of announcements (never free text). `alarm` is the incident's alarm type and `incident` the relay's
   * incident id (recorded, never spoken): the hub speaks it only while it has an open local alarm of that type
   * (docs/voice.md).
   */
  z.object({ cmd: z.literal("announce"), ...commandFields, announcement: z.enum(ANNOUNCEMENTS), alarm: z.enum(ANNOUNCED_ALARMS), incident: z.string().min(1).max(64) }).strict(),
]);
export type HubCommand = z.infer<typeof commandSchema>;
/** A command as the relay's callers ask for it: the session adds `ts` and `sig`. */
export type HubCommandRequest =
  | { cmd: "ping"; id: string }
  | { cmd: "siren_test"; id: string; seconds?: number }
  | { cmd: "retire_device"; id: string; device: string; reason: "consent_withdrawn" }
  | { cmd: "announce"; id: string; announcement: Announcement; alarm: AnnouncedAlarm; incident: string };

/** How far (either way) a command's `ts` may be from the hub's idea of the relay's clock. */
export const COMMAND_MAX_AGE_MS = 60_000;

// --- relay → hub signatures --------------------------------------------------------------------------
//
// Acks and commands are signed by the relay with the hub's own key (the one the hub signs its events
// with). What is signed is the message as received without `sig`, plus two members the wire does not carry:
// `t`, what kind of message it is (`ack` or `cmd`), and `hub`, the hub of the topic it came on. `t` keeps the
// kinds apart from each other and from events and state (whose strict schemas have no `t`), so no signature
// can be replayed as another kind of message; `hub` ties it to one hub's topic. docs/wire-protocol.md,
// "Acks and commands"; vectors `ack`, `cmd_ping`, `cmd_siren_test`, `cmd_retire_device`, `cmd_announce` in protocol/test-vectors.json.

/** What a relay → hub message's signature is over: the message without `sig`, with `t` and `hub`. */
export function relaySignedPart(t: "ack" | "cmd", hub: string, message: Record<string, unknown>): Record<string, unknown> {
  const { sig: _sig, ...rest } = message;
  return { ...rest, t, hub };
}

function relayMac(t: "ack" | "cmd", hub: string, message: Record<string, unknown>, key: Buffer): Buffer {
  return createHmac("sha256", key).update(canonicalJson(relaySignedPart(t, hub, message))).digest();
}

function relayVerify(t: "ack" | "cmd", hub: string, message: Record<string, unknown>, key: Buffer): boolean {
  const sig = message.sig;
  if (typeof sig !== "string" || !/^[0-9a-f]{64}$/.test(sig)) return false;
  const want = relayMac(t, hub, message, key);
  const got = Buffer.from(sig, "hex");
  return got.length === want.length && timingSafeEqual(got, want);
}

/** The relay signs an ack for `hub` with that hub's key. */
export function signAck(hub: string, ack: Ack, key: Buffer): Ack {
  return { ...ack, sig: relayMac("ack", hub, ack, key).toString("hex") };
}

/**
 * True when the ack, as received on `hub`'s ack topic (parsed JSON, after ackSchema), carries the relay's
 * HMAC made with `key` (constant-time compare). Pass what was received, not a copy with members added.
 */
export function verifyAck(hub: string, ack: Ack | Record<string, unknown>, key: Buffer): boolean {
  return relayVerify("ack", hub, ack, key);
}

/** The relay signs a command for `hub` with that hub's key. */
export function signCommand(hub: string, cmd: HubCommand, key: Buffer): HubCommand {
  return { ...cmd, sig: relayMac("cmd", hub, cmd, key).toString("hex") };
}

/**
 * True when the command, as received on `hub`'s cmd topic (the parsed JSON, not commandSchema's output,
 * which fills in defaults), carries the relay's HMAC made with `key`.
 */
export function verifyCommand(hub: string, cmd: HubCommand | Record<string, unknown>, key: Buffer): boolean {
  return relayVerify("cmd", hub, cmd, key);
}

/** POST {relay}/v1/enrol: a one-time claim code exchanged for the hub's credentials and signing key. */
export const enrolRequestSchema = z.object({ hub: hubId, code: z.string().min(8).max(64) }).strict();
export type EnrolRequest = z.infer<typeof enrolRequestSchema>;

export const enrolResponseSchema = z
  .object({
    hub: hubId,
    mqtt: z.object({ url: z.string(), username: z.string(), password: z.string() }).strict(),
    /** HMAC-SHA256 key, base64 (32 bytes): signs the hub's events and planned stop, and the relay's acks and commands. */
    key: z.string().min(40).max(64),
    heartbeatS: z.number().int().positive(),
  })
  .strict();
export type EnrolResponse = z.infer<typeof enrolResponseSchema>;
