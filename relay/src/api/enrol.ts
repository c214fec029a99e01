// POST /v1/enrol: a hub trades its claim code for its credentials. Failed attempts count against the client
// (@fastify/rate-limit keyed by clientKey, counting in enrol-failures.ts); past the limit the client gets 429
// until its window ends, whatever it sends, so claim codes cannot be guessed by brute force. A body over the
// limit (413) is not counted: it says nothing about the code.
import fastifyRateLimit from "@fastify/rate-limit";
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from "fastify";
import { validatorCompiler, type ZodTypeProvider } from "fastify-type-provider-zod";
import type { Logger } from "pino";
import { enrolRequestSchema, type EnrolResponse } from "../../../protocol/messages.js";
import { EnrolError } from "../registry/registry.js";
import { acceptRawBodies, jsonBody } from "./bodies.js";
import { clientKey } from "./client-address.js";
import { failureStore } from "./enrol-failures.js";
import { HttpError, internalError, sendError, sendJson, toHttpError } from "./errors.js";
import { allowOnly } from "./method-not-allowed.js";

export const MAX_BODY_BYTES = 4096;

export interface EnrolOptions {
  /** Registry.enrol. */
  enrol(hub: string, code: string): Promise<EnrolResponse>;
  log: Logger;
  /** Failed enrolments allowed per client in `windowMs` before 429. */
  failures: { max: number; windowMs: number };
  now: () => number;
}

const STATUS_OF: Record<EnrolError["code"], number> = {
  unknown_hub: 404,
  bad_code: 403,
  revoked: 403,
  expired: 410,
  used: 410,
};

export function enrolRoutes(o: EnrolOptions): FastifyPluginAsync {
  return async (parent) => {
    const app = parent.withTypeProvider<ZodTypeProvider>();
    app.setValidatorCompiler(validatorCompiler);
    acceptRawBodies(app);
    await app.register(fastifyRateLimit, { global: false, max: o.failures.max, timeWindow: o.failures.windowMs, keyGenerator: clientKey, store: failureStore(o.now) });
    const limiter = app.createRateLimit();
    const countFailure = async (request: FastifyRequest) => void (await limiter(request));

    app.setErrorHandler(async (err, request, reply) => {
      const e = toHttpError(err, request);
      if (!e) return internalError(reply, err, o.log);
      if (e.status !== 413) await countFailure(request);
      o.log.info({ remote: clientKey(request), status: e.status, error: e.code }, "enrolment request refused");
      return sendError(reply, e);
    });

    /** Checked before the body is read: a limited client gets nothing of ours to work on. */
    const refuseWhileLimited = async (request: FastifyRequest, reply: FastifyReply) => {
      const state = await limiter(request, { increment: false });
      if (state.isAllowed || state.remaining > 0) return;
      o.log.warn({ remote: state.key }, "enrolment refused: too many failures from this address");
      return sendError(reply.header("retry-after", String(state.ttlInSeconds)), new HttpError(429, "rate_limited", `too many failed enrolments; try again in ${state.ttlInSeconds} s`));
    };

    app.post(
      "/v1/enrol",
      { bodyLimit: MAX_BODY_BYTES, schema: { body: enrolRequestSchema }, onRequest: refuseWhileLimited, preValidation: jsonBody() },
      async (request, reply) => {
        const { hub, code } = request.body;
        const remote = clientKey(request);
        try {
          const answer = await o.enrol(hub, code);
          // The answer holds the hub's password and signing key: never logged, never cached.
          o.log.info({ hub, remote }, "hub enrolled");
          return sendJson(reply, 200, answer);
        } catch (e) {
          if (!(e instanceof EnrolError)) throw e;
          await countFailure(request);
          o.log.warn({ hub, remote, error: e.code }, "enrolment refused");
          return sendError(reply, new HttpError(STATUS_OF[e.code] ?? 403, e.code, e.message));
        }
      },
    );
    allowOnly(app, "/v1/enrol", ["POST"]);
  };
}
