// The bound on events held in memory (in their checks, collecting, waiting or retrying). Past it new
// messages are dropped unacked: the hubs keep them in their journals and resend, so a store that is down or
// slow costs latency, never memory without limit. Urgent events (alarms, see isUrgent) have a reserve of a
// tenth beyond the bound: in a storm the backlog is full of routine readings, and an alarm dropped there
// would wait for its hub's resend (5 s, then doubling).
import type { Logger } from "pino";
import type { Metrics } from "../metrics.js";

export const DEFAULT_MAX_BACKLOG = 50_000;
/** One log line per this period at most while dropping: the count says how many went meanwhile. */
export const OVERLOAD_LOG_EVERY_MS = 10_000;

export class Backlog {
  private held = 0;
  private lastOverloadLog = 0;
  private droppedSinceLog = 0;
  private readonly urgentMax: number;

  constructor(
    private readonly max: number,
    private readonly metrics: Metrics,
    private readonly log: Logger,
    private readonly now: () => number,
  ) {
    this.urgentMax = max + Math.ceil(max / 10);
  }

  /** Events held now, not yet committed (or dropped). */
  get size(): number {
    return this.held;
  }

  /** Holds one more event; false (counted and, now and then, logged as backlog_full) when full. */
  admit(hub: string, urgent = false): boolean {
    if (this.held >= (urgent ? this.urgentMax : this.max)) {
      this.overloaded(hub);
      return false;
    }
    this.held++;
    return true;
  }

  /** Events committed, dropped or merged with another: no longer held. */
  release(n = 1): void {
    this.held -= n;
  }

  private overloaded(hub: string): void {
    this.metrics.eventsRejected.inc({ reason: "backlog_full" });
    this.droppedSinceLog++;
    const now = this.now();
    if (now - this.lastOverloadLog >= OVERLOAD_LOG_EVERY_MS) {
      this.log.error({ hub, dropped: this.droppedSinceLog, backlog: this.held }, "ingest: backlog full (store not keeping up or down); dropping events unacked, hubs will resend");
      this.lastOverloadLog = now;
      this.droppedSinceLog = 0;
    }
  }
}
