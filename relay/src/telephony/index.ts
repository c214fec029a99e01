// Builds the configured telephony adapter. The relay passes `callbackRoute` to its HTTP server and
// `telephony` to the escalation engine; the engine hears outcomes through deps.onOutcome.
import type { AxiosInstance } from "axios";
import type { TelephonyConfig } from "./config.js";
import { ConsoleTelephony } from "./console.js";
import { HttpGatewayTelephony } from "./http-gateway.js";
import { readSecret } from "./secret-source.js";
import { TwilioTelephony } from "./twilio.js";
import type { TelephonyDeps, TelephonyHandle } from "./types.js";

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
  const common = {
    log: deps.log,
    onOutcome: deps.onOutcome,
    publicUrl: deps.publicUrl,
    ...(deps.now ? { now: deps.now } : {}),
    ...(deps.sleep ? { sleep: deps.sleep } : {}),
    ...(deps.http ? { http: deps.http } : {}),
  };
  const secretOpts = { ...(deps.baseDir ? { baseDir: deps.baseDir } : {}), ...(deps.env ? { env: deps.env } : {}) };
  switch (cfg.kind) {
    case "console": {
      const t = new ConsoleTelephony({
        script: cfg.script,
        otherwise: cfg.otherwise,
        showMessage: cfg.showMessage,
        log: deps.log,
        onOutcome: deps.onOutcome,
        ...(deps.print ? { print: deps.print } : {}),
        ...(deps.now ? { now: deps.now } : {}),
        ...(deps.schedule ? { schedule: deps.schedule } : {}),
      });
      return { telephony: t, callbackRoute: t.callbackRoute, counters: t.counters, close: () => t.close() };
    }
    case "http": {
      const secret = readSecret({ file: cfg.secretFile, env: cfg.secretEnv }, cfg.secretFile ? "telephony.secretFile" : "telephony.secretEnv", secretOpts);
      const t = new HttpGatewayTelephony({
        ...common,
        url: cfg.url,
        secret,
        timeoutMs: cfg.timeoutMs,
        retries: cfg.retries,
        backoffMs: cfg.backoffMs,
        callbackPath: cfg.callbackPath,
        callbackWindowMs: cfg.callbackWindowS * 1000,
        gatherTimeoutS: cfg.gatherTimeoutS,
      });
      return { telephony: t, callbackRoute: t.callbackRoute, counters: t.counters, close: async () => {} };
    }
    case "twilio": {
      const authToken = readSecret({ file: cfg.authTokenFile, env: cfg.authTokenEnv }, cfg.authTokenFile ? "telephony.authTokenFile" : "telephony.authTokenEnv", secretOpts);
      const t = new TwilioTelephony({
        ...common,
        accountSid: cfg.accountSid,
        authToken,
        from: cfg.from,
        baseUrl: cfg.baseUrl,
        timeoutMs: cfg.timeoutMs,
        retries: cfg.retries,
        backoffMs: cfg.backoffMs,
        callbackPath: cfg.callbackPath,
        gatherTimeoutS: cfg.gatherTimeoutS,
        sayLanguage: cfg.sayLanguage,
        sayVoice: cfg.sayVoice,
      });
      return { telephony: t, callbackRoute: t.callbackRoute, counters: t.counters, close: async () => {} };
    }
  }
}
