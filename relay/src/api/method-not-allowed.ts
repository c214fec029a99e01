// fastify answers 404 for a known path asked with another method; the API has always said 405 with Allow.
import type { FastifyInstance } from "fastify";
import { sendJson } from "./errors.js";

/**
 * Registers the methods `allowed` leaves out as 405 with `Allow: <allowed>` for `url`. HEAD counts as left
 * out unless named (routes that want it name it). `body`: the answer's JSON (default the API's error shape).
 */
export function allowOnly(app: FastifyInstance, url: string, allowed: readonly string[], body?: unknown): void {
  const allow = allowed.join(", ");
  const others = app.supportedMethods.filter((m) => !allowed.includes(m));
  if (!others.length) return;
  app.route({
    method: others,
    url,
    exposeHeadRoute: false,
    handler: async (request, reply) => sendJson(reply.header("allow", allow), 405, body ?? { error: "method_not_allowed", message: `use ${allow}` }),
  });
}
