// The relay's HTTP API: health, Prometheus metrics, and hub enrolment (claim code → credentials), plus
// whatever route handlers other parts add (telephony callbacks, the operator API), tried in order before
// the 404. Plain node:http: a handful of routes do not need a framework. /metrics may have a listener of
// its own (then the public one answers 404 for it).
import http from "node:http";
import { BlockList, isIP, type AddressInfo } from "node:net";
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
  /**
   * Reverse proxies (addresses or CIDR ranges) whose `X-Forwarded-For` is believed: the enrolment rate
   * limit then counts the client the proxy names, not the proxy. Default none: the socket's address.
   */
  trustedProxies?: readonly string[];
  /** A separate listener for /metrics (and /healthz); when set, the public listener answers 404 for /metrics. */
  metricsListener?: { host: string; port: number };
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

/** C0 and C1 control characters (NUL included): never part of an id, and PostgreSQL refuses NUL in text. */
// eslint-disable-next-line no-control-regex -- matching control characters is the point: such input is refused
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/;

/** True when the URL's path or query, once decoded, holds a control character. */
export function urlHasControlChars(url: URL): boolean {
  let path = url.pathname;
  try {
    path = decodeURIComponent(path);
  } catch {
    // A malformed escape is the route's to refuse (400 bad_path); it decodes to no control character.
  }
  if (CONTROL_CHARS.test(path)) return true;
  for (const [k, v] of url.searchParams) if (CONTROL_CHARS.test(k) || CONTROL_CHARS.test(v)) return true;
  return false;
}

/** `::ffff:192.0.2.1` → `192.0.2.1`, so one client has one key whichever way the socket shows it. */
function plainIp(addr: string): string {
  const m = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(addr);
  return m ? (m[1] as string) : addr;
}

/** Parses `192.0.2.0/24`, `2001:db8::/32` or a single address; undefined when it is none of these. */
export function parseCidr(s: string): { address: string; prefix: number; family: "ipv4" | "ipv6" } | undefined {
  const [address = "", prefixText, ...rest] = s.trim().split("/");
  if (rest.length) return undefined;
  const v = isIP(address);
  if (v === 0) return undefined;
  const max = v === 4 ? 32 : 128;
  if (prefixText !== undefined && !/^\d{1,3}$/.test(prefixText)) return undefined;
  const prefix = prefixText === undefined ? max : Number(prefixText);
  if (prefix > max) return undefined;
  return { address, prefix, family: v === 4 ? "ipv4" : "ipv6" };
}

/**
 * The client's address for rate limiting. The socket's peer, unless that peer is a trusted proxy: then the
 * `X-Forwarded-For` chain is read from the right (the entries the trusted proxies appended) and the first
 * address not itself a trusted proxy is the client. Entries left of it were written by the client and are
 * never believed; a malformed entry where an address is expected falls back to the last trusted hop.
 */
export function clientAddress(req: http.IncomingMessage, trusted: BlockList | undefined): string {
  const peer = plainIp(req.socket.remoteAddress ?? "unknown");
  if (!trusted || !isTrusted(trusted, peer)) return peer;
  const header = req.headers["x-forwarded-for"];
  const chain = (Array.isArray(header) ? header.join(",") : (header ?? "")).split(",").map((h) => h.trim()).filter((h) => h.length > 0);
  let addr = peer;
  for (let i = chain.length - 1; i >= 0; i--) {
    const hop = plainIp(chain[i] as string);
    if (isIP(hop) === 0) return addr;
    addr = hop;
    if (!isTrusted(trusted, hop)) return hop;
  }
  return addr;
}

function isTrusted(list: BlockList, addr: string): boolean {
  const v = isIP(addr);
  return v !== 0 && list.check(addr, v === 4 ? "ipv4" : "ipv6");
}

