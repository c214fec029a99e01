// The console's reports route: GET /console/api/reports?since=&until= (ms), for operators and admins. A
// street-limited account gets the same report counted over its streets' homes only, and the answer names
// those streets so the page can say so.
import type { FastifyError, FastifyPluginAsync } from "fastify";
import { hasZodFastifySchemaValidationErrors, serializerCompiler, validatorCompiler, type ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import { consoleUserOf } from "../queue/user.js";
import type { ConsolePageDeps } from "../page-deps.js";
import { buildReport, DAY_MS, DEFAULT_DAYS, reportQuery, reportSchema } from "./report.js";

const errorSchema = z.object({ error: z.string(), message: z.string() });

export const consoleReportsPlugin: FastifyPluginAsync<ConsolePageDeps> = async (app, o) => {
  // Encapsulated: the relay's own compilers and error handler are left alone.
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.setErrorHandler((err: FastifyError, req, reply) => {
    if (hasZodFastifySchemaValidationErrors(err)) return reply.code(400).send({ error: "bad_query", message: err.message });
    o.log.error({ err, route: req.routeOptions.url }, "console reports: request failed");
    return reply.code(500).send({ error: "internal", message: "internal error" });
  });

  const r = app.withTypeProvider<ZodTypeProvider>();
  r.get(
    "/console/api/reports",
    { preHandler: app.consoleUser(["operator", "admin"]), schema: { querystring: reportQuery, response: { 200: reportSchema, 400: errorSchema } } },
    async (req, reply) => {
      const user = consoleUserOf(req);
      const until = req.query.until ?? o.now();
      const since = req.query.since ?? Math.max(0, until - DEFAULT_DAYS * DAY_MS);
      if (since >= until) return reply.code(400).send({ error: "bad_query", message: "since must be before until" });
      return buildReport(o.db, { since, until, streets: user.streets });
    },
  );
};
