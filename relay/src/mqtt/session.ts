// The relay's own MQTT session: receives hubs' events and state, sends acks and commands, each signed with
// the hub's own key so that nobody on the path can make a hub delete what the relay never committed.
// The same mqtt.js code runs against the embedded broker (over an in-process pipe) and an external one
// (over TCP/TLS, with a shared subscription so several relay instances split the hubs' traffic).
import { randomBytes } from "node:crypto";
import type { Duplex } from "node:stream";
import { connect, MqttClient, type IClientOptions } from "mqtt";
import type { Logger } from "pino";
import { BurstLog } from "../../../lib/log/burst-log.js";
import { ACK_MAX_IDS, ackSchema, commandSchema, signAck, signCommand, type Ack, type HubCommandRequest } from "../../../protocol/messages.js";
import { ULID_PATTERN } from "../../../protocol/envelope.js";
import { topics, TOPIC_ROOT } from "../../../protocol/topics.js";
import type { InProcessLink } from "../broker/embedded.js";
import type { Metrics } from "../metrics.js";
import { isHubId, parseTopic } from "./topics.js";

/** Largest ack message: ackSchema allows 5000, smaller messages spread the hub's delete work. */
export const ACK_CHUNK = 1000;

export type SessionConnection =
  /** Inside the embedded broker, without MQTT encoding (the default with the embedded broker). */
  | { kind: "in-process"; link: () => InProcessLink }
  /** An mqtt.js client over an in-process pipe to the embedded broker. */
  | { kind: "embedded"; stream: () => Duplex }
  | { kind: "external"; url: string; username?: string; password?: string; ca?: Buffer; sharedGroup: string | null };

/** Where the session finds a hub's key to sign its acks and commands (the registry). */
export interface SessionKeys {
  /** The hub's key; null when the hub is unknown or revoked. May reject (the store is unreachable). */
  signingKey(hub: string): Promise<Buffer | null>;
  /** The key when known without waiting (null: unknown or revoked), undefined when it must be looked up. */
  cachedSigningKey?(hub: string): Buffer | null | undefined;
}

export interface RelaySessionOptions {
  relayId: string;
  /** Signs acks and commands: each with the key of the hub it goes to. */
  keys: SessionKeys;
  connection: SessionConnection;
  /** A message from `anxin/v1/{hub}/evt` (Ingest.handle). */
  onEvent(hub: string, payload: Buffer): void;
  /** A message from `anxin/v1/{hub}/state` (Supervisor.onState). */
  onState(hub: string, payload: Buffer): void;
  metrics: Pick<Metrics, "mqttConnected" | "acksSent" | "eventsRejected">;
  log: Logger;
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
  /** MQTT keepalive with an external broker (s); default 30. */
  keepaliveS?: number;
  /** The relay's clock, for a command's `ts`; default Date.now. */
  now?: () => number;
}

/**
 * True when `{ids, now}` certainly satisfies ackSchema (1 to ACK_MAX_IDS ULIDs, a non-negative integer clock): zod per
 * ack was a visible share of the relay's CPU. False means "ask zod", never "invalid".
 */
function plainAck(ids: readonly unknown[], now: unknown): boolean {
  if (ids.length < 1 || ids.length > ACK_MAX_IDS || typeof now !== "number" || !Number.isSafeInteger(now) || now < 0) return false;
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    if (typeof id !== "string" || !ULID_PATTERN.test(id)) return false;
  }
  return true;
}

/** How long a stop waits for acks whose key is still being looked up. */
const ACK_KEY_WAIT_MS = 2_000;
/** How long a stop waits for the broker to confirm the unsubscribe. */
const UNSUBSCRIBE_WAIT_MS = 2_000;

export type SessionState = "connecting" | "connected" | "reconnecting" | "stopped";

export class RelaySession {
  readonly clientId: string;
  private client: MqttClient | undefined;
  private link: InProcessLink | undefined;
  private unsubscribes: Array<() => Promise<void>> = [];
  private _state: SessionState = "connecting";
  private attempts = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private intake = true;
  private connectedWaiters: Array<() => void> = [];
  private lastError: string | undefined;
  /** Acks not sent because the session was down (the hubs resend; the relay acks again). */
  acksDropped = 0;
  /**
   * Ack messages not sent because no key could sign them: the hub is unknown or revoked, or its key could not
   * be read. A hub acts on no unsigned ack; it keeps the events and sends them again.
   */
  acksUnsigned = 0;
  /** Acks waiting for their hub's key; a stop sends them before it ends the session. */
  private readonly signing = new Set<Promise<void>>();
  private stopping: Promise<void> | undefined;
  private readonly badTopics: BurstLog;

