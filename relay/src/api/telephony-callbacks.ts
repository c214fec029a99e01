// Mounts a telephony adapter's provider callbacks (telephony/types.ts CallbackRoute) on fastify: POST only
// (405 otherwise), the body as its exact bytes up to the adapter's limit, the adapter's answer sent as is.
// The answers keep the providers' contract (integrations.md): `{"error": …}` without a message.
import type { FastifyPluginAsync } from "fastify";
import type { Logger } from "pino";
import type { CallbackRoute } from "../telephony/types.js";
import { acceptRawBodies } from "./bodies.js";
import { internalError, sendJson } from "./errors.js";
import { allowOnly } from "./method-not-allowed.js";

export function telephonyCallbacks(route: CallbackRoute, log: Logger): FastifyPluginAsync {
  return async (app) => {
    acceptRawBodies(app);
    app.setErrorHandler(async (err, _request, reply) => {
      const e = err as { code?: string; statusCode?: number };
      if (e.code === "FST_ERR_CTP_BODY_TOO_LARGE") return sendJson(reply, 413, { error: "bad_body" });
      // A body that broke off or could not be read.
      if (e.statusCode !== undefined && e.statusCode >= 400 && e.statusCode < 500) return sendJson(reply, 400, { error: "bad_body" });
      return internalError(reply, err, log);
    });
    for (const url of route.paths) {
      app.post(url, { bodyLimit: route.maxBytes }, async (request, reply) => {
        const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
        const answer = await route.handle({ url: request.url, headers: request.headers, body, remote: request.socket.remoteAddress });
        return reply
          .code(answer.status)
          .header("cache-control", "no-store")
          .type(answer.contentType ?? "application/json")
          .send(answer.body);
      });
      allowOnly(app, url, ["POST"], { error: "method_not_allowed" });
    }
  };
}
