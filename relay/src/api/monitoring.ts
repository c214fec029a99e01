// /healthz and /metrics: what a load balancer and Prometheus read. Served on the public listener, and on
// the metrics listener when http.metrics gives /metrics one of its own.
import type { FastifyPluginAsync } from "fastify";
import type { Registry as PromRegistry } from "prom-client";
import { sendJson } from "./errors.js";
import { allowOnly } from "./method-not-allowed.js";

export interface HealthReport {
  ok: boolean;
  [k: string]: unknown;
}

export interface MonitoringOptions {
  /** What /healthz reports; 503 unless ok. */
  health(): HealthReport | Promise<HealthReport>;
  /** Serves /metrics from this registry; absent: no /metrics here (404). */
  metrics?: { registry: PromRegistry };
}

export function monitoringRoutes(o: MonitoringOptions): FastifyPluginAsync {
  return async (app) => {
    // GET answers HEAD too (fastify's HEAD route: the same headers, no body).
    app.get("/healthz", async (_request, reply) => {
      const h = await Promise.resolve(o.health()).catch((e: Error): HealthReport => ({ ok: false, error: e.message }));
      return sendJson(reply, h.ok ? 200 : 503, h);
    });
    allowOnly(app, "/healthz", ["GET", "HEAD"]);
    const metrics = o.metrics;
    if (!metrics) return;
    app.get("/metrics", async (_request, reply) => {
      const text = await metrics.registry.metrics();
      return reply.code(200).header("cache-control", "no-store").type(metrics.registry.contentType).send(text);
    });
    allowOnly(app, "/metrics", ["GET", "HEAD"]);
  };
}
