// The generic Anxin HTTP voice/SMS gateway (contract in docs/integrations.md): any telephony provider can
// be put behind a small gateway that speaks it. Both directions are signed with one shared secret over
// "<timestamp>.<body>" (signature.ts); a callback that is forged or outside the time window is answered
// 403 and nothing is recorded.
import type { AxiosInstance } from "axios";
import { z } from "zod";
import { deliverOutcome, parseJsonOrUndefined, placeCounted, postWithRetry, type AdapterParts, type RetryPolicy } from "./provider-http.js";
import { signedHeaders, SIGNATURE_HEADER, TIMESTAMP_HEADER, verifyAnxinSignature } from "./signature.js";
import { CALL_STATUSES, newCounters, type CallbackReply, type CallbackRequest, type CallbackRoute, type CallOutcome, type CallRequest, type CallStatus, type Telephony, type TelephonyCounters, type TelephonyLog } from "./types.js";

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

const placeResponseSchema = z.object({ providerRef: z.string().min(1).max(200) });

export interface HttpGatewayOptions extends RetryPolicy {
  url: string;
  secret: string;
  /** The relay's public base URL; callbacks go to publicUrl + callbackPath. */
  publicUrl: string;
  callbackPath: string;
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

  /** POSTs to callbackPath, signed over "<timestamp>.<body>". */
  get callbackRoute(): CallbackRoute {
    return { paths: [this.o.callbackPath], maxBytes: MAX_CALLBACK_BYTES, handle: (req) => this.callback(req) };
  }

  private async callback(req: CallbackRequest): Promise<CallbackReply> {
    const check = verifyAnxinSignature(
      this.o.secret,
      { timestamp: req.headers[TIMESTAMP_HEADER], signature: req.headers[SIGNATURE_HEADER] },
      req.body,
      this.now(),
      this.o.callbackWindowMs,
    );
    if (!check.ok) {
      this.counters.callbacksRefused++;
      this.o.log.warn({ reason: check.reason, remote: req.remote }, "telephony callback refused: bad signature");
      return { status: 403, body: JSON.stringify({ error: "forbidden" }) };
    }
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
