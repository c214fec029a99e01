// The console's homes board under /console/api, behind app.consoleUser(roles): GET /console/api/homes, the
// homes whose hub needs attention (hub offline, or its broadband down while alarms arrive by SMS, devices
// offline / low battery / faulty, gas valves latched closed or not closing, a second path not tested lately),
// most urgent first, addresses masked, limited to the caller's streets. Operators
// and admins only: an installer's account has no business watching every home.
import type { FastifyError, FastifyPluginAsync } from "fastify";
import { hasZodFastifySchemaValidationErrors, serializerCompiler, validatorCompiler, type ZodTypeProvider } from "fastify-type-provider-zod";
import { consoleUserOf } from "../queue/user.js";
import type { ConsolePageDeps } from "../page-deps.js";
import { BoardCache, boardFor } from "./board.js";
import { boardQuery, boardSchema } from "./schemas.js";

export const consoleHomesPlugin: FastifyPluginAsync<ConsolePageDeps> = async (app, d) => {
  // Encapsulated: the host's own compilers and error handler are left alone.
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.setErrorHandler((err: FastifyError, req, reply) => {
    if (hasZodFastifySchemaValidationErrors(err)) return reply.code(400).send({ error: "bad_query", message: err.message });
    if (err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500) return reply.code(err.statusCode).send({ error: "bad_request", message: err.message });
    d.log.error({ err, route: req.routeOptions.url }, "console homes: request failed");
    return reply.code(500).send({ error: "internal", message: "internal error" });
  });

  const cache = new BoardCache(d.db, d.now);
  const staff = app.consoleUser(["operator", "admin"]);
  const r = app.withTypeProvider<ZodTypeProvider>();

  r.get("/console/api/homes", { preHandler: staff, schema: { querystring: boardQuery, response: { 200: boardSchema } } }, async (req, reply) => {
    const user = consoleUserOf(req);
    const board = boardFor(await cache.current(), user.streets, req.query.limit);
    // Masked, but still about people's homes: no shared cache keeps it.
    void reply.header("cache-control", "no-store");
    return board;
  });
};
