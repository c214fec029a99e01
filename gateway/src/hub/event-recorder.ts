// Hands events to the journal without holding anyone up: the append is started and never awaited on the way to
// an actuator (invariant 1). A failed append is logged and counted, never thrown into a rule.
import type { Logger } from "pino";
import type { EventDraft } from "../../../protocol/envelope.js";

/** What the hub needs of the journal: an append that may be slow and must not be awaited here. */
export interface EventSink {
  append(draft: EventDraft): Promise<unknown>;
}

export class EventRecorder {
  failures = 0;

  /** `modelOf` names a device's model: alarms carry it so the relay can count false alarms per model without a care plan. */
  constructor(
    private readonly journal: EventSink,
    private readonly log: Logger,
    private readonly modelOf: (device: string) => string | undefined,
  ) {}

  record(draft: EventDraft): void {
    const model = draft.device && (draft.kind === "alarm" || draft.kind === "alarm_cleared") ? this.modelOf(draft.device) : undefined;
    if (model && draft.data?.model === undefined) draft = { ...draft, data: { ...draft.data, model } };
    this.journal.append(draft).catch((e: Error) => {
      this.failures++;
      this.log.error({ err: e.message, kind: draft.kind, type: draft.type }, "journal append failed");
    });
  }
}
