// The generic Anxin HTTP voice/SMS gateway (contract in docs/integrations.md): any telephony provider can
// be put behind a small gateway that speaks it. Both directions are signed with one shared secret over
// "<timestamp>.<body>" (signature.ts); a callback that is forged or outside the time window is answered
// 403 and nothing is recorded.
import type { AxiosInstance } from "axios";
import { z } from "zod";
import { deliverInboundSms } from "./inbound-sms.js";
import { deliverOutcome, parseJsonOrUndefined, placeCounted, postWithRetry, type AdapterParts, type RetryPolicy } from "./provider-http.js";
import { signedHeaders, SIGNATURE_HEADER, TIMESTAMP_HEADER, verifyAnxinSignature } from "./signature.js";
import { CALL_STATUSES, newCounters, type InboundSmsHandler, type CallbackReply, type CallbackRequest, type CallbackRoute, type CallOutcome, type CallRequest, type CallStatus, type Telephony, type TelephonyCounters, type TelephonyLog } from "./types.js";

export const HTTP_GATEWAY = "http-gateway";
const MAX_CALLBACK_BYTES = 16 * 1024;

/** The body the relay POSTs to the gateway. */
export interface GatewayCallRequest {
  attemptId: string;
  to: string;
  channel: "voice" | "sms";
  message: string;
  /** Voice with key gathering: the keys that count and how long to wait for one after the message. */
  gather: { digits: string[]; timeoutS: number } | null;
  callbackUrl: string;
}

