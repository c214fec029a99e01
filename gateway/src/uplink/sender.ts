// Moves journaled events to the relay: keeps up to `window` of them in flight, most urgent first, signs
// each one, and lets the journal forget a row only when the relay's ack says it committed it (invariant 4).
// A broker PUBACK means nothing here: brokers lose acknowledged messages on a hard kill.
import type { Logger } from "pino";
import type { Envelope } from "../../../protocol/envelope.js";
import { signEnvelope } from "../../../protocol/signing.js";
import type { StoredEvent } from "../journal/journal.js";
import { AckTimeout, repeatAfterWait } from "./ack-timeout.js";
import { MAX_RESEND_MS } from "./backoff.js";
import { InFlightWindow, type Flight } from "./window.js";

/** What the sender needs of the journal. */
export interface OutboxJournal {
  pending(limit: number, now: number): Promise<StoredEvent[]>;
  markSent(ids: string[], nextAttemptAt: number, countAttempt?: boolean): Promise<void>;
  ack(ids: string[]): Promise<number>;
}

/** One connected session; `publish` hands a signed envelope to the broker (QoS 1). */
export interface Link {
  publish(env: Envelope, payload: string): void;
}

export interface SenderOptions {
  journal: OutboxJournal;
  key: Buffer;
  window: number;
  /** The least wait for an ack before a send goes again (doubling per attempt); routine events wait longer while the relay's acks are measured slower (ack-timeout.ts). */
  ackTimeoutMs: number;
  historicalAfterMs: number;
  maxResendMs?: number;
  /**
   * While connected the journal is also polled, for rows nobody nudged about (other writers, rows in backoff):
   * every pollMs after activity, slowing to idlePollMs while polls find nothing. Appends and acks do not wait
   * for it: they start a pass directly.
   */
  pollMs?: number;
  idlePollMs?: number;
  clock?: () => number;
  log: Logger;
}

export interface SenderStats {
  inFlight: number;
  /** Publishes, first sends and resends. */
  sent: number;
  resent: number;
  /** Rows the journal deleted because the relay acknowledged them. */
  acked: number;
  /** Sends that got no ack before their deadline, or were presumed lost (ack-timeout.ts). */
  timeouts: number;
  /** What a routine event's first send waits for its ack now (ms). */
  ackWaitMs: number;
  /**
   * Since when something sent on this session has waited for the relay without any ack arriving; null when
   * nothing is in flight. Resends do not move it: path supervision reads it (a broker that takes events and
   * answers nothing is a path that is down).
   */
  unansweredSince: number | null;
}

export class Sender {
  private readonly window: InFlightWindow;
  private readonly ackTimeout: AckTimeout;
  private readonly clock: () => number;
  private readonly pollMs: number;
  private readonly idlePollMs: number;
  private pollDelay: number;
  private link: Link | null = null;
  /** The latest pass, for stop() to wait on. */
  private running: Promise<void> | null = null;
  /** A pass is under way; cleared in the same synchronous step that ends its loop, so no nudge falls between. */
  private busy = false;
  /** Asked to look again: set by every nudge, consumed by the pass. */
  private again = false;
  private poll: NodeJS.Timeout | null = null;
  private stopped = false;
  private readonly stats = { sent: 0, resent: 0, acked: 0, timeouts: 0 };
  private unansweredSince: number | null = null;
  /** When the relay last acknowledged anything on this session (repeatAfterWait). */
  private lastAnswerAt: number | null = null;
  /** The latest first send the relay answered on this session (AckTimeout.presumedLost, repeatAfterWait). */
  private answeredSentAt = -Infinity;
  /** The routine send that went again as a probe (repeatAfterWait): no other goes while it waits. */
  private probeId: string | null = null;

  constructor(private readonly o: SenderOptions) {
    this.window = new InFlightWindow(o.window);
    this.ackTimeout = new AckTimeout(o.ackTimeoutMs, o.maxResendMs ?? MAX_RESEND_MS);
    this.clock = o.clock ?? Date.now;
    this.pollMs = o.pollMs ?? 50;
    this.idlePollMs = Math.max(this.pollMs, o.idlePollMs ?? 1000);
    this.pollDelay = this.pollMs;
  }

  snapshot(): SenderStats {
    return { inFlight: this.window.count, ...this.stats, ackWaitMs: this.ackTimeout.currentMs, unansweredSince: this.window.count > 0 ? this.unansweredSince : null };
  }

