// The hub's MQTT session with the relay: birth and will on the state topic, events out through the
// sender's window, acks and commands in (each signed by the relay with this hub's key, and refused
// otherwise), a journaled heartbeat, and the relay's clock as reported in verified acks.
// Reconnection is ours (mqtt.js reconnectPeriod 0): a fresh client per attempt, exponential backoff with
// jitter, so no stale outgoing queue from an old session is replayed behind the sender's back.
import { connect, type IClientOptions, type MqttClient } from "mqtt";
import type { Logger } from "pino";
import type { EventDraft } from "../../../protocol/envelope.js";
import { ackSchema, signState, verifyAck, type HubState } from "../../../protocol/messages.js";
import { topics } from "../../../protocol/topics.js";
import { reconnectDelay } from "./backoff.js";
import { Commands, type SirenTestResult } from "./commands.js";
import type { RetireResult } from "../retire/retire-device.js";
import type { AnnounceRequest, AnnounceResult } from "../voice/triggers.js";
import { Refusals } from "./refusals.js";
import { Sender, type OutboxJournal } from "./sender.js";
import { displayUrl, type UplinkSettings } from "./settings.js";
import { connectBound } from "./bound-connect.js";

export type UplinkState = "connecting" | "connected" | "disconnected" | "not configured" | "failed";

export interface UplinkStatus {
  state: UplinkState;
  /** Broker URL without credentials. */
  url?: string;
  inFlight: number;
  lastAckAt: number | null;
  lastConnectAt: number | null;
  /** Sessions re-established after a lost one. */
  reconnects: number;
  /** The relay's clock minus the hub's, from the latest ack; positive means the hub is behind. */
  clockOffsetMs: number | null;
  sent: number;
  acked: number;
  resent: number;
  /** How long a routine event's first send now waits for its ack: the configured ackTimeoutMs, longer while the relay's acks come slower (ack-timeout.ts). Absent without an uplink. */
  ackWaitMs?: number;
  /**
   * Acks ignored because they were not signed by the relay with this hub's key (unsigned, badly signed,
   * signed for another hub): nothing was deleted for them. Not zero means someone on the path forges acks,
   * or the relay predates signed acks.
   */
  acksRefused: number;
  /** Commands refused: unsigned, badly signed, or older than the wire contract allows. */
  commandsRefused: number;
  /** Since when events sent on this session have waited for an ack with none arriving (path supervision). */
  unansweredSince?: number | null;
  /** The local address the session is bound to (the cellular data session); absent: the default route. */
  boundTo?: string | null;
  /** Why the last attempt or session ended, or why the uplink could not start. */
  error?: string;
}

/** What the hub says last on a clean stop (see Uplink.stop). */
export interface Goodbye {
  /** Short token for the relay's records; default `stopping`. */
  reason?: string;
  /** When the hub expects to be back; default DEFAULT_EXPECT_BACK_S. */
  expectBackWithinS?: number;
}

export interface UplinkHandle {
  start(): void;
  /** A clean stop: a signed planned stop on the state topic, then a clean disconnect (no will). */
  stop(goodbye?: Goodbye): Promise<void>;
  /** Call after each journal append: a new event goes out now rather than at the next poll. */
  nudge(): void;
  status(): UplinkStatus;
  /**
   * Binds the next sessions to a local address (the cellular module's data session), or back to the default
   * route (null). A change drops the current session so the next one takes the new path at once.
   */
  bindTo?(address: string | null): void;
  /** The hub's signing key, for the SMS form of an alarm (protocol/sms-compact.ts); absent when the uplink failed. */
  readonly signingKey?: Buffer;
}

export interface UplinkJournal extends OutboxJournal {
  stats(): Promise<{ rows: number }>;
}

