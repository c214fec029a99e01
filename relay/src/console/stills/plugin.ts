// (being built) The console's stills routes under /console/api, behind app.consoleUser(roles).
import type { FastifyPluginAsync } from "fastify";
import type { ConsolePageDeps } from "../page-deps.js";

export const consoleStillsPlugin: FastifyPluginAsync<ConsolePageDeps> = async () => {};
