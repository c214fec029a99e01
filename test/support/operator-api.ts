// The operator API's route table served on its own on a loopback port, through the same fastify mount the
// relay uses (api/operator/mount.ts), for tests that need the routes without a whole relay.
import Fastify from "fastify";
import type { AddressInfo } from "node:net";
import type { Logger } from "pino";
import { operatorApi } from "../../relay/src/api/operator/mount.js";
import type { OperatorRoute } from "../../relay/src/api/operator/route.js";
import type { Principal } from "../../relay/src/auth/tokens.js";

export async function serveOperatorApi(routes: OperatorRoute[], deps: { verify: (token: string) => Promise<Principal | undefined>; log: Logger }): Promise<{ base: string; close(): Promise<void> }> {
  const app = Fastify();
  await app.register(operatorApi(routes, deps));
  await app.listen({ port: 0, host: "127.0.0.1" });
  return { base: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`, close: () => app.close() };
}
