// Collecting accepted events into batches, in two lanes. Routine events fill a batch that is sealed when it
// is full or when its wait (counted from its first event) is over. Urgent events (alarms and the like, see
// isUrgent) fill a batch of their own that is due as soon as the commit loop is free (in a burst of alarms,
// after a few ms for the others to join, AlarmBurst): it is handed out
// before any routine batch, taking the next routine batch that is due into the same transaction, so in a
// reconnect storm an alarm waits for the commit in flight, not for every reading queued before it, and costs
// no commit (no fsync) of its own. Within a lane batches go out in the order they were filled, which keeps
// each hub's events of that lane in the order they were accepted; an urgent event may overtake a routine one
// of the same hub (the hub sends its alarms first too, and acks name ids, not positions).
//
// An event already held in any batch not yet committed is not taken again: a hub resends what is not acked
// within its ack timeout, and when commits fall behind (a reconnect storm on a slow store) those resends
// would otherwise fill the backlog and the transactions with copies, slowing the acks further. Ingest asks
// `holds` before a message's checks and `add` refuses a copy that got through them; either way the held
// copy's commit acks the id on the hub's topic, whichever session the hub is on by then.
import type { Accepted } from "./accepted.js";

export class Batch {
  readonly items: Accepted[] = [];
  readonly ids = new Set<string>();
  /**
   * The routine batch being collected: its wait time is over (or a flush asked for it), so it commits as soon
   * as nothing else is in flight. Full batches and urgent ones are due without it.
   */
  due = false;
  /** Numbered when its first event joins, so a flush waits only for batches that held something then. */
  no = 0;
  /** Numbers of the routine batches this urgent one carries (committed in the same transaction). */
  readonly absorbed: number[] = [];
  constructor(readonly urgent: boolean) {}

  absorb(r: Batch): void {
    this.items.push(...r.items);
    this.absorbed.push(r.no);
  }
}

/**
 * Alarms in a burst share a commit. An urgent batch is due at once, unless an urgent batch was taken less than
 * `withinMs` ago: then alarms are arriving in a burst (a district reconnecting, a fire reaching several
 * detectors), and it waits `gatherMs` for the others. In a reconnect storm each alarm had been committing on
 * its own, each an fsync, a fifth of the relay's thread; a lone alarm still commits at once.
 */
export interface AlarmBurst {
  withinMs: number;
  gatherMs: number;
  now: () => number;
}

export const DEFAULT_ALARM_BURST: Omit<AlarmBurst, "now"> = { withinMs: 100, gatherMs: 10 };

export class BatchCollector {
  private batchNo = 0;
  private current = new Batch(false);
  private urgentCurrent = new Batch(true);
  private readonly waiting: Batch[] = []; // full routine batches (and one being retried, at the head), in order
  private readonly urgentWaiting: Batch[] = []; // the same for urgent ones
  private waitTimer: NodeJS.Timeout | null = null;
  /** Set while the urgent batch being collected waits for the rest of a burst (AlarmBurst). */
  private gatherTimer: NodeJS.Timeout | null = null;
  private lastUrgentTaken = -Infinity;
  /** hub and id of every event in a batch not yet committed (or given up). */
  private readonly held = new Set<string>();
  /** Numbers of the batches holding events not yet committed (or given up). */
  private readonly open = new Set<number>();

  constructor(
    private readonly maxEvents: number,
    private readonly maxWaitMs: number,
    /** A batch became due by its wait running out. */
    private readonly onDue: () => void,
    private readonly burst: AlarmBurst = { ...DEFAULT_ALARM_BURST, now: Date.now },
  ) {}

