// The relay's side of the alarms' last-resort path: a text received on the inbound number (through the
// telephony provider's verified webhook) becomes an event like any other, or is refused. Besides alarms, two
// device notices about the path itself come this way (protocol/sms-compact.ts SMS_DEVICE_TYPES): the hub's
// periodic test of its second path, and its word that the primary path is down; stored the same way, they
// open no incident (only alarms reach incidents, escalation/opening.ts). A webhook's
// signature proves only that the provider sent it; the text itself is hostile until its own truncated HMAC,
// made with the key of the hub it names, checks out (protocol/sms-compact.ts). Then it is stored by its event
// id (the same text twice, or after the full envelope over MQTT, is one event: replay protection rests on
// the id), with path 'sms', opening the incident as an MQTT alarm does. Never refused for its time: a hub cut
// off from broadband cannot reach a time server either, so its clock may be far off; the ingest flags the
// skew as for any event (design invariant 8).
// Logs never carry the text or the numbers, only the hub an alarm text names and why it was refused.
import type { Logger } from "pino";
import { PROTOCOL_VERSION, type Envelope } from "../../../protocol/envelope.js";
import { decodeCompactAlarm, SmsCompactError, verifyCompactAlarm, type CompactAlarm } from "../../../protocol/sms-compact.js";
import type { VerifiedOutcome } from "../ingest/verified.js";
import type { InboundSms, InboundSmsResult } from "../telephony/types.js";

export interface SmsIntakeDeps {
  /** The hub's signing key; null for an unknown or revoked hub (registry.usableSigningKey). */
  signingKey(hub: string): Promise<Buffer | null>;
  /** Stores a verified event (ingest.handleVerified); rejects when the store could not take it now. */
  ingest(hub: string, env: Envelope): Promise<VerifiedOutcome>;
  /** A verified event of this hub arrived by SMS, new or not (the primary-path watch); must not throw. */
  onSmsEvent?: (hub: string, kind: CompactAlarm["kind"], type: string) => Promise<void>;
  /** Counts every text by what became of it (metrics.ts smsInbound); absent: not counted. */
  count?: (c: SmsCount) => void;
  /** Only texts to this number are taken; undefined: any the provider delivers. */
  inboundNumber: string | undefined;
  log: Logger;
}

type Refusal = "malformed" | "unknown_hub" | "bad_mac" | "id_collision";

/** One text as the metrics count it: the result, why it was refused, and the kind it claims (none: not readable as ours). */
export interface SmsCount {
  result: InboundSmsResult;
  reason: Refusal | "";
  kind: CompactAlarm["kind"] | "none";
}

export class SmsIntake {
  constructor(private readonly d: SmsIntakeDeps) {}

  /** One received text. Rejects only when a verified event could not be stored now (the provider retries; not counted until then). */
  async handle(sms: InboundSms): Promise<InboundSmsResult> {
    const provider = sms.provider;
    if (this.d.inboundNumber !== undefined && sms.to !== this.d.inboundNumber) {
      this.d.log.warn({ provider }, "inbound SMS to another number than sms.inboundNumber; ignored");
      return this.counted("not_ours");
    }
    let alarm: CompactAlarm;
    try {
      alarm = decodeCompactAlarm(sms.text);
    } catch (e) {
      if (e instanceof SmsCompactError && e.code === "not_compact") {
        this.d.log.info({ provider }, "inbound SMS that is not an alarm (e.g. a person's reply); content not logged, nothing stored");
        return this.counted("not_alarm");
      }
      return this.refuse(provider, "malformed");
    }
    const key = await this.d.signingKey(alarm.hub);
    if (!key) return this.refuse(provider, "unknown_hub", alarm);
    if (!verifyCompactAlarm(sms.text, key)) return this.refuse(provider, "bad_mac", alarm);

    const outcome = await this.d.ingest(alarm.hub, envelopeOf(alarm));
    // Logged by ingest already (an id stored for another hub); counted here with the texts' other refusals.
    if (outcome === "foreign") return this.counted("refused", "id_collision", alarm.kind);
    const what = `${alarm.kind} ${alarm.type}`;
    this.d.log.info({ provider, hub: alarm.hub, id: alarm.id, kind: alarm.kind, type: alarm.type, outcome }, outcome === "stored" ? `${what} received by SMS and stored` : `${what} by SMS already stored; not stored again`);
    // A duplicate still tells the watch the second path works now (the provider's retry of a late text).
    await this.d.onSmsEvent?.(alarm.hub, alarm.kind, alarm.type);
    return this.counted(outcome, "", alarm.kind);
  }

  private refuse(provider: string, reason: Exclude<Refusal, "id_collision">, a?: CompactAlarm): InboundSmsResult {
    // The hub and id a refused text names are unverified: logged as claimed, for tracing a misconfigured hub.
    this.d.log.warn({ provider, reason, ...(a ? { claimedHub: a.hub, claimedId: a.id } : {}) }, "inbound SMS of the compact form refused; nothing stored");
    return this.counted("refused", reason, a?.kind ?? "none");
  }

  private counted(result: InboundSmsResult, reason: SmsCount["reason"] = "", kind: SmsCount["kind"] = "none"): InboundSmsResult {
    this.d.count?.({ result, reason, kind });
    return result;
  }
}

/** The envelope fields the text carries; no `sig` (the full signed envelope comes later over MQTT). */
export function envelopeOf(a: CompactAlarm): Envelope {
  return {
    v: PROTOCOL_VERSION,
    hub: a.hub,
    boot: a.boot,
    seq: a.seq,
    id: a.id,
    ts: a.ts,
    kind: a.kind,
    type: a.type,
    severity: a.severity,
    ...(a.device !== undefined ? { device: a.device } : {}),
    ...(a.room !== undefined ? { room: a.room } : {}),
  };
}
