// A remote siren test: sirens on for a few seconds, then off. Never while an alarm is active, and the
// sirens are left on at the end if an alarm started meanwhile: the rule owns the siren during an alarm.
import type { Logger } from "pino";
import type { SirenTestResult } from "./commands.js";

/** What the test needs of the hub (SafetyHub fits). */
export interface SirenHub {
  readonly rule: { readonly sirenOn: boolean; readonly alarms: Readonly<Record<string, unknown>> };
  readonly actuators: { readonly sirens: readonly unknown[]; sirensTo(on: boolean): Promise<unknown> };
}

export class SirenTest {
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly hub: SirenHub,
    private readonly log: Logger,
  ) {}

  get running(): boolean {
    return this.timer !== null;
  }

  /** Bound, so it can be handed over as a callback. */
  readonly run = (seconds: number): SirenTestResult => {
    if (this.hub.actuators.sirens.length === 0) return { ok: false, reason: "no siren is configured" };
    if (this.hub.rule.sirenOn || Object.keys(this.hub.rule.alarms).length > 0) return { ok: false, reason: "an alarm is active" };
    if (this.timer) return { ok: false, reason: "a siren test is already running" };
    void this.hub.actuators.sirensTo(true);
    this.timer = setTimeout(() => void this.end(), seconds * 1000);
    return { ok: true };
  };

  /** Ends a running test now (daemon stop). */
  stop(): Promise<void> {
    if (!this.timer) return Promise.resolve();
    clearTimeout(this.timer);
    return this.end();
  }

  private async end(): Promise<void> {
    this.timer = null;
    if (this.hub.rule.sirenOn) {
      this.log.info("siren test over; sirens stay on: an alarm is active");
      return;
    }
    await this.hub.actuators.sirensTo(false);
  }
}
