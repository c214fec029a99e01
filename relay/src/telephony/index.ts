// Builds the configured telephony adapter. The relay passes `callbackRoute` to its HTTP server and
// `telephony` to the escalation engine; the engine hears outcomes through deps.onOutcome.
import type { AxiosInstance } from "axios";
import { DEFAULT_INBOUND_SMS_PATH, type HttpTelephonyConfig, type TelephonyConfig, type TwilioTelephonyConfig } from "./config.js";
import { ConsoleTelephony } from "./console.js";
import { HttpGatewayTelephony } from "./http-gateway.js";
import { readSecret } from "./secret-source.js";
import { TwilioTelephony } from "./twilio.js";
import type { CallbackRoute, Telephony, TelephonyCounters, TelephonyDeps, TelephonyHandle } from "./types.js";

export * from "./types.js";
export { telephonyConfigSchema, type TelephonyConfig } from "./config.js";
export { SecretSourceError } from "./secret-source.js";
export { maskNumber } from "./provider-http.js";

export interface CreateTelephonyDeps extends TelephonyDeps {
  /** Relative secret files resolve against this (the configuration file's directory). */
  baseDir?: string;
  env?: NodeJS.ProcessEnv;
  /** Console adapter: where its human-readable lines go (the demo passes console.log). */
  print?: (line: string) => void;
  /** Console adapter: timer injection for tests. */
  schedule?: (fn: () => void, ms: number) => () => void;
  sleep?: (ms: number) => Promise<void>;
  http?: AxiosInstance;
}

/** Throws SecretSourceError when a secret cannot be read (missing, empty, or readable by other users). */
export function createTelephony(cfg: TelephonyConfig, deps: CreateTelephonyDeps): TelephonyHandle {
  /** What every adapter takes. */
  const base = { log: deps.log, onOutcome: deps.onOutcome, ...(deps.now ? { now: deps.now } : {}) };
  /** Inbound SMS, for the adapters that receive texts. */
  const inbound = deps.onInboundSms ? { onInboundSms: deps.onInboundSms } : {};
  /** What both HTTP providers take alike from their configuration. */
  const provider = (c: HttpTelephonyConfig | TwilioTelephonyConfig) => ({
    ...base,
    publicUrl: deps.publicUrl,
    ...(deps.sleep ? { sleep: deps.sleep } : {}),
    ...(deps.http ? { http: deps.http } : {}),
    timeoutMs: c.timeoutMs,
    retries: c.retries,
    backoffMs: c.backoffMs,
    callbackPath: c.callbackPath,
    gatherTimeoutS: c.gatherTimeoutS,
  });
  const secretOpts = { ...(deps.baseDir ? { baseDir: deps.baseDir } : {}), ...(deps.env ? { env: deps.env } : {}) };
  /** A secret from its file or its variable; errors name the key that was set. */
  const secret = (file: string | undefined, env: string | undefined, key: string) =>
    readSecret({ file, env }, file ? `telephony.${key}File` : `telephony.${key}Env`, secretOpts);
  const handle = (t: Telephony & { callbackRoute: CallbackRoute; counters: TelephonyCounters }, close: () => Promise<void> = async () => {}): TelephonyHandle => ({
    telephony: t,
    callbackRoute: t.callbackRoute,
    counters: t.counters,
    close,
  });
  switch (cfg.kind) {
    case "console": {
      const t = new ConsoleTelephony({
        ...base,
        script: cfg.script,
        otherwise: cfg.otherwise,
        showMessage: cfg.showMessage,
        ...(deps.print ? { print: deps.print } : {}),
        ...(deps.schedule ? { schedule: deps.schedule } : {}),
      });
      return handle(t, () => t.close());
    }
    case "http":
      return handle(
        new HttpGatewayTelephony({
          ...provider(cfg),
          ...inbound,
          inboundSmsPath: cfg.inboundSmsPath ?? DEFAULT_INBOUND_SMS_PATH,
          url: cfg.url,
          secret: secret(cfg.secretFile, cfg.secretEnv, "secret"),
          callbackWindowMs: cfg.callbackWindowS * 1000,
        }),
      );
    case "twilio":
      return handle(
        new TwilioTelephony({
          ...provider(cfg),
          ...inbound,
          accountSid: cfg.accountSid,
          authToken: secret(cfg.authTokenFile, cfg.authTokenEnv, "authToken"),
          from: cfg.from,
          baseUrl: cfg.baseUrl,
          sayLanguage: cfg.sayLanguage,
          sayVoice: cfg.sayVoice,
        }),
      );
  }
}
