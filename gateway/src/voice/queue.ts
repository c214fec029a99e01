// Which prompt to say next: pure (state + input + clock → answer), so its rules are tested on their own.
//  - One prompt at a time; the most urgent first (urgent, then alarm, then info), the newest first within one.
//  - A prompt already waiting is not queued twice (folded: it keeps its place, its time is refreshed).
//  - A prompt that supersedes others (the gas valve closed says all the gas alarm says) drops them.
//  - A siren always wins: while one sounds nothing is said; prompts wait, up to their keepMs.
//  - In quiet hours only `urgent` and `alarm` prompts are said; `info` ones wait and usually lapse.
import { PROMPTS, type PromptId, type Urgency } from "./prompts.js";

export interface Queued {
  id: PromptId;
  /** When it was (last) asked for. */
  at: number;
  /** Why, for the log (`sos`, `ack`, `announce:family_coming`, …). */
  cause: string;
}

export interface NextContext {
  now: number;
  sirenOn: boolean;
  quiet: boolean;
}

const RANK: Record<Urgency, number> = { urgent: 0, alarm: 1, info: 2 };

export class PromptQueue {
  private items: Queued[] = [];

  get size(): number {
    return this.items.length;
  }

  /** What is waiting, in no particular order (status, tests). */
  waiting(): readonly Queued[] {
    return this.items;
  }

  /** Queues a prompt; false when it was folded into one already waiting. */
  push(q: Queued): boolean {
    const drop = PROMPTS[q.id].supersedes ?? [];
    this.items = this.items.filter((i) => !drop.includes(i.id));
    // A prompt superseded by one already waiting adds nothing.
    if (this.items.some((i) => PROMPTS[i.id].supersedes?.includes(q.id))) return false;
    const same = this.items.find((i) => i.id === q.id);
    if (same) {
      same.at = q.at;
      same.cause = q.cause;
      return false;
    }
    this.items.push(q);
    return true;
  }

  /** Drops what is no longer worth saying; returns what was dropped (to log). */
  expire(now: number): Queued[] {
    const gone = this.items.filter((i) => now - i.at > PROMPTS[i.id].keepMs);
    if (gone.length) this.items = this.items.filter((i) => !gone.includes(i));
    return gone;
  }

  /** Takes the prompt to say now, or null: nothing waits, a siren sounds, or only info waits in quiet hours. */
  take(c: NextContext): Queued | null {
    this.expire(c.now);
    if (c.sirenOn) return null;
    const eligible = this.items.filter((i) => !c.quiet || PROMPTS[i.id].urgency !== "info");
    if (!eligible.length) return null;
    eligible.sort((a, b) => RANK[PROMPTS[a.id].urgency] - RANK[PROMPTS[b.id].urgency] || b.at - a.at);
    const next = eligible[0]!;
    this.items = this.items.filter((i) => i !== next);
    return next;
  }
}

/** Minutes after local midnight of "HH:MM". */
function minutes(hhmm: string): number {
  const [h, m] = hhmm.split(":").map(Number);
  return h! * 60 + m!;
}

/** Whether `minuteOfDay` (local) falls in [from, to), which may run past midnight (22:00–07:00). */
export function inQuietHours(minuteOfDay: number, q: { from: string; to: string } | null): boolean {
  if (!q) return false;
  const from = minutes(q.from);
  const to = minutes(q.to);
  return from < to ? minuteOfDay >= from && minuteOfDay < to : minuteOfDay >= from || minuteOfDay < to;
}
