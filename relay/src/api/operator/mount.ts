// Serves the operator route table through fastify: the bearer token and the role are checked before the
// body is read, the route's own zod schemas validate body and query (fastify-type-provider-zod), and every
// refusal keeps the API's error shape. Each route is logged with its actor and status, never its body
// (care plans and notes may hold personal data).
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from "fastify";
import { validatorCompiler } from "fastify-type-provider-zod";
import type { Logger } from "pino";
import type { Principal, Role } from "../../auth/tokens.js";
import { IncidentError } from "../../incidents/service.js";
import { acceptRawBodies, jsonBody } from "../bodies.js";
import { HttpError, internalError, sendError, sendJson, toHttpError } from "../errors.js";
import { allowOnly } from "../method-not-allowed.js";
import type { OperatorRoute } from "./route.js";

export const OPERATOR_MAX_BODY_BYTES = 64 * 1024;

/**
 * How a request proves who sent it. By default a bearer token (the API's own clients); the duty console
 * mounts the same table behind its session cookie and CSRF check instead (console/operator-routes.ts).
 */
export interface OperatorAuth {
  /**
   * Runs before the body is read. Returns the caller (and the actor recorded for it), or undefined when it
   * has answered the request itself (e.g. 401/403 with its own error code); throws HttpError to refuse.
   */
  authenticate(request: FastifyRequest, reply: FastifyReply, roles: readonly Role[], route: string): Promise<{ principal: Principal; actor: string } | undefined>;
}

export interface OperatorApiDeps {
  /** Bearer tokens, unless `auth` is given. */
  verify?: (token: string) => Promise<Principal | undefined>;
  auth?: OperatorAuth;
  /** Put before every path (e.g. "/console/api"); default none. */
  prefix?: string;
  log: Logger;
}

/** The API's own authentication: `Authorization: Bearer <token>`, actor `<role>:<token name>`. */
export function bearerAuth(verify: (token: string) => Promise<Principal | undefined>): OperatorAuth {
  return {
    async authenticate(request, _reply, roles, name) {
      const principal = await authenticate(request, verify);
      if (!roles.includes(principal.role)) throw new HttpError(403, "forbidden", `the ${principal.role} role may not ${name}`);
      return { principal, actor: `${principal.role}:${principal.name}` };
    },
  };
}

/** `/v1/incidents/{id}` → `/v1/incidents/:id` */
const fastifyPath = (p: string) => p.replace(/\{(\w+)\}/g, ":$1");

export function operatorApi(routes: OperatorRoute[], deps: OperatorApiDeps): FastifyPluginAsync {
  const auth = deps.auth ?? (deps.verify ? bearerAuth(deps.verify) : undefined);
  if (!auth) throw new Error("operatorApi: give verify or auth");
  const prefix = deps.prefix ?? "";
  return async (app) => {
    app.setValidatorCompiler(validatorCompiler);
    acceptRawBodies(app);
    const callers = new WeakMap<FastifyRequest, { principal: Principal; actor: string }>();
    const methods = new Map<string, string[]>();
    for (const r of routes) {
      const url = prefix + fastifyPath(r.path);
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
              onRequest: async (request: FastifyRequest, reply: FastifyReply) => {
                const caller = await auth.authenticate(request, reply, r.roles as readonly Role[], name);
                if (caller) callers.set(request, caller);
                else return reply; // answered by the authenticator
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
          const caller = callers.get(request);
          const principal = caller?.principal;
          const actor = caller?.actor ?? "anonymous";
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
