// Collecting accepted events into batches. A batch is sealed when it is full or when its wait (counted from
// its first event, so a lone alarm waits at most maxWaitMs) is over; sealed batches are handed out in the
// order they were filled, which keeps each hub's events in the order they were accepted.
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
  /** Its wait time is over (or a flush asked for it): commit as soon as nothing else is in flight. */
  due = false;
  constructor(readonly no: number) {}
}

export class BatchCollector {
  private batchNo = 0;
  private current: Batch;
  private readonly waiting: Batch[] = []; // full batches (and one being retried, at the head), in order
  private waitTimer: NodeJS.Timeout | null = null;
  /** hub and id of every event in a batch not yet committed (or given up). */
  private readonly held = new Set<string>();

  constructor(
    private readonly maxEvents: number,
    private readonly maxWaitMs: number,
    /** A batch became due by its wait running out. */
    private readonly onDue: () => void,
  ) {
    this.current = new Batch(++this.batchNo);
  }

  /**
   * Adds to the batch being collected; false if that batch holds the id already (one row, one ack), or if
   * the hub's event is held in an earlier batch not yet committed (its commit acks it).
   */
  add(a: Accepted): boolean {
    const b = this.current;
    const key = heldKey(a);
    if (b.ids.has(a.id) || this.held.has(key)) return false;
    b.items.push(a);
    b.ids.add(a.id);
    this.held.add(key);
    if (b.items.length === 1) {
      this.waitTimer = setTimeout(() => {
        this.waitTimer = null;
        b.due = true;
        this.onDue();
      }, this.maxWaitMs);
    }
    if (b.items.length >= this.maxEvents) {
      b.due = true;
      this.waiting.push(b);
      this.stopWait();
      this.current = new Batch(++this.batchNo);
    }
    return true;
  }

  /** The next batch to commit, if one is due: full ones first, in order, then the one being collected. */
  takeDue(): Batch | undefined {
    const b = this.waiting.shift();
    if (b || !this.current.due || this.current.items.length === 0) return b;
    const due = this.current;
    this.stopWait();
    this.current = new Batch(++this.batchNo);
    return due;
  }

  /** True if the hub's event `id` is in a batch not yet committed. */
  holds(hub: string, id: string | undefined): boolean {
    return id !== undefined && this.held.size > 0 && this.held.has(heldKey({ hub, id }));
  }

  /** A batch committed (or given up while closing): its events may come again, as duplicates for the store. */
  settle(b: Batch): void {
    for (const a of b.items) this.held.delete(heldKey(a));
  }

  /** A batch whose commit failed goes back to the head, so nothing overtakes it. */
  putBack(b: Batch): void {
    this.waiting.unshift(b);
  }

  /** Makes what is being collected due now; returns the number of the last batch that holds anything. */
  sealForFlush(): number {
    if (this.current.items.length === 0) return this.current.no - 1;
    this.current.due = true;
    return this.current.no;
  }

  stopWait(): void {
    if (this.waitTimer) clearTimeout(this.waitTimer);
    this.waitTimer = null;
  }
}

const heldKey = (a: Pick<Accepted, "hub" | "id">): string => `${a.hub}\u0000${a.id}`;
