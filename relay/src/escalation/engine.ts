// The escalation engine: opens incidents from committed alarms (inside ingest's transaction, so an alarm and
// its incident and first timer commit together or not at all), runs due timers (claimed atomically, so any
// relay instance may run any step and none runs twice), places calls through the telephony adapter and
// turns their outcomes into acknowledgements. Ingest never waits for any of this: calls are placed from the
// timer loop, which a commit only nudges.
//
// This file is the loop; the work is in opening.ts (with evidence.ts), steps.ts, outcomes.ts, arrival.ts
// and hub-offline.ts.
import type { Kysely } from "kysely";
import type { Registry } from "prom-client";
import type { Envelope } from "../../../protocol/envelope.js";
import { notifyQueue } from "../console/queue/notifier.js";
import type { LoopDb } from "../store/closed-loop-schema.js";
import type { CallOutcome } from "../telephony/types.js";
import { ArrivalCheck } from "./arrival.js";
import { createMeters, type EscalationContext } from "./context.js";
import { HubOfflineSync } from "./hub-offline.js";
import { IncidentOpener } from "./opening.js";
import { OutcomeHandler } from "./outcomes.js";
import { StepRunner } from "./steps.js";
import { claimDue } from "./timers.js";

/** The parts of the shared context the caller gives; the engine adds the clock default, meters and kick. */
export interface EscalationEngineOptions extends Pick<EscalationContext, "db" | "telephony" | "incidents" | "forwarding" | "alerts" | "policies" | "log" | "instanceId"> {
  now?: () => number;
  /** How long a claimed timer stays ours; longer than a place() with all its retries. Default 60 s. */
  claimMs?: number;
  /** Timers claimed per pass. Default 50. */
  batch?: number;
  registry?: Registry;
}

const HUB_OFFLINE_SYNC_MS = 5000;
/** Timer runs in flight per instance at most; the rest wait for the next pass (their claims are not taken). */
const MAX_INFLIGHT = 200;

export class EscalationEngine {
  private readonly c: EscalationContext;
  private readonly batch: number;
  private readonly opener: IncidentOpener;
  private readonly steps: StepRunner;
  private readonly outcomes: OutcomeHandler;
  private readonly hubOffline: HubOfflineSync;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<number> | null = null;
  private again = false;
  private stopped = true;
  /** A kick's pass is scheduled and has not started yet. */
  private kickPending = false;
  private lastSync = -Infinity;
  /** Timer runs still placing calls (stop() waits for them). */
  private readonly inflight = new Set<Promise<void>>();

  constructor(o: EscalationEngineOptions) {
    this.c = {
      db: o.db,
      telephony: o.telephony,
      incidents: o.incidents,
      forwarding: o.forwarding,
      alerts: o.alerts,
      policies: o.policies,
      log: o.log,
      instanceId: o.instanceId,
      now: o.now ?? Date.now,
      claimMs: o.claimMs ?? 60_000,
      meters: createMeters(o.registry),
      kick: () => this.kick(),
    };
    this.batch = o.batch ?? 50;
    const arrival = new ArrivalCheck(this.c);
    this.opener = new IncidentOpener(this.c);
    this.steps = new StepRunner(this.c, arrival);
    this.outcomes = new OutcomeHandler(this.c, arrival);
    this.hubOffline = new HubOfflineSync(this.c, this.opener);
  }

  /** ingest's withinCommit: alarms open (or join) incidents; a cleared alarm is noted on its incident. */
  withinCommit(trx: Kysely<LoopDb>, inserted: Envelope[]): Promise<void> {
    return this.opener.withinCommit(trx, inserted);
  }

  /** Opens together the incidents that many alarms of one commit open (IncidentOpener.openFresh); the ids of the events it handled. */
  openFresh(trx: Kysely<LoopDb>, inserted: Envelope[]): Promise<Set<string>> {
    return this.opener.openFresh(trx, inserted);
  }

  /** A call's outcome from the telephony callback (idempotent). */
  onOutcome(o: CallOutcome): Promise<void> {
    return this.outcomes.onOutcome(o).finally(notifyQueue);
  }

  /** Mirrors supervision's hub_offline incidents now (the loop does it every few seconds). */
  syncHubOffline(): Promise<void> {
    return this.hubOffline.syncHubOffline();
  }

  /**
   * Runs every due timer and waits until none is in flight (tests call it with a controlled clock).
   * Returns how many timers this call claimed.
   */
  async runDue(): Promise<number> {
    const n = await this.claimPass();
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
    return n;
  }

  /** Forces the hub_offline sync on the next pass (tests). */
  syncSoon(): void {
    this.lastSync = -Infinity;
  }

  /** A timer fell due (a commit opened an incident, a step ended early): look now, not at the next poll. */
  kick(): void {
    // Kicks of one turn share a pass (a batch's alarms each kick): one look at the timers sees them all.
    if (this.stopped || this.kickPending) return;
    this.kickPending = true;
    setImmediate(() => {
      this.kickPending = false;
      // stop() may have run in between: a pass now would start calls that stop() no longer waits for.
      if (this.stopped) return;
      void this.claimPass().catch((err: unknown) => this.c.log.error({ err }, "escalation: run failed"));
    });
  }

  start(pollMs: number): void {
    if (!this.stopped) return;
    this.stopped = false;
    const tick = () => {
      this.claimPass()
        .catch((err: unknown) => this.c.log.error({ err }, "escalation: run failed"))
        .finally(() => {
          if (!this.stopped) {
            this.timer = setTimeout(tick, pollMs);
            this.timer.unref();
          }
        });
    };
    this.timer = setTimeout(tick, 0);
    this.timer.unref();
  }

  /** Stops the loop and waits for the steps under way; unfinished timers are picked up after a restart. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running?.catch(() => 0);
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
  }

  /**
   * Claims due timers and starts them without waiting for them: a step placing slow calls never holds up
   * the first call of a new incident. Passes are serialised per instance; a request during one runs
   * another right after it.
   */
  private claimPass(): Promise<number> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    const run = (async () => {
      let total = 0;
      do {
        this.again = false;
        if (this.c.now() - this.lastSync >= HUB_OFFLINE_SYNC_MS) {
          this.lastSync = this.c.now();
          await this.hubOffline.syncHubOffline().catch((err: unknown) => this.c.log.error({ err }, "escalation: hub_offline sync failed"));
        }
        // A stop ends the claiming: after a storm thousands of timers are due, and a stop that waited for a pass
        // to claim them all did not end (they stay in the store for the next run, here or elsewhere).
        while (!this.stopped && this.inflight.size < MAX_INFLIGHT) {
          const claimed = await claimDue(this.c.db, this.c.instanceId, this.c.now(), this.c.claimMs, Math.min(this.batch, MAX_INFLIGHT - this.inflight.size));
          if (claimed.length === 0) break;
          for (const t of claimed) {
            const p = this.steps.runTimer(t).finally(() => { this.inflight.delete(p); notifyQueue(); });
            this.inflight.add(p);
          }
          total += claimed.length;
          notifyQueue(); // the console's queue: these steps are under way
        }
      } while (this.again && !this.stopped);
      return total;
    })();
    this.running = run;
    return run.finally(() => {
      if (this.running === run) this.running = null;
    });
  }
}
