// Counts messages the uplink refuses (acks and commands that are malformed, unsigned, badly signed, stale)
// and logs them as a warning once per burst (lib/log/burst-log.ts): whoever forges them must not be able to
// flood the hub's log, and an operator must still hear of it.
import type { Logger } from "pino";
import { BurstLog } from "../../../lib/log/burst-log.js";

export class Refusals {
  /** Every refusal since the start, by reason. */
  readonly byReason: Record<string, number> = {};
  private total = 0;
  private readonly warnings: BurstLog;

  constructor(log: Logger, msg: string, clock: () => number) {
    this.warnings = new BurstLog(log, msg, clock);
  }

  get count(): number {
    return this.total;
  }

  note(reason: string, detail: Record<string, unknown> = {}): void {
    this.total++;
    this.byReason[reason] = (this.byReason[reason] ?? 0) + 1;
    // One source: the hub has one relay, and a forger's refusals are one burst whatever it sends.
    this.warnings.note("relay", { reason, ...detail, refused: this.total });
  }
}
