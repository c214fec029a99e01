// (being built) The console's incident routes under /console/api, behind app.consoleUser(roles).
import type { FastifyPluginAsync } from "fastify";
import type { ConsolePageDeps } from "../page-deps.js";

export const consoleIncidentPlugin: FastifyPluginAsync<ConsolePageDeps> = async () => {};
