// Composition root of the relay: reads the configuration, builds the parts in order, owns start/stop.
// No logic of its own lives here.
import { chmod, mkdir, readFile } from "node:fs/promises";
import path from "node:path";
import type { Kysely, Migration } from "kysely";
import type { Logger } from "pino";
import { Health } from "../../../lib/daemon/health.js";
import { createNotifier } from "../../../lib/daemon/sd-notify.js";
import { Alerter } from "../alerts/alerter.js";
import { alertMigrations } from "../alerts/operator-alerts.js";
import { claimOwner, takeOverEarlierClaims } from "./claims.js";
import { guardedOpening } from "./guarded-opening.js";
import { createOperatorRouter } from "../api/operator/router.js";
import { openApiDocument } from "../api/operator/openapi.js";
import { operatorRoutes } from "../api/operator/routes.js";
import { ApiServer, type HealthReport, type RouteHandler } from "../api/server.js";
import { verifyToken } from "../auth/tokens.js";
import { EscalationEngine } from "../escalation/engine.js";
import { loadPolicySet, readPolicyFile } from "../escalation/policy.js";
import { enqueueForward, forwarderMigrations, ForwarderWorker, resolveDestinations } from "../forwarders/outbox.js";
import { IncidentForwarding } from "../incidents/forwarding.js";
import { IncidentService } from "../incidents/service.js";
import { closedLoopMigrations, loopDb, type LoopDb } from "../store/closed-loop-schema.js";
import { createTelephony, type Telephony, type TelephonyHandle } from "../telephony/index.js";
import { EmbeddedBroker } from "../broker/embedded.js";
import { hubMqttUrl, readRelayConfig, relayPublicUrl } from "../config/loader.js";
import type { RelayConfig } from "../config/schema.js";
import { Ingest, type IngestOptions } from "../ingest/ingest.js";
import { createMetrics, type Metrics } from "../metrics.js";
import { RelaySession, type SessionConnection } from "../mqtt/session.js";
import { Registry } from "../registry/registry.js";
import { openStore, type Store } from "../store/store.js";
import { Supervisor, type SupervisorOptions } from "../supervision/supervisor.js";
import { supervisionMigrations } from "../supervision/planned-stops.js";

export const RELAY_VERSION = "0.1.0";

/** How often the daemon looks for hubs revoked by `anxin-relay hubs revoke` (another process). */
const REVOCATION_SWEEP_MS = 15_000;
/** The MQTT header and topic around an event payload. */
const PACKET_OVERHEAD_BYTES = 1024;

/** Constructors of the parts; tests replace some with fakes. */
export interface RelayParts {
  openStore(cfg: RelayConfig["store"], dataDir: string): Promise<Store>;
  registry(store: Store, opts: ConstructorParameters<typeof Registry>[1]): Registry;
  supervisor(o: SupervisorOptions): Supervisor;
  ingest(o: IngestOptions): Ingest;
}

/** Every migration beyond the store's own: the closed loop's tables and the forwarders' outbox. Whatever
 * opens the relay's store (the daemon, the CLI) must pass all of them: the migrator refuses a database that
 * ran a migration it does not know. */
export const relayExtraMigrations: Record<string, Migration> = { ...closedLoopMigrations, ...forwarderMigrations, ...alertMigrations, ...supervisionMigrations };

const realParts: RelayParts = {
  openStore: (cfg, dataDir) => openStore(cfg, dataDir, { migrations: relayExtraMigrations }),
  registry: (store, opts) => new Registry(store, opts),
  supervisor: (o) => new Supervisor(o),
  ingest: (o) => new Ingest(o),
};

