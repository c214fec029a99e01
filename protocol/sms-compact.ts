// The compact text form of an alarm for the last-resort path: one SMS from the hub's modem to the relay's
// inbound number when the broadband path is down. It carries what the relay needs to open the incident and
// start the call tree — which hub, which event, what, how bad, where, when — and a truncated HMAC made with
// the hub's own key, so the relay can tell a hub's alarm from a forged text. The full signed envelope still
// goes over MQTT once the primary path is back; the relay stores it by the same id and it completes the
// SMS's record. Nothing but alarms travels this way (never heartbeats or readings), besides two notices
// about the path itself: the periodic test of the second path, and the notice that the primary path is down
// (so the relay can tell a home on its second path from a silent one).
//
// The text uses only characters of the GSM 03.38 default alphabet that cost one septet each (letters,
// digits, space, `.`, `-`, `_`), so it fits one 160-character SMS:
//
//   AX1 <hub> <id> <boot>.<seq> <ts> <kind><type> <severity> <device|-> <room|-> <mac>
//
// `ts` is the event time in base 36 ms; `kind` one letter (A alarm, C alarm_cleared, D one of the device
// notices in SMS_DEVICE_TYPES); `severity` one letter
// (c, h, w, i); `mac` the first 16 base64url characters (96 bits) of HMAC-SHA256(hub key, "anxin-sms-v1\n" +
// everything before the mac, including the last space).
import { createHmac, timingSafeEqual } from "node:crypto";
import { ALARM_TYPES, SEVERITIES, type Envelope, type Severity } from "./envelope.js";

export const SMS_COMPACT_PREFIX = "AX1";
/** One SMS in the GSM 7-bit alphabet. */
export const SMS_MAX_CHARS = 160;
const MAC_CHARS = 16;
const MAC_DOMAIN = "anxin-sms-v1\n";

const KIND_CODE = { alarm: "A", alarm_cleared: "C", device: "D" } as const;
/** The device events that may go by SMS: the second path's own test, and the notice that the primary path is down. */
export const SMS_DEVICE_TYPES = ["second_path_test", "primary_path_down"] as const;
export type SmsDeviceType = (typeof SMS_DEVICE_TYPES)[number];
type SmsKind = keyof typeof KIND_CODE;
const SEVERITY_CODE: Record<Severity, string> = { critical: "c", high: "h", warning: "w", info: "i" };

const ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const ULID = /^[0-9A-HJKMNP-TV-Z]{26}$/;
/** A room travels only when it is a plain identifier short enough; otherwise `-` (the full event names it). */
const ROOM = /^[A-Za-z0-9_.-]{1,24}$/;
const TYPE = /^[a-z][a-z0-9_]{0,47}$/;

/** What an SMS says: the envelope's fields it carries. */
export interface CompactAlarm {
  hub: string;
  id: string;
  boot: number;
  seq: number;
  ts: number;
  kind: SmsKind;
  type: string;
  severity: Severity;
  device?: string;
  room?: string;
}

export class SmsCompactError extends Error {
  constructor(
    readonly code: "not_compact" | "bad_field" | "too_long" | "not_sendable",
    message: string,
  ) {
    super(message);
    this.name = "SmsCompactError";
  }
}

/** Whether an event may go by SMS at all: alarms and their clearing, and the path notices; nothing else. */
export function isSmsSendable(e: Pick<Envelope, "kind" | "type">): e is Pick<Envelope, "kind" | "type"> & { kind: SmsKind } {
  return e.kind === "alarm" || e.kind === "alarm_cleared" || (e.kind === "device" && (SMS_DEVICE_TYPES as readonly string[]).includes(e.type));
}

function macOf(body: string, key: Buffer): string {
  return createHmac("sha256", key).update(MAC_DOMAIN + body, "utf8").digest("base64url").slice(0, MAC_CHARS);
}

/** The SMS text of an alarm, signed with the hub's key; throws when the event may not or cannot go this way. */
export function encodeCompactAlarm(e: Envelope, key: Buffer): string {
  if (!isSmsSendable(e)) throw new SmsCompactError("not_sendable", `a ${e.kind} event of type ${e.type} never goes by SMS`);
  const room = e.room !== undefined && ROOM.test(e.room) ? e.room : "-";
  let text = compactText(e, room, key);
  // The room is the first thing to give up: the device names the detector, and the full event names both.
  if (text.length > SMS_MAX_CHARS && room !== "-") text = compactText(e, "-", key);
  if (text.length > SMS_MAX_CHARS) throw new SmsCompactError("too_long", `the SMS form of event ${e.id} is ${text.length} characters, over ${SMS_MAX_CHARS}: shorten the hub or device id`);
  return text;
}

