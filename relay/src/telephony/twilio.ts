// Twilio Programmable Voice and Messaging through Twilio's public REST API (docs/integrations.md cites the
// documents this follows). A voice call carries its TwiML inline: the message spoken inside a <Gather> that
// waits for one key; Twilio posts the key to the Gather action URL and the call's final status to the
// status callback. Every callback is checked against X-Twilio-Signature before anything is recorded.
import { createHmac, timingSafeEqual } from "node:crypto";
import type { AxiosInstance } from "axios";
import { deliverInboundSms } from "./inbound-sms.js";
import { deliverOutcome, parseJsonOrUndefined, placeCounted, postWithRetry, type AdapterParts, type RetryPolicy } from "./provider-http.js";
import { newCounters, type InboundSmsHandler, type CallbackReply, type CallbackRequest, type CallbackRoute, type CallOutcome, type CallRequest, type CallStatus, type Telephony, type TelephonyCounters, type TelephonyLog } from "./types.js";

export const TWILIO = "twilio";
const MAX_CALLBACK_BYTES = 64 * 1024;
const TWIML_EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response/>';
const TWIML_HANGUP = '<?xml version="1.0" encoding="UTF-8"?><Response><Hangup/></Response>';
const KINDS = ["gather", "status", "sms-status"] as const;
type Kind = (typeof KINDS)[number];
/** Where Twilio posts texts received on the inbound number (the number's "A message comes in" webhook). */
export const TWILIO_INBOUND_SMS = "sms-inbound";

/** Twilio's CallStatus (final values) → ours. queued, ringing, in-progress are not outcomes. */
const CALL_STATUS: Record<string, CallStatus> = {
  completed: "answered",
  busy: "busy",
  "no-answer": "no_answer",
  failed: "failed",
  canceled: "failed",
};

/** Twilio's MessageStatus (final values) → ours. */
const MESSAGE_STATUS: Record<string, CallStatus> = {
  delivered: "delivered",
  undelivered: "undelivered",
  failed: "failed",
};

export interface TwilioOptions extends RetryPolicy {
  accountSid: string;
  authToken: string;
  from: string;
  /** https://api.twilio.com, or a local stub in tests. */
  baseUrl: string;
  /** The relay's public base URL as Twilio reaches it (the signature covers it exactly). */
  publicUrl: string;
  callbackPath: string;
  gatherTimeoutS: number;
  sayLanguage?: string | undefined;
  sayVoice?: string | undefined;
  log: TelephonyLog;
  onOutcome(o: CallOutcome): Promise<void>;
  /** Inbound SMS: mounted at callbackPath/sms-inbound when given. */
  onInboundSms?: InboundSmsHandler | undefined;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  http?: AxiosInstance;
}

/**
 * X-Twilio-Signature: base64(HMAC-SHA1(authToken, url + each POST parameter's name and value, sorted by
 * name)), where url is the full URL Twilio requested, query string included.
 */
export function twilioSignature(authToken: string, url: string, params: Iterable<readonly [string, string]>): string {
  const sorted = [...params].sort(([a, av], [b, bv]) => (a < b ? -1 : a > b ? 1 : av < bv ? -1 : av > bv ? 1 : 0));
  const h = createHmac("sha1", authToken).update(url, "utf8");
  for (const [k, v] of sorted) h.update(k, "utf8").update(v, "utf8");
  return h.digest("base64");
}

export function verifyTwilioSignature(authToken: string, header: string | string[] | undefined, url: string, params: Iterable<readonly [string, string]>): boolean {
  if (typeof header !== "string" || header.length === 0) return false;
  const want = Buffer.from(twilioSignature(authToken, url, params));
  const got = Buffer.from(header);
  return want.length === got.length && timingSafeEqual(want, got);
}

export function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;", "'": "&apos;" })[c] as string);
}

export class TwilioTelephony implements Telephony {
  readonly name = TWILIO;
  readonly counters: TelephonyCounters = newCounters();
  private readonly now: () => number;
  private readonly base: string;
  private readonly parts: AdapterParts;

  constructor(private readonly o: TwilioOptions) {
    this.now = o.now ?? Date.now;
    this.base = `${o.publicUrl.replace(/\/+$/, "")}${o.callbackPath}`;
    this.parts = { provider: TWILIO, counters: this.counters, log: o.log, onOutcome: (x) => o.onOutcome(x) };
  }

  /** Where Twilio posts a callback of `kind` for one attempt. */
  callbackUrl(kind: "gather" | "status" | "sms-status", attemptId: string): string {
    return `${this.base}/${kind}?${new URLSearchParams({ attemptId }).toString()}`;
  }

  /** The TwiML of a voice call: the message inside a one-key <Gather> (said twice), or just said. */
  twiml(req: CallRequest): string {
    const attrs = [this.o.sayLanguage ? ` language="${escapeXml(this.o.sayLanguage)}"` : "", this.o.sayVoice ? ` voice="${escapeXml(this.o.sayVoice)}"` : ""].join("");
    const say = `<Say${attrs}>${escapeXml(req.message)}</Say>`;
    const digits = req.gatherDigits ?? [];
    const body = digits.length
      ? `<Gather input="dtmf" numDigits="${Math.max(...digits.map((d) => d.length))}" timeout="${this.o.gatherTimeoutS}" method="POST" action="${escapeXml(this.callbackUrl("gather", req.attemptId))}">${say}<Pause length="1"/>${say}</Gather>`
      : say;
    return `<?xml version="1.0" encoding="UTF-8"?><Response>${body}</Response>`;
  }

