// The relay's HTTP API: health, Prometheus metrics, and hub enrolment (claim code → credentials), plus
// whatever route handlers other parts add (telephony callbacks, the operator API), tried in order before
// the 404. Plain node:http: a handful of routes do not need a framework.
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "pino";
import type { Registry as PromRegistry } from "prom-client";
import { enrolRequestSchema, type EnrolResponse } from "../../../protocol/messages.js";
import { EnrolError } from "../registry/registry.js";

export const MAX_BODY_BYTES = 4096;

/**
 * An extra route: resolves false when the request is not for it (nothing written to `res`), true once it
 * has answered. The same shape as the telephony module's RouteHandler.
 */
export type RouteHandler = (req: http.IncomingMessage, res: http.ServerResponse) => Promise<boolean>;

export interface HealthReport {
  ok: boolean;
  [k: string]: unknown;
}

export interface ApiOptions {
  host: string;
  port: number;
  log: Logger;
  metrics: { registry: PromRegistry };
  /** Registry.enrol. */
  enrol(hub: string, code: string): Promise<EnrolResponse>;
  /** What /healthz reports; 503 unless ok. */
  health(): HealthReport | Promise<HealthReport>;
  /** Failed enrolments allowed per client address in `windowMs` before 429. Default 10 a minute. */
  enrolFailures?: { max: number; windowMs: number };
  now?: () => number;
  /** Tried in order for any path the server does not answer itself. */
  routes?: RouteHandler[];
}

const STATUS_OF: Record<EnrolError["code"], number> = {
  unknown_hub: 404,
  bad_code: 403,
  revoked: 403,
  expired: 410,
  used: 410,
};

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Counts failures per address in fixed windows; entries expire, and the table is bounded. */
class FailureLimiter {
  private readonly seen = new Map<string, { count: number; until: number }>();
  constructor(
    private readonly max: number,
    private readonly windowMs: number,
    private readonly now: () => number,
  ) {}

  /** Seconds until the address may try again, or 0 when it may now. */
  blockedFor(addr: string): number {
    const e = this.seen.get(addr);
    const t = this.now();
    if (!e || e.until <= t) return 0;
    return e.count >= this.max ? Math.ceil((e.until - t) / 1000) : 0;
  }

  fail(addr: string): void {
    const t = this.now();
    let e = this.seen.get(addr);
    if (!e || e.until <= t) {
      if (this.seen.size >= 100_000) this.prune(t);
      this.seen.set(addr, (e = { count: 0, until: t + this.windowMs }));
    }
    e.count++;
  }

  private prune(t: number): void {
    for (const [k, v] of this.seen) if (v.until <= t) this.seen.delete(k);
    // Still full (a flood from many addresses): forget the oldest half rather than grow without bound.
    if (this.seen.size >= 100_000) [...this.seen.keys()].slice(0, 50_000).forEach((k) => this.seen.delete(k));
  }
}

export class ApiServer {
  private readonly server: http.Server;
  private readonly limiter: FailureLimiter;
  private closing: Promise<void> | undefined;

