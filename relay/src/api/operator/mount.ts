// Serves the operator route table through fastify: the bearer token and the role are checked before the
// body is read, the route's own zod schemas validate body and query (fastify-type-provider-zod), and every
// refusal keeps the API's error shape. Each route is logged with its actor and status, never its body
// (care plans and notes may hold personal data).
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from "fastify";
import { validatorCompiler } from "fastify-type-provider-zod";
import type { Logger } from "pino";
import type { Principal } from "../../auth/tokens.js";
import { IncidentError } from "../../incidents/service.js";
import { acceptRawBodies, jsonBody } from "../bodies.js";
import { HttpError, internalError, sendError, sendJson, toHttpError } from "../errors.js";
import { allowOnly } from "../method-not-allowed.js";
import type { OperatorRoute } from "./route.js";

export const OPERATOR_MAX_BODY_BYTES = 64 * 1024;

export interface OperatorApiDeps {
  verify: (token: string) => Promise<Principal | undefined>;
  log: Logger;
}

/** `/v1/incidents/{id}` → `/v1/incidents/:id` */
const fastifyPath = (p: string) => p.replace(/\{(\w+)\}/g, ":$1");

export function operatorApi(routes: OperatorRoute[], deps: OperatorApiDeps): FastifyPluginAsync {
  return async (app) => {
    app.setValidatorCompiler(validatorCompiler);
    acceptRawBodies(app);
    const principals = new WeakMap<FastifyRequest, Principal>();
    const methods = new Map<string, string[]>();
    for (const r of routes) {
      const url = fastifyPath(r.path);
      methods.set(url, [...(methods.get(url) ?? []), r.method]);
      const name = `${r.method} ${r.path}`;
      app.route({
        method: r.method,
        url,
        bodyLimit: OPERATOR_MAX_BODY_BYTES,
        // HEAD is not one of the API's methods: a 405 like any other.
        exposeHeadRoute: false,
        schema: { ...(r.body ? { body: r.body } : {}), ...(r.query ? { querystring: r.query } : {}) },
        ...(r.roles === "public"
          ? {}
          : {
              onRequest: async (request: FastifyRequest) => {
                const principal = await authenticate(request, deps.verify);
                if (!r.roles.includes(principal.role)) throw new HttpError(403, "forbidden", `the ${principal.role} role may not ${name}`);
                principals.set(request, principal);
              },
            }),
        // Routes without a body schema ignore whatever was sent, as they always have.
        ...(r.body ? { preValidation: jsonBody({ emptyIsObject: true }) } : {}),
        errorHandler: (err: unknown, request: FastifyRequest, reply: FastifyReply) => {
          const e = err instanceof IncidentError ? new HttpError(err.status, err.code, err.message) : toHttpError(err, request);
          if (!e) return void internalError(reply, err, deps.log);
          if (e.status === 401) reply.header("www-authenticate", 'Bearer realm="anxin-relay"');
          deps.log.info({ route: name, status: e.status, error: e.code }, "operator API refused");
          void sendError(reply, e);
        },
        handler: async (request, reply) => {
          const principal = principals.get(request);
          const actor = principal ? `${principal.role}:${principal.name}` : "anonymous";
          const out = await r.handle({
            params: request.params as Record<string, string>,
            body: r.body ? request.body : undefined,
            query: r.query ? request.query : undefined,
            principal,
            actor,
          });
          const status = out.status ?? 200;
          if (out.raw) sendRaw(reply, status, out.raw);
          else sendJson(reply, status, out.body);
          deps.log.info({ route: name, actor, status }, "operator API");
          return reply;
        },
      });
    }
    for (const [url, allowed] of methods) allowOnly(app, url, allowed);
  };
}

function sendRaw(reply: FastifyReply, status: number, raw: { contentType: string; data: Buffer | string; filename?: string }): void {
  const data = typeof raw.data === "string" ? Buffer.from(raw.data, "utf8") : raw.data;
  reply.code(status).headers({
    "content-type": raw.contentType,
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    ...(raw.filename ? { "content-disposition": `inline; filename="${raw.filename.replace(/[^A-Za-z0-9._-]/g, "_")}"` } : {}),
  });
  void reply.send(data);
}

async function authenticate(request: FastifyRequest, verify: (t: string) => Promise<Principal | undefined>): Promise<Principal> {
  const m = /^Bearer\s+(\S+)$/i.exec(request.headers.authorization ?? "");
  if (!m?.[1]) throw new HttpError(401, "unauthorized", "a bearer token is required (anxin-relay token add)");
  const p = await verify(m[1]);
  if (!p) throw new HttpError(401, "unauthorized", "unknown or revoked token");
  return p;
}