  constructor(private readonly o: RelaySessionOptions) {
    this.clientId = `anxin-relay-${o.relayId}-${randomBytes(4).toString("hex")}`;
    this.badTopics = new BurstLog(o.log, "message on an unexpected topic dropped", o.now ?? Date.now);
  }

  get state(): SessionState {
    return this._state;
  }

  get connected(): boolean {
    return this._state === "connected";
  }

  /** Why the last attempt failed, for healthz. */
  get error(): string | undefined {
    return this.lastError;
  }

  /** The topics subscribed to; with an external broker and a shared group, `$share/{group}/…`. */
  get subscriptions(): string[] {
    const c = this.o.connection;
    const share = c.kind === "external" && c.sharedGroup ? `$share/${c.sharedGroup}/` : "";
    // State goes to the same group: one instance should handle each birth/will, like each event.
    return [`${share}${TOPIC_ROOT}/+/evt`, `${share}${TOPIC_ROOT}/+/state`];
  }

  /** Starts connecting (and reconnecting for as long as the session runs). */
  start(): void {
    if (this.client || this.link) return;
    const c = this.o.connection;
    if (c.kind === "in-process") {
      this.startInProcess(c.link());
      return;
    }
    const base: IClientOptions = {
      clientId: this.clientId,
      clean: true,
      protocolVersion: 4,
      keepalive: this.o.keepaliveS ?? 30,
      connectTimeout: 10_000,
      // Reconnects are ours (with backoff); mqtt.js' own period is fixed.
      reconnectPeriod: 0,
      resubscribe: false,
    };
    let client: MqttClient;
    if (c.kind === "embedded") {
      client = new MqttClient(() => c.stream(), base);
    } else {
      client = connect(c.url, { ...base, username: c.username, password: c.password, ca: c.ca, rejectUnauthorized: true });
    }
    this.client = client;
    // mqtt.js counts only acks and PINGRESP as signs of life, not the messages it delivers. Behind a broker busy
    // with a storm, the PINGRESP queues behind megabytes of hubs' events and the session was dropped as dead
    // while it delivered thousands a second, losing everything the broker had queued for it. Whatever
    // arrives from the broker shows the connection is alive.
    client.on("packetreceive", () => client.reschedulePing(true));
    client.on("connect", () => this.onConnect(client));
    client.on("message", (topic, payload) => this.route(topic, payload));
    client.on("error", (err) => {
      this.lastError = err.message;
      this.o.log.warn({ err: err.message }, "relay MQTT session error");
    });
    client.on("close", () => this.onClose());
  }

  private startInProcess(link: InProcessLink): void {
    this.link = link;
    const route = (topic: string, payload: Buffer) => this.route(topic, payload);
    Promise.all(this.subscriptions.map((f) => link.subscribe(f, route))).then(
      (unsubscribes) => {
        this.unsubscribes = unsubscribes;
        if (this._state !== "stopped") this.setConnected();
        else void this.dropSubscriptions();
      },
      (err: Error) => {
        this.lastError = err.message;
        this.o.log.error({ err: err.message }, "relay in-process subscribe failed");
      },
    );
  }

  private async dropSubscriptions(): Promise<void> {
    const u = this.unsubscribes;
    this.unsubscribes = [];
    await Promise.all(u.map((f) => f().catch(() => {})));
  }

