// One siren state for every rule. Smoke wants fire mode, gas/CO and valve faults want emergency; with both,
// fire wins (the home must be left). Commands go out only when the wanted state changes, so one rule's step
// cannot silence or re-trigger a siren another rule still needs.
import type { HubDevice, SirenMode } from "../devices/hub-device.js";
import type { Actuators } from "./actuators.js";

/** What the rules want of the sirens right now. */
export interface SirenWants {
  /** A smoke alarm is active. */
  fire: boolean;
  /** The gas/CO rule wants its siren (an alarm or a valve fault). */
  emergency: boolean;
}

/** The one mode every siren should sound, or null for silence. */
export function sirenModeFor(w: SirenWants): SirenMode | null {
  return w.fire ? "fire" : w.emergency ? "emergency" : null;
}

export class SirenArbiter {
  private current: SirenMode | null = null;

  constructor(private readonly actuators: Pick<Actuators, "sirensTo" | "send">) {}

  /** The mode the sirens were last commanded to; null when silent. */
  get mode(): SirenMode | null {
    return this.current;
  }

  /** Commands every siren when, and only when, the wanted mode differs from the last one commanded. */
  settle(w: SirenWants): void {
    const want = sirenModeFor(w);
    if (want === this.current) return;
    this.current = want;
    void this.actuators.sirensTo(want !== null, want ?? undefined);
  }

  /** A siren that joins during an alarm sounds at once, in the current mode. */
  joined(d: HubDevice): void {
    if (this.current && d.has("siren") && d.canDo("siren_on")) void this.actuators.send(d.id, "siren_on", { mode: this.current });
  }
}
