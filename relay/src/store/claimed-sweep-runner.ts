// The loop around a periodic job claimed atomically in the database (the retention sweep, the upkeep sweep):
// the job's timer is its one pending row, claimed by one conditional UPDATE; this only looks at every check
// whether it is due. The first schedule (and the takeover of a claim an earlier run of this relay left behind)
// is retried at every check until it succeeds, no two runs overlap on one instance, and stop() waits for the
// run under way.
import type { Logger } from "pino";

export interface ClaimedSweepRunnerOptions {
  /** Names the job in log lines: `retention`, `upkeep`. */
  name: string;
  /** Logged by start() when the job is disabled. */
  disabledMessage: string;
  /** Whether the job runs, and its own period (the check runs at least this often). */
  config: { enabled: boolean; everyS: number };
  checkEveryMs: number;
  log: Logger;
}

/** The job supplies its schedule, its claim takeover and the claimed run; this supplies the loop around them. */
export abstract class ClaimedSweepRunner<R> {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<R | undefined> | undefined;
  private stopped = false;
  private prepared = false;

  constructor(private readonly runner: ClaimedSweepRunnerOptions) {}

  /** Makes sure a run is scheduled; a second call, from any instance, adds nothing. */
  protected abstract schedule(): Promise<void>;
  /** Releases the pending run's claim held by an earlier run of this relay; the owners released. */
  protected abstract releaseEarlier(): Promise<string[]>;
  /** Claims the run if it is due and runs it; undefined when not due or another instance holds it. */
  protected abstract claimAndSweep(): Promise<R | undefined>;

  /** True once stop() was called: a run under way ends at its next safe point. */
  protected get stopping(): boolean {
    return this.stopped;
  }

  /** Schedules the first run if none is, takes back an earlier run's claim, and starts looking for it. */
  async start(): Promise<void> {
    const { name, log, config } = this.runner;
    if (!config.enabled) {
      log.info(this.runner.disabledMessage);
      return;
    }
    const tick = async () => {
      // Until the first schedule is written (the store may be down at start) it is tried at every tick.
      if (!this.prepared) await this.prepare();
      await this.runDue();
    };
    await this.prepare().catch((e: Error) => log.error({ err: e.message }, `could not schedule the ${name} sweep; trying again at the next check`));
    const every = Math.min(this.runner.checkEveryMs, config.everyS * 1000);
    this.timer = setInterval(() => void tick().catch((e: Error) => log.error({ err: e.message }, `${name} check failed`)), every);
    this.timer.unref();
  }

  /** The first schedule and the takeover of an earlier run's claim; start() calls it, tests may too. */
  async prepare(): Promise<void> {
    await this.schedule();
    const from = await this.releaseEarlier();
    if (from.length > 0) this.runner.log.warn({ from }, `took over the ${this.runner.name} sweep an earlier run of this relay left behind`);
    this.prepared = true;
  }

  /** Runs the job if due and claimed here; undefined when not due, held elsewhere, running here, or stopped. */
  runDue(): Promise<R | undefined> {
    if (this.running || this.stopped) return Promise.resolve(undefined);
    const p = this.claimAndSweep().finally(() => {
      this.running = undefined;
    });
    this.running = p;
    return p;
  }

  /** Stops looking and waits for the run under way (which ends at its next safe point). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => undefined);
  }
}
