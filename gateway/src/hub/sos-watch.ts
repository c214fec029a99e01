// The one-key call for one home: a press → the pure SOS rule → local feedback to the caller first (a chirp on
// the sirens that can bound it), then the journal.
import type { EventDraft } from "../../../protocol/envelope.js";
import type { HubDevice } from "../devices/hub-device.js";
import type { Actuators } from "../actions/actuators.js";
import * as sos from "../rules/sos.js";
import { sosDecisionEvent } from "./event-shaping.js";

export interface SosWatchOptions {
  params: sos.SosParams;
  actuators: Actuators;
  now: () => number;
  record: (draft: EventDraft) => void;
  onDecision: (d: sos.SosDecision, at: number) => void;
  changed: () => void;
}

export class SosWatch {
  private current = sos.initialSosState();

  constructor(private readonly o: SosWatchOptions) {}

  get state(): Readonly<sos.SosRuleState> {
    return this.current;
  }

  press(dev: HubDevice, action: string): void {
    const at = this.o.now();
    const r = sos.sosPress(this.current, this.o.params, { device: dev.id, room: dev.room, action }, at);
    this.current = r.state;
    // Feedback first, then the journal.
    const chirped = r.decisions.some((d) => d.do === "chirp") ? this.o.actuators.sirens.filter((s) => s.canDo("siren_chirp")) : [];
    if (chirped.length) void this.o.actuators.chirp();
    this.o.changed();
    for (const d of r.decisions) {
      this.o.onDecision(d, at);
      const draft = sosDecisionEvent(d, { chirped, callerRoom: dev.room });
      if (draft) this.o.record(draft);
    }
  }

  /**
   * Ends the device's episode (its commissioning test is over): a button's repeat window is dropped, so its
   * next press raises a new, real alarm. Nothing else changes; a device with no window open is left as it is.
   */
  endEpisode(device: string): void {
    const next = sos.forgetButton(this.current, device);
    if (next === this.current) return;
    this.current = next;
    this.o.changed();
  }

  /** The saved state as it may be taken over now (a repeat window from the future is dropped). */
  restored(saved: sos.SosRuleState, now: number): sos.SosRuleState {
    return sos.restoreSosState(saved, this.o.params, now);
  }

  takeOver(s: sos.SosRuleState): void {
    this.current = s;
  }
}
