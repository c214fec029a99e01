// The in-flight window: events published and not yet acknowledged by the relay. Bounded so a backlog
// cannot flood the broker (queueing alone would add latency to the next alarm), with one slot that only a
// critical event may take, so an alarm never waits behind a full window of readings.

export interface Flight {
  id: string;
  critical: boolean;
  /** When this send counts as unanswered; the journal row becomes due again at the same moment. */
  deadline: number;
  /** When it was sent, and whether it was the event's first send (only those measure the relay: ack-timeout.ts). */
  sentAt: number;
  firstSend: boolean;
  /** The ack timer's doubling it was sent under. */
  level: number;
}

export class InFlightWindow {
  private readonly flights = new Map<string, Flight>();
  private nonCritical = 0;

  constructor(readonly size: number) {
    if (!Number.isInteger(size) || size < 2) throw new Error("uplink: window must be an integer ≥ 2 (one slot is kept for critical events)");
  }

  get count(): number {
    return this.flights.size;
  }

  has(id: string): boolean {
    return this.flights.has(id);
  }

  /** Free slots in total, and how many of them a non-critical event may take. */
  free(): { any: number; nonCritical: number } {
    const any = this.size - this.flights.size;
    return { any, nonCritical: Math.max(0, Math.min(any, this.size - 1 - this.nonCritical)) };
  }

  add(f: Flight): void {
    if (this.flights.has(f.id)) return;
    this.flights.set(f.id, f);
    if (!f.critical) this.nonCritical++;
  }

  /** Removes these ids where present; returns the sends that were in flight. */
  settle(ids: Iterable<string>): Flight[] {
    const out: Flight[] = [];
    for (const id of ids) {
      const f = this.remove(id);
      if (f) out.push(f);
    }
    return out;
  }

  /** Drops the sends whose deadline has passed, so their slots free up and the rows can go again. */
  expire(now: number): Flight[] {
    return this.drop((f) => f.deadline <= now);
  }

  /** Drops the sends `lost` picks out, returning them. */
  drop(lost: (f: Flight) => boolean): Flight[] {
    const out: Flight[] = [];
    for (const f of this.flights.values()) if (lost(f)) out.push(f);
    for (const f of out) this.remove(f.id);
    return out;
  }

  /** The earliest deadline in flight, or null. */
  nextDeadline(): number | null {
    let min: number | null = null;
    for (const f of this.flights.values()) if (min === null || f.deadline < min) min = f.deadline;
    return min;
  }

  /** Empties the window (the session ended); returns what was in it. */
  clear(): string[] {
    const ids = [...this.flights.keys()];
    this.flights.clear();
    this.nonCritical = 0;
    return ids;
  }

  private remove(id: string): Flight | undefined {
    const f = this.flights.get(id);
    if (!f) return undefined;
    this.flights.delete(id);
    if (!f.critical) this.nonCritical--;
    return f;
  }
}
