// What the escalation engine sees of telephony: place a call or an SMS, later receive its outcome through a
// provider callback. Adapters (http-gateway, twilio, console) implement it; createTelephony and
// telephonyConfigSchema (index.ts, config.ts) build the configured one. Contracts: docs/integrations.md.
import type { IncomingMessage, ServerResponse } from "node:http";

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

/**
 * An HTTP route handler for provider callbacks: resolves false if the request is not its route (nothing
 * written to `res`). Verifies the signature (forged or stale → 403, nothing recorded), parses into
 * CallOutcome, calls onOutcome, answers 2xx; if onOutcome throws it answers 500 so the provider retries.
 */
export type RouteHandler = (req: IncomingMessage, res: ServerResponse) => Promise<boolean>;

/** Minimal logger shape (pino's Logger fits). */
export interface TelephonyLog {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
}

export interface TelephonyDeps {
  log: TelephonyLog;
  /** Called for every verified callback. May be called more than once per attempt (see CallOutcome). */
  onOutcome: (o: CallOutcome) => Promise<void>;
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
  callbackRoute: RouteHandler;
  counters: TelephonyCounters;
  close(): Promise<void>;
}

export type { TelephonyConfig } from "./config.js";
