// Composition root of the relay: reads the configuration, builds the parts in order, owns start/stop.
// No logic of its own lives here.
import { chmod, mkdir } from "node:fs/promises";
import path from "node:path";
import type { Kysely } from "kysely";
import type { Logger } from "pino";
import { Health } from "../../../lib/daemon/health.js";
import { createNotifier } from "../../../lib/daemon/sd-notify.js";
import { claimOwner, isEarlierRun, takeOverEarlierClaims } from "./claims.js";
import { guardedOpening } from "./guarded-opening.js";
import { brokerConnection } from "./broker-connection.js";
import { buildClosedLoop } from "./closed-loop.js";
import { healthReporter } from "./health-report.js";
import { startHttpApi } from "./http-api.js";
import { consolePlugin } from "../console/mount.js";
import type { FastifyPluginAsync } from "fastify";
import { startRevocationSweep } from "./revocation-sweep.js";
import type { ApiServer, HealthReport } from "../api/server.js";
import type { EscalationEngine } from "../escalation/engine.js";
import type { Alerter } from "../alerts/alerter.js";
import type { EmbeddedBroker } from "../broker/embedded.js";
import type { ForwarderWorker } from "../forwarders/outbox.js";
import type { IncidentService } from "../incidents/service.js";
import { loopDb, type LoopDb } from "../store/closed-loop-schema.js";
import type { Telephony } from "../telephony/index.js";
import { hubMqttUrl, readRelayConfig, relayPublicUrl } from "../config/loader.js";
import type { RelayConfig } from "../config/schema.js";
import { Ingest, type IngestOptions } from "../ingest/ingest.js";
import { smsIntake } from "../sms/wiring.js";
import { createMetrics, type Metrics } from "../metrics.js";
import { RelaySession } from "../mqtt/session.js";
import { startHubKeys } from "../registry/hub-keys.js";
import { Registry } from "../registry/registry.js";
import { openStore, type Store } from "../store/store.js";
import { Supervisor, type SupervisorOptions } from "../supervision/supervisor.js";
import { startRetention } from "../retention/index.js";
import { commissioningIntake } from "../commissioning/intake.js";
import { startUpkeep } from "../households/upkeep-sweep.js";
import { retirementOutcomes } from "../households/retirement-outcomes.js";
import { RetirementSender } from "../households/retirement-sender.js";
import { Announcer } from "../announce/announcer.js";
import { registryOptions } from "../registry/options.js";
import { relayExtraMigrations } from "../store/relay-migrations.js";
import { RELAY_VERSION } from "../version.js";

/** Constructors of the parts; tests replace some with fakes. */
export interface RelayParts {
  openStore(cfg: RelayConfig["store"], dataDir: string): Promise<Store>;
  registry(store: Store, opts: ConstructorParameters<typeof Registry>[1]): Registry;
  supervisor(o: SupervisorOptions): Supervisor;
  ingest(o: IngestOptions): Ingest;
}


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
  /** Environment for sd_notify and the master key credential ($CREDENTIALS_DIRECTORY); default process.env. */
  env?: NodeJS.ProcessEnv;
  /** More fastify plugins on the public HTTP listener (http-api.ts HttpApiDeps.plugins). */
  httpPlugins?: readonly FastifyPluginAsync[];
  /** Where the console's built page is (default dist/console). */
  consoleDir?: string;
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

