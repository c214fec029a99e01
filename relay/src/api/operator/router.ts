// A small route table for the operator API: each route names its method, path, the roles allowed, and the
// zod schemas of its body, query and answer. The router checks the bearer token and the role, validates the
// input, runs the handler and maps errors to status codes; openapi.ts turns the same table into the
// published description.
import type http from "node:http";
import type { Logger } from "pino";
import { z } from "zod";
import { IncidentError } from "../../incidents/service.js";
import type { Principal, Role } from "../../auth/tokens.js";
import { HttpError, readBody, send, type RouteHandler } from "../server.js";

export const OPERATOR_MAX_BODY_BYTES = 64 * 1024;

export interface RouteContext<B, Q> {
  params: Record<string, string>;
  body: B;
  query: Q;
  principal: Principal | undefined;
  /** `<role>:<token name>`: the actor recorded in timelines and the audit log. */
  actor: string;
}

export interface OperatorRoute<B = unknown, Q = unknown> {
  method: "GET" | "POST" | "PUT";
  /** OpenAPI style: /v1/incidents/{id}/confirm */
  path: string;
  /** Who may call it; "public" needs no token. */
  roles: readonly Role[] | "public";
  summary: string;
  tag: string;
  body?: z.ZodType<B>;
  query?: z.ZodType<Q>;
  response: z.ZodType;
  /** Status codes besides 200 and the auth ones, for the description. */
  errors?: Record<number, string>;
  /** The success status when it is not 200 (e.g. 201 for a creation), for the description. */
  okStatus?: number;
  /** Other media types the success answer may have besides JSON (e.g. text/html, application/pdf), for the description. */
  alternates?: Record<string, string>;
  /** `raw` (with `alternates`): the answer is those bytes with that content type instead of `body` as JSON. */
  handle(ctx: RouteContext<B, Q>): Promise<{ status?: number; body: unknown; raw?: { contentType: string; data: Buffer | string; filename?: string } }>;
}

/** Keeps each route's body and query types tied to its handler. */
export function route<B = undefined, Q = undefined>(r: OperatorRoute<B, Q>): OperatorRoute<unknown, unknown> {
  return r;
}

interface Compiled {
  route: OperatorRoute;
  re: RegExp;
  names: string[];
}

function compile(r: OperatorRoute): Compiled {
  const names: string[] = [];
  const re = new RegExp(
    `^${r.path.replace(/[.*+?^$()|[\]\\]/g, "\\$&").replace(/\{(\w+)\}/g, (_m, n: string) => {
      names.push(n);
      return "([^/]+)";
    })}$`,
  );
  return { route: r, re, names };
}

const issuesText = (e: z.ZodError) => e.issues.map((i) => `${i.path.map(String).join(".") || "(body)"}: ${i.message}`).join("; ");

export function createOperatorRouter(routes: OperatorRoute[], deps: { verify: (token: string) => Promise<Principal | undefined>; log: Logger }): RouteHandler {
  const table = routes.map(compile);
  return async (req, res) => {
    const url = new URL(req.url ?? "/", "http://relay");
    const matches = table
      .map((c) => ({ c, m: c.re.exec(url.pathname) }))
      .filter((x): x is { c: Compiled; m: RegExpExecArray } => x.m !== null);
    if (matches.length === 0) return false;
    const hit = matches.find((x) => x.c.route.method === req.method);
    if (!hit) {
      req.resume();
      const allow = [...new Set(matches.map((x) => x.c.route.method))].join(", ");
      res.setHeader("allow", allow);
      send(res, 405, { error: "method_not_allowed", message: `use ${allow}` });
      return true;
    }
    const r = hit.c.route;
    const params: Record<string, string> = {};
    try {
      // A malformed escape in the path is the client's mistake: a 400, not a handler failure.
      hit.c.names.forEach((n, i) => (params[n] = decodePathPart(hit.m[i + 1] ?? "")));
      let principal: Principal | undefined;
      if (r.roles !== "public") {
        principal = await authenticate(req, deps.verify);
        if (!r.roles.includes(principal.role)) throw new HttpError(403, "forbidden", `the ${principal.role} role may not ${r.method} ${r.path}`);
      }
      let body: unknown;
      if (r.body) {
        const raw = await readBody(req, OPERATOR_MAX_BODY_BYTES);
        let json: unknown = {};
        if (raw.length > 0) {
          try {
            json = JSON.parse(raw.toString("utf8"));
          } catch (e) {
            throw new HttpError(400, "bad_json", `body is not JSON: ${(e as Error).message}`);
          }
        }
        const p = r.body.safeParse(json);
        if (!p.success) throw new HttpError(400, "bad_request", issuesText(p.error));
        body = p.data;
      } else req.resume();
      let query: unknown;
      if (r.query) {
        const p = r.query.safeParse(Object.fromEntries(url.searchParams));
        if (!p.success) throw new HttpError(400, "bad_query", issuesText(p.error));
        query = p.data;
      }
      const actor = principal ? `${principal.role}:${principal.name}` : "anonymous";
      const out = await r.handle({ params, body, query, principal, actor });
      if (out.raw) sendRaw(res, out.status ?? 200, out.raw);
      else send(res, out.status ?? 200, out.body);
      // Route and who: never bodies (care plans, notes may hold personal data).
      deps.log.info({ route: `${r.method} ${r.path}`, actor, status: out.status ?? 200 }, "operator API");
    } catch (e) {
      if (!req.readableEnded) req.resume();
      if (e instanceof HttpError || e instanceof IncidentError) {
        if (e instanceof HttpError && e.status === 413) res.setHeader("connection", "close");
        if (e instanceof HttpError && e.status === 401) res.setHeader("www-authenticate", 'Bearer realm="anxin-relay"');
        deps.log.info({ route: `${r.method} ${r.path}`, status: e.status, error: e.code }, "operator API refused");
        send(res, e.status, { error: e.code, message: e.message });
        return true;
      }
      throw e;
    }
    return true;
  };
}

function sendRaw(res: http.ServerResponse, status: number, raw: { contentType: string; data: Buffer | string; filename?: string }): void {
  const data = typeof raw.data === "string" ? Buffer.from(raw.data, "utf8") : raw.data;
  res.writeHead(status, {
    "content-type": raw.contentType,
    "cache-control": "no-store",
    "content-length": data.length,
    "x-content-type-options": "nosniff",
    ...(raw.filename ? { "content-disposition": `inline; filename="${raw.filename.replace(/[^A-Za-z0-9._-]/g, "_")}"` } : {}),
  });
  res.end(data);
}

function decodePathPart(p: string): string {
  try {
    return decodeURIComponent(p);
  } catch {
    throw new HttpError(400, "bad_path", "malformed percent-encoding in the path");
  }
}

async function authenticate(req: http.IncomingMessage, verify: (t: string) => Promise<Principal | undefined>): Promise<Principal> {
  const h = req.headers.authorization ?? "";
  const m = /^Bearer\s+(\S+)$/i.exec(h);
  if (!m?.[1]) throw new HttpError(401, "unauthorized", "a bearer token is required (anxin-relay token add)");
  const p = await verify(m[1]);
  if (!p) throw new HttpError(401, "unauthorized", "unknown or revoked token");
  return p;
}
