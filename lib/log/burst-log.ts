// One warning per burst and per source (a hub, or the whole daemon) for something that can repeat once per
// message: whoever sends bad messages must not be able to flood the log (and fill the disk), and an operator
// must still hear of every source that does. A source's burst ends after quietMs without a note; a burst
// that goes on is reminded of every remindMs, with how many went unlogged meanwhile. Every note still goes
// out at debug level, so a technician who turns it on sees each one.
import type { Logger } from "pino";

export const QUIET_MS = 60_000;
export const REMIND_MS = 10 * 60_000;
/** Sources followed at once; past it the longest quiet one is forgotten (its next note starts a burst). */
export const MAX_SOURCES = 10_000;

export interface BurstLogOptions {
  level?: "info" | "warn" | "error";
  quietMs?: number;
  remindMs?: number;
  maxSources?: number;
}

interface Burst {
  lastAt: number;
  lastWarnAt: number;
  unlogged: number;
}

export class BurstLog {
  // In order of each source's latest note (a note moves its source to the end), so the front is the
  // longest quiet.
  private readonly bursts = new Map<string, Burst>();
  private readonly level: "info" | "warn" | "error";
  private readonly quietMs: number;
  private readonly remindMs: number;
  private readonly maxSources: number;

  constructor(
    private readonly log: Logger,
    private readonly msg: string,
    private readonly clock: () => number,
    o: BurstLogOptions = {},
  ) {
    this.level = o.level ?? "warn";
    this.quietMs = o.quietMs ?? QUIET_MS;
    this.remindMs = o.remindMs ?? REMIND_MS;
    this.maxSources = o.maxSources ?? MAX_SOURCES;
  }

  /** Sources with a burst under way or recently ended (bounded by maxSources). */
  get sources(): number {
    return this.bursts.size;
  }

  /** Logs fields at the configured level if this note starts a burst of `source` or is due a reminder. */
  note(source: string, fields: Record<string, unknown>): void {
    const now = this.clock();
    const b = this.bursts.get(source);
    if (b) this.bursts.delete(source);
    else this.makeRoom(now);
    const burst = b ?? { lastAt: -Infinity, lastWarnAt: -Infinity, unlogged: 0 };
    const starts = now - burst.lastAt >= this.quietMs;
    burst.lastAt = now;
    this.bursts.set(source, burst);
    if (starts || now - burst.lastWarnAt >= this.remindMs) {
      this.log[this.level]({ ...fields, notLoggedSinceLastWarning: burst.unlogged }, this.msg);
      burst.lastWarnAt = now;
      burst.unlogged = 0;
    } else {
      burst.unlogged++;
      this.log.debug(fields, this.msg);
    }
  }

  private makeRoom(now: number): void {
    for (const [source, b] of this.bursts) {
      if (this.bursts.size < this.maxSources && now - b.lastAt < this.quietMs) return;
      this.bursts.delete(source);
    }
  }
}