export async function startRelay(configFile: string, o: StartRelayOptions): Promise<RunningRelay> {
  const { config, file } = await readRelayConfig(configFile);
  const parts: RelayParts = { ...realParts, ...o.parts };
  const log = o.log.child({ relay: config.relay.id });
  const now = o.now ?? Date.now;
  const startedAt = now();
  const baseDir = path.dirname(file);

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
    // The master key, checked against the sealed keys (clear ones sealed now) before anything enrols or
    // verifies: a wrong key stops here. A test's fake registry has no keys to check.
    const vault = o.parts?.registry ? undefined : (await startHubKeys(store, config, { log: log.child({ part: "hub-keys" }), env: o.env })).vault;
    const registry = parts.registry(store, { ...registryOptions(config, o.now), log: log.child({ part: "registry" }), ...(vault ? { keys: async () => vault } : {}) });
    const supervisor = parts.supervisor({ store, metrics, log: log.child({ part: "supervision" }), ...config.supervision, now: o.now, ...(vault ? { signingKey: (h: string) => registry.usableSigningKey(h) } : {}) });

    // The closed loop: incidents, escalation, telephony, forwarders. Built before ingest, which opens
    // incidents inside its commits; nothing here is awaited by ingest beyond those few inserts.
    const instanceId = o.instanceId ?? claimOwner(config.relay.id);
    const db = loopDb(store.db);
    const loop = await buildClosedLoop({ config, baseDir, store, db, metrics, log, now, clock: o.now, instanceId, telephony: o.telephony, print: o.print });
    const { alerts, incidents, escalation, telephony, telephonyHandle, forwarder, inboundSms } = loop;
    if (telephonyHandle) undo.push(() => telephonyHandle.close());
    const loopOn = config.escalation.enabled;
    const opening = guardedOpening((trx, inserted) => escalation.withinCommit(trx, inserted), {
      alerts,
      log: log.child({ part: "escalation" }),
      now,
      openFresh: (trx, inserted) => escalation.openFresh(trx, inserted),
    });
    // Commissioning reports are stored in the commit of their event, whether or not escalation runs.
    const reportIntake = commissioningIntake({ log: log.child({ part: "commissioning" }), registry: metrics.registry, now });
    // The hub's answer to a device retirement settles it in the commit of its event.
    const retirementAnswers = retirementOutcomes({ alerts, log: log.child({ part: "retirements" }), now });

    // Acks go out through the session, which needs the broker, which is started after ingest exists: ingest
    // hands its acks to whichever session is current (none yet: the hub resends and is acked then).
    const acks: { session?: RelaySession } = {};
    const ingest = parts.ingest({
      store,
      registry,
      metrics,
      log: log.child({ part: "ingest" }),
      ...config.ingest,
      // A resend or a duplicate is a sign of life too, so sightings follow acks, not new commits.
      onAck: (hub, ids, at) => {
        supervisor.onSeen(hub, now());
        acks.session?.ack(hub, ids, at);
      },
      onCommitted: (hub, envelope) => {
        // The incident and its first timer are committed already (withinCommit); wake the timer loop.
        if (loopOn && (envelope as { kind?: string }).kind === "alarm") escalation.kick();
        o.onCommitted?.(hub, envelope);
      },
      withinCommit: async (trx: Parameters<NonNullable<IngestOptions["withinCommit"]>>[0], inserted: Parameters<NonNullable<IngestOptions["withinCommit"]>>[1]) => {
        if (loopOn) await opening(loopDb(trx), inserted);
        await reportIntake(loopDb(trx), inserted);
        await retirementAnswers(loopDb(trx), inserted);
      },
      now: o.now,
    });
    undo.push(() => ingest.close());
    // Alarms by SMS, the last-resort path (docs/relay.md): verified with the hub's key, stored through ingest.
    inboundSms.bind(smsIntake({ config, db, store, registry, ingest, alerts, metrics, log: log.child({ part: "sms" }), now }));

    const { broker, connection } = await brokerConnection(config, { registry, metrics, log: log.child({ part: "broker" }) });
    if (broker) undo.push(() => broker.close());
    // Pending device retirements go to a hub at its birth and while it is online (households/retirement-sender.ts).
    const retirements = new RetirementSender({ db, publish: (hub, cmd) => session.publishCommand(hub, cmd), connected: () => session.connected, log: log.child({ part: "retirements" }), now });
    // What became of an incident, told to its hub for the elder (announce/announcer.ts; docs/voice.md).
    const announcer = new Announcer({ db, publish: (hub, cmd) => session.publishCommand(hub, cmd), connected: () => session.connected, log: log.child({ part: "announce" }), now });
    const session = new RelaySession({
      relayId: config.relay.id,
      connection,
      // Acks and commands are signed with the hub's own key; a hub without one (revoked) is sent neither.
      keys: { signingKey: (hub) => registry.signingKey(hub), cachedSigningKey: (hub) => registry.cachedSigningKey(hub) },
      now: o.now,
      onEvent: (hub, payload) => ingest.handle(hub, payload),
      onState: (hub, payload) => {
        supervisor.onState(hub, payload);
        retirements.onState(hub, payload);
      },
      metrics,
      log: log.child({ part: "mqtt" }),
    });
    acks.session = session;
    undo.push(() => session.stop());
    session.start();
    if (!(await session.whenConnected(broker ? 5_000 : 15_000)))
      // Start anyway: healthz says 503 and the session keeps retrying; hubs keep their events meanwhile.
      log.warn({ err: session.error }, "MQTT session not up yet; continuing to retry");

    supervisor.start();
    undo.push(() => supervisor.stop());
    retirements.start();
    undo.push(() => retirements.stop());
    await takeBackEarlierClaims(db, config.relay.id, instanceId, log);
    if (loopOn) {
      announcer.start();
      undo.push(() => announcer.stop());
      escalation.start(config.escalation.pollMs);
      undo.push(() => escalation.stop());
    }
    forwarder.start(config.forwarders.pollMs);
    undo.push(() => forwarder.stop());
    // Retention runs as a database timer shared by every instance (retention/).
    const retention = await startRetention({ db, config: config.retention, relayId: config.relay.id, instanceId, metrics, log: log.child({ part: "retention" }), now: o.now });
    undo.push(() => retention.stop());
    // Upkeep due dates and overdue alerts, a database timer like retention (households/upkeep-sweep.ts).
    const upkeep = await startUpkeep({ db, config: config.households.upkeep, owner: instanceId, isEarlierRun: isEarlierRun(config.relay.id, instanceId), log: log.child({ part: "upkeep" }), now: o.now });
    undo.push(() => upkeep.stop());

    let closed = false;
    const health = new Health();
    undo.push(() => health.close());
    const healthReport = healthReporter({ relayId: config.relay.id, version: RELAY_VERSION, store, session, broker, health, now, startedAt, closed: () => closed });
    const { api, openapi } = await startHttpApi({ config, baseDir, version: RELAY_VERSION, db, store, incidents, registry, metrics, telephonyHandle, healthReport, log, now, clock: o.now, consoleFor: (table) => consolePlugin({ db, store, now, log, config, staticDir: o.consoleDir, operatorTable: table }), plugins: o.httpPlugins });
    undo.push(() => api.close());
    const stopSweep = broker ? startRevocationSweep(broker, registry, log) : undefined;

    const notifier = createNotifier({ healthy: () => health.ok(), env: o.env, log: (msg, err) => log.warn({ err: err instanceof Error ? err.message : err }, msg) });
    notifier.ready();
    log.info({ http: api.url, broker: broker ? broker.url : connection.kind === "external" ? connection.url : "", mqtt: session.state, store: store.dialect, hubMqttUrl: hubMqttUrl(config) }, "anxin-relay ready");

    let stopping: Promise<void> | undefined;
    const stop = () =>
      (stopping ??= (async () => {
        notifier.stopping();
        stopSweep?.();
        // Stop taking new work, then commit what is buffered and send its acks while the hubs are still
        // connected, then close. Each step runs whatever the one before did.
        await stopInOrder(log, [
          ["http", () => api.close()],
          ["broker listener", () => broker?.stopAccepting()],
          ["mqtt intake", () => session.pauseIntake()],
          ["ingest flush", () => ingest.flush()],
          ["ingest", () => ingest.close()],
          // Unfinished escalation steps stay in the store and resume after a restart (here or elsewhere).
          ["escalation", () => escalation.stop()],
          ["forwarders", () => forwarder.stop()],
          ["retention", () => retention.stop()],
          ["upkeep", () => upkeep.stop()],
          ["retirements", () => retirements.stop()],
          ["announcements", () => announcer.stop()],
          ["telephony", () => telephonyHandle?.close()],
          // After the last flush, so the sightings it produced are written too.
          [
            "supervisor",
            async () => {
              supervisor.stop();
              await supervisor.drain();
            },
          ],
          ["mqtt", () => session.stop()],
          ["broker", () => broker?.close()],
          [
            "store",
            () => {
              closed = true;
              return store.close();
            },
          ],
        ]);
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
      session,
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

/**
 * Claims an earlier run of this relay held when it died are taken back now, not after their lease: the
 * next escalation step goes out within a poll of the restart (claims.ts). Not fatal when it fails: those
 * claims then come back when their lease runs out.
 */
async function takeBackEarlierClaims(db: Kysely<LoopDb>, relayId: string, instanceId: string, log: Logger): Promise<void> {
  try {
    const back = await takeOverEarlierClaims(db, relayId, instanceId);
    if (back.timers + back.forwards > 0) log.warn({ timers: back.timers, forwards: back.forwards, from: back.owners }, "took over the claims an earlier run of this relay left behind");
  } catch (e) {
    log.error({ err: (e as Error).message }, "could not take over an earlier run's claims; they come back when their lease runs out");
  }
}

/** A stop step taking longer than this is logged: an operator waiting on a stop can see what it waits for. */
const SLOW_STOP_STEP_MS = 2_000;

/** Runs the stop steps in order; a step that fails is logged and the next one still runs. */
async function stopInOrder(log: Logger, steps: Array<[string, () => unknown]>): Promise<void> {
  for (const [what, f] of steps) {
    const t0 = Date.now();
    const slow = setTimeout(() => log.warn({ step: what }, `stop step still running after ${SLOW_STOP_STEP_MS / 1000} s`), SLOW_STOP_STEP_MS);
    try {
      await f();
    } catch (e) {
      log.error({ err: (e as Error).message, step: what }, "error while stopping");
    } finally {
      clearTimeout(slow);
    }
    const ms = Date.now() - t0;
    if (ms >= SLOW_STOP_STEP_MS) log.warn({ step: what, ms }, "stop step was slow");
  }
}
