// Counting and logging a message that is dropped. Never the envelope's data: it may hold personal data.
// Every drop is counted; the log hears of each hub's rejections once per burst (lib/log/burst-log.ts), so a
// hub with valid credentials sending garbage, or an event rejected on every resend, cannot flood the log.
import type { Logger } from "pino";
import { BurstLog } from "../../../lib/log/burst-log.js";
import type { Metrics } from "../metrics.js";
import type { Rejected } from "./verify-check.js";

export type RejectReason = "too_large" | "not_json" | "schema" | "hub_mismatch" | "unknown_hub" | "bad_signature";

export class Rejections {
  private readonly rejectedLog: BurstLog;
  private readonly keyFailureLog: BurstLog;
  private readonly collisionLog: BurstLog;

  constructor(
    private readonly metrics: Metrics,
    log: Logger,
    clock: () => number,
  ) {
    this.rejectedLog = new BurstLog(log, "ingest: message rejected", clock);
    // The store's trouble, not a hub's: one burst for all hubs.
    this.keyFailureLog = new BurstLog(log, "ingest: signing key lookup failed; event left unacked", clock, { level: "error" });
    // Never acknowledged, so its hub sends it again and again: one error per burst of each hub.
    this.collisionLog = new BurstLog(log, "ingest: event id already stored for another hub; neither stored for this one nor acknowledged", clock, { level: "error" });
  }

  reject(hub: string, reason: RejectReason, id?: string, extra?: Record<string, unknown>): void {
    this.metrics.eventsRejected.inc({ reason });
    this.rejectedLog.note(hub, { hub, reason, ...(id ? { id } : {}), ...extra });
  }

  /** A verdict of the checks (verify-check.ts). */
  rejected(hub: string, r: Rejected): void {
    this.reject(hub, r.reason, r.id, r.extra);
  }

  /** The store could not be asked for the key: dropped unacked, the hub will send it again. */
  keyUnavailable(hub: string, err: unknown, id?: string): void {
    this.metrics.eventsRejected.inc({ reason: "key_unavailable" });
    this.keyFailureLog.note("store", { err, hub, ...(id ? { id } : {}) });
  }

  /** An event whose id another hub's event holds already (store.ts foreign). */
  idCollision(hub: string, id: string, extra?: Record<string, unknown>): void {
    this.metrics.eventsRejected.inc({ reason: "id_collision" });
    this.collisionLog.note(hub, { hub, id, ...extra });
  }

  /** A verify thread died holding the message: dropped unacked, the hub will send it again. */
  workerFailed(): void {
    this.metrics.eventsRejected.inc({ reason: "worker_failed" });
  }
}
