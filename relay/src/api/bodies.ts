// Request bodies as the relay's API reads them: fastify collects the bytes (with the route's bodyLimit: 413
// past it), whatever the content type; a route that takes JSON parses them itself, so a malformed body is the
// API's own 400 `bad_json` and provider callbacks keep the exact bytes their signatures cover. Only inside
// the contexts that call acceptRawBodies: everything else registered on the app keeps fastify's parsers.
import type { FastifyInstance, FastifyRequest, preValidationAsyncHookHandler } from "fastify";
import { HttpError } from "./errors.js";

/** In this context, every body (any content type, or none named) arrives as a Buffer. */
export function acceptRawBodies(app: FastifyInstance): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", { parseAs: "buffer" }, (_req: FastifyRequest, body: Buffer, done: (err: Error | null, body?: unknown) => void) => done(null, body));
}

/**
 * A preValidation hook that turns the raw body into JSON before the schema checks it. `emptyIsObject`: a
 * missing or empty body stands for `{}` (the operator API's actions); otherwise an empty body is not JSON.
 */
export function jsonBody(o: { emptyIsObject?: boolean } = {}): preValidationAsyncHookHandler {
  return async (request) => {
    const raw = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
    if (raw.length === 0 && o.emptyIsObject) {
      request.body = {};
      return;
    }
    try {
      request.body = JSON.parse(raw.toString("utf8"));
    } catch (e) {
      throw new HttpError(400, "bad_json", `body is not JSON: ${(e as Error).message}`);
    }
  };
}
