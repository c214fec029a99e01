// Files for running the relay behind Mosquitto (2.0): a configuration with two listeners and the ACLs that
// go with them. Hubs get a listener where the broker replaces each client id with the login
// (`use_username_as_clientid`), so one hub's valid login can never present another hub's client id and
// take its session over. The relay cannot use that listener: its instances share one login, and forcing
// their client ids to it would make them take each other's sessions over. So the relay has a listener of
// its own with its own password file, which no hub login opens.
import { RELAY_USERNAME } from "../mqtt/topics.js";

/** File names inside the broker-config directory. */
export const MOSQUITTO_FILES = {
  conf: "anxin.conf",
  hubAcl: "acl",
  hubPasswords: "passwords",
  relayAcl: "relay-acl",
  relayPasswords: "relay-passwords",
} as const;

/** Default connection limits: hubs hold one connection each; each relay instance one. */
export const DEFAULT_HUB_CONNECTIONS = 10_000;
export const DEFAULT_RELAY_CONNECTIONS = 32;

/** ACL of the hubs' listener. `%u` is the MQTT username, which for a hub is its id (and its client id). */
export function mosquittoHubAcl(): string {
  return `# Anxin: written by \`anxin-relay broker-config\`. Each hub (username = hub id) may publish only its
# own events and state and read only its own acks and commands.
pattern write anxin/v1/%u/evt
pattern write anxin/v1/%u/state
pattern read anxin/v1/%u/ack
pattern read anxin/v1/%u/cmd
`;
}

/** ACL of the relay's listener: the relay reads every hub's events and state, sends acks and commands. */
export function mosquittoRelayAcl(relayUser = RELAY_USERNAME): string {
  return `# Anxin: written by \`anxin-relay broker-config\`. The relay's listener only.
user ${relayUser}
topic readwrite anxin/v1/#
`;
}

export interface MosquittoListener {
  port: number;
  /** Address (or host name) to bind; undefined: every interface. */
  bind?: string;
  /** Emit certfile/keyfile lines (paths to adjust). */
  tls: boolean;
  maxConnections: number;
}

export interface MosquittoConfOptions {
  /** Where the acl and password files will live on the broker host. */
  dir: string;
  /** Largest event payload the relay accepts (ingest.maxPayloadBytes). */
  maxPayloadBytes: number;
  hubs: MosquittoListener;
  relay: MosquittoListener;
}

function listenerLine(l: MosquittoListener): string {
  return `listener ${l.port}${l.bind ? ` ${l.bind}` : ""}`;
}

function tlsLines(l: MosquittoListener): string {
  return l.tls ? "certfile /etc/mosquitto/certs/fullchain.pem\nkeyfile /etc/mosquitto/certs/privkey.pem\n" : "";
}

/** Throws when the two listeners cannot both be opened. */
export function mosquittoConf(o: MosquittoConfOptions): string {
  if (o.hubs.port === o.relay.port)
    throw new Error(`the hubs' listener and the relay's listener both use port ${o.hubs.port}; the relay needs a port of its own`);
  const f = (name: string) => `${o.dir}/${name}`;
  return `# Anxin: written by \`anxin-relay broker-config\` for /etc/mosquitto/conf.d/ (see docs/relay.md).
# Needs Mosquitto 2.0. Logins, ACLs and anonymous access are set per listener.
per_listener_settings true

# Hubs. The broker uses the login as the client id, whatever the hub sends, so a hub can hold only its
# own session: another hub's valid login cannot take it over.
${listenerLine(o.hubs)}
${tlsLines(o.hubs)}use_username_as_clientid true
allow_anonymous false
password_file ${f(MOSQUITTO_FILES.hubPasswords)}
acl_file ${f(MOSQUITTO_FILES.hubAcl)}
# Every open socket counts, including ones that have not sent CONNECT yet (Mosquitto closes those after
# about 90 s). Size for the number of hubs plus headroom; not changed by a reload. Mosquitto 2.0.11 frees
# a slot too many per closed connection, so this holds exactly only until connections come and go: the
# firewall's per-source and total limits (docs/relay.md) are the ones to rely on.
max_connections ${o.hubs.maxConnections}

# The relay's instances (one login, distinct client ids). Bind it to an address hubs cannot reach; its
# password file holds only the relay's login, so no hub login opens it. A flood on the hubs' port does
# not use up this listener's connections.
${listenerLine(o.relay)}
${tlsLines(o.relay)}allow_anonymous false
password_file ${f(MOSQUITTO_FILES.relayPasswords)}
acl_file ${f(MOSQUITTO_FILES.relayAcl)}
max_connections ${o.relay.maxConnections}

# Keep queued messages across a broker restart; a snapshot, so a hard kill can still lose the last
# minute. The hubs' journals, not the broker, make delivery safe (the relay acks after its commit).
persistence true
autosave_interval 60
# Per-client queue. The default (1000) drops messages for the relay while it works through the burst
# after an outage, when every hub drains its journal at once; dropped events are only resent after the
# hubs' ack timeout, so leave room.
max_queued_messages 100000
persistent_client_expiration 7d
# Refuse oversized packets at the broker (event payload plus MQTT overhead).
max_packet_size ${o.maxPayloadBytes + 1024}
`;
}

/** Port and bind host of an mqtt:// or mqtts:// URL (default port by scheme). */
export function listenerFromUrl(url: string, what: string): { port: number; host: string; tls: boolean } {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`${what}: not a URL: ${url}`);
  }
  const tls = u.protocol === "mqtts:";
  if (!tls && u.protocol !== "mqtt:") throw new Error(`${what}: ${url}: only mqtt:// and mqtts:// listeners can be generated`);
  return { port: u.port ? Number(u.port) : tls ? 8883 : 1883, host: u.hostname.replace(/^\[|\]$/g, ""), tls };
}