export interface UplinkOptions {
  hub: string;
  boot: number;
  version: string;
  settings: UplinkSettings;
  journal: UplinkJournal;
  /** The daemon's normal journal path (which nudges), for heartbeats and command audits. */
  append: (draft: EventDraft) => Promise<unknown>;
  sirenTest?: (seconds: number) => SirenTestResult;
  retire?: (device: string, reason: string, command: string) => Promise<RetireResult>;
  announce?: (a: AnnounceRequest) => AnnounceResult;
  log: Logger;
  clock?: () => number;
  /** For the heartbeat's uptime; default: now. */
  startedAt?: number;
  /** Journal poll period while connected; default 50 ms. */
  pollMs?: number;
  maxResendMs?: number;
  random?: () => number;
  /** What a planned stop says about coming back, unless stop() is told; default DEFAULT_EXPECT_BACK_S. */
  expectBackWithinS?: number;
}

const KEEPALIVE_S = 30;
/**
 * How long a connection attempt waits for the broker's CONNACK before it is dropped and tried again. Long: a
 * broker that took the connection and has not answered is most likely busy (thousands of hubs back at once
 * after an outage), and a hub that gives up goes to the back of the queue while the relay's work on its login
 * is lost; 10 s made a reconnect storm a third slower (docs/benchmarks.md). Alarms do not wait for this: the
 * second path counts the time without a session from its loss, whatever the attempt is doing.
 */
export const CONNECT_TIMEOUT_MS = 60_000;
/** A session shorter than this does not reset the reconnect backoff (a broker that accepts then drops us). */
const STABLE_SESSION_MS = 5_000;
const CLOCK_WARN_MS = 5 * 60_000;
/** How long a stop waits for the broker's PUBACK of the planned stop: a stop must never hang on the network. */
export const GOODBYE_PUBACK_MS = 2_000;
/** How long a stop waits for the clean disconnect before dropping the socket. */
const DISCONNECT_MS = 1_000;
/** What a planned stop says about coming back when the caller does not: a restart or an update. */
export const DEFAULT_EXPECT_BACK_S = 300;
/** The wire contract's bounds for a planned stop's fields (protocol/messages.ts). */
const MAX_EXPECT_BACK_S = 7 * 86400;
const REASON = /^[a-z][a-z0-9_]{0,31}$/;

export class Uplink implements UplinkHandle {
  private readonly log: Logger;
  private readonly clock: () => number;
  private readonly sender: Sender;
  private readonly commands: Commands;
  private readonly t: { evt: string; ack: string; state: string; cmd: string };
  private readonly url: string;
  private client: MqttClient | null = null;
  private state: UplinkState = "disconnected";
  private started = false;
  private stopping = false;
  private failures = 0;
  private sessions = 0;
  private sessionUpAt = 0;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private heartbeat: NodeJS.Timeout | null = null;
  private lastError: string | undefined;
  private lastAckAt: number | null = null;
  private lastConnectAt: number | null = null;
  private clockOffsetMs: number | null = null;
  /** The latest relay clock learned: an ack saying an earlier time (a replay) does not move the offset back. */
  private relayClockSeen: number | null = null;
  private clockWarned = false;
  private readonly startedAt: number;
  private readonly ackRefusals: Refusals;
  private localAddress: string | null = null;

  constructor(private readonly o: UplinkOptions) {
    this.log = o.log;
    this.clock = o.clock ?? Date.now;
    this.startedAt = o.startedAt ?? this.clock();
    this.url = displayUrl(o.settings.url);
    this.t = { evt: topics.evt(o.hub), ack: topics.ack(o.hub), state: topics.state(o.hub), cmd: topics.cmd(o.hub) };
    this.sender = new Sender({
      journal: o.journal,
      key: o.settings.key,
      window: o.settings.window,
      ackTimeoutMs: o.settings.ackTimeoutMs,
      historicalAfterMs: o.settings.historicalAfterMs,
      maxResendMs: o.maxResendMs,
      pollMs: o.pollMs,
      clock: this.clock,
      log: o.log,
    });
    this.ackRefusals = new Refusals(o.log, "uplink: ack refused (malformed, or not signed by the relay with this hub's key); nothing deleted", this.clock);
    this.commands = new Commands({
      hub: o.hub,
      key: o.settings.key,
      // The relay's clock as this hub knows it: only verified acks move the offset.
      relayNow: () => this.clock() + (this.clockOffsetMs ?? 0),
      clock: this.clock,
      append: o.append,
      sirenTest: o.sirenTest,
      retire: o.retire,
      announce: o.announce,
      log: o.log,
    });
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    // Journaled like any event, so the relay supervises the whole path (journal → uplink → relay), not just the socket.
    this.heartbeat = setInterval(() => void this.beat(), this.o.settings.heartbeatS * 1000);
    this.heartbeat.unref();
    this.connect();
  }

