// The relay's Prometheus metrics, in one registry every part records into.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    eventsReceived: new Counter({ name: "anxin_relay_events_received_total", help: "event messages received", registers: [registry] }),
    eventsCommitted: new Counter({ name: "anxin_relay_events_committed_total", help: "events newly committed", labelNames: ["kind"] as const, registers: [registry] }),
    eventsDuplicate: new Counter({ name: "anxin_relay_events_deduped_total", help: "events already committed (replays, resends): acknowledged again, not acted on", registers: [registry] }),
    eventsRejected: new Counter({ name: "anxin_relay_events_rejected_total", help: "messages rejected", labelNames: ["reason"] as const, registers: [registry] }),
    eventsSkewed: new Counter({ name: "anxin_relay_events_clock_skewed_total", help: "events kept but flagged: hub clock far from the relay's", registers: [registry] }),
    commitSeconds: new Histogram({ name: "anxin_relay_commit_seconds", help: "time to commit one batch", buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1], registers: [registry] }),
    batchSize: new Histogram({ name: "anxin_relay_batch_events", help: "events per committed batch", buckets: [1, 5, 20, 50, 100, 250, 500, 1000], registers: [registry] }),
    acksSent: new Counter({ name: "anxin_relay_acks_sent_total", help: "ack messages published", registers: [registry] }),
    hubsOnline: new Gauge({ name: "anxin_relay_hubs_online", help: "hubs currently online", registers: [registry] }),
    hubIncidents: new Counter({ name: "anxin_relay_hub_incidents_total", help: "hub supervision incidents", labelNames: ["type"] as const, registers: [registry] }),
    mqttConnected: new Gauge({ name: "anxin_relay_mqtt_connected", help: "1 while the relay's MQTT session is up", registers: [registry] }),
    brokerClients: new Gauge({ name: "anxin_relay_broker_clients", help: "clients connected to the embedded broker", registers: [registry] }),
    authFailures: new Counter({ name: "anxin_relay_broker_auth_failures_total", help: "refused broker logins and topic authorisations", labelNames: ["what"] as const, registers: [registry] }),
    retentionDeleted: new Counter({ name: "anxin_relay_retention_deleted_total", help: "rows deleted by the retention sweep", labelNames: ["kind"] as const, registers: [registry] }),
    // Every text on the inbound number, so a hub whose texts are refused (wrong key, wrong form) or a provider
    // delivering other people's texts shows before the day an alarm depends on it. result: as answered to the
    // provider; reason: why refused (malformed, unknown_hub, bad_mac, id_collision), else empty; kind: what the
    // text claims to be (alarm, alarm_cleared, device), none when it is not readable as ours.
    smsInbound: new Counter({ name: "anxin_relay_sms_inbound_total", help: "texts received on the inbound SMS number, by result, refusal reason and kind", labelNames: ["result", "reason", "kind"] as const, registers: [registry] }),
    retentionSweeps: new Counter({ name: "anxin_relay_retention_sweeps_total", help: "retention sweeps run by this instance", labelNames: ["result"] as const, registers: [registry] }),
  };
}
export type Metrics = ReturnType<typeof createMetrics>;
