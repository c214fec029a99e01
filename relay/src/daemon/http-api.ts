// The relay's HTTP side: the operator API (with the households' risk rules and the report font it needs),
// enrolment, health and metrics, telephony's callback routes, and whatever plugins the caller adds.
import path from "node:path";
import type { FastifyPluginAsync } from "fastify";
import type { Kysely } from "kysely";
import type { Logger } from "pino";
import { openApiDocument } from "../api/operator/openapi.js";
import { operatorApi } from "../api/operator/mount.js";
import type { OperatorRoute } from "../api/operator/route.js";
import { operatorRoutes } from "../api/operator/routes.js";
import { ApiServer, type HealthReport } from "../api/server.js";
import { telephonyCallbacks } from "../api/telephony-callbacks.js";
import { verifyToken } from "../auth/tokens.js";
import { findCjkFont } from "../commissioning/fonts.js";
import type { RelayConfig } from "../config/schema.js";
import { loadRiskRules } from "../households/scoring.js";
import type { IncidentService } from "../incidents/service.js";
import type { Metrics } from "../metrics.js";
import type { Registry } from "../registry/registry.js";
import type { LoopDb } from "../store/closed-loop-schema.js";
import { stillsUploadPlugin } from "../stills/upload-plugin.js";
import type { Store } from "../store/store.js";
import type { TelephonyHandle } from "../telephony/index.js";

export interface HttpApiDeps {
  config: RelayConfig;
  baseDir: string;
  version: string;
  db: Kysely<LoopDb>;
  store: Store;
  incidents: IncidentService;
  registry: Registry;
  metrics: Metrics;
  telephonyHandle: TelephonyHandle | undefined;
  healthReport: () => Promise<HealthReport>;
  log: Logger;
  now: () => number;
  clock: (() => number) | undefined;
  /**
   * The extension point: fastify plugins registered on the public listener after the relay's own routes, in
   * order, each with `app.register(plugin)` (its own encapsulated context unless it skips encapsulation, as
   * fastify-plugin does). The app already has @fastify/cookie, trustProxy from http.trustedProxies, the
   * relay's logger, and the `{"error", "message"}` shape for faults and unknown paths; it keeps fastify's own
   * body parsers and leaves validator compilers to each plugin. Pass options by wrapping:
   * `async (app) => { await app.register(consolePlugin, options) }`.
   */
  plugins?: readonly FastifyPluginAsync[];
  /** The duty console, given the operator route table it serves again behind its sign-in; registered before `plugins`. */
  consoleFor?: (table: OperatorRoute[]) => FastifyPluginAsync;
}

/** Loads what the routes need (a bad rules file or an unusable configured font stops the start), then listens. */
export async function startHttpApi(d: HttpApiDeps): Promise<{ api: ApiServer; openapi: Record<string, unknown> }> {
  const { config, baseDir, log } = d;
  // A bad rules file stops the start with its file, line and key (no household is scored by a guess).
  const riskRules = await loadRiskRules(config.households.riskScoringFile && path.resolve(baseDir, config.households.riskScoringFile));
  // A configured font that cannot be used stops the start; none configured and none found: English-only PDFs.
  const cjkFont = await findCjkFont(config.reports.cjkFontFile ? { file: path.resolve(baseDir, config.reports.cjkFontFile), name: config.reports.cjkFontName } : undefined);
  if (!cjkFont) log.warn("no CJK font found (reports.cjkFontFile, or Debian's fonts-wqy-microhei / fonts-noto-cjk): commissioning-report PDFs get English labels only");

  // The OpenAPI route serves the document built from this very table.
  let openapi: Record<string, unknown> = {};
  const table = operatorRoutes({
    db: d.db,
    store: d.store,
    incidents: d.incidents,
    registry: d.registry,
    now: d.now,
    openapi: () => openapi,
    riskRules,
    cjkFont,
    reportTimeZone: config.reports.timeZone,
    upkeep: config.households.upkeep,
  });
  openapi = openApiDocument(table, d.version);
  const httpLog = log.child({ part: "http" });
  const plugins: FastifyPluginAsync[] = [
    ...(d.telephonyHandle ? [telephonyCallbacks(d.telephonyHandle.callbackRoute, httpLog)] : []),
    operatorApi(table, { verify: (t) => verifyToken(d.db, t), log: log.child({ part: "operator-api" }) }),
    stillsUploadPlugin({ db: d.db, store: d.store, registry: d.registry, now: d.now, log: log.child({ part: "stills" }), config }),
    ...(d.consoleFor ? [d.consoleFor(table)] : []),
    ...(d.plugins ?? []),
  ];
  const api = new ApiServer({
    plugins,
    host: config.http.host,
    port: config.http.port,
    trustedProxies: config.http.trustedProxies,
    metricsListener: config.http.metrics,
    log: httpLog,
    metrics: d.metrics,
    enrol: (hub, code) => d.registry.enrol(hub, code),
    health: d.healthReport,
    now: d.clock,
  });
  await api.start();
  return { api, openapi };
}
