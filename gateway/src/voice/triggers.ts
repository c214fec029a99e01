// What the hub says when: the daemon tells this of each journaled event (after the rules' actuator commands
// went out), of each id the relay acknowledged, and of each verified `announce` command. Everything here only
// queues a prompt and returns; nothing waits for audio.
//  - a one-key call raised → "call sent" at once (local, no network);
//  - the relay's signed ack of that very event (after its commit) → "platform received";
//  - a gas/CO alarm → the gas advice; the valve verified closed during it → "valve closed" + the same advice;
//  - a fall report waiting for its window → "get up if you are fine"; an inactivity alarm → "move about";
//  - an announcement → its prompt, only while a local alarm of that kind is open (open-alarms.ts).
import type { Logger } from "pino";
import type { Envelope } from "../../../protocol/envelope.js";
import type { AnnouncedAlarm, Announcement } from "../../../protocol/messages.js";
import { OpenAlarms } from "./open-alarms.js";
import { ANNOUNCEMENT_PROMPT, type PromptId } from "./prompts.js";

export type AnnounceResult = { spoken: true } | { spoken: false; reason: string };
export interface AnnounceRequest {
  announcement: Announcement;
  alarm: AnnouncedAlarm;
  /** The relay's incident id: recorded, never spoken. */
  incident: string;
}

export interface Speaker {
  say(id: PromptId, cause: string): void;
}

/** One-key calls whose ack is awaited, at most this many (the oldest is forgotten first). */
const AWAIT_ACK_MAX = 64;

export class VoiceTriggers {
  private readonly open = new OpenAlarms();
  /** Ids of one-key call alarms said "call sent" for, waiting for the relay's ack. */
  private readonly awaitingAck = new Set<string>();

  constructor(
    private readonly speaker: Speaker,
    private readonly now: () => number,
    private readonly log: Logger,
  ) {}

  /** A journaled event. */
  event(e: Envelope): void {
    // A commissioning test press is the installer's, not the elder's: nothing said, nothing opened.
    if (e.test) return;
    if (e.kind === "alarm") {
      this.open.raise(e.type, this.now());
      if (e.type === "sos") {
        this.speaker.say("call_sent", "sos");
        this.awaitingAck.add(e.id);
        if (this.awaitingAck.size > AWAIT_ACK_MAX) this.awaitingAck.delete(this.awaitingAck.values().next().value!);
      } else if (e.type === "gas" || e.type === "co") this.speaker.say("gas_alarm", e.type);
      // The inactivity rule has no pending stage (unlike a fall report): it journals nothing before this alarm,
      // so the raise is the earliest point to ask the elder to move about.
      else if (e.type === "inactivity") this.speaker.say("inactivity_check", "inactivity");
    } else if (e.kind === "alarm_cleared") this.open.clear(e.type);
    else if (e.kind === "device" && e.type === "valve_closed" && e.actions?.some((a) => a.action === "valve_closed" && a.ok)) {
      // Said only when the close was verified and while a gas/CO alarm is open: the hub can stand behind it.
      if (this.open.isOpen("gas", this.now()) || this.open.isOpen("co", this.now())) this.speaker.say("gas_valve_closed", "valve_closed");
    }
  }

  /** Ids the relay acknowledged (signed, after its commit). */
  acked(ids: readonly string[]): void {
    for (const id of ids)
      if (this.awaitingAck.delete(id)) this.speaker.say("platform_received", "ack");
  }

  /** A fall report is waiting for its confirmation window. */
  fallPending(device: string): void {
    this.speaker.say("fall_check", `fall_pending:${device}`);
  }

  /** A verified `announce` command from the relay. */
  announce(a: AnnounceRequest): AnnounceResult {
    if (!this.open.isOpen(a.alarm, this.now())) {
      this.log.info({ announcement: a.announcement, alarm: a.alarm, incident: a.incident }, "voice: announcement not spoken: no open local alarm of that kind");
      return { spoken: false, reason: `no open local ${a.alarm} alarm` };
    }
    this.speaker.say(ANNOUNCEMENT_PROMPT[a.announcement], `announce:${a.announcement}`);
    return { spoken: true };
  }
}
