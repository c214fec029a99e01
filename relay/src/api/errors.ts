// The HTTP side's one error shape, `{"error": code, "message": text}`, and the mapping of fastify's own
// errors (body too large, schema validation) onto it, so a refusal looks the same whichever layer made it.
import type { FastifyReply, FastifyRequest } from "fastify";

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Every answer of the API is uncacheable: most carry personal data or credentials. */
export function sendJson(reply: FastifyReply, status: number, body: unknown): FastifyReply {
  return reply.code(status).header("cache-control", "no-store").type("application/json; charset=utf-8").send(JSON.stringify(body));
}

export function sendError(reply: FastifyReply, e: HttpError): FastifyReply {
  return sendJson(reply, e.status, { error: e.code, message: e.message });
}

interface ValidationIssue {
  instancePath?: string;
  message?: string;
}

/** The zod issues as `path: message; …` (the type provider hands them over as `/a/b` paths). */
export function issuesText(issues: readonly ValidationIssue[]): string {
  return issues.map((i) => `${(i.instancePath ?? "").slice(1).split("/").join(".") || "(body)"}: ${i.message ?? "invalid"}`).join("; ");
}

/** The refusal an error stands for, or undefined when it is a fault of ours (a 500). */
export function toHttpError(err: unknown, request: FastifyRequest): HttpError | undefined {
  if (err instanceof HttpError) return err;
  const e = err as { code?: unknown; statusCode?: unknown; validation?: ValidationIssue[]; validationContext?: string };
  if (e.code === "FST_ERR_CTP_BODY_TOO_LARGE") return new HttpError(413, "too_large", `body over ${request.routeOptions.bodyLimit} bytes`);
  if (Array.isArray(e.validation)) return new HttpError(400, e.validationContext === "querystring" ? "bad_query" : "bad_request", issuesText(e.validation));
  return undefined;
}

/** A fault of ours: logged without the request's query (it may name a hub or a street), answered 500. */
export function internalError(reply: FastifyReply, err: unknown, log: { error(o: object, m: string): void }): FastifyReply {
  log.error({ err: (err as Error).message, path: reply.request.url.split("?")[0] }, "HTTP handler failed");
  return sendJson(reply, 500, { error: "internal", message: "internal error" });
}