export const gatewayCallbackSchema = z
  .object({
    attemptId: z.string().min(1).max(200),
    status: z.enum(CALL_STATUSES as [CallStatus, ...CallStatus[]]),
    digits: z.string().regex(/^[0-9*#]{1,16}$/).optional(),
    providerRef: z.string().min(1).max(200),
    detail: z.string().max(200).optional(),
  })
  .strict();
export type GatewayCallback = z.infer<typeof gatewayCallbackSchema>;

/** The body of the gateway's inbound-SMS webhook: one text received on the relay's inbound number. */
export const gatewayInboundSmsSchema = z
  .object({
    from: z.string().min(1).max(32),
    to: z.string().min(1).max(32),
    text: z.string().max(1600),
    receivedAt: z.number().int().nonnegative().describe("when the gateway received it, ms since epoch"),
    messageId: z.string().min(1).max(200),
  })
  .strict();
export type GatewayInboundSms = z.infer<typeof gatewayInboundSmsSchema>;

const placeResponseSchema = z.object({ providerRef: z.string().min(1).max(200) });

export interface HttpGatewayOptions extends RetryPolicy {
  url: string;
  secret: string;
  /** The relay's public base URL; callbacks go to publicUrl + callbackPath. */
  publicUrl: string;
  callbackPath: string;
  /** Where the gateway POSTs inbound SMS (mounted only with onInboundSms). */
  inboundSmsPath?: string;
  onInboundSms?: InboundSmsHandler | undefined;
  /** Callbacks further than this from the relay's clock are refused. */
  callbackWindowMs: number;
  gatherTimeoutS: number;
  log: TelephonyLog;
  onOutcome(o: CallOutcome): Promise<void>;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  http?: AxiosInstance;
  counters?: TelephonyCounters;
}

export class HttpGatewayTelephony implements Telephony {
  readonly name = HTTP_GATEWAY;
  readonly counters: TelephonyCounters;
  private readonly now: () => number;
  private readonly callbackUrl: string;
  private readonly parts: AdapterParts;

  constructor(private readonly o: HttpGatewayOptions) {
    this.now = o.now ?? Date.now;
    this.counters = o.counters ?? newCounters();
    this.callbackUrl = `${o.publicUrl.replace(/\/+$/, "")}${o.callbackPath}`;
    this.parts = { provider: HTTP_GATEWAY, counters: this.counters, log: o.log, onOutcome: (x) => o.onOutcome(x) };
  }

  async place(req: CallRequest): Promise<{ providerRef: string }> {
    const gather = req.channel === "voice" && req.gatherDigits?.length ? { digits: req.gatherDigits, timeoutS: this.o.gatherTimeoutS } : null;
    const payload: GatewayCallRequest = { attemptId: req.attemptId, to: req.to, channel: req.channel, message: req.message, gather, callbackUrl: this.callbackUrl };
    const body = JSON.stringify(payload);
    return placeCounted(this.parts, req, async () => {
      const res = await postWithRetry({
        ...this.o,
        provider: HTTP_GATEWAY,
        request: () => ({
          body,
          headers: { "Content-Type": "application/json", "Idempotency-Key": req.attemptId, "User-Agent": "anxin-relay", ...signedHeaders(this.o.secret, this.now(), body) },
        }),
      });
      const parsed = placeResponseSchema.safeParse(parseJsonOrUndefined(res.data));
      // A gateway that accepted the call but named no reference still placed it; the attempt id identifies it.
      return { providerRef: parsed.success ? parsed.data.providerRef : req.attemptId };
    });
  }

  /** POSTs to callbackPath (call outcomes) and inboundSmsPath (texts received), both signed over "<timestamp>.<body>". */
  get callbackRoute(): CallbackRoute {
    const sms = this.o.onInboundSms && this.o.inboundSmsPath;
    return { paths: sms ? [this.o.callbackPath, sms] : [this.o.callbackPath], maxBytes: MAX_CALLBACK_BYTES, handle: (req) => this.callback(req) };
  }

  private async callback(req: CallbackRequest): Promise<CallbackReply> {
    if (!this.verified(req)) return { status: 403, body: JSON.stringify({ error: "forbidden" }) };
    const path = new URL(req.url, "http://relay").pathname;
    if (this.o.onInboundSms && path === this.o.inboundSmsPath) return this.inboundSms(req, this.o.onInboundSms);
    return this.outcome(req);
  }

  /** Forged or outside the time window: counted and logged (never the body). */
  private verified(req: CallbackRequest): boolean {
    const check = verifyAnxinSignature(
      this.o.secret,
      { timestamp: req.headers[TIMESTAMP_HEADER], signature: req.headers[SIGNATURE_HEADER] },
      req.body,
      this.now(),
      this.o.callbackWindowMs,
    );
    if (check.ok) return true;
    this.counters.callbacksRefused++;
    this.o.log.warn({ reason: check.reason, remote: req.remote }, "telephony callback refused: bad signature");
    return false;
  }

  private async inboundSms(req: CallbackRequest, handler: InboundSmsHandler): Promise<CallbackReply> {
    const parsed = gatewayInboundSmsSchema.safeParse(parseJsonOrUndefined(req.body));
    if (!parsed.success) {
      this.counters.callbacksRefused++;
      const where = parsed.error.issues[0];
      return { status: 400, body: JSON.stringify({ error: "bad_callback", message: `${where?.path.join(".") || "body"}: ${where?.message ?? "invalid"}` }) };
    }
    const m = parsed.data;
    const done = await deliverInboundSms(handler, { provider: HTTP_GATEWAY, messageId: m.messageId, from: m.from, to: m.to, text: m.text, receivedAt: m.receivedAt }, this.o.log);
    if (!done.ok) return { status: 503, body: JSON.stringify({ error: "unavailable" }) };
    return { status: 200, body: JSON.stringify({ ok: true, result: done.result }) };
  }

  private async outcome(req: CallbackRequest): Promise<CallbackReply> {
    const parsed = gatewayCallbackSchema.safeParse(parseJsonOrUndefined(req.body));
    if (!parsed.success) {
      this.counters.callbacksRefused++;
      const where = parsed.error.issues[0];
      return { status: 400, body: JSON.stringify({ error: "bad_callback", message: `${where?.path.join(".") || "body"}: ${where?.message ?? "invalid"}` }) };
    }
    const c = parsed.data;
    const outcome: CallOutcome = {
      attemptId: c.attemptId,
      status: c.status,
      providerRef: c.providerRef,
      at: this.now(),
      ...(c.digits !== undefined ? { digits: c.digits } : {}),
      ...(c.detail !== undefined ? { detail: c.detail } : {}),
    };
    // The gateway retries its callback on a 5xx (deliverOutcome's answer when recording fails).
    return (await deliverOutcome(this.parts, outcome)) ?? { status: 200, body: JSON.stringify({ ok: true }) };
  }
}
