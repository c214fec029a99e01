// The relay's own MQTT broker (aedes, MQTT 3.1.1) for installations without an external one.
// Hubs log in with their id and the password they got at enrolment; each may use only its own topics.
// Persistence stays in memory: delivery rests on the application ack sent after the relay's commit
// (invariant 4), so a broker restart that loses queued messages loses nothing the hubs still hold.
import net from "node:net";
import tls from "node:tls";
import type { Duplex } from "node:stream";
import { Aedes, type AuthenticateError, type Client, type PublishPacket, type Subscription } from "aedes";
import type { Logger } from "pino";
import { topics, TOPIC_ROOT } from "../../../protocol/topics.js";
import type { Metrics } from "../metrics.js";
import { isHubId, parseTopic } from "../mqtt/topics.js";
import { plaintextListenerProblem } from "./plaintext.js";
import { PacketSizeGuard, pipePair } from "./streams.js";

/** Connections waiting to be accepted (Node's default is 511). */
const LISTEN_BACKLOG = 4096;
/**
 * Messages the broker hands to subscribers at once (aedes' default is 100). A publish waits in one FIFO queue
 * for a slot, and its client reads nothing more (not even a PINGREQ) until it is delivered. The relay frees
 * its slots a turn later, so with 100 only about 100 messages moved per turn: in a reconnect storm an alarm
 * queued behind tens of thousands of readings, and hubs behind that queue missed their keepalive and
 * reconnected. The relay's backlog bounds what it holds, so the broker need not.
 */
const DELIVERY_CONCURRENCY = 100_000;

// aedes' AuthErrorCode is a const enum in a .d.ts, which isolated-module compilers cannot inline.
const IDENTIFIER_REJECTED = 2;
const SERVER_UNAVAILABLE = 3;
const BAD_USERNAME_OR_PASSWORD = 4;
const NOT_AUTHORIZED = 5;

export interface EmbeddedBrokerOptions {
  host: string;
  port: number;
  /** PEM certificate chain and key; TLS when given. */
  tls?: { cert: Buffer | string; key: Buffer | string };
  /**
   * Without `tls`, a host other than loopback is refused unless this is true (`broker.allowPlaintext`); the
   * broker then warns at start that everything crosses the network in clear.
   */
  allowPlaintext?: boolean;
  /** Checks a hub's login; resolves the hub id or null (Registry.verifyCredentials). */
  verifyCredentials(username: string, password: string): Promise<string | null>;
  metrics: Pick<Metrics, "authFailures" | "brokerClients">;
  log: Logger;
  /** Largest MQTT packet accepted (bytes after the fixed header); a larger one drops the connection. */
  maxPacketBytes: number;
  /** Messages handed to subscribers at once (DELIVERY_CONCURRENCY); tests lower it to build a queue cheaply. */
  deliveryConcurrency?: number;
}

/**
 * The relay's own subscriber and publisher inside the embedded broker: messages are handed over as
 * objects, with no MQTT encoding, no stream and no per-message PUBACK in between. This is what the
 * relay's session uses with the embedded broker; over a socket the same work costs about twice the CPU.
 */
export interface InProcessLink {
  /** Delivers every message matching `filter` (MQTT wildcards allowed); resolves to an unsubscribe. */
  subscribe(filter: string, onMessage: (topic: string, payload: Buffer) => void): Promise<() => Promise<void>>;
  publish(topic: string, payload: Buffer, qos: 0 | 1): Promise<void>;
}

type Identity = { kind: "relay" } | { kind: "hub"; hub: string; kicked: boolean };
type AuthFailure = "login" | "publish" | "subscribe" | "will" | "client_id" | "packet_size";

/** Client ids the relay's own sessions use; a hub may not take one (it would knock the relay off). */
const RELAY_CLIENT_PREFIX = "anxin-relay-";
const WARNINGS_PER_MINUTE = 20;

export class EmbeddedBroker {
  private readonly identities = new WeakMap<Client, Identity>();
  private readonly wills = new WeakMap<Client, PublishPacket | undefined>();
  /** In-process connections: trusted as the relay, no credential exists that could leak. */
  private readonly internal = new WeakSet<Duplex>();
  private readonly hubClients = new Map<string, Set<Client>>();
  private hubClientCount = 0;
  private warnWindow = { start: 0, count: 0, suppressed: 0 };
  private listening = true;
  private closing: Promise<void> | undefined;
  /** Completions deferred to a later turn (see later()). */
  private deferred: Array<() => void> = [];

  private constructor(
    private readonly opts: EmbeddedBrokerOptions,
    private readonly aedes: Aedes,
    private readonly server: net.Server,
    readonly address: { host: string; port: number },
  ) {}

