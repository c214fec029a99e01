// A telephony gateway over real HTTP that speaks the generic Anxin gateway contract (docs/integrations.md),
// driven by a script per number. For the relay's http telephony adapter:
//
//   const gw = await startTelephonyStub({ secret: "…" });     // listens on 127.0.0.1, port 0
//   relay config: telephony: { kind: "http", url: gw.url, secretFile: <file holding the same secret> }
//   gw.script("+8613800000001", { status: "answered", digits: "1" })          // every call to it: answered, key 1
//   gw.script("+8613800000002", [{ status: "no_answer" }, { status: "busy" }]) // 1st call, then 2nd (and after)
//   gw.script("+8613800000003", { status: "answered", afterMs: 200 })          // callback 200 ms after the request
//   gw.script("+8613800000004", { status: "no_answer", silent: true })         // accepted, never calls back
//   numbers without a script: `defaultStep` (default { status: "no_answer" })
//   gw.setOutage("503")     // every request answered 503 ("reset": connections reset; "refuse": port closed)
//   gw.setOutage("off")     // back to normal (same port)
//   gw.hold(true)           // queue callbacks until gw.flush() (tests that drive time themselves)
//   await gw.waitForCalls(3) / gw.waitForCallbacks(3)      // hang-guarded waits
//   gw.calls                // every accepted request (verified signature): body + headers, in order
//   gw.refused              // requests refused for a bad signature (answered 401) or a bad body (400)
//   gw.callbacks            // every callback posted: body and the relay's HTTP status
//   await gw.postForged(callbackUrl, { attemptId, status: "answered", digits: "1", providerRef: "x" }, "wrong-secret" | "stale" | "unsigned")
//   await gw.postCallback(callbackUrl, body)               // a correctly signed callback, by hand
//   await gw.close()
//
// `now` (default Date.now) is the clock the stub signs callbacks with and checks request timestamps
// against: give it the relay's clock when the relay runs on a fake one. A repeated attemptId is the same
// call (same providerRef, no second call, no second callback), as the contract asks of a gateway.
import http from "node:http";
import type { AddressInfo } from "node:net";
import axios from "axios";
import type { GatewayCallRequest } from "../../relay/src/telephony/http-gateway.js";
import { SIGNATURE_HEADER, signedHeaders, TIMESTAMP_HEADER, verifyAnxinSignature } from "../../relay/src/telephony/signature.js";
import type { CallStatus } from "../../relay/src/telephony/types.js";

export interface StubStep {
  status: CallStatus;
  digits?: string;
  /** Delay before the callback (default 0). */
  afterMs?: number;
  /** Accept the request but never call back (a lost callback). */
  silent?: boolean;
}

/** An accepted request: the body the relay sent (the gateway contract's own type), and what the stub added. */
export interface StubCall extends GatewayCallRequest {
  providerRef: string;
  headers: http.IncomingHttpHeaders;
  /** Which call to this number it was (1-based). */
  nth: number;
}

export interface StubCallback {
  url: string;
  body: Record<string, unknown>;
  /** The relay's answer (0 when the request itself failed). */
  status: number;
}

export type OutageMode = "off" | "503" | "reset" | "refuse";

export interface TelephonyStubOptions {
  secret: string;
  defaultStep?: StubStep;
  now?: () => number;
  /** Request timestamp window (default 5 min). */
  windowMs?: number;
}

export interface TelephonyStub {
  /** Where the relay POSTs call requests. */
  url: string;
  calls: StubCall[];
  refused: { status: number; reason: string }[];
  callbacks: StubCallback[];
  /** Requests that repeated an attemptId already accepted. */
  duplicates: number;
  /** Every HTTP request that reached the stub (outage answers included). */
  requestsSeen: number;
  script(to: string, steps: StubStep | StubStep[]): void;
  setOutage(mode: OutageMode): Promise<void>;
  /** Delay every answer to a call request (timeout tests). */
  setResponseDelay(ms: number): void;
  hold(on: boolean): void;
  /** Sends the held callbacks now; resolves when the relay answered them. */
  flush(): Promise<void>;
  waitForCalls(n: number, timeoutMs?: number): Promise<void>;
  waitForCallbacks(n: number, timeoutMs?: number): Promise<void>;
  postCallback(url: string, body: Record<string, unknown>): Promise<number>;
  postForged(url: string, body: Record<string, unknown>, how: "wrong-secret" | "stale" | "unsigned" | "tampered"): Promise<number>;
  close(): Promise<void>;
}

