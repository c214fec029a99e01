// Counting and logging a message that is dropped. Never the envelope's data: it may hold personal data.
import type { Logger } from "pino";
import type { Metrics } from "../metrics.js";
import type { Rejected } from "./verify-check.js";

export type RejectReason = "too_large" | "not_json" | "schema" | "hub_mismatch" | "unknown_hub" | "bad_signature";

export class Rejections {
  constructor(
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {}

  reject(hub: string, reason: RejectReason, id?: string, extra?: Record<string, unknown>): void {
    this.metrics.eventsRejected.inc({ reason });
    this.log.warn({ hub, reason, ...(id ? { id } : {}), ...extra }, "ingest: message rejected");
  }

  /** A verdict of the checks (verify-check.ts). */
  rejected(hub: string, r: Rejected): void {
    this.reject(hub, r.reason, r.id, r.extra);
  }

  /** The store could not be asked for the key: dropped unacked, the hub will send it again. */
  keyUnavailable(hub: string, err: unknown, id?: string): void {
    this.metrics.eventsRejected.inc({ reason: "key_unavailable" });
    this.log.error({ err, hub, ...(id ? { id } : {}) }, "ingest: signing key lookup failed; event left unacked");
  }

  /** A verify thread died holding the message: dropped unacked, the hub will send it again. */
  workerFailed(): void {
    this.metrics.eventsRejected.inc({ reason: "worker_failed" });
  }
}
