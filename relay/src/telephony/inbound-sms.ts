// Handing a verified inbound-SMS webhook on (the alarms' last-resort path, docs/relay.md). Shared by the
// adapters that receive texts: whatever the handler makes of the text is answered 2xx, since the provider
// delivered it and a resend would change nothing; only a failure to store it now is answered 503, so the
// provider tries again. Neither the text nor the numbers are logged.
import type { InboundSms, InboundSmsHandler, InboundSmsResult, TelephonyLog } from "./types.js";

export type InboundDelivery = { ok: true; result: InboundSmsResult } | { ok: false };

export async function deliverInboundSms(handler: InboundSmsHandler, sms: InboundSms, log: TelephonyLog): Promise<InboundDelivery> {
  try {
    return { ok: true, result: await handler(sms) };
  } catch (err) {
    log.error({ provider: sms.provider, err: (err as Error).message }, "inbound SMS not taken now; the provider is asked to retry");
    return { ok: false };
  }
}
