// (being built) The console's reports routes under /console/api, behind app.consoleUser(roles).
import type { FastifyPluginAsync } from "fastify";
import type { ConsolePageDeps } from "../page-deps.js";

export const consoleReportsPlugin: FastifyPluginAsync<ConsolePageDeps> = async () => {};
