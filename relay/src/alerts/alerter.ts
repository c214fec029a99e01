// Raises operator alerts with a metric and a log line beside the row. The log names the kind, the incident
// and the hub only: details are written by the relay and carry no personal data, but the log stays minimal.
import type { Kysely } from "kysely";
import type { Logger } from "pino";
import { Counter, type Registry } from "prom-client";
import type { LoopDb } from "../store/closed-loop-schema.js";
import { raiseOperatorAlert, type RaiseAlert } from "./operator-alerts.js";

export class Alerter {
  private readonly counter: Counter<"kind"> | undefined;

  constructor(
    private readonly log: Logger,
    registry?: Registry,
  ) {
    this.counter = registry
      ? (registry.getSingleMetric("anxin_relay_operator_alerts_total") as Counter<"kind"> | undefined) ??
        new Counter({ name: "anxin_relay_operator_alerts_total", help: "operator alerts raised (repeats of an open alert included)", labelNames: ["kind"] as const, registers: [registry] })
      : undefined;
  }

  /** `db` may be a transaction: the alert commits with the change that caused it. */
  async raise(db: Kysely<LoopDb>, a: RaiseAlert & { hub?: string }): Promise<void> {
    const { hub, ...alert } = a;
    await raiseOperatorAlert(db, alert);
    this.counter?.inc({ kind: a.kind });
    this.log.warn({ alert: a.kind, incident: a.incidentId, hub }, "operator alert");
  }
}
