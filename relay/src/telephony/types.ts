// What the escalation engine sees of telephony: place a call or an SMS, later receive its outcome through a
// provider callback. Adapters (http-gateway, twilio, console) implement it; createTelephony and
// telephonyConfigSchema (index.ts, config.ts) build the configured one. Contracts: docs/integrations.md.
import type { IncomingHttpHeaders } from "node:http";

export type CallChannel = "voice" | "sms";

export interface CallRequest {
  /** Unique per (incident, step, target, repeat); the idempotency key towards the provider. */
  attemptId: string;
  /** E.164 number. Personal data: never logged in clear. */
  to: string;
  channel: CallChannel;
  /** Spoken text (voice) or SMS text; the relay builds it; never logged. */
  message: string;
  /** Voice: keys the listener may press, e.g. ["1","2"]. Absent or empty: no key gathering. */
  gatherDigits?: string[];
}

/**
 * answered: the call was picked up (with `digits` when a key was pressed); no_answer / busy / failed: it was
 * not; delivered / undelivered: the SMS outcome (failed too when the provider gave up before sending).
 */
export type CallStatus = "answered" | "no_answer" | "busy" | "failed" | "delivered" | "undelivered";

export const CALL_STATUSES: readonly CallStatus[] = ["answered", "no_answer", "busy", "failed", "delivered", "undelivered"];

/**
 * One outcome of one attempt. onOutcome may be called MORE THAN ONCE for the same attemptId (a provider
 * retrying its callback; Twilio reports the key press first and the call's final status after it), so the
 * consumer must be idempotent: keep digits once seen, and treat a later status as adding to, not undoing,
 * an acknowledgement.
 */
export interface CallOutcome {
  attemptId: string;
  status: CallStatus;
  /** The key(s) pressed (voice with gathering). */
  digits?: string;
  providerRef?: string;
  /** When the relay received the callback (ms since epoch, the relay's clock). */
  at: number;
  /** Provider-specific detail for the timeline (e.g. Twilio's CallStatus "canceled"); never personal data. */
  detail?: string;
}

export interface Telephony {
  /** "http-gateway" | "twilio" | "console". */
  readonly name: string;
  /**
   * Asks the provider to place the call/SMS; resolves once the provider accepted it. Retries transient
   * failures itself with a timeout; rejects with TelephonyUnavailable when the provider is down, and with
   * TelephonyRejected when the provider refused this request for good (e.g. an invalid number).
   */
  place(req: CallRequest): Promise<{ providerRef: string }>;
}

/** The provider could not be reached or kept failing (retries exhausted): an operator alert, not a stall. */
export class TelephonyUnavailable extends Error {
  override readonly name = "TelephonyUnavailable";
  constructor(
    message: string,
    /** The adapter's name ("http-gateway", "twilio"). */
    readonly provider: string = "",
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** The provider answered that this request is invalid (4xx other than 408/429): retrying will not help. */
export class TelephonyRejected extends Error {
  override readonly name = "TelephonyRejected";
  constructor(
    message: string,
    readonly provider: string = "",
    /** HTTP status the provider answered with. */
    readonly status?: number,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** One provider callback as the HTTP server received it. */
export interface CallbackRequest {
  /** The path and query as requested (Twilio's signature covers them). */
  url: string;
  headers: IncomingHttpHeaders;
  /** The body's exact bytes (signatures are over them). */
  body: Buffer;
  /** The socket's peer, for the log. */
  remote: string | undefined;
}

export interface CallbackReply {
  status: number;
  body: string;
  /** Default application/json. */
  contentType?: string;
}

/**
 * The provider callbacks an adapter takes: POSTs to `paths` (anything else there is a 405; a body over
 * `maxBytes` a 413), each answered by `handle`. It verifies the signature (forged or stale → 403, nothing
 * recorded), parses into CallOutcome, calls onOutcome and answers 2xx; if onOutcome throws it answers 500 so
 * the provider retries. The HTTP server mounts it (relay/src/api/telephony-callbacks.ts).
 */
export interface CallbackRoute {
  paths: readonly string[];
  maxBytes: number;
  handle(req: CallbackRequest): Promise<CallbackReply>;
}

/** An adapter whose outcomes do not come over HTTP (the console): no paths. */
export const NO_CALLBACKS: CallbackRoute = {
  paths: [],
  maxBytes: 0,
  handle: async () => ({ status: 404, body: JSON.stringify({ error: "not_found" }) }),
};

/** Minimal logger shape (pino's Logger fits). */
export interface TelephonyLog {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
}

/**
 * One SMS received on the relay's inbound number, as a provider's webhook carried it once its signature was
 * verified. Everything in it except the provider's word that it arrived is still unverified: the text says
 * which hub sent it, and only its own HMAC (relay/src/sms/) proves that. Personal data (numbers, a person's
 * text): never logged.
 */
export interface InboundSms {
  /** The adapter it came through ("http-gateway", "twilio"). */
  provider: string;
  /** The provider's id of the message. */
  messageId: string;
  from: string;
  to: string;
  text: string;
  /** When the provider received it (ms since epoch), or when the relay did if the provider did not say. */
  receivedAt: number;
}

/**
 * What became of an inbound SMS. stored: a new alarm (or path notice), ingested; duplicate: that event was
 * stored already; refused: a compact text that failed its checks (unknown hub, bad mac, malformed); not_alarm: any
 * other text (a person's reply); not_ours: sent to another number than the configured inbound one.
 * All are answered 2xx: the provider delivered it, and sending it again would change nothing.
 */
export type InboundSmsResult = "stored" | "duplicate" | "refused" | "not_alarm" | "not_ours";

/** Takes a verified webhook's SMS; rejects when it could not be stored now (the webhook answers 503, the provider retries). */
export type InboundSmsHandler = (sms: InboundSms) => Promise<InboundSmsResult>;

export interface TelephonyDeps {
  log: TelephonyLog;
  /** Called for every verified callback. May be called more than once per attempt (see CallOutcome). */
  onOutcome: (o: CallOutcome) => Promise<void>;
  /** Inbound SMS (the alarms' last-resort path): adapters that can receive texts mount a webhook for them when this is given. */
  onInboundSms?: InboundSmsHandler;
  /** The relay's public base URL (scheme://host[:port], no path) where providers reach callbackRoute. */
  publicUrl: string;
  now?: () => number;
}

/** Running totals for metrics (prom-client counters can read them with collect()). */
export interface TelephonyCounters {
  /** Requests the provider accepted. */
  placed: number;
  /** place() calls that rejected (TelephonyUnavailable or TelephonyRejected). */
  failed: number;
  /** Verified callbacks passed to onOutcome. */
  callbacks: number;
  /** Callbacks refused (bad signature, stale, malformed). */
  callbacksRefused: number;
}

export function newCounters(): TelephonyCounters {
  return { placed: 0, failed: 0, callbacks: 0, callbacksRefused: 0 };
}

export interface TelephonyHandle {
  telephony: Telephony;
  callbackRoute: CallbackRoute;
  counters: TelephonyCounters;
  close(): Promise<void>;
}

export type { TelephonyConfig } from "./config.js";
