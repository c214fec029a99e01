// The hub's own liveness: event-loop lag plus named checks other modules register (bus readers alive,
// last journal write ok, ...). The sd_notify watchdog pings only while ok() holds.
import { performance } from "node:perf_hooks";

export interface CheckResult {
  ok: boolean;
  detail?: string;
}

export interface HealthSnapshot {
  ok: boolean;
  checks: Record<string, CheckResult>;
  /** Worst event-loop lag seen within the recent window (including a stall still in progress). */
  eventLoopLagMs: number;
}

export interface HealthOptions {
  /** Lag above this makes the hub unhealthy. Default 1000 ms. */
  maxLagMs?: number;
  /**
   * Drift probe period. Lag is how late this timer fires, so a stall is underestimated by up to one
   * period; default 100 ms (a 1.2 s stall reads as at least 1.1 s).
   */
  probeIntervalMs?: number;
  /**
   * How long an observed stall keeps counting. Default 10 s, one watchdog ping period at WatchdogSec=30:
   * a single stall costs at most one ping, repeated stalls starve the watchdog and get the hub restarted.
   */
  lagWindowMs?: number;
  /** Monotonic clock in ms; injectable for tests. */
  now?: () => number;
}

/** The built-in check that reports event-loop lag; not available to register(). */
export const EVENT_LOOP_CHECK = "event-loop";

export class Health {
  private readonly checks = new Map<string, () => CheckResult>();
  private readonly maxLagMs: number;
  private readonly probeIntervalMs: number;
  private readonly lagWindowMs: number;
  private readonly now: () => number;
  private lastTick: number;
  /** Lag samples above zero, oldest first: [observedAt, lagMs]. */
  private samples: Array<[number, number]> = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(opts: HealthOptions = {}) {
    this.maxLagMs = opts.maxLagMs ?? 1000;
    this.probeIntervalMs = opts.probeIntervalMs ?? 100;
    this.lagWindowMs = opts.lagWindowMs ?? 10_000;
    this.now = opts.now ?? (() => performance.now());
    this.lastTick = this.now();
    // A drift probe rather than monitorEventLoopDelay: it also sees a stall that is still going on when
    // snapshot() is called from another timer that got to run first.
    this.timer = setInterval(() => this.tick(), this.probeIntervalMs);
    this.timer.unref();
  }

  /**
   * Adds a named check, run on every snapshot; keep it cheap and synchronous. Returns a function that
   * removes it. A name can be registered once.
   */
  register(name: string, check: () => CheckResult): () => void {
    if (name === EVENT_LOOP_CHECK) throw new Error(`health check name "${name}" is reserved`);
    if (this.checks.has(name)) throw new Error(`health check "${name}" is already registered`);
    this.checks.set(name, check);
    return () => {
      if (this.checks.get(name) === check) this.checks.delete(name);
    };
  }

  snapshot(): HealthSnapshot {
    const lag = Math.round(this.currentLagMs());
    let ok = lag <= this.maxLagMs;
    // Listed with the others so `anxin-hub status` can say why the hub is not OK.
    const checks: Record<string, CheckResult> = {
      [EVENT_LOOP_CHECK]: { ok, detail: `lag ${lag} ms (limit ${this.maxLagMs} ms)` },
    };
    for (const [name, check] of this.checks) {
      let result: CheckResult;
      try {
        const r = check();
        result = r.detail === undefined ? { ok: r.ok === true } : { ok: r.ok === true, detail: r.detail };
      } catch (err) {
        // A broken check is a failed check: better a restart than a watchdog fed by a hub that cannot tell.
        result = { ok: false, detail: `check threw: ${err instanceof Error ? err.message : String(err)}` };
      }
      checks[name] = result;
      if (!result.ok) ok = false;
    }
    return { ok, checks, eventLoopLagMs: lag };
  }

  ok(): boolean {
    return this.snapshot().ok;
  }

  /** Stops the lag probe (shutdown, tests). Checks still answer; lag then reflects only earlier stalls. */
  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private tick(): void {
    const t = this.now();
    const lag = t - this.lastTick - this.probeIntervalMs;
    this.lastTick = t;
    if (lag > 0) this.samples.push([t, lag]);
    this.prune(t);
  }

  private currentLagMs(): number {
    const t = this.now();
    this.prune(t);
    let worst = this.timer ? Math.max(0, t - this.lastTick - this.probeIntervalMs) : 0;
    for (const [, lag] of this.samples) if (lag > worst) worst = lag;
    return worst;
  }

  private prune(t: number): void {
    const cutoff = t - this.lagWindowMs;
    while (this.samples.length > 0 && this.samples[0]![0] < cutoff) this.samples.shift();
  }
}
