// What the HTTP adapters share: one POST to a provider with a timeout and retries on transient failures
// (network errors, timeouts, 5xx, 408, 429), and handing a verified callback's outcome on.
import axios, { type AxiosInstance, type AxiosResponse } from "axios";
import { TelephonyRejected, TelephonyUnavailable, type CallbackReply, type CallOutcome, type CallRequest, type TelephonyCounters, type TelephonyLog } from "./types.js";

export interface RetryPolicy {
  timeoutMs: number;
  /** Further tries after the first. */
  retries: number;
  /** Delay before the first retry; doubles after each. */
  backoffMs: number;
}

export interface ProviderPost extends RetryPolicy {
  http?: AxiosInstance;
  provider: string;
  url: string;
  /** Built again for every try (a fresh timestamp and signature). */
  request(): { body: string; headers: Record<string, string> };
  auth?: { username: string; password: string };
  sleep?: (ms: number) => Promise<void>;
}

const defaultSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Resolves with the 2xx response; rejects with TelephonyRejected (a 4xx that retrying cannot fix) or TelephonyUnavailable. */
export async function postWithRetry(o: ProviderPost): Promise<AxiosResponse<string>> {
  const http = o.http ?? axios;
  const sleep = o.sleep ?? defaultSleep;
  let last = "";
  for (let attempt = 0; attempt <= o.retries; attempt++) {
    if (attempt > 0) await sleep(o.backoffMs * 2 ** (attempt - 1));
    const { body, headers } = o.request();
    try {
      const res = await http.post<string>(o.url, body, {
        headers,
        timeout: o.timeoutMs,
        ...(o.auth ? { auth: o.auth } : {}),
        transformRequest: [(d: unknown) => d],
        responseType: "text",
        transformResponse: [(d: unknown) => d],
        maxRedirects: 0,
        maxContentLength: 256 * 1024,
        validateStatus: () => true,
      });
      const s = res.status;
      if (s >= 200 && s < 300) return res;
      last = `HTTP ${s}`;
      if (s >= 400 && s < 500 && s !== 408 && s !== 429) throw new TelephonyRejected(`${o.provider}: request refused (${last}${providerCode(res.data)})`, o.provider, s);
    } catch (err) {
      if (err instanceof TelephonyRejected) throw err;
      const e = err as { code?: string; message?: string };
      last = e.code === "ECONNABORTED" || e.code === "ETIMEDOUT" ? `timeout after ${o.timeoutMs} ms` : `network: ${e.code ?? e.message ?? "error"}`;
    }
  }
  throw new TelephonyUnavailable(`${o.provider}: unavailable after ${o.retries + 1} tries (last: ${last})`, o.provider);
}

// Only a provider's numeric error code goes into the message: its text may quote the number called.
function providerCode(body: unknown): string {
  if (typeof body !== "string") return "";
  try {
    const code = (JSON.parse(body) as { code?: unknown }).code;
    return typeof code === "number" || (typeof code === "string" && /^[\w.-]{1,32}$/.test(code)) ? `, code ${code}` : "";
  } catch {
    return "";
  }
}

/** What an adapter shares with the helpers below: its name, its totals, its log and the escalation's ear. */
export interface AdapterParts {
  provider: string;
  counters: TelephonyCounters;
  log: TelephonyLog;
  onOutcome(o: CallOutcome): Promise<void>;
}

/**
 * Passes a verified callback's outcome on. Undefined once recorded; when it could not be, the 500 to answer
 * with, so the provider retries the callback and the outcome is not lost.
 */
export async function deliverOutcome(a: AdapterParts, outcome: CallOutcome): Promise<CallbackReply | undefined> {
  try {
    await a.onOutcome(outcome);
  } catch (err) {
    a.log.error({ provider: a.provider, attemptId: outcome.attemptId, err: (err as Error).message }, "telephony outcome not recorded");
    return { status: 500, body: JSON.stringify({ error: "internal" }) };
  }
  a.counters.callbacks++;
  return undefined;
}

/** Runs one place() request, counting and logging its result (the number called is never logged). */
export async function placeCounted(a: AdapterParts, req: CallRequest, send: () => Promise<{ providerRef: string }>): Promise<{ providerRef: string }> {
  try {
    const { providerRef } = await send();
    a.counters.placed++;
    a.log.debug({ provider: a.provider, attemptId: req.attemptId, channel: req.channel, providerRef }, "telephony request accepted");
    return { providerRef };
  } catch (err) {
    a.counters.failed++;
    a.log.warn({ provider: a.provider, attemptId: req.attemptId, channel: req.channel, err: (err as Error).message }, "telephony request failed");
    throw err;
  }
}

/** JSON.parse that answers undefined for anything that is not JSON. */
export function parseJsonOrUndefined(s: string | Buffer): unknown {
  try {
    return JSON.parse(typeof s === "string" ? s : s.toString("utf8"));
  } catch {
    return undefined;
  }
}

/** "+8613812345678" → "+86*******5678": enough to tell calls apart in a log, not to dial. */
export function maskNumber(n: string): string {
  if (n.length <= 7) return "*".repeat(n.length);
  return `${n.slice(0, 3)}${"*".repeat(n.length - 7)}${n.slice(-4)}`;
}