  /** A session is up (subscribed to acks): start sending on it. */
  online(link: Link): void {
    if (this.stopped) return;
    this.link = link;
    this.lastAnswerAt = null;
    this.answeredSentAt = -Infinity;
    this.probeId = null;
    this.pollDelay = this.pollMs;
    this.nudge();
  }

  /**
   * The session ended. Whatever was in flight is made due at once, so it goes again (flagged historical) as
   * soon as a session is back, instead of waiting out its ack deadline.
   */
  async offline(): Promise<void> {
    this.link = null;
    this.unansweredSince = null;
    this.disarm();
    await this.requeueInFlight();
  }

  /** Something was journaled, or a slot freed: look for due rows now. */
  nudge(): void {
    if (!this.link || this.stopped) return;
    this.again = true;
    if (this.busy) return;
    this.busy = true;
    this.running = this.drain();
  }

  /** How many of these ids are in flight: sent on this session, not yet acknowledged nor past their deadline. */
  inFlightOf(ids: readonly string[]): number {
    let n = 0;
    for (const id of ids) if (this.window.has(id)) n++;
    return n;
  }

  /** The relay committed these events: the journal may delete them. Ids we never sent are ignored by the journal. */
  async acked(ids: string[]): Promise<void> {
    const now = this.clock();
    this.lastAnswerAt = now;
    for (const f of this.window.settle(ids)) {
      // Only a first send's answer says which send got through: it measures the relay, and shows that what
      // was sent before it and is still unanswered is overdue.
      if (!f.firstSend) continue;
      this.answeredSentAt = Math.max(this.answeredSentAt, f.sentAt);
      this.ackTimeout.observe(now - f.sentAt);
    }
    // The relay answers: whatever is still in flight has waited only from now.
    this.unansweredSince = this.window.count > 0 ? now : null;
    // Deleting also covers an ack that arrives after its deadline: the relay committed it all the same.
    const removed = this.o.journal.ack(ids);
    this.nudge();
    try {
      // Await first, then add: `+= await` would read the total before the await and lose overlapping acks.
      const n = await removed;
      this.stats.acked += n;
    } catch (err) {
      // The rows stay and are sent again later; the relay treats the repeat as a replay.
      this.o.log.error({ err: (err as Error).message, ids: ids.length }, "uplink: could not delete acknowledged events from the journal");
    }
  }

  /** Stops sending; waits for any journal call in progress, and leaves in-flight rows due for the next run. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.link = null;
    this.unansweredSince = null;
    this.disarm();
    await this.running;
    await this.requeueInFlight();
  }

  /** Sends the relay has not answered yet, nor anything since them: back in the window with a new deadline. */
  private holdAnotherWait(held: Flight[], now: number): void {
    const deadline = now + this.ackTimeout.currentMs;
    for (const f of held) this.window.add({ ...f, deadline, level: this.ackTimeout.level });
    this.o.journal.markSent(held.map((f) => f.id), deadline, false).catch((err: Error) => {
      // The window still holds them, so they are not sent twice meanwhile.
      this.o.log.warn({ err: err.message, ids: held.length }, "uplink: could not record a longer wait in the journal");
    });
  }

  /** Sends presumed lost: due again now, their send already counted. */
  private async sendAgainNow(ids: string[]): Promise<void> {
    this.stats.timeouts += ids.length;
    try {
      await this.o.journal.markSent(ids, this.clock(), false);
    } catch (err) {
      // They go again at their own deadline instead.
      this.o.log.warn({ err: (err as Error).message, ids: ids.length }, "uplink: could not make events presumed lost due again");
    }
    this.nudge();
  }

  private async requeueInFlight(): Promise<void> {
    const ids = this.window.clear();
    if (ids.length === 0) return;
    try {
      // Due again now, without counting a send: a dropped connection must not lengthen the next backoff.
      await this.o.journal.markSent(ids, this.clock(), false);
    } catch (err) {
      // They become due at their own deadline instead.
      this.o.log.warn({ err: (err as Error).message, ids: ids.length }, "uplink: could not make in-flight events due again");
    }
  }