export async function startTelephonyStub(o: TelephonyStubOptions): Promise<TelephonyStub> {
  const now = o.now ?? Date.now;
  const scripts = new Map<string, StubStep[]>();
  const perNumber = new Map<string, number>();
  const byAttempt = new Map<string, string>();
  const calls: StubCall[] = [];
  const refused: { status: number; reason: string }[] = [];
  const callbacks: StubCallback[] = [];
  const held: (() => Promise<void>)[] = [];
  const inflight = new Set<Promise<void>>();
  const waiters = new Set<() => void>();
  let outage: OutageMode = "off";
  let responseDelay = 0;
  let holding = false;
  let duplicates = 0;
  let seen = 0;
  let refSeq = 0;
  const notify = () => [...waiters].forEach((w) => w());

  async function post(url: string, body: Record<string, unknown>, headers: Record<string, string>): Promise<number> {
    try {
      const res = await axios.post(url, JSON.stringify(body), {
        headers: { "content-type": "application/json", ...headers },
        timeout: 10_000,
        validateStatus: () => true,
        transformRequest: [(d: unknown) => d],
      });
      return res.status;
    } catch {
      return 0;
    }
  }

  async function sendCallback(url: string, body: Record<string, unknown>): Promise<number> {
    const text = JSON.stringify(body);
    const status = await post(url, body, signedHeaders(o.secret, now(), text));
    callbacks.push({ url, body, status });
    notify();
    return status;
  }

  function schedule(call: StubCall, step: StubStep): void {
    if (step.silent) return;
    const body: Record<string, unknown> = { attemptId: call.attemptId, status: step.status, providerRef: call.providerRef };
    if (step.digits !== undefined) body.digits = step.digits;
    const fire = async () => {
      await sendCallback(call.callbackUrl, body);
    };
    if (holding) {
      held.push(fire);
      return;
    }
    const p = new Promise<void>((resolve) => setTimeout(resolve, step.afterMs ?? 0)).then(fire);
    inflight.add(p);
    void p.finally(() => inflight.delete(p));
  }

  const server = http.createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on("data", (c: Buffer) => parts.push(c));
    req.on("end", () => {
      seen++;
      const answer = (status: number, body: unknown) => {
        const send = () => {
          if (res.destroyed) return;
          res.writeHead(status, { "content-type": "application/json" });
          res.end(JSON.stringify(body));
        };
        if (responseDelay > 0) setTimeout(send, responseDelay);
        else send();
      };
      if (outage === "503") return answer(503, { error: "unavailable" });
      const raw = Buffer.concat(parts);
      const check = verifyAnxinSignature(o.secret, { timestamp: req.headers[TIMESTAMP_HEADER], signature: req.headers[SIGNATURE_HEADER] }, raw, now(), o.windowMs ?? 5 * 60_000);
      if (!check.ok) {
        refused.push({ status: 401, reason: check.reason });
        return answer(401, { error: "bad signature" });
      }
      let b: Partial<StubCall> & Record<string, unknown>;
      try {
        b = JSON.parse(raw.toString("utf8")) as typeof b;
      } catch {
        refused.push({ status: 400, reason: "not JSON" });
        return answer(400, { error: "not JSON" });
      }
      if (typeof b.attemptId !== "string" || typeof b.to !== "string" || (b.channel !== "voice" && b.channel !== "sms") || typeof b.message !== "string" || typeof b.callbackUrl !== "string" || !("gather" in b)) {
        refused.push({ status: 400, reason: "bad body" });
        return answer(400, { error: "bad body" });
      }
      if (req.headers["idempotency-key"] !== b.attemptId) {
        refused.push({ status: 400, reason: "Idempotency-Key differs from attemptId" });
        return answer(400, { error: "Idempotency-Key must equal attemptId" });
      }
      const known = byAttempt.get(b.attemptId);
      if (known) {
        duplicates++;
        return answer(200, { providerRef: known });
      }
      const providerRef = `stub-${++refSeq}`;
      byAttempt.set(b.attemptId, providerRef);
      const nth = (perNumber.get(b.to) ?? 0) + 1;
      perNumber.set(b.to, nth);
      const call: StubCall = {
        attemptId: b.attemptId,
        to: b.to,
        channel: b.channel,
        message: b.message,
        gather: (b.gather as StubCall["gather"]) ?? null,
        callbackUrl: b.callbackUrl,
        providerRef,
        headers: req.headers,
        nth,
      };
      calls.push(call);
      const steps = scripts.get(b.to);
      const step = steps ? (steps[Math.min(nth, steps.length) - 1] as StubStep) : (o.defaultStep ?? { status: "no_answer" });
      answer(200, { providerRef });
      notify();
      schedule(call, step);
    });
  });
  server.on("connection", (s) => {
    if (outage === "reset") s.resetAndDestroy();
  });
  const listen = (port: number) => new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  await listen(0);
  const port = (server.address() as AddressInfo).port;

  const waitUntil = (what: string, cond: () => boolean, timeoutMs: number) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (cond()) {
          clearTimeout(t);
          waiters.delete(check);
          resolve();
        }
      };
      const t = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`telephony stub: timed out waiting for ${what}`));
      }, timeoutMs);
      waiters.add(check);
      check();
    });

  return {
    url: `http://127.0.0.1:${port}/v1/calls`,
    calls,
    refused,
    callbacks,
    get duplicates() {
      return duplicates;
    },
    get requestsSeen() {
      return seen;
    },
    script(to, steps) {
      scripts.set(to, Array.isArray(steps) ? steps : [steps]);
    },
    async setOutage(mode) {
      const was = outage;
      outage = mode;
      if (mode === "refuse" && was !== "refuse") {
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        });
      } else if (was === "refuse" && mode !== "refuse") {
        await listen(port);
      }
    },
    setResponseDelay(ms) {
      responseDelay = ms;
    },
    hold(on) {
      holding = on;
    },
    async flush() {
      const list = held.splice(0);
      for (const f of list) await f();
    },
    waitForCalls(n, timeoutMs = 10_000) {
      return waitUntil(`${n} calls (have ${calls.length})`, () => calls.length >= n, timeoutMs);
    },
    waitForCallbacks(n, timeoutMs = 10_000) {
      return waitUntil(`${n} callbacks (have ${callbacks.length})`, () => callbacks.length >= n, timeoutMs);
    },
    postCallback: sendCallback,
    async postForged(url, body, how) {
      const text = JSON.stringify(body);
      let headers: Record<string, string>;
      if (how === "unsigned") headers = {};
      else if (how === "wrong-secret") headers = signedHeaders(`${o.secret}-not`, now(), text);
      else if (how === "stale") headers = signedHeaders(o.secret, now() - 60 * 60_000, text);
      else headers = signedHeaders(o.secret, now(), text.replace(/}$/, ',"x":1}'));
      return post(url, body, headers);
    },
    async close() {
      await Promise.allSettled([...inflight]);
      if (outage === "refuse") return;
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
