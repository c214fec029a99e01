// Work done in passes, on a timer and on demand: a pass never overlaps the one before, a failure is logged
// and never thrown to a timer, and stop() waits for the pass under way.
//
// A pass can take longer than the timer's period (a storm's worth of births to look up): the timer then adds
// nothing while a pass of its own is still waiting to run, so passes do not pile up behind a slow one. After
// stop() nothing queued starts; the pass under way finishes (a long one checks `isStopped` to end early).
import type { Logger } from "pino";

export interface SerialPassesOptions {
  everyMs: number;
  /** Names the pass in the failure's log line. */
  what: string;
  log: Pick<Logger, "error">;
  pass: () => Promise<void>;
}

export class SerialPasses {
  private chain: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** A pass the timer queued has not started yet. */
  private timedWaiting = false;

  constructor(private readonly o: SerialPassesOptions) {}

  get isStopped(): boolean {
    return this.stopped;
  }

  start(): void {
    if (this.timer || this.stopped) return;
    this.timer = setInterval(() => {
      if (this.timedWaiting) return;
      this.timedWaiting = true;
      void this.run(() => {
        this.timedWaiting = false;
        return this.o.pass();
      });
    }, this.o.everyMs);
    this.timer.unref();
  }

  /** Queues `task` (by default the pass) after whatever is under way; resolves when it has run, or was dropped by stop(). */
  run(task: () => Promise<void> = this.o.pass): Promise<void> {
    const next = this.chain
      .then(() => (this.stopped ? undefined : task()))
      .catch((err: unknown) => this.o.log.error({ err: err instanceof Error ? err.message : String(err) }, `${this.o.what} failed`));
    this.chain = next;
    return next;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.chain;
  }
}
