// The operator API as a table: each route names its method, path, the roles allowed, and the zod schemas of
// its body, query and answer. mount.ts serves the table through fastify (the same schemas validate the
// requests); openapi.ts turns it into the published description.
import type { z } from "zod";
import type { Principal, Role } from "../../auth/tokens.js";

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
