// Work done in passes, on a timer and on demand: a pass never overlaps the one before, a failure is logged
// and never thrown to a timer, and stop() waits for the pass under way.
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

  constructor(private readonly o: SerialPassesOptions) {}

  get isStopped(): boolean {
    return this.stopped;
  }

  start(): void {
    if (this.timer || this.stopped) return;
    this.timer = setInterval(() => void this.run(), this.o.everyMs);
    this.timer.unref();
  }

  /** Queues `task` (by default the pass) after whatever is under way; resolves when it has run. */
  run(task: () => Promise<void> = this.o.pass): Promise<void> {
    const next = this.chain.then(task).catch((err: unknown) => this.o.log.error({ err: err instanceof Error ? err.message : String(err) }, `${this.o.what} failed`));
    this.chain = next;
    return next;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.chain;
  }
}
