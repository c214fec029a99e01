// Files for running the relay behind Mosquitto: the ACL giving each hub only its own topics (the same
// rules the embedded broker enforces) and a configuration snippet.
import { RELAY_USERNAME } from "../mqtt/topics.js";

/** `%u` is the MQTT username, which for a hub is its id. */
export function mosquittoAcl(relayUser = RELAY_USERNAME): string {
  return `# Anxin: written by \`anxin-relay broker-config\`. Each hub (username = hub id) may publish only its
# own events and state and read only its own acks and commands.
pattern write anxin/v1/%u/evt
pattern write anxin/v1/%u/state
pattern read anxin/v1/%u/ack
pattern read anxin/v1/%u/cmd

# The relay itself: reads every hub's events and state, sends acks and commands.
user ${relayUser}
topic readwrite anxin/v1/#
`;
}

export interface MosquittoConfOptions {
  /** Where the acl and password files will live on the broker host. */
  dir: string;
  /** Largest event payload the relay accepts (ingest.maxPayloadBytes). */
  maxPayloadBytes: number;
}

export function mosquittoConf(o: MosquittoConfOptions): string {
  return `# Anxin: a starting point for /etc/mosquitto/conf.d/anxin.conf (see docs/relay.md).
per_listener_settings false
listener 1883
# For hubs on the internet use TLS instead:
#   listener 8883
#   certfile /etc/mosquitto/certs/fullchain.pem
#   keyfile /etc/mosquitto/certs/privkey.pem
allow_anonymous false
password_file ${o.dir}/passwords
acl_file ${o.dir}/acl
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