  /** Resolves once connected and subscribed, or false after `timeoutMs`. */
  whenConnected(timeoutMs: number): Promise<boolean> {
    if (this.connected) return Promise.resolve(true);
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.connectedWaiters = this.connectedWaiters.filter((w) => w !== done);
        resolve(false);
      }, timeoutMs);
      const done = () => {
        clearTimeout(t);
        resolve(true);
      };
      this.connectedWaiters.push(done);
    });
  }

  /**
   * Sends the ack for events the relay has committed: QoS 1 JSON `{ids, now, sig}` on the hub's ack topic,
   * in chunks of at most ACK_CHUNK ids, each signed with the hub's key (signAck). While the session is down
   * the ack is dropped: the hub still has the events and resends them; the relay deduplicates and acks again
   * (invariants 4 and 5). Without a key for the hub (unknown, revoked, unreadable) nothing is sent either: the
   * hub would refuse an unsigned ack.
   */
  ack(hub: string, ids: string[], now: number): void {
    if (!isHubId(hub)) {
      this.o.log.error({ hub }, "ack for an invalid hub id not sent");
      return;
    }
    // Nearly always cached: ingest has just verified this hub's events with the same key.
    const cached = this.o.keys.cachedSigningKey?.(hub);
    if (cached !== undefined) return this.sendAcks(hub, ids, now, cached);
    const p: Promise<void> = this.o.keys
      .signingKey(hub)
      .then(
        (key) => this.sendAcks(hub, ids, now, key),
        (err: unknown) => this.unsigned(hub, ids.length, err instanceof Error ? err.message : String(err)),
      )
      .catch((err: unknown) => this.o.log.error({ hub, err }, "ack: internal error"))
      .finally(() => this.signing.delete(p));
    this.signing.add(p);
  }

  private sendAcks(hub: string, ids: string[], now: number, key: Buffer | null): void {
    if (!key) return this.unsigned(hub, ids.length, "the hub is unknown or revoked");
    const client = this.client;
    for (let i = 0; i < ids.length; i += ACK_CHUNK) {
      const chunk = ids.length <= ACK_CHUNK ? ids : ids.slice(i, i + ACK_CHUNK);
      let ack: Ack = { ids: chunk, now };
      // plainAck passes the common case without zod; zod decides (and explains) anything it is not sure of.
      if (!plainAck(chunk, now)) {
        const parsed = ackSchema.safeParse(ack);
        if (!parsed.success) {
          this.o.log.error({ hub, err: parsed.error.message }, "ack not sent: it does not match the wire contract");
          continue;
        }
        ack = parsed.data;
      }
      if (!this.connected || (!client && !this.link)) {
        this.acksDropped++;
        continue;
      }
      const payload = JSON.stringify(signAck(hub, ack, key));
      this.o.metrics.acksSent.inc();
      if (this.link) {
        this.link.publish(topics.ack(hub), Buffer.from(payload), 1).catch((err: Error) => this.o.log.debug({ hub, err: err.message }, "ack publish failed"));
        continue;
      }
      client!.publish(topics.ack(hub), payload, { qos: 1 }, (err) => {
        if (err) this.o.log.debug({ hub, err: err.message }, "ack publish failed");
      });
    }
  }

  private unsigned(hub: string, ids: number, why: string): void {
    const messages = Math.ceil(ids / ACK_CHUNK);
    this.acksUnsigned += messages;
    this.o.log.warn({ hub, ids, messages, why, acksUnsigned: this.acksUnsigned }, "ack not sent: no key to sign it with (the hub keeps the events and sends them again)");
  }

  /**
   * Sends a command the hub accepts remotely: only what commandSchema allows (it cannot open a valve), with
   * the relay's clock as `ts`, signed with the hub's key. Rejects when the hub has no key (unknown, revoked).
   */
  async publishCommand(hub: string, cmd: HubCommandRequest): Promise<void> {
    if (!isHubId(hub)) throw new Error(`not a hub id: ${hub}`);
    // A caller's own ts or sig is not taken: the command is stamped and signed here.
    const { ts: _ts, sig: _sig, ...request } = cmd as HubCommandRequest & { ts?: unknown; sig?: unknown };
    const parsed = commandSchema.parse({ ...request, ts: (this.o.now ?? Date.now)() });
    const key = this.o.keys.cachedSigningKey?.(hub) ?? (await this.o.keys.signingKey(hub));
    if (!key) throw new Error(`no signing key for hub ${hub} (unknown or revoked): command not sent`);
    const payload = JSON.stringify(signCommand(hub, parsed, key));
    if (this.link && this.connected) return this.link.publish(topics.cmd(hub), Buffer.from(payload), 1);
    const client = this.client;
    if (!client || !this.connected) throw new Error("MQTT session is not connected");
    await client.publishAsync(topics.cmd(hub), payload, { qos: 1 });
  }

  /** Resolves once acks waiting for a key are sent (or dropped), or after `ms`. */
  private async settleSigning(ms: number): Promise<void> {
    if (this.signing.size === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.allSettled([...this.signing]), new Promise<void>((r) => (timer = setTimeout(r, ms)))]);
    clearTimeout(timer);
  }

  /** Stops taking new events and state (first step of a graceful stop); acks can still be sent. */
  async pauseIntake(): Promise<void> {
    this.intake = false;
    if (this.link) return this.dropSubscriptions();
    const client = this.client;
    if (!client || !this.connected) return;
    // A courtesy to the broker (what arrives from now on is ignored anyway): its UNSUBACK can queue behind a
    // storm's worth of messages, and a stop must not wait for that.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([client.unsubscribeAsync(this.subscriptions).catch(() => {}), new Promise<void>((r) => (timer = setTimeout(r, UNSUBSCRIBE_WAIT_MS)))]);
    clearTimeout(timer);
  }

  /** Ends the session after outgoing messages (acks, also those still waiting for a key) are handed to the broker. */
  stop(): Promise<void> {
    return (this.stopping ??= this.end());
  }

  private async end(): Promise<void> {
    if (this._state === "stopped") return;
    await this.settleSigning(ACK_KEY_WAIT_MS);
    this._state = "stopped";
    this.intake = false;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.o.metrics.mqttConnected.set(0);
    if (this.link) return this.dropSubscriptions();
    const client = this.client;
    if (!client) return;
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => client.end(true, {}, () => resolve()), 2000);
      force.unref();
      client.end(false, {}, () => {
        clearTimeout(force);
        resolve();
      });
    });
  }

  private onConnect(client: MqttClient): void {
    if (this._state === "stopped") return;
    if (!this.intake) {
      this.setConnected();
      return;
    }
    client.subscribe(this.subscriptions, { qos: 1 }, (err, granted) => {
      if (this._state === "stopped") return;
      // Without both subscriptions the relay would sit connected and deaf; drop and retry.
      const refused = granted?.filter((g) => g.qos === 128).map((g) => g.topic) ?? [];
      if (err || refused.length) {
        this.lastError = err ? err.message : `subscription refused: ${refused.join(", ")}`;
        this.o.log.error({ err: this.lastError }, "relay MQTT subscribe failed");
        client.end(true);
        return;
      }
      this.setConnected();
    });
  }

  private setConnected(): void {
    const wasRetry = this.attempts > 0;
    this.attempts = 0;
    this._state = "connected";
    this.lastError = undefined;
    this.o.metrics.mqttConnected.set(1);
    this.o.log.info({ clientId: this.clientId, subscriptions: this.subscriptions, reconnected: wasRetry }, "relay MQTT session up");
    const waiters = this.connectedWaiters;
    this.connectedWaiters = [];
    for (const w of waiters) w();
  }

  private onClose(): void {
    if (this._state === "stopped") return;
    if (this._state === "connected") this.o.log.warn({ err: this.lastError }, "relay MQTT session lost; reconnecting");
    this._state = this._state === "connecting" && this.attempts === 0 ? "connecting" : "reconnecting";
    this.o.metrics.mqttConnected.set(0);
    if (this.retryTimer) return;
    const min = this.o.reconnectMinMs ?? 250;
    const max = this.o.reconnectMaxMs ?? 30_000;
    const delay = Math.min(max, min * 2 ** Math.min(this.attempts++, 16));
    // Jitter spreads the reconnects of several relay instances after a broker restart.
    const wait = Math.round(delay / 2 + Math.random() * (delay / 2));
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (this._state !== "stopped") this.client?.reconnect();
    }, wait);
  }

  private route(topic: string, payload: Buffer): void {
    if (!this.intake) return;
    const t = parseTopic(topic);
    if (!t || (t.kind !== "evt" && t.kind !== "state")) {
      this.o.metrics.eventsRejected.inc({ reason: "bad_topic" });
      this.badTopics.note("broker", { topic: topic.slice(0, 200) });
      return;
    }
    try {
      if (t.kind === "evt") this.o.onEvent(t.hub, payload);
      else this.o.onState(t.hub, payload);
    } catch (err) {
      // Ingest and supervision promise not to throw; if one does, the message is lost to this relay but
      // not to the hub (no ack goes out), so log loudly and carry on.
      this.o.log.error({ hub: t.hub, kind: t.kind, err: (err as Error).message }, "message handler threw");
    }
  }
}