  static async start(opts: EmbeddedBrokerOptions): Promise<EmbeddedBroker> {
    // The configuration check refuses this first; here too, for whoever starts a broker some other way.
    const plaintext = plaintextListenerProblem(opts.host, Boolean(opts.tls), false);
    if (plaintext && !opts.allowPlaintext) throw new Error(`refusing to start: ${plaintext}`);
    const aedes = await Aedes.createBroker({ id: "anxin-relay", concurrency: opts.deliveryConcurrency ?? DELIVERY_CONCURRENCY });
    const onConnection = (socket: net.Socket) => {
      socket.setNoDelay(true);
      // Finds half-open connections of hubs that lost power without the MQTT keepalive's help (keepalive 0).
      socket.setKeepAlive(true, 60_000);
      const guard = new PacketSizeGuard(socket, opts.maxPacketBytes, (announced) => broker.refused("packet_size", { remote: socket.remoteAddress, announced }));
      guard.on("error", () => {}); // aedes reports connection errors itself
      aedes.handle(guard);
    };
    const server = opts.tls ? tls.createServer({ cert: opts.tls.cert, key: opts.tls.key }, onConnection) : net.createServer(onConnection);
    // TLS handshake failures (scanners, wrong CA) are routine on a public port.
    server.on("tlsClientError", (err: Error) => opts.log.debug({ err: err.message }, "TLS handshake failed"));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      // A deep accept queue: thousands of hubs reconnect at once after an outage, and an attempt the kernel
      // drops waits out TCP's retry delays (1, 2, 4 … s) before it tries again. Capped by net.core.somaxconn.
      server.listen({ port: opts.port, host: opts.host, backlog: LISTEN_BACKLOG }, () => {
        server.off("error", reject);
        resolve();
      });
    });
    server.on("error", (err: Error) => opts.log.error({ err: err.message }, "broker listener error"));
    const addr = server.address() as net.AddressInfo;
    const broker = new EmbeddedBroker(opts, aedes, server, { host: addr.address, port: addr.port });
    broker.wire();
    opts.log.info({ host: addr.address, port: addr.port, tls: Boolean(opts.tls) }, "embedded MQTT broker listening");
    if (plaintext)
      opts.log.warn(
        { host: addr.address, port: addr.port },
        "embedded MQTT broker listening WITHOUT TLS on an address other than loopback (broker.allowPlaintext: true): hub passwords, events, acks and commands cross the network in clear",
      );
    return broker;
  }

  /** `mqtt://host:port` (or mqtts) of the listener, for local clients and tests. */
  get url(): string {
    const host = this.address.host === "0.0.0.0" || this.address.host === "::" ? "127.0.0.1" : this.address.host;
    return `${this.opts.tls ? "mqtts" : "mqtt"}://${host.includes(":") ? `[${host}]` : host}:${this.address.port}`;
  }

  /** Hubs with at least one connected client. */
  connectedHubs(): string[] {
    return [...this.hubClients.keys()];
  }

  /** Connected hub clients (not counting the relay's own session). */
  get clientCount(): number {
    return this.hubClientCount;
  }

  /**
   * An in-process connection for the relay's own MQTT session (give it to mqtt.js as its stream).
   * It is trusted without a password and keeps working after stopAccepting().
   */
  connectInternal(): Duplex {
    const [mine, theirs] = pipePair();
    this.internal.add(theirs);
    this.aedes.handle(theirs);
    return mine;
  }

  /** The relay's session inside the broker (see InProcessLink); it keeps working after stopAccepting(). */
  inProcess(): InProcessLink {
    const a = this.aedes;
    return {
      subscribe: (filter, onMessage) =>
        new Promise((resolve) => {
          const deliver = (packet: { topic: string; payload: Buffer | string }, done: () => void) => {
            // The broker lets DELIVERY_CONCURRENCY deliveries be in flight and queues the rest; when a slot
            // frees it takes the next queued message on the same stack. Releasing ours synchronously nested one
            // stack level per queued message, and a backlog of thousands (hubs' acks holding every slot while
            // the relay is busy; aedes' default of 100 slots then) overflowed the stack and ended the relay. On
            // a later turn, as aedes does for its own connections, a backlog drains a slot's worth a turn,
            // still in order. Scheduled first, so a throwing onMessage cannot keep the slot.
            this.later(done);
            onMessage(packet.topic, typeof packet.payload === "string" ? Buffer.from(packet.payload) : packet.payload);
          };
          a.subscribe(filter, deliver, () => resolve(() => new Promise<void>((r) => a.unsubscribe(filter, deliver, () => r()))));
        }),
      publish: (topic, payload, qos) =>
        new Promise((resolve, reject) =>
          a.publish({ cmd: "publish", topic, payload, qos, retain: false, dup: false }, (err) => (err ? reject(err) : resolve())),
        ),
    };
  }

  /**
   * Closes every connection of this hub (on revocation). Its will is not published: the relay itself
   * ended the session, so "offline" would be a false incident. Returns how many were closed.
   */
  disconnect(hub: string): number {
    const set = this.hubClients.get(hub);
    if (!set) return 0;
    // Copied: closing a client removes it from the set.
    const clients = [...set];
    for (const c of clients) {
      const id = this.identities.get(c);
      if (id?.kind === "hub") id.kicked = true;
      c.close();
    }
    this.opts.log.info({ hub, connections: clients.length }, "hub disconnected by the relay");
    return clients.length;
  }

  /** Stops accepting new connections; connected hubs stay (so acks for what is in flight still reach them). */
  async stopAccepting(): Promise<void> {
    if (!this.listening) return;
    this.listening = false;
    // server.close only calls back once every connection is gone; do not wait for that here.
    this.server.close();
  }

  /** Disconnects everyone and releases the port. */
  close(): Promise<void> {
    return (this.closing ??= (async () => {
      const serverClosed = new Promise<void>((r) => (this.server.listening ? this.server.close(() => r()) : r()));
      this.listening = false;
      await new Promise<void>((r) => this.aedes.close(() => r()));
      await serverClosed;
      this.opts.metrics.brokerClients.set(0);
    })());
  }

  /**
   * Runs `done` on a later turn of the event loop, with every other completion deferred in this turn: one
   * setImmediate for all of them instead of one each (two a message: the relay's delivery and the catch-all),
   * which was a visible share of the relay's CPU per event. Order is kept; a completion deferred while these
   * run (the broker handing over the next queued message) waits for the next turn, as before.
   */
  private later(done: () => void): void {
    if (this.deferred.push(done) === 1) setImmediate(this.runDeferred);
  }

  private readonly runDeferred = (): void => {
    const list = this.deferred;
    this.deferred = [];
    for (let i = 0; i < list.length; i++) {
      try {
        (list[i] as () => void)();
      } catch (err) {
        // As an uncaught error in its own setImmediate would, but the rest still run (next turn).
        for (let j = i + 1; j < list.length; j++) this.later(list[j] as () => void);
        throw err;
      }
    }
  };

  private wire(): void {
    const a = this.aedes;
    // The same stack overflow as in inProcess(), from messages whose deliveries all complete synchronously:
    // those no one subscribes to (acks and commands for a hub that has just dropped off) and aedes' own
    // notices of connects and disconnects. A run of thousands of them in the queue (a mass disconnect during
    // a backlog) would nest as deeply. A listener on every topic that completes on a later turn gives each
    // message an asynchronous delivery; it costs one deferred call a message.
    a.subscribe("#", (_packet, done) => this.later(done), () => {});
    a.preConnect = (client, packet, cb) => {
      this.wills.set(client, packet.will as PublishPacket | undefined);
      cb(null, true);
    };
    a.authenticate = (client, username, password, done) => this.authenticate(client, username, password, done);
    a.authorizePublish = (client, packet, cb) => this.authorizePublish(client, packet, cb);
    a.authorizeSubscribe = (client, sub, cb) => this.authorizeSubscribe(client, sub, cb);

    a.on("client", (client) => {
      const id = this.identities.get(client);
      if (id?.kind !== "hub") return;
      let set = this.hubClients.get(id.hub);
      if (!set) this.hubClients.set(id.hub, (set = new Set()));
      set.add(client);
      this.hubClientCount++;
      this.opts.metrics.brokerClients.set(this.hubClientCount);
      this.opts.log.debug({ hub: id.hub, clientId: client.id }, "hub connected");
    });
    a.on("clientDisconnect", (client) => {
      const id = this.identities.get(client);
      if (id?.kind !== "hub") return;
      const set = this.hubClients.get(id.hub);
      if (set?.delete(client)) {
        this.hubClientCount--;
        if (set.size === 0) this.hubClients.delete(id.hub);
      }
      this.opts.metrics.brokerClients.set(this.hubClientCount);
      this.opts.log.debug({ hub: id.hub, clientId: client.id }, "hub disconnected");
    });
    a.on("clientError", (client, err) => this.opts.log.debug({ clientId: client.id, err: err.message }, "broker client error"));
    a.on("connectionError", (_client, err) => this.opts.log.debug({ err: err.message }, "broker connection error"));
  }

  private authenticate(
    client: Client,
    username: string | undefined,
    password: Buffer | undefined,
    done: (error: AuthenticateError | null, success: boolean | null) => void,
  ): void {
    if (this.internal.has(client.conn)) {
      this.identities.set(client, { kind: "relay" });
      return done(null, true);
    }
    const remote = (client.conn as { remoteAddress?: string }).remoteAddress;
    const refuse = (what: AuthFailure, code: number, why: string) => {
      this.refused(what, { user: username, clientId: client.id, remote, why });
      done(Object.assign<Error, { returnCode: number }>(new Error(why), { returnCode: code }), false);
    };
    if (!username || !password || !isHubId(username)) return refuse("login", BAD_USERNAME_OR_PASSWORD, "bad username or password");
    const will = this.wills.get(client);
    this.wills.delete(client);
    if (will && will.topic !== topics.state(username)) return refuse("will", NOT_AUTHORIZED, `will topic ${will.topic} is not the hub's state topic`);
    // A client id opens (and takes over) a session, so each hub gets its own: its id, or `{id}:{suffix}`
    // (':' cannot occur in a hub id). Otherwise one hub could knock another off, or squat on its id.
    if (!(client.id === username || client.id.startsWith(`${username}:`)) || client.id.startsWith(RELAY_CLIENT_PREFIX))
      return refuse("client_id", IDENTIFIER_REJECTED, `client id must be the hub id or start with '${username}:'`);

    this.opts.verifyCredentials(username, password.toString("utf8")).then(
      (hub) => {
        if (hub !== username) return refuse("login", BAD_USERNAME_OR_PASSWORD, "bad username or password");
        this.identities.set(client, { kind: "hub", hub, kicked: false });
        done(null, true);
      },
      (err: Error) => {
        this.opts.log.error({ err: err.message, hub: username }, "credential check failed");
        done(Object.assign<Error, { returnCode: number }>(new Error("server unavailable"), { returnCode: SERVER_UNAVAILABLE }), false);
      },
    );
  }

  private authorizePublish(client: Client | null, packet: PublishPacket, cb: (error?: Error | null) => void): void {
    const t = parseTopic(packet.topic);
    // A will left over from a client that is already gone: only a state message is plausible.
    if (!client) {
      if (t?.kind === "state") packet.retain = false;
      return cb(t?.kind === "state" ? null : new Error("not authorised"));
    }
    const id = this.identities.get(client);
    if (id?.kind === "relay") return cb(packet.topic.startsWith(`${TOPIC_ROOT}/`) ? null : new Error("not authorised"));
    if (id?.kind !== "hub" || id.kicked) return cb(new Error("not authorised"));
    const ok = t !== null && t.hub === id.hub && ((t.kind === "evt" && !packet.retain) || t.kind === "state");
    if (ok) {
      // Births and wills are retained on the wire (an external broker hands them to a relay that subscribes
      // later). Here the relay lives in this process and hears them as they come; retaining them would only
      // make every later SUBSCRIBE scan all of them (aedes' memory store), so connecting N hubs cost N².
      if (t.kind === "state") packet.retain = false;
      return cb(null);
    }
    this.refused("publish", { hub: id.hub, topic: packet.topic, retain: packet.retain });
    // MQTT 3.1.1 has no negative PUBACK: aedes closes the connection, which a misbehaving client notices.
    cb(new Error("not authorised"));
  }

  private authorizeSubscribe(client: Client, sub: Subscription, cb: (error: Error | null, subscription?: Subscription | null) => void): void {
    const id = this.identities.get(client);
    if (id?.kind === "relay") return cb(null, sub.topic.startsWith(`${TOPIC_ROOT}/`) ? sub : null);
    if (id?.kind === "hub" && (sub.topic === topics.ack(id.hub) || sub.topic === topics.cmd(id.hub))) return cb(null, sub);
    this.refused("subscribe", { hub: id?.kind === "hub" ? id.hub : undefined, topic: sub.topic });
    // null (not an error) answers SUBACK 0x80 for this topic and keeps the connection.
    cb(null, null);
  }

  /** Counts a refusal and logs it, at most WARNINGS_PER_MINUTE lines a minute (a login flood must not flood the journal). */
  private refused(what: AuthFailure, detail: Record<string, unknown>): void {
    this.opts.metrics.authFailures.inc({ what });
    const now = Date.now();
    const w = this.warnWindow;
    if (now - w.start > 60_000) {
      if (w.suppressed) this.opts.log.warn({ suppressed: w.suppressed }, "more broker refusals were not logged");
      this.warnWindow = { start: now, count: 0, suppressed: 0 };
    }
    if (this.warnWindow.count++ < WARNINGS_PER_MINUTE) this.opts.log.warn({ what, ...detail }, "broker refused");
    else this.warnWindow.suppressed++;
  }
}

export { RELAY_CLIENT_PREFIX };