  nudge(): void {
    this.sender.nudge();
  }

  get signingKey(): Buffer {
    return this.o.settings.key;
  }

  bindTo(address: string | null): void {
    if (address === this.localAddress || this.stopping) return;
    this.log.warn({ from: this.localAddress ?? "default route", to: address ?? "default route" }, "uplink: changing path");
    this.localAddress = address;
    this.failures = 0;
    const client = this.client;
    if (client) client.stream?.destroy();
    else if (this.reconnectTimer) {
      clearTimeout(this.reconnectTimer);
      this.connect();
    }
  }

  status(): UplinkStatus {
    const s = this.sender.snapshot();
    return {
      state: this.state,
      url: this.url,
      inFlight: s.inFlight,
      lastAckAt: this.lastAckAt,
      lastConnectAt: this.lastConnectAt,
      reconnects: Math.max(0, this.sessions - 1),
      clockOffsetMs: this.clockOffsetMs,
      sent: s.sent,
      acked: s.acked,
      resent: s.resent,
      ackWaitMs: s.ackWaitMs,
      acksRefused: this.ackRefusals.count,
      commandsRefused: this.commands.refused,
      unansweredSince: s.unansweredSince,
      boundTo: this.localAddress,
      ...(this.lastError && this.state !== "connected" ? { error: this.lastError } : {}),
    };
  }

