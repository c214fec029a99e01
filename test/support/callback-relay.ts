// A stand-in for the relay's HTTP server in telephony tests: callback paths mounted as the relay mounts a
// telephony adapter's (api/telephony-callbacks.ts), 404 elsewhere. Each request goes to the route `route()`
// returns then: the adapter needs this server's URL, so it is made after the server.
import Fastify from "fastify";
import type { AddressInfo } from "node:net";
import { pino } from "pino";
import { telephonyCallbacks } from "../../relay/src/api/telephony-callbacks.js";
import type { CallbackRoute } from "../../relay/src/telephony/types.js";

export async function callbackRelay(paths: string[], route: () => CallbackRoute): Promise<{ url: string; close(): Promise<void> }> {
  const app = Fastify();
  await app.register(telephonyCallbacks({ paths, maxBytes: 64 * 1024, handle: (req) => route().handle(req) }, pino({ level: "silent" })));
  await app.listen({ port: 0, host: "127.0.0.1" });
  return { url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`, close: () => app.close() };
}
