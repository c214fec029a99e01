// The duty console on the relay's HTTP side: sign-in (auth/), the live incident queue (queue/) and the page
// itself, built by `npm run build` into dist/console and served at /console/. A relay started from sources
// that were never built still runs: /console/ then says how to build the page instead of failing the start.
import { access } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import fastifyStatic from "@fastify/static";
import type { FastifyPluginAsync } from "fastify";
import type { Kysely } from "kysely";
import type { Logger } from "pino";
import type { RelayConfig } from "../config/schema.js";
import type { LoopDb } from "../store/closed-loop-schema.js";
import type { Store } from "../store/store.js";
import type { OperatorRoute } from "../api/operator/route.js";
import { consoleAuthPlugin } from "./auth/plugin.js";
import { consoleHomesPlugin } from "./homes/plugin.js";
import { consoleIncidentPlugin } from "./incident/plugin.js";
import { consoleOperatorRoutes } from "./operator/routes.js";
import { consoleReportsPlugin } from "./reports/plugin.js";
import { consoleStillsPlugin } from "./stills/plugin.js";
import { queueNotifier } from "./queue/notifier.js";
import { consoleQueuePlugin } from "./queue/plugin.js";

/** dist/console beside the sources (run from src by tsx) or above the compiled relay (run from dist). */
export function defaultConsoleDir(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const root = here.includes(`${path.sep}dist${path.sep}`) ? path.resolve(here, "../../../..") : path.resolve(here, "../../..");
  return path.join(root, "dist", "console");
}

export interface ConsoleDeps {
  db: Kysely<LoopDb>;
  store: Store;
  now: () => number;
  log: Logger;
  config: RelayConfig;
  /** The operator API's routes, served again under /console/api/v1/… behind the sign-in. */
  operatorTable: OperatorRoute[];
  /** Where the built page is; default dist/console. */
  staticDir?: string;
}

export function consolePlugin(d: ConsoleDeps): FastifyPluginAsync {
  return async (app) => {
    const log = d.log.child({ part: "console" });
    await app.register(consoleAuthPlugin, { db: d.db as never, now: d.now, log, config: d.config });
    await app.register(consoleQueuePlugin, { db: d.db, now: d.now, log, authenticate: (roles) => app.consoleUser(roles), notifier: queueNotifier, sessionAlive: (req) => app.consoleSessionAlive(req) });
    await app.register(consoleOperatorRoutes(d.operatorTable, log));
    const pages = { db: d.db, store: d.store, now: d.now, log, config: d.config };
    await app.register(consoleIncidentPlugin, pages);
    await app.register(consoleStillsPlugin, pages);
    await app.register(consoleHomesPlugin, pages);
    await app.register(consoleReportsPlugin, pages);
    const dir = d.staticDir ?? defaultConsoleDir();
    const built = await access(path.join(dir, "index.html")).then(() => true, () => false);
    app.get("/console", async (_req, reply) => reply.redirect("/console/", 301));
    if (built) {
      // max-age 0: a browser revalidates the page after an update (its assets carry ?v=<hash> anyway).
      await app.register(fastifyStatic, { root: dir, prefix: "/console/", index: ["index.html"], maxAge: 0 });
    } else {
      log.warn({ dir }, "the console page is not built (npm run build): /console/ answers 503");
      app.get("/console/", async (_req, reply) => reply.code(503).type("text/plain; charset=utf-8").send("The console page is not built on this relay: run `npm run build`.\n控制台页面尚未构建：请运行 npm run build。\n"));
    }
  };
}
