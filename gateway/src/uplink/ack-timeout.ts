// How long the uplink waits for the relay's ack before it sends a routine event again. A fixed wait breaks
// down exactly when it matters: after a regional outage thousands of hubs return at once, the relay (and a
// broker in front of it) falls behind, acks take longer than the wait, and every hub sends its whole window
// again — more work for a relay that is already late, so it falls further behind (congestive collapse). So
// the wait follows the acks as they are measured, as TCP's retransmission timer does (RFC 6298): a smoothed
// round trip plus four times its variation (at least half the round trip), never below the configured wait,
// and doubled after sends went unanswered until a fresh measurement says otherwise. Only first sends are
// measured (Karn): the ack of a resent event cannot tell which send it answers.
//
// A long wait has its own cost: an event the relay refused for want of room (it keeps its memory bounded and
// lets hubs resend) would wait it out in full after the relay has caught up. So a routine send still
// unanswered when one sent after it has been answered, and older than twice the round trip, is presumed lost
// and goes again at once (as TCP's fast retransmit reads duplicate acks). An alarm is presumed lost sooner:
// after twice the round trip or the configured wait, whichever is less. Its own wait doubles with each send
// (up to 5 minutes), and an alarm a broker dropped more than once in a storm must not wait that out while the
// relay answers what the hub sent after it; a needless repeat is one small message the relay stores once.
//
// And while nothing shows a send lost, sending the whole window again only adds to what the relay (or the
// broker before it) has still to get through: then, as TCP probes with its oldest segment, only the oldest
// routine send goes again when the wait runs out, and the others wait another round (repeatAfterWait). A send
// is shown lost when the relay answered a first send made after it, or answered anything after it was sent
// while it has waited the current (measured) wait. Not merely an answer after it was sent: after a storm the
// relay's first ack answers the first send of a window sent all at once, and the rest is right behind it.
//
// Critical events keep the fixed wait: an alarm the broker lost must go again at once, and an alarm's resend
// is one small message, never a window of them.
import { MAX_RESEND_MS, resendDelay } from "./backoff.js";

/** The longest a routine event's first send waits for its ack, however slow the relay has been. */
export const MAX_ACK_WAIT_MS = 120_000;

export class AckTimeout {
  private srtt: number | null = null;
  private rttvar = 0;
  /** Doublings since the last measurement: sends went unanswered although the wait covered the measured round trip. */
  private backoffs = 0;

  constructor(
    private readonly baseMs: number,
    private readonly maxResendMs = MAX_RESEND_MS,
  ) {}

  /** An ack arrived `ms` after the event's first send. */
  observe(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) return;
    if (this.srtt === null) {
      this.srtt = ms;
      this.rttvar = ms / 2;
    } else {
      this.rttvar = 0.75 * this.rttvar + 0.25 * Math.abs(this.srtt - ms);
      this.srtt = 0.875 * this.srtt + 0.125 * ms;
    }
    this.backoffs = 0;
  }

  /** The doubling in force now; a send keeps the one it was sent under, for timedOut. */
  get level(): number {
    return this.backoffs;
  }

  /**
   * A routine send went past its wait without an ack: wait longer for the next ones. Once per doubling: sends
   * made under an earlier one (a whole window often expires within moments) do not double it again.
   */
  timedOut(sentAtLevel: number): void {
    if (sentAtLevel === this.backoffs && this.backoffs < 16) this.backoffs++;
  }

  /** The current wait for a first send of a routine event. */
  get currentMs(): number {
    // After a run of steady acks the variation decays towards nothing; half the round trip is kept as margin.
    const measured = this.srtt === null ? 0 : this.srtt + Math.max(4 * this.rttvar, this.srtt / 2);
    return Math.round(Math.min(MAX_ACK_WAIT_MS, this.maxResendMs, Math.max(this.baseMs, measured) * 2 ** this.backoffs));
  }

  /**
   * A send made at `sentAt`, still unanswered at `now` although a later send (made at `answeredSentAt`, the
   * latest the relay answered) has been answered: true once it has also waited twice the measured round trip,
   * and at least the configured wait (a routine send) or at most it (a critical one).
   */
  presumedLost(sentAt: number, answeredSentAt: number, now: number, critical = false): boolean {
    if (this.srtt === null || sentAt >= answeredSentAt) return false;
    const twice = 2 * this.srtt;
    return now - sentAt >= (critical ? Math.min(this.baseMs, twice) : Math.max(this.baseMs, twice));
  }

  /** Wait after the send numbered `attempts` (0 = first send): the fixed doubling policy for critical events, and never less than the current wait for routine ones. */
  waitMs(attempts: number, critical: boolean): number {
    const fixed = resendDelay(attempts, this.baseMs, this.maxResendMs);
    return critical ? fixed : Math.max(fixed, this.currentMs);
  }
}

/** What the relay has answered on this session, for repeatAfterWait. */
export interface Answered {
  /** The latest first send the relay answered (-Infinity: none). */
  firstSentAt: number;
  /** When it last answered anything (null: never). */
  at: number | null;
}

/**
 * Of the sends whose wait ran out, which go again now: every critical one; a routine one shown lost (the relay
 * answered a first send made after it, or answered anything after it was sent while it has waited `waitMs`,
 * the current wait); and of the other routine ones only the oldest, as the probe, and only when the previous
 * probe is no longer waiting (`probeOut`): one probe per wait, however the window's sends fall due. The rest
 * (`held`) stay in flight for another wait.
 */
export function repeatAfterWait<T extends { sentAt: number; critical: boolean }>(expired: readonly T[], answered: Answered, now: number, waitMs: number, probeOut: boolean): { again: T[]; held: T[]; probe: T | undefined } {
  const again: T[] = [];
  const held: T[] = [];
  let probe: T | undefined;
  for (const f of expired) {
    const shownLost = answered.firstSentAt > f.sentAt || (answered.at !== null && answered.at > f.sentAt && now - f.sentAt >= waitMs);
    if (f.critical || shownLost) again.push(f);
    else if (probeOut) held.push(f);
    else if (probe === undefined || f.sentAt < probe.sentAt) {
      if (probe) held.push(probe);
      probe = f;
    } else held.push(f);
  }
  if (probe) again.push(probe);
  return { again, held, probe };
}