function proxyList(cidrs: readonly string[] | undefined): BlockList | undefined {
  if (!cidrs?.length) return undefined;
  const list = new BlockList();
  for (const c of cidrs) {
    const p = parseCidr(c);
    if (!p) throw new Error(`http.trustedProxies: not an address or CIDR range: ${JSON.stringify(c)}`);
    list.addSubnet(p.address, p.prefix, p.family);
  }
  return list;
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
  private readonly metricsServer: http.Server | undefined;
  private readonly limiter: FailureLimiter;
  private readonly trusted: BlockList | undefined;
  private closing: Promise<void> | undefined;

  constructor(private readonly o: ApiOptions) {
    const lim = o.enrolFailures ?? { max: 10, windowMs: 60_000 };
    this.limiter = new FailureLimiter(lim.max, lim.windowMs, o.now ?? Date.now);
    this.trusted = proxyList(o.trustedProxies);
    this.server = this.createServer((req, res) => this.handle(req, res));
    if (o.metricsListener) this.metricsServer = this.createServer((req, res) => this.handleMetricsListener(req, res));
  }

  private createServer(handler: (req: http.IncomingMessage, res: http.ServerResponse) => Promise<void>): http.Server {
    const server = http.createServer((req, res) => {
      handler(req, res).catch((err: Error) => {
        this.o.log.error({ err: err.message, path: req.url }, "HTTP handler failed");
        if (!res.headersSent) send(res, 500, { error: "internal", message: "internal error" });
        else res.destroy();
      });
    });
    // Slow or idle clients must not hold sockets open.
    server.headersTimeout = 10_000;
    server.requestTimeout = 15_000;
    server.keepAliveTimeout = 5_000;
    return server;
  }

  async start(): Promise<void> {
    await listen(this.server, this.o.port, this.o.host, this.o.log);
    if (this.metricsServer && this.o.metricsListener) {
      try {
        await listen(this.metricsServer, this.o.metricsListener.port, this.o.metricsListener.host, this.o.log);
      } catch (e) {
        await new Promise<void>((resolve) => this.server.close(() => resolve()));
        throw e;
      }
      this.o.log.info({ url: this.url, metrics: this.metricsUrl }, "HTTP API listening; metrics on their own listener");
    } else this.o.log.info({ url: this.url }, "HTTP API listening");
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  get url(): string {
    return urlOf(this.server);
  }

  /** Where /metrics is served: the metrics listener when there is one, else the public one. */
  get metricsUrl(): string {
    return urlOf(this.metricsServer ?? this.server);
  }

  close(): Promise<void> {
    return (this.closing ??= Promise.all(
      [this.server, this.metricsServer]
        .filter((s): s is http.Server => s !== undefined)
        .map(
          (s) =>
            new Promise<void>((resolve) => {
              if (!s.listening) return resolve();
              s.close(() => resolve());
              s.closeIdleConnections();
            }),
        ),
    ).then(() => undefined));
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://relay");
    const route = `${req.method} ${url.pathname}`;
    if (urlHasControlChars(url)) {
      // Ids come from the path and the query: a NUL would reach the database (PostgreSQL refuses it in
      // text, which was a 500). No id of ours holds a control character, so the request is malformed.
      req.resume();
      this.o.log.debug({ method: req.method }, "HTTP control character in the URL");
      return send(res, 400, { error: "bad_path", message: "the path or query holds a control character (e.g. %00)" });
    }
    switch (url.pathname) {
      case "/healthz":
        return this.health(req, res);
      case "/metrics": {
        if (this.metricsServer) break; // served only on the metrics listener
        return this.metrics(req, res);
      }
      case "/v1/enrol": {
        if (req.method !== "POST") return methodNotAllowed(res, "POST");
        return this.enrol(req, res);
      }
      default:
        for (const r of this.o.routes ?? []) if (await r(req, res)) return;
    }
    req.resume();
    this.o.log.debug({ route }, "HTTP unknown path");
    return send(res, 404, { error: "not_found", message: `no such path: ${url.pathname}` });
  }

  /** The metrics listener: /metrics and /healthz, nothing else. */
  private async handleMetricsListener(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://relay");
    if (url.pathname === "/metrics") return this.metrics(req, res);
    if (url.pathname === "/healthz") return this.health(req, res);
    req.resume();
    return send(res, 404, { error: "not_found", message: "this listener serves /metrics and /healthz only" });
  }

  private async health(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (req.method !== "GET" && req.method !== "HEAD") return methodNotAllowed(res, "GET, HEAD");
    const h = await Promise.resolve(this.o.health()).catch((e: Error): HealthReport => ({ ok: false, error: e.message }));
    return send(res, h.ok ? 200 : 503, h, req.method === "HEAD");
  }

  private async metrics(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (req.method !== "GET" && req.method !== "HEAD") return methodNotAllowed(res, "GET, HEAD");
    const text = await this.o.metrics.registry.metrics();
    res.writeHead(200, { "content-type": this.o.metrics.registry.contentType, "cache-control": "no-store" });
    res.end(req.method === "HEAD" ? undefined : text);
  }

  private async enrol(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    // Behind a trusted proxy, the client it forwards for; otherwise the socket's peer.
    const addr = clientAddress(req, this.trusted);
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

function listen(server: http.Server, port: number, host: string, log: Logger): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      server.on("error", (err) => log.error({ err: err.message }, "HTTP server error"));
      resolve();
    });
  });
}

function urlOf(server: http.Server): string {
  const a = server.address() as AddressInfo;
  const host = a.address === "0.0.0.0" || a.address === "::" ? "127.0.0.1" : a.address;
  return `http://${host.includes(":") ? `[${host}]` : host}:${a.port}`;
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