function compactText(e: Envelope & { kind: SmsKind }, room: string, key: Buffer): string {
  const body = [SMS_COMPACT_PREFIX, e.hub, e.id, `${e.boot}.${e.seq}`, e.ts.toString(36), KIND_CODE[e.kind] + e.type, SEVERITY_CODE[e.severity], e.device ?? "-", room, ""].join(" ");
  return body + macOf(body, key);
}

/**
 * The longest SMS text this hub and these devices can produce (commissioning checks it fits). Rooms are left
 * out of a text that would not fit with them, so they count only where they fit; pass none for the bound
 * that must hold.
 */
export function longestCompactLength(hub: string, deviceIds: readonly string[], rooms: readonly string[] = []): number {
  const longestType = Math.max(...[...ALARM_TYPES, ...SMS_DEVICE_TYPES].map((t) => t.length));
  const device = Math.max(1, ...deviceIds.map((d) => d.length));
  const room = Math.max(1, ...rooms.filter((r) => ROOM.test(r)).map((r) => r.length));
  // prefix, hub, ulid, boot.seq (up to 10 + 1 + 10 digits), ts (9 base-36 digits until 2059), kind+type, severity, device, room, mac, and 9 spaces
  return SMS_COMPACT_PREFIX.length + hub.length + 26 + 21 + 9 + 1 + longestType + 1 + device + room + MAC_CHARS + 9;
}

/**
 * Reads an SMS text: its fields, or SmsCompactError("not_compact") for any other text (a person's reply, a
 * provider's notice) and ("bad_field") for a malformed one. Says nothing about who sent it: see verifyCompactAlarm.
 */
export function decodeCompactAlarm(text: string): CompactAlarm {
  const t = text.trim();
  if (!t.startsWith(`${SMS_COMPACT_PREFIX} `)) throw new SmsCompactError("not_compact", "not an Anxin alarm text");
  if (t.length > SMS_MAX_CHARS) throw new SmsCompactError("too_long", `over ${SMS_MAX_CHARS} characters`);
  const parts = t.split(" ");
  if (parts.length !== 10) throw new SmsCompactError("bad_field", `expected 10 fields, found ${parts.length}`);
  const [, hub, id, bootSeq, ts36, kindType, sev, device, room] = parts as [string, string, string, string, string, string, string, string, string, string];
  const bad = (what: string) => new SmsCompactError("bad_field", `bad ${what}`);
  if (!ID.test(hub)) throw bad("hub");
  if (!ULID.test(id)) throw bad("event id");
  const bs = /^(\d{1,10})\.(\d{1,10})$/.exec(bootSeq);
  if (!bs) throw bad("boot.seq");
  const boot = Number(bs[1]);
  const seq = Number(bs[2]);
  if (seq < 1) throw bad("seq");
  if (!/^[0-9a-z]{1,11}$/.test(ts36)) throw bad("time");
  const ts = parseInt(ts36, 36);
  if (!Number.isSafeInteger(ts)) throw bad("time");
  const kind = (Object.keys(KIND_CODE) as SmsKind[]).find((k) => KIND_CODE[k] === kindType[0]);
  const type = kindType.slice(1);
  if (!kind || !TYPE.test(type)) throw bad("kind and type");
  if (kind === "device" && !(SMS_DEVICE_TYPES as readonly string[]).includes(type)) throw bad("kind and type");
  const severity = SEVERITIES.find((s) => SEVERITY_CODE[s] === sev);
  if (!severity) throw bad("severity");
  if (device !== "-" && !ID.test(device)) throw bad("device");
  if (room !== "-" && !ROOM.test(room)) throw bad("room");
  return { hub, id, boot, seq, ts, kind, type, severity, ...(device === "-" ? {} : { device }), ...(room === "-" ? {} : { room }) };
}

/** Whether the text's mac was made with this hub key (constant time). */
export function verifyCompactAlarm(text: string, key: Buffer): boolean {
  const t = text.trim();
  const cut = t.lastIndexOf(" ");
  if (cut < 0) return false;
  const given = Buffer.from(t.slice(cut + 1), "utf8");
  const want = Buffer.from(macOf(t.slice(0, cut + 1), key), "utf8");
  return given.length === want.length && timingSafeEqual(given, want);
}