  async place(req: CallRequest): Promise<{ providerRef: string }> {
    const form = new URLSearchParams();
    form.set("To", req.to);
    form.set("From", this.o.from);
    let resource: string;
    if (req.channel === "voice") {
      resource = "Calls.json";
      form.set("Twiml", this.twiml(req));
      form.set("StatusCallback", this.callbackUrl("status", req.attemptId));
      form.set("StatusCallbackMethod", "POST");
      form.set("StatusCallbackEvent", "completed");
    } else {
      resource = "Messages.json";
      form.set("Body", req.message);
      form.set("StatusCallback", this.callbackUrl("sms-status", req.attemptId));
    }
    const body = form.toString();
    const url = `${this.o.baseUrl.replace(/\/+$/, "")}/2010-04-01/Accounts/${encodeURIComponent(this.o.accountSid)}/${resource}`;
    return placeCounted(this.parts, req, async () => {
      const res = await postWithRetry({
        ...this.o,
        provider: TWILIO,
        url,
        auth: { username: this.o.accountSid, password: this.o.authToken },
        request: () => ({ body, headers: { "Content-Type": "application/x-www-form-urlencoded", Accept: "application/json", "User-Agent": "anxin-relay" } }),
      });
      const sid = (parseJsonOrUndefined(res.data) as { sid?: unknown } | undefined)?.sid;
      return { providerRef: typeof sid === "string" && sid ? sid : req.attemptId };
    });
  }

  /** POSTs to callbackPath/gather, /status, /sms-status (and /sms-inbound with onInboundSms), signed with X-Twilio-Signature. */
  get callbackRoute(): CallbackRoute {
    const kinds: readonly string[] = this.o.onInboundSms ? [...KINDS, TWILIO_INBOUND_SMS] : KINDS;
    return { paths: kinds.map((k) => `${this.o.callbackPath}/${k}`), maxBytes: MAX_CALLBACK_BYTES, handle: (req) => this.callback(req) };
  }

  private async callback(req: CallbackRequest): Promise<CallbackReply> {
    const u = new URL(req.url, "http://relay");
    // Mounted on the KINDS' paths (and the inbound-SMS one) only.
    const kind = u.pathname.slice(this.o.callbackPath.length + 1) as Kind | typeof TWILIO_INBOUND_SMS;
    const params = new URLSearchParams(req.body.toString("utf8"));
    // The URL Twilio signed is the one we gave it: our public base plus the path and query it called.
    const signedUrl = `${this.o.publicUrl.replace(/\/+$/, "")}${req.url}`;
    if (!verifyTwilioSignature(this.o.authToken, req.headers["x-twilio-signature"], signedUrl, params)) {
      this.counters.callbacksRefused++;
      this.o.log.warn({ kind, remote: req.remote }, "twilio callback refused: bad signature");
      return { status: 403, body: JSON.stringify({ error: "forbidden" }) };
    }
    if (kind === TWILIO_INBOUND_SMS) return this.inboundSms(params);
    const attemptId = u.searchParams.get("attemptId");
    if (!attemptId) {
      this.counters.callbacksRefused++;
      return { status: 400, body: JSON.stringify({ error: "bad_callback", message: "attemptId missing from the callback URL" }) };
    }
    const outcome = this.parse(kind, attemptId, params);
    // Twilio retries a failed callback only in some configurations; the final status still arrives.
    const failed = outcome && (await deliverOutcome(this.parts, outcome));
    if (failed) return failed;
    // The Gather action's answer is the rest of the call: thank-you is implied, hang up.
    return { status: 200, body: kind === "gather" ? TWIML_HANGUP : TWIML_EMPTY, contentType: "text/xml" };
  }

  /** A text received on the inbound number; Twilio is answered with empty TwiML (no reply SMS). */
  private async inboundSms(p: URLSearchParams): Promise<CallbackReply> {
    const handler = this.o.onInboundSms;
    const messageId = p.get("MessageSid") ?? p.get("SmsSid") ?? "";
    if (!handler || !messageId) {
      this.counters.callbacksRefused++;
      return { status: 400, body: JSON.stringify({ error: "bad_callback", message: "not an inbound message" }) };
    }
    const sms = { provider: TWILIO, messageId, from: p.get("From") ?? "", to: p.get("To") ?? "", text: p.get("Body") ?? "", receivedAt: this.now() };
    const done = await deliverInboundSms(handler, sms, this.o.log);
    if (!done.ok) return { status: 503, body: JSON.stringify({ error: "unavailable" }) };
    return { status: 200, body: TWIML_EMPTY, contentType: "text/xml" };
  }

  private parse(kind: Kind, attemptId: string, p: URLSearchParams): CallOutcome | undefined {
    const at = this.now();
    if (kind === "gather") {
      const digits = p.get("Digits") ?? "";
      if (!/^[0-9*#]{1,16}$/.test(digits)) return undefined; // no key pressed: the final status will report the call
      return { attemptId, status: "answered", digits, providerRef: p.get("CallSid") ?? "", at };
    }
    if (kind === "status") {
      const raw = p.get("CallStatus") ?? "";
      const status = CALL_STATUS[raw];
      if (!status) return undefined;
      return { attemptId, status, providerRef: p.get("CallSid") ?? "", at, detail: `CallStatus=${raw}` };
    }
    const raw = p.get("MessageStatus") ?? p.get("SmsStatus") ?? "";
    const status = MESSAGE_STATUS[raw];
    if (!status) return undefined;
    const code = p.get("ErrorCode");
    return { attemptId, status, providerRef: p.get("MessageSid") ?? p.get("SmsSid") ?? "", at, detail: `MessageStatus=${raw}${code && /^\d{1,8}$/.test(code) ? ` ErrorCode=${code}` : ""}` };
  }
}
