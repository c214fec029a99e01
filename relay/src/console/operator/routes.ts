// The operator API's whole route table, served again under /console/api for the signed-in console: the same
// routes, roles, schemas, audits and error shapes as the token API, but the caller is the person behind the
// session cookie (with the CSRF token on every change) and is recorded as `user:<username>`. The console's
// incident page, care-plan panel, alerts and reports all go through here, so nothing the page can do is
// beyond what the API allows that role.
import type { FastifyPluginAsync } from "fastify";
import type { Logger } from "pino";
import { operatorApi, type OperatorAuth } from "../../api/operator/mount.js";
import type { OperatorRoute } from "../../api/operator/route.js";
import type { Principal } from "../../auth/tokens.js";

export const CONSOLE_API_PREFIX = "/console/api";

export function consoleOperatorRoutes(table: OperatorRoute[], log: Logger): FastifyPluginAsync {
  return async (app) => {
    const auth: OperatorAuth = {
      async authenticate(request, reply, roles) {
        const user = await app.consoleAuthenticate(request, reply, roles);
        if (!user) return undefined;
        const principal: Principal = { id: user.id, name: user.username, role: user.role, ...(user.streets ? { streets: user.streets } : {}) };
        return { principal, actor: user.actor };
      },
    };
    await app.register(operatorApi(table, { auth, prefix: CONSOLE_API_PREFIX, log }));
  };
}
