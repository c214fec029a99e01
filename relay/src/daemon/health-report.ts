// What /healthz answers: the store (a cheap read that proves the database answers), the MQTT session, the
// event loop, and the broker's clients.
import type { Health } from "../../../lib/daemon/health.js";
import type { HealthReport } from "../api/server.js";
import type { EmbeddedBroker } from "../broker/embedded.js";
import type { RelaySession } from "../mqtt/session.js";
import type { Store } from "../store/store.js";

export interface HealthSources {
  relayId: string;
  version: string;
  store: Store;
  session: RelaySession;
  broker: EmbeddedBroker | undefined;
  health: Health;
  now: () => number;
  startedAt: number;
  /** True once the relay has stopped (the store is closed). */
  closed: () => boolean;
}

export function healthReporter(s: HealthSources): () => Promise<HealthReport> {
  const storeHealth = async (): Promise<{ ok: boolean; dialect: string; hubsOnline?: number; error?: string }> => {
    if (s.closed()) return { ok: false, dialect: s.store.dialect, error: "closed" };
    const probe = (s.store as Partial<Store>).countOnlineHubs;
    if (typeof probe !== "function") return { ok: true, dialect: s.store.dialect };
    try {
      const hubsOnline = await withTimeout(probe.call(s.store), 2000);
      return { ok: true, dialect: s.store.dialect, hubsOnline };
    } catch (e) {
      return { ok: false, dialect: s.store.dialect, error: (e as Error).message };
    }
  };
  return async () => {
    const st = await storeHealth();
    const loop = s.health.snapshot();
    const mqttOk = s.session.connected;
    return {
      ok: st.ok && mqttOk && loop.ok && !s.closed(),
      relay: s.relayId,
      version: s.version,
      uptimeS: Math.round((s.now() - s.startedAt) / 1000),
      store: st.ok ? "ok" : "down",
      storeDialect: st.dialect,
      ...(st.error ? { storeError: st.error } : {}),
      ...(st.hubsOnline !== undefined ? { hubsOnline: st.hubsOnline } : {}),
      mqtt: s.session.state,
      ...(s.session.error && !mqttOk ? { mqttError: s.session.error } : {}),
      broker: s.broker ? { kind: "embedded", clients: s.broker.clientCount } : { kind: "external" },
      eventLoopLagMs: loop.eventLoopLagMs,
    };
  };
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}
