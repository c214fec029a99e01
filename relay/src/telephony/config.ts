// The `telephony` section of the relay configuration, one shape per adapter (discriminated on `kind`).
// Secrets never sit in the YAML: they come from an owner-only file or an environment variable.
import { z } from "zod";

/** The generic gateway's inbound-SMS webhook when `inboundSmsPath` is not set. */
export const DEFAULT_INBOUND_SMS_PATH = "/v1/telephony/inbound-sms";

const e164 = z.string().regex(/^\+[1-9]\d{6,14}$/, "an E.164 number such as +8613800000000");

/** Where a secret comes from: exactly one of a file (mode 0600 or stricter) or an environment variable. */
function secretSource<F extends string, E extends string>(fileKey: F, envKey: E) {
  return {
    [fileKey]: z.string().min(1).optional().describe("file holding the secret (owner-only, e.g. mode 0600)"),
    [envKey]: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/).optional().describe("environment variable holding the secret"),
  } as { [K in F]: z.ZodOptional<z.ZodString> } & { [K in E]: z.ZodOptional<z.ZodString> };
}

function exactlyOne(a: string, b: string) {
  return (v: Record<string, unknown>, ctx: z.RefinementCtx) => {
    if ((v[a] === undefined) === (v[b] === undefined)) ctx.addIssue({ code: "custom", message: `set exactly one of ${a} or ${b}`, path: [a] });
  };
}

const transport = {
  timeoutMs: z.number().int().min(100).max(60_000).default(5000).describe("per HTTP request to the provider"),
  retries: z.number().int().min(0).max(10).default(3).describe("further tries after a 5xx, 408, 429 or network error"),
  backoffMs: z.number().int().min(0).max(60_000).default(500).describe("first retry delay; doubles each retry"),
};

const scriptRule = z
  .object({
    to: e164.optional().describe("only calls to this number"),
    call: z.number().int().min(1).optional().describe("only the n-th call placed since start (1 = first)"),
    status: z.enum(["answered", "no_answer", "busy", "failed", "delivered", "undelivered"]),
    digits: z.string().regex(/^[0-9*#]{1,8}$/).optional().describe("key(s) pressed when answered"),
    afterMs: z.number().int().min(0).max(600_000).default(2000),
  })
  .strict();

export const consoleTelephonyConfigSchema = z
  .object({
    kind: z.literal("console").describe("demo: prints each call and answers by a script; never calls anyone"),
    script: z.array(scriptRule).default([]).describe("first matching rule decides the outcome"),
    otherwise: scriptRule.omit({ to: true, call: true }).default({ status: "no_answer", afterMs: 20_000 }).describe("outcome when no rule matches"),
    showMessage: z.boolean().default(false).describe("print the message text too (it may name the elder; demo data only)"),
  })
  .strict();

export const httpTelephonyConfigSchema = z
  .object({
    kind: z.literal("http").describe("the generic Anxin HTTP voice/SMS gateway contract (docs/integrations.md)"),
    url: z.string().url().describe("where call requests are POSTed"),
    ...secretSource("secretFile", "secretEnv"),
    ...transport,
    callbackPath: z.string().regex(/^\/[A-Za-z0-9/_-]*$/).default("/v1/telephony/callback"),
    inboundSmsPath: z.string().regex(/^\/[A-Za-z0-9/_-]*$/).optional().describe(`where the gateway POSTs texts received on the relay's inbound number (alarms by SMS); default ${DEFAULT_INBOUND_SMS_PATH}`),
    callbackWindowS: z.number().int().min(10).max(3600).default(300).describe("callbacks whose timestamp is further than this from the relay's clock are refused"),
    gatherTimeoutS: z.number().int().min(1).max(60).default(10),
  })
  .strict()
  .superRefine(exactlyOne("secretFile", "secretEnv"));

export const twilioTelephonyConfigSchema = z
  .object({
    kind: z.literal("twilio").describe("Twilio Programmable Voice and Messaging"),
    accountSid: z.string().regex(/^AC[0-9a-fA-F]{32}$/, "a Twilio Account SID (AC + 32 hex digits)"),
    ...secretSource("authTokenFile", "authTokenEnv"),
    from: e164.describe("the Twilio number calls and SMS come from"),
    baseUrl: z.string().url().default("https://api.twilio.com").describe("Twilio's REST API (tests point it at a stub)"),
    ...transport,
    callbackPath: z.string().regex(/^\/[A-Za-z0-9/_-]*$/).default("/v1/telephony/twilio"),
    gatherTimeoutS: z.number().int().min(1).max(60).default(10),
    sayLanguage: z.string().regex(/^[a-zA-Z]{2,3}(-[A-Za-z0-9]{2,8})*$/).optional().describe("<Say language=…>, e.g. cmn-CN"),
    sayVoice: z.string().min(1).max(64).optional().describe("<Say voice=…>"),
  })
  .strict()
  .superRefine(exactlyOne("authTokenFile", "authTokenEnv"));

export const telephonyConfigSchema = z.discriminatedUnion("kind", [consoleTelephonyConfigSchema, httpTelephonyConfigSchema, twilioTelephonyConfigSchema]);

export type TelephonyConfig = z.infer<typeof telephonyConfigSchema>;
export type ConsoleTelephonyConfig = z.infer<typeof consoleTelephonyConfigSchema>;
export type HttpTelephonyConfig = z.infer<typeof httpTelephonyConfigSchema>;
export type TwilioTelephonyConfig = z.infer<typeof twilioTelephonyConfigSchema>;
export type ConsoleScriptRule = z.infer<typeof scriptRule>;
