// A webhook receiver over real HTTP, standing in for the duty platform or an operations centre.
//
//   const hook = await startWebhookStub({ secret: "…" });      // listens on 127.0.0.1, port 0
//   destination url: hook.url                                   // POST anything to it
//   hook.failNext(2)            // the next 2 requests get 500 (or failNext(1, 404) for a 4xx), then 200 again
//   hook.setStatus(503)         // every request gets 503 until setStatus(null)
//   await hook.waitFor(3)       // until 3 requests were answered 2xx (rejects after a hang-guard timeout)
//   hook.requests               // every request: body, json, idempotencyKey, timestamp, signatureOk, status
//   hook.delivered              // the requests answered 2xx
//   hook.deliveriesByKey()      // Map idempotency key → number of 2xx answers (a second one is a double delivery)
//   await hook.close()
//
// The signature is checked as docs/integrations.md tells receivers to (X-Anxin-Signature over
// "<X-Anxin-Timestamp>.<body>"); a request with a bad signature is answered 401 and recorded with
// signatureOk false. `now` is the clock the timestamp window is checked against (default Date.now);
// `windowMs` (default 5 min) can be Infinity for tests whose relay runs on a far-away fake clock.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { verifyAnxinSignature } from "../../relay/src/telephony/signature.js";

export interface ReceivedWebhook {
  body: string;
  json: unknown;
  headers: http.IncomingHttpHeaders;
  idempotencyKey: string | undefined;
  timestamp: number | undefined;
  signatureOk: boolean;
  /** What the stub answered. */
  status: number;
  /** Date.now() when received. */
  receivedAt: number;
}

export interface WebhookStubOptions {
  secret: string;
  /** Answer the first N requests with failStatus. */
  failFirst?: number;
  failStatus?: number;
  now?: () => number;
  windowMs?: number;
  /** Delay every answer (timeout tests). */
  delayMs?: number;
}

export interface WebhookStub {
  url: string;
  requests: ReceivedWebhook[];
  readonly delivered: ReceivedWebhook[];
  failNext(n: number, status?: number): void;
  setStatus(status: number | null): void;
  setDelay(ms: number): void;
  deliveriesByKey(): Map<string, number>;
  waitFor(deliveries: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export async function startWebhookStub(o: WebhookStubOptions): Promise<WebhookStub> {
  const requests: ReceivedWebhook[] = [];
  let failLeft = o.failFirst ?? 0;
  let failStatus = o.failStatus ?? 500;
  let fixed: number | null = null;
  let delay = o.delayMs ?? 0;
  const now = o.now ?? Date.now;
  const waiters = new Set<() => void>();

  const server = http.createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on("data", (c: Buffer) => parts.push(c));
    req.on("end", () => {
      const raw = Buffer.concat(parts);
      const body = raw.toString("utf8");
      const check = verifyAnxinSignature(
        o.secret,
        { timestamp: req.headers["x-anxin-timestamp"], signature: req.headers["x-anxin-signature"] },
        raw,
        now(),
        o.windowMs ?? 5 * 60_000,
      );
      let status: number;
      if (!check.ok) status = 401;
      else if (fixed !== null) status = fixed;
      else if (failLeft > 0) {
        failLeft--;
        status = failStatus;
      } else status = 200;
      let json: unknown;
      try {
        json = JSON.parse(body);
      } catch {
        json = undefined;
      }
      const key = req.headers["idempotency-key"];
      const ts = req.headers["x-anxin-timestamp"];
      requests.push({
        body,
        json,
        headers: req.headers,
        idempotencyKey: typeof key === "string" ? key : undefined,
        timestamp: typeof ts === "string" ? Number(ts) : undefined,
        signatureOk: check.ok,
        status,
        receivedAt: Date.now(),
      });
      const answer = () => {
        res.writeHead(status, { "content-type": "application/json" });
        res.end(JSON.stringify(status < 300 ? { ok: true } : { error: "stub" }));
        for (const w of [...waiters]) w();
      };
      if (delay > 0) setTimeout(answer, delay);
      else answer();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;

  const delivered = () => requests.filter((r) => r.status >= 200 && r.status < 300);
  return {
    url: `http://127.0.0.1:${port}/hook`,
    requests,
    get delivered() {
      return delivered();
    },
    failNext(n, status = 500) {
      failLeft = n;
      failStatus = status;
    },
    setStatus(status) {
      fixed = status;
    },
    setDelay(ms) {
      delay = ms;
    },
    deliveriesByKey() {
      const m = new Map<string, number>();
      for (const r of delivered()) if (r.idempotencyKey) m.set(r.idempotencyKey, (m.get(r.idempotencyKey) ?? 0) + 1);
      return m;
    },
    waitFor(n, timeoutMs = 10_000) {
      return new Promise<void>((resolve, reject) => {
        const check = () => {
          if (delivered().length >= n) {
            clearTimeout(t);
            waiters.delete(check);
            resolve();
          }
        };
        const t = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`webhook stub: ${delivered().length} of ${n} deliveries after ${timeoutMs} ms`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    close() {
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
