// Decides when the rules' state is written and hands the document to the journal, which commits it in its
// worker with the events of the same tick. Asked at most once per flush, after actuator commands went out:
// nothing here ever runs before a valve command or makes a rule wait (invariant 1), and a failed write is
// logged and counted, never thrown into the rules.
import type { Logger } from "pino";
import { encodeSnapshot, significantKey, type RulesState } from "./snapshot.js";

export interface StateKeeperOptions {
  hub: string;
  boot: number;
  /** The rules' state now (references; serialised at once, never kept). */
  read: () => RulesState;
  now: () => number;
  log: Logger;
  /** Changes outside the significant part (readings, a peak, counted inactivity) are written at most this often. */
  refreshMs?: number;
}

export interface StateKeeperStats {
  writes: number;
  failures: number;
  lastWriteAt: number | null;
  lastError: string | null;
  bytes: number;
}

export class StateKeeper {
  private lastKey: string | null = null;
  private lastBody: string | null = null;
  private lastLookAt = Number.NEGATIVE_INFINITY;
  private force = false;
  private readonly st: StateKeeperStats = { writes: 0, failures: 0, lastWriteAt: null, lastError: null, bytes: 0 };

  constructor(private readonly o: StateKeeperOptions) {}

  /** The document to write now, or null when nothing worth a write changed. Never throws for a bad state. */
  take(): string | null {
    const s = this.o.read();
    const key = significantKey(s);
    const now = this.o.now();
    const same = !this.force && key === this.lastKey;
    if (same && now - this.lastLookAt < (this.o.refreshMs ?? 60_000)) return null;
    this.lastLookAt = now;
    const body = JSON.stringify(s);
    if (same && body === this.lastBody) return null;
    this.force = false;
    this.lastKey = key;
    this.lastBody = body;
    const doc = encodeSnapshot({ hub: this.o.hub, boot: this.o.boot, savedAt: now }, body);
    this.st.bytes = doc.length;
    return doc;
  }

  /** How the write went. A failure makes the next `take` give the whole state again, whatever changed. */
  done(err: Error | null): void {
    if (!err) {
      this.st.writes++;
      this.st.lastWriteAt = this.o.now();
      return;
    }
    this.st.failures++;
    this.st.lastError = err.message;
    this.lastKey = null;
    this.lastBody = null;
    this.o.log.error({ err: err.message, failures: this.st.failures }, "the rules' state could not be saved; retried, the rules carry on");
  }

  /** The next `take` writes whatever it finds (a clean stop saves the readings-level details too). */
  writeNext(): void {
    this.force = true;
  }

  stats(): StateKeeperStats {
    return { ...this.st };
  }
}