export interface StartRelayOptions {
  log: Logger;
  now?: () => number;
  /**
   * Called after the supervisor for every newly committed event (never for a duplicate). Placeholder for
   * the escalation engine, which a later piece wires here.
   */
  onCommitted?: (hub: string, envelope: unknown) => void;
  /** Tests only. */
  parts?: Partial<RelayParts>;
  /** Replaces the configured telephony (tests drive outcomes through `escalation.onOutcome`). */
  telephony?: Telephony;
  /**
   * Names this instance's claims on timers and outbox rows; default `<relay.id>#<boot>` (claims.ts), which
   * lets a restarted relay take back at once what its earlier run held when it died.
   */
  instanceId?: string;
  /** Console telephony: where its lines go (the demo prints them). */
  print?: (line: string) => void;
  /** Environment for sd_notify; default process.env. */
  env?: NodeJS.ProcessEnv;
}

export interface RunningRelay {
  config: RelayConfig;
  configFile: string;
  metrics: Metrics;
  store: Store;
  registry: Registry;
  supervisor: Supervisor;
  ingest: Ingest;
  /** The store seen with the closed-loop tables. */
  db: Kysely<LoopDb>;
  incidents: IncidentService;
  escalation: EscalationEngine;
  alerts: Alerter;
  telephony: Telephony;
  forwarder: ForwarderWorker;
  /** The owner name of this run's claims on timers and outbox rows (`<relay.id>#<boot>`). */
  instanceId: string;
  /** The operator API's OpenAPI description. */
  openapi: Record<string, unknown>;
  /** Present with `broker.kind: embedded`. */
  broker: EmbeddedBroker | undefined;
  session: RelaySession;
  api: ApiServer;
  health: Health;
  /** Where the HTTP API listens (the bound port, also when configured as 0). */
  httpUrl: string;
  /** The broker URL hubs are given at enrolment. */
  hubMqttUrl: string;
  /** The enrolment URL an installer passes to `anxin-hub provision --relay`. */
  publicUrl: string;
  /** Revokes a hub and drops its broker connections at once (the CLI's revoke is picked up by a sweep). */
  revoke(hub: string): Promise<boolean>;
  healthReport(): Promise<HealthReport>;
  /** Graceful stop: stop intake, commit and ack what is buffered, then close. Idempotent. */
  stop(): Promise<void>;
}

export function registryOptions(config: RelayConfig, now?: () => number): ConstructorParameters<typeof Registry>[1] {
  return { claimCodeTtlS: config.enrolment.claimCodeTtlS, heartbeatS: config.supervision.heartbeatIntervalS, mqttUrl: hubMqttUrl(config), now };
}

