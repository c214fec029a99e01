// The SMS intake as the daemon builds it: the registry's keys, ingest's verified entry, the primary-path
// watch, the inbound-SMS counter, and the `sms` configuration.
import type { Kysely } from "kysely";
import type { Logger } from "pino";
import type { Metrics } from "../metrics.js";
import type { Alerter } from "../alerts/alerter.js";
import type { RelayConfig } from "../config/schema.js";
import type { Ingest } from "../ingest/ingest.js";
import type { Registry } from "../registry/registry.js";
import type { LoopDb } from "../store/closed-loop-schema.js";
import type { Store } from "../store/store.js";
import { PrimaryPathWatch } from "../supervision/primary-path.js";
import type { InboundSmsHandler } from "../telephony/types.js";
import { SmsIntake } from "./intake.js";

export interface SmsWiring {
  config: RelayConfig;
  db: Kysely<LoopDb>;
  store: Store;
  registry: Pick<Registry, "usableSigningKey">;
  ingest: Pick<Ingest, "handleVerified">;
  alerts: Pick<Alerter, "raise">;
  metrics: Pick<Metrics, "smsInbound">;
  log: Logger;
  now: () => number;
}

export function smsIntake(w: SmsWiring): InboundSmsHandler {
  const sup = w.config.supervision;
  const watch = new PrimaryPathWatch({
    db: w.db,
    alerts: w.alerts,
    getHub: (hub) => w.store.getHub(hub),
    silentAfterMs: sup.heartbeatIntervalS * sup.missedHeartbeats * 1000,
    log: w.log,
    now: w.now,
  });
  const intake = new SmsIntake({
    signingKey: (hub) => w.registry.usableSigningKey(hub),
    ingest: (hub, env) => w.ingest.handleVerified(hub, env, { path: "sms" }),
    onSmsEvent: (hub, kind, type) => watch.smsEvent(hub, kind, type),
    count: (c) => w.metrics.smsInbound.inc(c),
    inboundNumber: w.config.sms.inboundNumber,
    log: w.log,
  });
  return (sms) => intake.handle(sms);
}
