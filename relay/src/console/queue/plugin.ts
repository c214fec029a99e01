// The duty console's live incident queue as a fastify plugin: the open incidents, a server-sent event
// stream of their changes, and taking one in hand. Sign-in is not its business: the host passes
// `authenticate`, whose preHandler puts the person on the request (user.ts). Register it without a prefix
// (the routes carry /console/api) and hand it the relay's queueNotifier so this relay's own commits reach
// the streams at once; other instances' arrive through the feed's poll.
import type { FastifyError, FastifyPluginAsync, FastifyRequest, preHandlerHookHandler } from "fastify";
import { hasZodFastifySchemaValidationErrors, serializerCompiler, validatorCompiler, type ZodTypeProvider } from "fastify-type-provider-zod";
import type { Kysely } from "kysely";
import type { Logger } from "pino";
import { z } from "zod";
import type { Role } from "../../auth/tokens.js";
import { inStreetScope } from "../../households/street-scope.js";
import type { LoopDb } from "../../store/closed-loop-schema.js";
import { ChangeFeed } from "./feed.js";
import type { QueueNotifier } from "./notifier.js";
import { compareRows, loadRows, queueRowSchema } from "./rows.js";
import { serveStream } from "./stream.js";
import { takeIncident, TakeError } from "./take.js";
import { consoleUserOf } from "./user.js";

export interface ConsoleQueueOptions {
  db: Kysely<LoopDb>;
  now: () => number;
  log: Logger;
  /** The console's sign-in: a preHandler that admits the given roles (401/403 otherwise) and sets request.consoleUser. */
  authenticate: (roles?: readonly Role[]) => preHandlerHookHandler;
  notifier: QueueNotifier;
  /** How often the feed reads the open incidents for other instances' changes. Default 400 ms. */
  pollMs?: number;
  /** Default 15 s. */
  heartbeatMs?: number;
  /**
   * Whether the stream's session is still live (not counting as activity); the stream ends when it is not.
   * Absent: streams last until the client goes.
   */
  sessionAlive?: (req: FastifyRequest) => Promise<boolean>;
  /** How often an open stream asks sessionAlive. Default 5 s. */
  sessionCheckMs?: number;
}

const errorSchema = z.object({ error: z.string(), message: z.string() });
const takerSchema = z.object({ username: z.string(), displayName: z.string(), at: z.number().int() });
// Nullish: fastify hands a request without a body on as null.
const takeBody = z.object({ force: z.boolean().optional().describe("take it over from whoever has it") }).strict().nullish();
const idParams = z.object({ id: z.string().min(1).max(64).regex(/^[\x20-\x7e]+$/, "printable ASCII") });

export const consoleQueuePlugin: FastifyPluginAsync<ConsoleQueueOptions> = async (app, o) => {
  // Encapsulated: the host's own compilers and error handler are left alone.
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.setErrorHandler((err: FastifyError, req, reply) => {
    if (hasZodFastifySchemaValidationErrors(err)) return reply.code(400).send({ error: "bad_request", message: err.message });
    if (err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500) {
      const json = err.code === "FST_ERR_CTP_EMPTY_JSON_BODY" || err.code === "FST_ERR_CTP_INVALID_JSON_BODY" || err instanceof SyntaxError;
      return reply.code(err.statusCode).send({ error: json ? "bad_json" : err.statusCode === 413 ? "too_large" : "bad_request", message: err.message });
    }
    o.log.error({ err, route: req.routeOptions.url }, "console queue: request failed");
    return reply.code(500).send({ error: "internal", message: "internal error" });
  });

  const feed = new ChangeFeed({ db: o.db, log: o.log, notifier: o.notifier, pollMs: o.pollMs ?? 400 });
  const streams = new Set<() => void>();
  // Open streams would keep the server from closing.
  app.addHook("preClose", async () => {
    for (const end of [...streams]) end();
    feed.close();
  });

  const staff = o.authenticate(["operator", "admin"]);
  const r = app.withTypeProvider<ZodTypeProvider>();

  r.get("/console/api/incidents", { preHandler: staff, schema: { response: { 200: z.object({ incidents: z.array(queueRowSchema) }) } } }, async (req) => {
    const user = consoleUserOf(req);
    const rows = (await loadRows(o.db)).filter((s) => inStreetScope(user.streets, s.street)).map((s) => s.row);
    return { incidents: rows.sort(compareRows) };
  });

  r.get("/console/api/stream", { preHandler: staff }, (req, reply) => {
    const user = consoleUserOf(req);
    const alive = o.sessionAlive;
    serveStream(reply, feed, user.streets, { heartbeatMs: o.heartbeatMs ?? 15_000, retryMs: 2000, maxPending: 1000, ...(alive ? { alive: () => alive(req), aliveCheckMs: o.sessionCheckMs ?? 5000 } : {}) }, streams);
  });

  r.post(
    "/console/api/incidents/:id/take",
    {
      preHandler: staff,
      schema: { params: idParams, body: takeBody, response: { 200: queueRowSchema, 404: errorSchema, 409: errorSchema.extend({ takenBy: takerSchema.optional() }) } },
    },
    async (req, reply) => {
      const user = consoleUserOf(req);
      const { id } = req.params;
      try {
        await takeIncident(o.db, id, user, req.body?.force === true, o.now());
      } catch (e) {
        if (!(e instanceof TakeError)) throw e;
        return reply.code(e.status).send({ error: e.code, message: e.message, ...(e.takenBy ? { takenBy: e.takenBy } : {}) });
      }
      o.notifier.changed();
      const [row] = await loadRows(o.db, [id]);
      // Closed in the instant since: as if it had been closed before.
      if (!row) return reply.code(404).send({ error: "not_found", message: `no open incident ${id}` });
      return row.row;
    },
  );
};