  private async drain(): Promise<void> {
    let active = false;
    try {
      while (this.again && this.link && !this.stopped) {
        this.again = false;
        const r = await this.fill();
        if (r.sent > 0) active = true;
        if (r.more) this.again = true;
      }
      this.journalError = null;
    } catch (err) {
      // Most likely the journal is closing or its worker restarting; the poll tries again. Logged once per cause.
      const msg = (err as Error).message;
      if (msg !== this.journalError) this.o.log.warn({ err: msg }, "uplink: reading the journal failed");
      this.journalError = msg;
    } finally {
      this.busy = false;
    }
    this.pollDelay = active ? this.pollMs : Math.min(this.pollDelay * 2, this.idlePollMs);
    this.arm();
  }

  private journalError: string | null = null;

  /** The next poll: soon after activity, seldom when idle, and no later than the first ack deadline in flight. */
  private arm(): void {
    this.disarm();
    if (!this.link || this.stopped) return;
    let wait = this.pollDelay;
    const deadline = this.window.nextDeadline();
    if (deadline !== null) wait = Math.min(wait, Math.max(0, deadline - this.clock()));
    this.poll = setTimeout(() => {
      this.poll = null;
      this.nudge();
    }, wait);
    this.poll.unref();
  }

  private disarm(): void {
    if (this.poll) clearTimeout(this.poll);
    this.poll = null;
  }

  /** One pass. `more`: it filled every slot it asked for, so more may be due. */
  private async fill(): Promise<{ sent: number; more: boolean }> {
    const link = this.link;
    if (!link) return { sent: 0, more: false };
    const now = this.clock();
    // Checked on every pass (an ack nudges one), so a send presumed lost goes once it has waited long enough.
    const lost = this.window.drop((f) => this.ackTimeout.presumedLost(f.sentAt, this.answeredSentAt, now, f.critical));
    if (lost.length > 0) void this.sendAgainNow(lost.map((f) => f.id));
    const expired = this.window.expire(now);
    for (const f of expired) {
      this.stats.timeouts++;
      if (!f.critical) this.ackTimeout.timedOut(f.level);
    }
    // The rows of `again` are due in the journal now; `held` stay in flight for another (now longer) wait.
    const probeOut = this.probeId !== null && this.window.has(this.probeId);
    const answered = { firstSentAt: this.answeredSentAt, at: this.lastAnswerAt };
    const { held, probe } = repeatAfterWait(expired, answered, now, this.ackTimeout.currentMs, probeOut);
    if (probe) this.probeId = probe.id;
    if (held.length > 0) this.holdAnotherWait(held, now);
    const free = this.window.free();
    if (free.any === 0) return { sent: 0, more: false };

    const rows = await this.o.journal.pending(free.any, now);
    // The session may have ended (or been replaced) while the journal answered: start over on the new one.
    if (this.link !== link || this.stopped) return { sent: 0, more: this.link !== null };

    const at = this.clock();
    let slots = free.any;
    let nonCritical = free.nonCritical;
    const groups = new Map<number, string[]>();
    let sent = 0;
    for (const row of rows) {
      if (slots === 0) break;
      const env = row.envelope;
      if (this.window.has(env.id)) continue;
      const critical = env.severity === "critical";
      if (!critical) {
        if (nonCritical === 0) continue; // the last slot is kept for an alarm
        nonCritical--;
      }
      slots--;
      const historical = row.attempts > 0 || at - env.ts > this.o.historicalAfterMs;
      const signed = signEnvelope(historical ? { ...env, historical: true } : env, this.o.key);
      const next = at + this.ackTimeout.waitMs(row.attempts, critical);
      this.window.add({ id: env.id, critical, deadline: next, sentAt: at, firstSend: row.attempts === 0, level: this.ackTimeout.level });
      this.unansweredSince ??= at;
      link.publish(signed, JSON.stringify(signed));
      sent++;
      this.stats.sent++;
      if (row.attempts > 0) this.stats.resent++;
      const g = groups.get(next);
      if (g) g.push(env.id);
      else groups.set(next, [env.id]);
    }
    // Published first, recorded after: a crash in between only means the row is sent once more.
    // Rows sent in one pass share a deadline per attempt count, so this is one small transaction per group.
    for (const [next, ids] of groups) {
      this.o.journal.markSent(ids, next).catch((err: Error) => {
        // The row stays due; the window keeps it from being sent twice while it is in flight.
        this.o.log.warn({ err: err.message, ids: ids.length }, "uplink: could not record a send in the journal");
      });
    }
    return { sent, more: sent > 0 && rows.length === free.any };
  }
}
