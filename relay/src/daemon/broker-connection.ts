// How the relay's own MQTT session reaches the hubs' broker: an embedded broker started here (in-process
// link), or an external one (Mosquitto, EMQX) reached over the network.
import { readFile } from "node:fs/promises";
import type { Logger } from "pino";
import { EmbeddedBroker } from "../broker/embedded.js";
import type { RelayConfig } from "../config/schema.js";
import type { Metrics } from "../metrics.js";
import type { SessionConnection } from "../mqtt/session.js";
import type { Registry } from "../registry/registry.js";

/** The MQTT header and topic around an event payload. */
const PACKET_OVERHEAD_BYTES = 1024;

export async function brokerConnection(
  config: RelayConfig,
  d: { registry: Registry; metrics: Metrics; log: Logger },
): Promise<{ broker: EmbeddedBroker | undefined; connection: SessionConnection }> {
  const b = config.broker;
  if (b.kind === "external") {
    return {
      broker: undefined,
      connection: { kind: "external", url: b.url, username: b.username, password: b.password, ca: b.caFile ? await readFile(b.caFile) : undefined, sharedGroup: b.sharedGroup },
    };
  }
  const tls = b.tls ? { cert: await readFile(b.tls.certFile), key: await readFile(b.tls.keyFile) } : undefined;
  const broker = await EmbeddedBroker.start({
    host: b.host,
    port: b.port,
    tls,
    allowPlaintext: b.allowPlaintext,
    verifyCredentials: (u, p) => d.registry.verifyCredentials(u, p),
    metrics: d.metrics,
    log: d.log,
    maxPacketBytes: config.ingest.maxPayloadBytes + PACKET_OVERHEAD_BYTES,
  });
  return { broker, connection: { kind: "in-process", link: () => broker.inProcess() } };
}
