// `anxin-relay hubs revoke` runs in another process: this sweep notices hubs revoked there that are still
// connected to the embedded broker, forgets their cached logins and keys, and drops them.
import type { Logger } from "pino";
import type { EmbeddedBroker } from "../broker/embedded.js";
import type { Registry } from "../registry/registry.js";

/** How often the daemon looks for hubs revoked by another process. */
const REVOCATION_SWEEP_MS = 15_000;

/** Starts the sweep; returns its stop. */
export function startRevocationSweep(broker: EmbeddedBroker, registry: Registry, log: Logger, everyMs = REVOCATION_SWEEP_MS): () => void {
  let sweeping = false;
  const timer = setInterval(() => {
    if (sweeping) return;
    const connected = new Set(broker.connectedHubs());
    if (!connected.size) return;
    sweeping = true;
    registry
      .list()
      .then((hubs) => {
        for (const h of hubs)
          if (h.status === "revoked" && connected.has(h.id)) {
            registry.invalidate(h.id);
            broker.disconnect(h.id);
          }
      })
      .catch((e: Error) => log.warn({ err: e.message }, "revocation sweep failed"))
      .finally(() => (sweeping = false));
  }, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
