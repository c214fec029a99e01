// The closed loop of the relay, built in one place: operator alerts, incidents, the escalation engine with
// its telephony, and the forwarders. Telephony reports call outcomes to the engine, and the engine places
// calls through telephony: the one cycle among the parts, closed here by an outcome sink bound after both exist.
import type { Logger } from "pino";
import type { Kysely } from "kysely";
import { Alerter } from "../alerts/alerter.js";
import type { RelayConfig } from "../config/schema.js";
import { relayPublicUrl } from "../config/loader.js";
import { EscalationEngine } from "../escalation/engine.js";
import { loadPolicySet, readPolicyFile } from "../escalation/policy.js";
import { enqueueForward, ForwarderWorker, resolveDestinations } from "../forwarders/outbox.js";
import { IncidentForwarding } from "../incidents/forwarding.js";
import { IncidentService } from "../incidents/service.js";
import type { Metrics } from "../metrics.js";
import { loopDb, type LoopDb } from "../store/closed-loop-schema.js";
import type { Store } from "../store/store.js";
import { createTelephony, type InboundSmsHandler, type Telephony, type TelephonyHandle } from "../telephony/index.js";

export interface ClosedLoopDeps {
  config: RelayConfig;
  /** The configuration file's folder: relative secret and policy files resolve against it. */
  baseDir: string;
  store: Store;
  db: Kysely<LoopDb>;
  metrics: Metrics;
  log: Logger;
  /** The clock every part reads; `clock` is the caller's own option (undefined: the parts use Date.now). */
  now: () => number;
  clock: (() => number) | undefined;
  instanceId: string;
  /** Replaces the configured telephony (tests). */
  telephony?: Telephony;
  print?: (line: string) => void;
}

export interface ClosedLoop {
  alerts: Alerter;
  incidents: IncidentService;
  escalation: EscalationEngine;
  telephony: Telephony;
  /** The configured telephony's handle (its callback route, close), absent when one was handed in. */
  telephonyHandle: TelephonyHandle | undefined;
  forwarder: ForwarderWorker;
  /** Where the telephony's inbound-SMS webhooks go: the SMS intake, bound once ingest exists. */
  inboundSms: { bind(handler: InboundSmsHandler): void };
}

export async function buildClosedLoop(d: ClosedLoopDeps): Promise<ClosedLoop> {
  const { config, db, log, now } = d;
  const alerts = new Alerter(log.child({ part: "alerts" }), d.metrics.registry);
  const forwarding = new IncidentForwarding(enqueueForward, config.forwarders.destinations);
  const incidents = new IncidentService({ db, log: log.child({ part: "incidents" }), alerts, forwarding, now, followUpAfterS: config.escalation.followUpAfterS });
  const policies = config.escalation.policiesFile ? await readPolicyFile(config.escalation.policiesFile) : loadPolicySet();

  const outcomes = outcomeSink();
  const inboundSms = inboundSmsSink();
  const handle = d.telephony
    ? undefined
    : createTelephony(config.telephony, { log: log.child({ part: "telephony" }), onOutcome: outcomes.deliver, onInboundSms: inboundSms.deliver, publicUrl: relayPublicUrl(config), now: d.clock, baseDir: d.baseDir, print: d.print });
  const telephony = d.telephony ?? (handle as TelephonyHandle).telephony;
  // Its claims, calls and next steps are redone if a power cut loses them; incidents open in ingest's commits.
  const escalation = new EscalationEngine({ db: loopDb(d.store.redoableDb), telephony, incidents, forwarding, alerts, policies, log: log.child({ part: "escalation" }), instanceId: d.instanceId, now, claimMs: config.escalation.claimS * 1000, registry: d.metrics.registry });
  outcomes.bind(escalation);

  const forwarder = new ForwarderWorker({
    db: d.store.db,
    destinations: resolveDestinations(config.forwarders, { baseDir: d.baseDir }),
    log: log.child({ part: "forwarders" }),
    // One open alert per destination, counting the dead items; the payload (it may name an address) stays out.
    onDeadLetter: (item, reason) =>
      alerts.raise(db, {
        kind: "forward_dead",
        detail: `an update for ${item.destination} could not be delivered after ${item.attempts} tries (${reason.slice(0, 200)}; latest: forward ${item.id}); list them with anxin-relay forwards dead or GET /v1/forwards, and once the receiver is fixed resend each (anxin-relay forwards resend <id>, POST /v1/forwards/{id}/resend)`,
        at: now(),
        key: item.destination,
      }),
    now: d.clock,
    instanceId: d.instanceId,
    leaseMarginMs: config.forwarders.leaseMarginMs,
  });
  return { alerts, incidents, escalation, telephony, telephonyHandle: handle, forwarder, inboundSms };
}

type Outcome = Parameters<EscalationEngine["onOutcome"]>[0];

/** Where telephony's outcomes go: the engine, once it exists (an outcome before that is refused, not lost silently). */
function outcomeSink(): { deliver: (o: Outcome) => Promise<void>; bind: (e: EscalationEngine) => void } {
  let engine: EscalationEngine | undefined;
  return {
    deliver: async (o) => {
      if (!engine) throw new Error("escalation not started yet");
      await engine.onOutcome(o);
    },
    bind: (e) => {
      engine = e;
    },
  };
}

/** Where inbound texts go: the SMS intake, once ingest exists (a text before that is answered 503 and retried). */
function inboundSmsSink(): { deliver: InboundSmsHandler; bind: (h: InboundSmsHandler) => void } {
  let handler: InboundSmsHandler | undefined;
  return {
    deliver: async (sms) => {
      if (!handler) throw new Error("SMS intake not started yet");
      return handler(sms);
    },
    bind: (h) => {
      handler = h;
    },
  };
}
