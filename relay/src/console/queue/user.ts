// The person the console's sign-in put on the request (auth/plugin.ts). The sign-in's preHandler is given to
// the plugin (consoleQueuePlugin's `authenticate`); the queue only reads its result.
import type { FastifyRequest } from "fastify";
import type { ConsoleUser } from "../auth/plugin.js";

export type { ConsoleUser };

/** The signed-in person; throws if the route was reached without the sign-in's preHandler (a wiring fault). */
export function consoleUserOf(req: FastifyRequest): ConsoleUser {
  const u = req.consoleUser;
  if (!u) throw new Error("console queue: no consoleUser on the request (authenticate must run first)");
  return u;
}