  /**
   * Adds to the batch being collected in the event's lane; false if that batch holds the id already (one
   * row, one ack), or if the hub's event is held in an earlier batch not yet committed (its commit acks it).
   */
  add(a: Accepted): boolean {
    const b = a.urgent ? this.urgentCurrent : this.current;
    const key = heldKey(a);
    if (b.ids.has(a.id) || this.held.has(key)) return false;
    b.items.push(a);
    b.ids.add(a.id);
    this.held.add(key);
    if (b.items.length === 1) {
      b.no = ++this.batchNo;
      this.open.add(b.no);
      // An urgent batch is due as soon as it holds anything (takeUrgent), or in a burst once gathered; a
      // routine one after its wait.
      if (b.urgent) {
        if (this.burst.now() - this.lastUrgentTaken < this.burst.withinMs) {
          this.gatherTimer = setTimeout(() => {
            this.gatherTimer = null;
            this.onDue();
          }, this.burst.gatherMs);
        }
      } else {
        this.waitTimer = setTimeout(() => {
          this.waitTimer = null;
          b.due = true;
          this.onDue();
        }, this.maxWaitMs);
      }
    }
    if (b.items.length >= this.maxEvents) {
      if (b.urgent) {
        this.stopGather();
        this.urgentWaiting.push(b);
        this.urgentCurrent = new Batch(true);
      } else {
        this.waiting.push(b);
        this.stopWait();
        this.current = new Batch(false);
      }
    }
    return true;
  }

  /**
   * The next batch to commit, if one is due: an urgent one (full ones in order, then the one being collected)
   * carrying with it the routine batch that is due, if any, so that urgent events cost no commit of their
   * own and never hold routine ones back; else the routine one. A batch being retried keeps what it had.
   */
  takeDue(): Batch | undefined {
    const u = this.takeUrgent();
    if (u && u.absorbed.length > 0) return u;
    const r = this.takeRoutine();
    if (!u) return r;
    if (r) u.absorb(r);
    return u;
  }

  private takeUrgent(): Batch | undefined {
    const u = this.urgentWaiting.shift() ?? this.takeUrgentCurrent();
    if (u) this.lastUrgentTaken = this.burst.now();
    return u;
  }

  private takeUrgentCurrent(): Batch | undefined {
    if (this.urgentCurrent.items.length === 0 || this.gatherTimer) return undefined;
    const due = this.urgentCurrent;
    this.urgentCurrent = new Batch(true);
    return due;
  }

  private stopGather(): void {
    if (this.gatherTimer) clearTimeout(this.gatherTimer);
    this.gatherTimer = null;
  }

  private takeRoutine(): Batch | undefined {
    const b = this.waiting.shift();
    if (b || !this.current.due || this.current.items.length === 0) return b;
    const due = this.current;
    this.stopWait();
    this.current = new Batch(false);
    return due;
  }

  /** True if the hub's event `id` is in a batch not yet committed. */
  holds(hub: string, id: string | undefined): boolean {
    return id !== undefined && this.held.size > 0 && this.held.has(heldKey({ hub, id }));
  }

  /** A batch committed (or given up while closing): its events may come again, as duplicates for the store. */
  settle(b: Batch): void {
    for (const a of b.items) this.held.delete(heldKey(a));
    this.open.delete(b.no);
    for (const no of b.absorbed) this.open.delete(no);
  }

  /** True once every batch numbered ≤ `no` is committed (or given up). */
  settledUpTo(no: number): boolean {
    for (const n of this.open) if (n <= no) return false;
    return true;
  }

  /** A batch whose commit failed goes back to the head of its lane, so nothing of that lane overtakes it. */
  putBack(b: Batch): void {
    (b.urgent ? this.urgentWaiting : this.waiting).unshift(b);
  }

  /** Makes what is being collected due now; returns the number of the last batch that holds anything. */
  sealForFlush(): number {
    if (this.current.items.length > 0) this.current.due = true;
    this.stopGather();
    return this.batchNo;
  }

  stopWait(): void {
    if (this.waitTimer) clearTimeout(this.waitTimer);
    this.waitTimer = null;
    this.stopGather();
  }
}

const heldKey = (a: Pick<Accepted, "hub" | "id">): string => `${a.hub}\u0000${a.id}`;
