// Counts messages the uplink refuses (acks and commands that are unsigned, badly signed, stale) and logs
// them as a warning once per burst: whoever forges them must not be able to flood the hub's log, and an
// operator must still hear of it. A burst ends after QUIET_MS without a refusal; a burst that goes on is
// reminded of every REMIND_MS.
import type { Logger } from "pino";

export const QUIET_MS = 60_000;
export const REMIND_MS = 10 * 60_000;

export class Refusals {
  /** Every refusal since the start, by reason. */
  readonly byReason: Record<string, number> = {};
  private total = 0;
  private lastAt = -Infinity;
  private lastWarnAt = -Infinity;
  private unlogged = 0;

  constructor(
    private readonly log: Logger,
    private readonly msg: string,
    private readonly clock: () => number,
  ) {}

  get count(): number {
    return this.total;
  }

  note(reason: string, detail: Record<string, unknown> = {}): void {
    this.total++;
    this.byReason[reason] = (this.byReason[reason] ?? 0) + 1;
    const now = this.clock();
    const burstStarts = now - this.lastAt >= QUIET_MS;
    this.lastAt = now;
    if (burstStarts || now - this.lastWarnAt >= REMIND_MS) {
      this.log.warn({ reason, ...detail, refused: this.total, notLoggedSinceLastWarning: this.unlogged }, this.msg);
      this.lastWarnAt = now;
      this.unlogged = 0;
    } else {
      this.unlogged++;
      this.log.debug({ reason, ...detail, refused: this.total }, this.msg);
    }
  }
}
