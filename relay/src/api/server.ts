// The relay's HTTP side on fastify: /healthz, /metrics and hub enrolment, plus whatever other parts add as
// fastify plugins (the operator API, telephony's callbacks, later the console), each in its own context.
// What every route shares is set here: the error shape for 404s and faults, no control characters in the
// URL, http.trustedProxies as fastify's trustProxy, @fastify/cookie, timeouts against slow clients, and the
// relay's pino logger (no per-request lines: a URL may name a hub or a street). /metrics may have a listener
// of its own (then the public one answers 404 for it).
import fastifyCookie from "@fastify/cookie";
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyPluginAsync } from "fastify";
import type { AddressInfo } from "node:net";
import type { Logger } from "pino";
import type { Registry as PromRegistry } from "prom-client";
import type { EnrolResponse } from "../../../protocol/messages.js";
import { trustProxyOption } from "./client-address.js";
import { enrolRoutes } from "./enrol.js";
import { HttpError, internalError, sendError, sendJson, toHttpError } from "./errors.js";
import { monitoringRoutes, type HealthReport } from "./monitoring.js";

export { MAX_BODY_BYTES } from "./enrol.js";
export type { HealthReport } from "./monitoring.js";

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
  /**
   * More routes, registered in order after the relay's own (each `app.register(plugin)`: a context of its
   * own unless the plugin skips encapsulation, as fastify-plugin does). Options: wrap, `async (app) => {
   * await app.register(plugin, options) }`.
   */
  plugins?: readonly FastifyPluginAsync[];
  /**
   * Reverse proxies (addresses or CIDR ranges) whose `X-Forwarded-For` is believed (fastify's trustProxy): the
   * enrolment rate limit then counts the client the proxy names, not the proxy. Default none: the socket's address.
   */
  trustedProxies?: readonly string[];
  /** A separate listener for /metrics (and /healthz); when set, the public listener answers 404 for /metrics. */
  metricsListener?: { host: string; port: number };
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
    // A malformed escape is the router's to refuse (400 bad_path); it decodes to no control character.
  }
  if (CONTROL_CHARS.test(path)) return true;
  for (const [k, v] of url.searchParams) if (CONTROL_CHARS.test(k) || CONTROL_CHARS.test(v)) return true;
  return false;
}

/** What both listeners share: the logger without request lines, the timeouts, the error shape. */
function baseApp(log: Logger, trustProxy: string[] | false): FastifyInstance {
  const logger: FastifyBaseLogger = log;
  const app = Fastify({
    loggerInstance: logger,
    logController: new LogController({ disableRequestLogging: true }),
    trustProxy,
    // Slow or idle clients must not hold sockets open.
    requestTimeout: 15_000,
    keepAliveTimeout: 5_000,
    routerOptions: {
      // Ids are path segments; the router's default cap (100) would turn a long one into a different error.
      maxParamLength: 2048,
      // One value per name, the last one given, as the API has always read its queries.
      querystringParser: (s: string) => Object.fromEntries(new URLSearchParams(s)),
    },
    frameworkErrors: (err, _request, reply) => {
      const malformed = err.code === "FST_ERR_BAD_URL";
      void sendError(reply, new HttpError(400, "bad_path", malformed ? "malformed percent-encoding in the path" : err.message));
    },
  });
  app.server.headersTimeout = 10_000;
  app.setErrorHandler(async (err, request, reply) => {
    const e = toHttpError(err, request);
    return e ? sendError(reply, e) : internalError(reply, err, log);
  });
  return app;
}

export class ApiServer {
  private readonly app: FastifyInstance;
  private readonly metricsApp: FastifyInstance | undefined;
  private closing: Promise<void> | undefined;

  constructor(private readonly o: ApiOptions) {
    this.app = this.publicApp();
    if (o.metricsListener) this.metricsApp = this.metricsOnlyApp();
  }

  private publicApp(): FastifyInstance {
    const o = this.o;
    const app = baseApp(o.log, trustProxyOption(o.trustedProxies));
    app.addHook("onRequest", async (request, reply) => {
      // Ids come from the path and the query: a NUL would reach the database (PostgreSQL refuses it in text,
      // which was a 500). No id of ours holds a control character, so the request is malformed.
      if (!urlHasControlChars(new URL(request.url, "http://relay"))) return;
      o.log.debug({ method: request.method }, "HTTP control character in the URL");
      return sendError(reply, new HttpError(400, "bad_path", "the path or query holds a control character (e.g. %00)"));
    });
    app.setNotFoundHandler(async (request, reply) => {
      const path = new URL(request.url, "http://relay").pathname;
      o.log.debug({ route: `${request.method} ${path}` }, "HTTP unknown path");
      return sendJson(reply, 404, { error: "not_found", message: `no such path: ${path}` });
    });
    // On the app itself, so the console's sessions and anything else can read and set cookies.
    void app.register(fastifyCookie);
    void app.register(enrolRoutes({ enrol: (hub, code) => o.enrol(hub, code), log: o.log, failures: o.enrolFailures ?? { max: 10, windowMs: 60_000 }, now: o.now ?? Date.now }));
    void app.register(monitoringRoutes({ health: () => o.health(), ...(o.metricsListener ? {} : { metrics: o.metrics }) }));
    for (const plugin of o.plugins ?? []) void app.register(plugin);
    return app;
  }

  /** The metrics listener: /metrics and /healthz, nothing else. */
  private metricsOnlyApp(): FastifyInstance {
    const app = baseApp(this.o.log, false);
    app.setNotFoundHandler(async (_request, reply) => sendJson(reply, 404, { error: "not_found", message: "this listener serves /metrics and /healthz only" }));
    void app.register(monitoringRoutes({ health: () => this.o.health(), metrics: this.o.metrics }));
    return app;
  }

  async start(): Promise<void> {
    await this.app.listen({ port: this.o.port, host: this.o.host, listenTextResolver: (address) => `HTTP API listening at ${address}` });
    if (this.metricsApp && this.o.metricsListener) {
      try {
        await this.metricsApp.listen({ port: this.o.metricsListener.port, host: this.o.metricsListener.host, listenTextResolver: (address) => `metrics listening at ${address}` });
      } catch (e) {
        await this.app.close();
        throw e;
      }
    }
  }

  get port(): number {
    return (this.app.server.address() as AddressInfo).port;
  }

  get url(): string {
    return urlOf(this.app);
  }

  /** Where /metrics is served: the metrics listener when there is one, else the public one. */
  get metricsUrl(): string {
    return urlOf(this.metricsApp ?? this.app);
  }

  /** Stops taking connections, lets requests in flight finish (idle keep-alive sockets are closed at once). */
  close(): Promise<void> {
    return (this.closing ??= Promise.all([this.app.close(), this.metricsApp?.close()]).then(() => undefined));
  }
}

function urlOf(app: FastifyInstance): string {
  const a = app.server.address() as AddressInfo;
  const host = a.address === "0.0.0.0" || a.address === "::" ? "127.0.0.1" : a.address;
  return `http://${host.includes(":") ? `[${host}]` : host}:${a.port}`;
}
