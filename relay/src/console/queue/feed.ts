// The change feed: one per plugin (not per stream), it reads the open incidents' rows and tells its
// subscribers what differs from what it last saw — an incident opened or changed, or one gone (closed).
// It looks every `pollMs`, which is how a change another relay instance made reaches this one's streams,
// and at once when the in-process notifier says this relay committed something. Diffing the rows rather
// than following a version column catches every kind of change (a step claimed by another instance
// touches only the timers), and costs one read of the open set, which is what a console shows in full
// anyway. It reads nothing while nobody is subscribed.
import type { Kysely } from "kysely";
import type { Logger } from "pino";
import type { LoopDb } from "../../store/closed-loop-schema.js";
import type { QueueNotifier } from "./notifier.js";
import { loadRows, type QueueRow } from "./rows.js";

export type QueueChange = { kind: "incident"; row: QueueRow; street: string | undefined } | { kind: "removed"; id: string; street: string | undefined };

export interface ChangeFeedOptions {
  db: Kysely<LoopDb>;
  log: Logger;
  notifier: QueueNotifier;
  pollMs: number;
}

export class ChangeFeed {
  /** The rows last emitted, by incident: the diff's base and a new subscriber's starting point. */
  private readonly seen = new Map<string, { row: QueueRow; street: string | undefined; json: string }>();
  private readonly listeners = new Set<(c: QueueChange) => void>();
  private primed = false;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private again = false;
  private unhook: (() => void) | null = null;

  constructor(private readonly o: ChangeFeedOptions) {}

  /** From now on `fn` gets every change; a primed feed first hands it the rows it holds (a late subscriber's starting point). */
  subscribe(fn: (c: QueueChange) => void): () => void {
    this.listeners.add(fn);
    if (this.primed) for (const s of this.seen.values()) fn({ kind: "incident", row: s.row, street: s.street });
    if (this.listeners.size === 1) this.start();
    return () => {
      if (this.listeners.delete(fn) && this.listeners.size === 0) this.stop();
    };
  }

  /** Look now (coalesced with a pass under way: one more runs right after it). */
  kick(): void {
    if (this.listeners.size > 0) void this.pass();
  }

  close(): void {
    this.listeners.clear();
    this.stop();
  }

  private start(): void {
    this.unhook = this.o.notifier.subscribe(() => this.kick());
    void this.pass();
  }

  private stop(): void {
    this.unhook?.();
    this.unhook = null;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    // Nobody to tell: the next subscriber starts from a fresh read.
    this.seen.clear();
    this.primed = false;
  }

  private pass(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    const run = (async () => {
      do {
        this.again = false;
        if (this.timer) clearTimeout(this.timer);
        this.timer = null;
        await this.diff().catch((err: unknown) => this.o.log.error({ err }, "console queue: reading the open incidents failed; trying again at the next poll"));
      } while (this.again && this.listeners.size > 0);
      if (this.listeners.size > 0) {
        this.timer = setTimeout(() => void this.pass(), this.o.pollMs);
        this.timer.unref();
      }
    })();
    this.running = run;
    return run.finally(() => {
      this.running = null;
    });
  }

  private async diff(): Promise<void> {
    const rows = await loadRows(this.o.db);
    // Unsubscribed meanwhile: the read belongs to nobody (and must not prime a later subscriber's base).
    if (this.listeners.size === 0) return;
    const open = new Set<string>();
    for (const { row, street } of rows) {
      open.add(row.id);
      const json = JSON.stringify([row, street ?? null]);
      if (this.seen.get(row.id)?.json === json) continue;
      this.seen.set(row.id, { row, street, json });
      this.emit({ kind: "incident", row, street });
    }
    for (const [id, s] of this.seen) {
      if (open.has(id)) continue;
      this.seen.delete(id);
      this.emit({ kind: "removed", id, street: s.street });
    }
    this.primed = true;
  }

  private emit(c: QueueChange): void {
    for (const fn of this.listeners) {
      try {
        fn(c);
      } catch (err) {
        this.o.log.error({ err }, "console queue: a stream failed to take a change");
      }
    }
  }
}