  /**
   * A clean stop. While still connected, says last on the state topic that this is a planned stop, signed
   * with the hub's key so the relay can tell it from a forgery (invariant 11): the relay then waits a grace
   * period for the hub's return before opening a hub_offline incident. It waits at most GOODBYE_PUBACK_MS for
   * the broker's PUBACK, then disconnects cleanly, which suppresses the will (at most DISCONNECT_MS more).
   * Without a session nothing is said: the will has already spoken, and the relay treats the hub as lost.
   */
  async stop(goodbye: Goodbye = {}): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    await this.sender.stop();
    const client = this.client;
    this.client = null;
    this.state = "disconnected";
    if (!client) return;
    if (client.connected) {
      const planned = this.plannedStop(goodbye);
      const acked = await withTimeout(
        new Promise<boolean>((resolve) => client.publish(this.t.state, JSON.stringify(planned), { qos: 1, retain: true }, (err) => resolve(!err))),
        GOODBYE_PUBACK_MS,
        false,
      );
      // Only a planned stop the broker took is followed by a clean disconnect. Otherwise the line is dropped
      // and the will speaks for the hub: the relay, if the planned stop reached it after all, takes a will of
      // the same boot as its tail; if not, the hub is lost, which is all anyone can know.
      let clean = false;
      if (acked) clean = await withTimeout(new Promise<boolean>((resolve) => client.end(false, {}, () => resolve(true))), DISCONNECT_MS, false);
      else this.log.warn({ url: this.url, waitedMs: GOODBYE_PUBACK_MS }, "uplink: the planned stop was not confirmed by the broker; dropping the connection (the will goes out)");
      // end(true) does nothing once an end(false) is under way, so a disconnect that stalled is cut here.
      if (!clean) client.stream?.destroy();
    }
    client.end(true);
  }

  private plannedStop(goodbye: Goodbye): HubState {
    // Kept within the wire contract: the relay refuses a whole state message with a field out of bounds.
    const reason = goodbye.reason !== undefined && REASON.test(goodbye.reason) ? goodbye.reason : "stopping";
    const back = Math.round(goodbye.expectBackWithinS ?? this.o.expectBackWithinS ?? DEFAULT_EXPECT_BACK_S);
    const state: HubState = {
      online: false,
      boot: this.o.boot,
      ts: this.clock(),
      planned: true,
      reason,
      expectBackWithinS: Number.isFinite(back) ? Math.min(MAX_EXPECT_BACK_S, Math.max(0, back)) : DEFAULT_EXPECT_BACK_S,
    };
    return signState(state, this.o.settings.key);
  }

  // --- session -------------------------------------------------------------------------------------

  private connect(): void {
    if (this.stopping) return;
    this.reconnectTimer = null;
    this.state = "connecting";
    const s = this.o.settings;
    // The will carries the attempt's time, so the relay can tell a stale will from a newer birth.
    const will: HubState = { online: false, boot: this.o.boot, ts: this.clock() };
    const opts: IClientOptions = {
      clientId: this.o.hub,
      clean: true,
      keepalive: KEEPALIVE_S,
      reconnectPeriod: 0,
      connectTimeout: CONNECT_TIMEOUT_MS,
      resubscribe: false,
      will: { topic: this.t.state, payload: Buffer.from(JSON.stringify(will)), qos: 1, retain: true },
      ...(s.username !== undefined ? { username: s.username } : {}),
      ...(s.password !== undefined ? { password: s.password } : {}),
      ...(s.tls?.ca ? { ca: s.tls.ca } : {}),
      ...(s.tls?.cert ? { cert: s.tls.cert } : {}),
      ...(s.tls?.key ? { key: s.tls.key } : {}),
    };
    let client: MqttClient;
    try {
      client = this.localAddress === null ? connect(s.url, opts) : connectBound(s.url, this.localAddress, opts);
    } catch (err) {
      this.lastError = (err as Error).message;
      this.log.error({ url: this.url, err: this.lastError }, "uplink: cannot create the MQTT client");
      this.scheduleReconnect();
      return;
    }
    this.client = client;
    // Small QoS 1 packets both ways: Nagle's algorithm against the peer's delayed ACK stalls each round trip ~40 ms.
    (client.stream as { setNoDelay?: (on: boolean) => void } | undefined)?.setNoDelay?.(true);
    let closed = false;
    client.on("connect", () => this.onConnect(client));
    client.on("message", (topic, payload, packet) => this.onMessage(topic, payload, packet.retain));
    client.on("error", (err) => {
      this.lastError = err.message;
    });
    client.on("close", () => {
      if (closed) return;
      closed = true;
      this.onClose(client);
    });
  }

  private onConnect(client: MqttClient): void {
    if (client !== this.client) return;
    const birth: HubState = {
      online: true,
      boot: this.o.boot,
      version: this.o.version,
      heartbeatS: Math.max(1, Math.round(this.o.settings.heartbeatS)),
      ts: this.clock(),
    };
    // Events go only once acks can reach us: an ack sent before the subscription would be lost. The birth waits
    // too: the relay sends pending commands (a device to retire) when it hears the birth.
    client.subscribe({ [this.t.ack]: { qos: 1 }, [this.t.cmd]: { qos: 1 } }, (err, granted) => {
      if (client !== this.client) return;
      const refused = granted?.filter((g) => g.qos === 128).map((g) => g.topic) ?? [];
      if (err || refused.length) {
        this.lastError = err ? `subscribe failed: ${err.message}` : `broker refused the subscription to ${refused.join(", ")}`;
        this.log.error({ url: this.url, err: this.lastError }, "uplink: cannot receive acks; dropping the session");
        client.end(true);
        return;
      }
      client.publish(this.t.state, JSON.stringify(birth), { qos: 1, retain: true });
      this.state = "connected";
      this.sessions++;
      this.sessionUpAt = this.clock();
      this.lastConnectAt = this.sessionUpAt;
      this.lastError = undefined;
      this.log.info({ url: this.url, reconnects: Math.max(0, this.sessions - 1) }, "uplink: connected");
      this.sender.online({ publish: (_env, payload) => client.publish(this.t.evt, payload, { qos: 1 }) });
    });
  }

  private onClose(client: MqttClient): void {
    client.removeAllListeners("connect");
    client.end(true);
    if (client !== this.client) return;
    this.client = null;
    const wasUp = this.state === "connected";
    this.state = "disconnected";
    void this.sender.offline();
    if (this.stopping) return;
    if (wasUp) {
      if (this.clock() - this.sessionUpAt >= STABLE_SESSION_MS) this.failures = 0;
      this.log.warn({ url: this.url, err: this.lastError }, "uplink: connection lost");
    } else if (this.failures === 0) {
      this.log.warn({ url: this.url, err: this.lastError }, "uplink: cannot connect");
    } else {
      this.log.debug({ url: this.url, err: this.lastError, failures: this.failures }, "uplink: cannot connect");
    }
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    const s = this.o.settings;
    const delay = reconnectDelay(this.failures, s.reconnectMinMs, s.reconnectMaxMs, this.o.random);
    this.failures++;
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
    this.reconnectTimer.unref();
  }

  private onMessage(topic: string, payload: Buffer, retained: boolean): void {
    if (topic === this.t.ack) this.onAck(payload);
    else if (topic === this.t.cmd) this.commands.handle(payload, retained);
  }

  private onAck(payload: Buffer): void {
    let raw: unknown;
    try {
      raw = JSON.parse(payload.toString("utf8"));
    } catch {
      this.ackRefusals.note("not_json", { bytes: payload.length });
      return;
    }
    const parsed = ackSchema.safeParse(raw);
    if (!parsed.success) {
      this.ackRefusals.note("malformed", { problem: parsed.error.issues[0]?.message });
      return;
    }
    // Before anything is deleted or learned: an ack counts only when the relay signed it for this hub with
    // this hub's key. Whoever can publish on the ack topic (anyone on a plaintext path) cannot otherwise
    // make the hub forget events the relay never committed.
    if (!verifyAck(this.o.hub, raw as Record<string, unknown>, this.o.settings.key)) {
      this.ackRefusals.note(parsed.data.sig === undefined ? "unsigned" : "bad_signature", { ids: parsed.data.ids.length });
      return;
    }
    const now = this.clock();
    this.lastAckAt = now;
    // The offset also dates commands (commands.ts), so it is learned only from an ack that answers what is
    // in flight now and does not go back in time: a recorded genuine ack played again later cannot wind the
    // hub's idea of the relay's clock back to when a recorded command would pass as fresh.
    const relayNow = parsed.data.now;
    if (this.sender.inFlightOf(parsed.data.ids) > 0 && (this.relayClockSeen === null || relayNow >= this.relayClockSeen)) {
      this.relayClockSeen = relayNow;
      this.noteRelayClock(relayNow, now);
    }
    void this.sender.acked(parsed.data.ids);
  }

  /** The hub may have no real-time clock: learn the offset, report it, but never rewrite event times. */
  private noteRelayClock(relayNow: number, now: number): void {
    const offset = relayNow - now;
    this.clockOffsetMs = offset;
    const far = Math.abs(offset) > CLOCK_WARN_MS;
    if (far && !this.clockWarned) {
      this.log.warn({ clockOffsetMs: offset }, "uplink: this hub's clock is more than 5 minutes from the relay's (no time server yet?); event times stay as measured");
    }
    this.clockWarned = far;
  }

  private async beat(): Promise<void> {
    let journalRows: number | null = null;
    try {
      journalRows = (await this.o.journal.stats()).rows;
    } catch {
      // still beat: the heartbeat is what says the hub is alive
    }
    const draft: EventDraft = {
      kind: "heartbeat",
      type: "heartbeat",
      severity: "info",
      data: { uptimeS: Math.round((this.clock() - this.startedAt) / 1000), journalRows },
    };
    await this.o.append(draft).catch((err: Error) => this.log.error({ err: err.message }, "uplink: heartbeat not journaled"));
  }
}

/** `p`'s value, or `fallback` once `ms` have passed. */
function withTimeout<T>(p: Promise<T>, ms: number, fallback: T): Promise<T> {
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(fallback), ms);
    void p.then((v) => {
      clearTimeout(t);
      resolve(v);
    });
  });
}