export async function startRelay(configFile: string, o: StartRelayOptions): Promise<RunningRelay> {
  const { config, file } = await readRelayConfig(configFile);
  const parts: RelayParts = { ...realParts, ...o.parts };
  const log = o.log.child({ relay: config.relay.id });
  const now = o.now ?? Date.now;
  const startedAt = now();

  // Undone in reverse if a later part fails to start, so a failed start leaves no port or file open.
  const undo: Array<() => Promise<void> | void> = [];
  const unwind = async () => {
    for (const f of undo.reverse()) await Promise.resolve().then(f).catch(() => {});
  };

  try {
    await mkdir(config.relay.dataDir, { recursive: true, mode: 0o700 });
    await chmod(config.relay.dataDir, 0o700).catch(() => {});

    const store = await parts.openStore(config.store, config.relay.dataDir);
    undo.push(() => store.close());
    const metrics = createMetrics();
    const registry = parts.registry(store, { ...registryOptions(config, o.now), log: log.child({ part: "registry" }) });
    const supervisor = parts.supervisor({ store, metrics, log: log.child({ part: "supervision" }), ...config.supervision, now: o.now });

    // The closed loop: incidents, escalation, telephony, forwarders. Built before ingest, which opens
    // incidents inside its commits; nothing here is awaited by ingest beyond those few inserts.
    const baseDir = path.dirname(file);
    const instanceId = o.instanceId ?? claimOwner(config.relay.id);
    const db = loopDb(store.db);
    const alerts = new Alerter(log.child({ part: "alerts" }), metrics.registry);
    const forwarding = new IncidentForwarding(enqueueForward, config.forwarders.destinations.map((d) => d.name));
    const incidents = new IncidentService({ db, log: log.child({ part: "incidents" }), alerts, forwarding, now, followUpAfterS: config.escalation.followUpAfterS });
    const policies = config.escalation.policiesFile ? await readPolicyFile(config.escalation.policiesFile) : loadPolicySet();
    let engine: EscalationEngine | undefined;
    const onOutcome = async (oc: Parameters<EscalationEngine["onOutcome"]>[0]) => {
      if (!engine) throw new Error("escalation not started yet");
      await engine.onOutcome(oc);
    };
    let tel: TelephonyHandle | undefined;
    if (!o.telephony) {
      tel = createTelephony(config.telephony, { log: log.child({ part: "telephony" }), onOutcome, publicUrl: relayPublicUrl(config), now: o.now, baseDir, print: o.print });
      const t = tel;
      undo.push(() => t.close());
    }
    const telephony = o.telephony ?? (tel as TelephonyHandle).telephony;
    const escalation = new EscalationEngine({ db, telephony, incidents, forwarding, alerts, policies, log: log.child({ part: "escalation" }), instanceId, now, claimMs: config.escalation.claimS * 1000, registry: metrics.registry });
    engine = escalation;
    const forwarder = new ForwarderWorker({
      db: store.db,
      destinations: resolveDestinations(config.forwarders, { baseDir }),
      log: log.child({ part: "forwarders" }),
      // One open alert per destination, counting the dead items; the payload (it may name an address) stays out.
      onDeadLetter: (item, reason) =>
        alerts.raise(db, {
          kind: "forward_dead",
          detail: `an update for ${item.destination} could not be delivered after ${item.attempts} tries (${reason.slice(0, 200)}; latest: forward ${item.id}); list them with anxin-relay forwards dead or GET /v1/forwards, and once the receiver is fixed resend each (anxin-relay forwards resend <id>, POST /v1/forwards/{id}/resend)`,
          at: now(),
          key: item.destination,
        }),
      now: o.now,
      instanceId,
      leaseMarginMs: config.forwarders.leaseMarginMs,
    });
    const loopOn = config.escalation.enabled;
    const opening = guardedOpening((trx, inserted) => escalation.withinCommit(trx, inserted), { alerts, log: log.child({ part: "escalation" }), now });

    // The session is built before ingest (acks go out through it) and started after the broker.
    let session: RelaySession | undefined;
    const ingest = parts.ingest({
      store,
      registry,
      metrics,
      log: log.child({ part: "ingest" }),
      ...config.ingest,
      // A resend or a duplicate is a sign of life too, so sightings follow acks, not new commits.
      onAck: (hub, ids, at) => {
        supervisor.onSeen(hub, now());
        session?.ack(hub, ids, at);
      },
      onCommitted: (hub, envelope) => {
        // The incident and its first timer are committed already (withinCommit); wake the timer loop.
        if (loopOn && (envelope as { kind?: string }).kind === "alarm") escalation.kick();
        o.onCommitted?.(hub, envelope);
      },
      ...(loopOn ? { withinCommit: (trx: Parameters<NonNullable<IngestOptions["withinCommit"]>>[0], inserted: Parameters<NonNullable<IngestOptions["withinCommit"]>>[1]) => opening(loopDb(trx), inserted) } : {}),
      now: o.now,
    });
    undo.push(() => ingest.close());

    let broker: EmbeddedBroker | undefined;
    let connection: SessionConnection;
    const b = config.broker;
    if (b.kind === "embedded") {
      const tls = b.tls ? { cert: await readFile(b.tls.certFile), key: await readFile(b.tls.keyFile) } : undefined;
      const started = await EmbeddedBroker.start({
        host: b.host,
        port: b.port,
        tls,
        verifyCredentials: (u, p) => registry.verifyCredentials(u, p),
        metrics,
        log: log.child({ part: "broker" }),
        maxPacketBytes: config.ingest.maxPayloadBytes + PACKET_OVERHEAD_BYTES,
      });
      broker = started;
      undo.push(() => started.close());
      connection = { kind: "in-process", link: () => started.inProcess() };
    } else {
      connection = {
        kind: "external",
        url: b.url,
        username: b.username,
        password: b.password,
        ca: b.caFile ? await readFile(b.caFile) : undefined,
        sharedGroup: b.sharedGroup,
      };
    }

    const s = new RelaySession({
      relayId: config.relay.id,
      connection,
      onEvent: (hub, payload) => ingest.handle(hub, payload),
      onState: (hub, payload) => supervisor.onState(hub, payload),
      metrics,
      log: log.child({ part: "mqtt" }),
    });
    session = s;
    undo.push(() => s.stop());
    s.start();
    if (!(await s.whenConnected(b.kind === "embedded" ? 5_000 : 15_000)))
      // Start anyway: healthz says 503 and the session keeps retrying; hubs keep their events meanwhile.
      log.warn({ err: s.error }, "MQTT session not up yet; continuing to retry");

    supervisor.start();
    undo.push(() => supervisor.stop());
    // Claims an earlier run of this relay held when it died are taken back now, not after their lease:
    // the next escalation step goes out within a poll of the restart (claims.ts).
    try {
      const back = await takeOverEarlierClaims(db, config.relay.id, instanceId);
      if (back.timers + back.forwards > 0)
        log.warn({ timers: back.timers, forwards: back.forwards, from: back.owners }, "took over the claims an earlier run of this relay left behind");
    } catch (e) {
      // Not fatal: those claims then come back when their lease runs out.
      log.error({ err: (e as Error).message }, "could not take over an earlier run's claims; they come back when their lease runs out");
    }
    if (loopOn) {
      escalation.start(config.escalation.pollMs);
      undo.push(() => escalation.stop());
    }
    forwarder.start(config.forwarders.pollMs);
    undo.push(() => forwarder.stop());

    let closed = false;
    const storeHealth = async (): Promise<{ ok: boolean; dialect: string; hubsOnline?: number; error?: string }> => {
      if (closed) return { ok: false, dialect: store.dialect, error: "closed" };
      // A cheap read that also proves the database answers.
      const probe = (store as Partial<Store>).countOnlineHubs;
      if (typeof probe !== "function") return { ok: true, dialect: store.dialect };
      try {
        const hubsOnline = await withTimeout(probe.call(store), 2000);
        return { ok: true, dialect: store.dialect, hubsOnline };
      } catch (e) {
        return { ok: false, dialect: store.dialect, error: (e as Error).message };
      }
    };
    const health = new Health();
    undo.push(() => health.close());
    const healthReport = async (): Promise<HealthReport> => {
      const st = await storeHealth();
      const loop = health.snapshot();
      const mqttOk = s.connected;
      return {
        ok: st.ok && mqttOk && loop.ok && !closed,
        relay: config.relay.id,
        version: RELAY_VERSION,
        uptimeS: Math.round((now() - startedAt) / 1000),
        store: st.ok ? "ok" : "down",
        storeDialect: st.dialect,
        ...(st.error ? { storeError: st.error } : {}),
        ...(st.hubsOnline !== undefined ? { hubsOnline: st.hubsOnline } : {}),
        mqtt: s.state,
        ...(s.error && !mqttOk ? { mqttError: s.error } : {}),
        broker: broker ? { kind: "embedded", clients: broker.clientCount } : { kind: "external" },
        eventLoopLagMs: loop.eventLoopLagMs,
      };
    };

    let openapi: Record<string, unknown> = {};
    const table = operatorRoutes({ db, store, incidents, registry, now, openapi: () => openapi });
    openapi = openApiDocument(table, RELAY_VERSION);
    const routes: RouteHandler[] = [createOperatorRouter(table, { verify: (t) => verifyToken(db, t), log: log.child({ part: "operator-api" }) })];
    if (tel) routes.unshift(tel.callbackRoute);
    const api = new ApiServer({
      routes,
      host: config.http.host,
      port: config.http.port,
      trustedProxies: config.http.trustedProxies,
      metricsListener: config.http.metrics,
      log: log.child({ part: "http" }),
      metrics,
      enrol: (hub, code) => registry.enrol(hub, code),
      health: healthReport,
      now: o.now,
    });
    await api.start();
    undo.push(() => api.close());

    let sweeping = false;
    const sweep = broker
      ? setInterval(() => {
          if (sweeping || !broker) return;
          const connected = new Set(broker.connectedHubs());
          if (!connected.size) return;
          sweeping = true;
          registry
            .list()
            .then((hubs) => {
              for (const h of hubs)
                if (h.status === "revoked" && connected.has(h.id)) {
                  // Revoked by the CLI in another process: forget cached logins and keys, then drop it.
                  registry.invalidate(h.id);
                  broker.disconnect(h.id);
                }
            })
            .catch((e: Error) => log.warn({ err: e.message }, "revocation sweep failed"))
            .finally(() => (sweeping = false));
        }, REVOCATION_SWEEP_MS)
      : undefined;
    sweep?.unref();

    const notifier = createNotifier({ healthy: () => health.ok(), env: o.env, log: (msg, err) => log.warn({ err: err instanceof Error ? err.message : err }, msg) });
    notifier.ready();
    log.info(
      { http: api.url, broker: broker ? broker.url : (b as { url: string }).url, mqtt: s.state, store: store.dialect, hubMqttUrl: hubMqttUrl(config) },
      "anxin-relay ready",
    );

    let stopping: Promise<void> | undefined;
    const stop = () =>
      (stopping ??= (async () => {
        notifier.stopping();
        if (sweep) clearInterval(sweep);
        const step = async (what: string, f: () => Promise<void> | void) => {
          try {
            await f();
          } catch (e) {
            log.error({ err: (e as Error).message, step: what }, "error while stopping");
          }
        };
        // Stop taking new work, then commit what is buffered and send its acks while the hubs are still
        // connected, then close.
        await step("http", () => api.close());
        await step("broker listener", () => broker?.stopAccepting());
        await step("mqtt intake", () => s.pauseIntake());
        await step("ingest flush", () => ingest.flush());
        await step("ingest", () => ingest.close());
        // Unfinished escalation steps stay in the store and resume after a restart (here or elsewhere).
        await step("escalation", () => escalation.stop());
        await step("forwarders", () => forwarder.stop());
        await step("telephony", () => tel?.close());
        // After the last flush, so the sightings it produced are written too.
        await step("supervisor", async () => {
          supervisor.stop();
          await supervisor.drain();
        });
        await step("mqtt", () => s.stop());
        await step("broker", () => broker?.close());
        closed = true;
        await step("store", () => store.close());
        notifier.close();
        health.close();
        log.info("anxin-relay stopped");
      })());

    return {
      config,
      configFile: file,
      metrics,
      store,
      registry,
      supervisor,
      ingest,
      db,
      incidents,
      escalation,
      alerts,
      telephony,
      forwarder,
      instanceId,
      openapi,
      broker,
      session: s,
      api,
      health,
      httpUrl: api.url,
      hubMqttUrl: hubMqttUrl(config),
      publicUrl: relayPublicUrl(config),
      revoke: async (hub) => {
        const done = await registry.revoke(hub);
        broker?.disconnect(hub);
        return done;
      },
      healthReport,
      stop,
    };
  } catch (e) {
    await unwind();
    throw e;
  }
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