  constructor(private readonly o: ApiOptions) {
    const lim = o.enrolFailures ?? { max: 10, windowMs: 60_000 };
    this.limiter = new FailureLimiter(lim.max, lim.windowMs, o.now ?? Date.now);
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch((err: Error) => {
        o.log.error({ err: err.message, path: req.url }, "HTTP handler failed");
        if (!res.headersSent) send(res, 500, { error: "internal", message: "internal error" });
        else res.destroy();
      });
    });
    // Slow or idle clients must not hold sockets open.
    this.server.headersTimeout = 10_000;
    this.server.requestTimeout = 15_000;
    this.server.keepAliveTimeout = 5_000;
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(this.o.port, this.o.host, () => {
        this.server.off("error", reject);
        resolve();
      });
    });
    this.server.on("error", (err) => this.o.log.error({ err: err.message }, "HTTP server error"));
    this.o.log.info({ url: this.url }, "HTTP API listening");
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  get url(): string {
    const a = this.server.address() as AddressInfo;
    const host = a.address === "0.0.0.0" || a.address === "::" ? "127.0.0.1" : a.address;
    return `http://${host.includes(":") ? `[${host}]` : host}:${a.port}`;
  }

  close(): Promise<void> {
    return (this.closing ??= new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeIdleConnections();
    }));
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://relay");
    const route = `${req.method} ${url.pathname}`;
    switch (url.pathname) {
      case "/healthz": {
        if (req.method !== "GET" && req.method !== "HEAD") return methodNotAllowed(res, "GET, HEAD");
        const h = await Promise.resolve(this.o.health()).catch((e: Error): HealthReport => ({ ok: false, error: e.message }));
        return send(res, h.ok ? 200 : 503, h, req.method === "HEAD");
      }
      case "/metrics": {
        if (req.method !== "GET" && req.method !== "HEAD") return methodNotAllowed(res, "GET, HEAD");
        const text = await this.o.metrics.registry.metrics();
        res.writeHead(200, { "content-type": this.o.metrics.registry.contentType, "cache-control": "no-store" });
        res.end(req.method === "HEAD" ? undefined : text);
        return;
      }
      case "/v1/enrol": {
        if (req.method !== "POST") return methodNotAllowed(res, "POST");
        return this.enrol(req, res);
      }
      default:
        for (const r of this.o.routes ?? []) if (await r(req, res)) return;
        req.resume();
        this.o.log.debug({ route }, "HTTP unknown path");
        return send(res, 404, { error: "not_found", message: `no such path: ${url.pathname}` });
    }
  }

  private async enrol(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const addr = req.socket.remoteAddress ?? "unknown";
    const wait = this.limiter.blockedFor(addr);
    if (wait > 0) {
      req.resume();
      res.setHeader("retry-after", String(wait));
      this.o.log.warn({ remote: addr }, "enrolment refused: too many failures from this address");
      return send(res, 429, { error: "rate_limited", message: `too many failed enrolments; try again in ${wait} s` });
    }
    let hub: string | undefined;
    try {
      const body = await readBody(req, MAX_BODY_BYTES);
      let json: unknown;
      try {
        json = JSON.parse(body.toString("utf8"));
      } catch (e) {
        throw new HttpError(400, "bad_json", `body is not JSON: ${(e as Error).message}`);
      }
      const parsed = enrolRequestSchema.safeParse(json);
      if (!parsed.success) {
        const what = parsed.error.issues.map((i) => `${i.path.map(String).join(".") || "(body)"}: ${i.message}`).join("; ");
        throw new HttpError(400, "bad_request", what);
      }
      hub = parsed.data.hub;
      const answer = await this.o.enrol(parsed.data.hub, parsed.data.code);
      // The answer holds the hub's password and signing key: never logged, never cached.
      this.o.log.info({ hub, remote: addr }, "hub enrolled");
      send(res, 200, answer);
    } catch (e) {
      if (e instanceof HttpError) {
        if (e.status === 413) res.setHeader("connection", "close");
        else this.limiter.fail(addr);
        this.o.log.info({ remote: addr, status: e.status, error: e.code }, "enrolment request refused");
        return send(res, e.status, { error: e.code, message: e.message });
      }
      if (e instanceof EnrolError) {
        this.limiter.fail(addr);
        this.o.log.warn({ hub, remote: addr, error: e.code }, "enrolment refused");
        return send(res, STATUS_OF[e.code] ?? 403, { error: e.code, message: e.message });
      }
      throw e;
    }
  }
}

export function send(res: http.ServerResponse, status: number, body: unknown, headOnly = false): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", "cache-control": "no-store", "content-length": Buffer.byteLength(text) });
  res.end(headOnly ? undefined : text);
}

function methodNotAllowed(res: http.ServerResponse, allow: string): void {
  res.setHeader("allow", allow);
  send(res, 405, { error: "method_not_allowed", message: `use ${allow}` });
}

/** Reads at most `limit` bytes; a longer body (by header or by count) is a 413 and the rest is not read. */
export function readBody(req: http.IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers["content-length"] ?? NaN);
  if (declared > limit) return Promise.reject(new HttpError(413, "too_large", `body over ${limit} bytes`));
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    let done = false;
    req.on("data", (c: Buffer) => {
      if (done) return;
      size += c.length;
      if (size > limit) {
        done = true;
        req.pause();
        reject(new HttpError(413, "too_large", `body over ${limit} bytes`));
        return;
      }
      parts.push(c);
    });
    req.on("end", () => {
      if (done) return;
      done = true;
      resolve(Buffer.concat(parts));
    });
    req.on("error", (e) => {
      if (done) return;
      done = true;
      reject(e);
    });
  });
}
