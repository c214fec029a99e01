// Hub supervision (invariant 6): a hub that says goodbye, loses its connection (the MQTT will) or falls
// silent past its heartbeat window opens a `hub_offline` incident; seeing it again closes it.
//
// Every transition is a conditional update in the store (`... WHERE online = 1`), so with several relay
// instances on one PostgreSQL exactly one records it, and the partial unique index on open incidents is the
// backstop. All of this instance's store work runs one piece at a time, in arrival order.
import type { Logger } from "pino";
import { stateSchema } from "../../../protocol/messages.js";
import type { Metrics } from "../metrics.js";
import { HUB_OFFLINE, type HubTransition, type Store, type TransitionResult } from "../store/store.js";

export interface SupervisorOptions {
  store: Store;
  metrics: Metrics;
  log: Logger;
  heartbeatIntervalS: number;
  missedHeartbeats: number;
  checkEveryS: number;
  now?: () => number;
}

/** Sightings are written at most this often: they come with every event. */
export const SEEN_FLUSH_MS = 1000;
const STATE_BATCH = 500;
const MAX_PENDING_STATES = 100_000;
const RETRY_MS = 1000;

export class Supervisor {
  private readonly now: () => number;
  private readonly windowMs: number;
  private readonly startedAt: number;
  private seen = new Map<string, number>();
  private states: HubTransition[] = [];
  private chain: Promise<void> = Promise.resolve();
  private stateRunQueued = false;
  private checkTimer: NodeJS.Timeout | null = null;
  private seenTimer: NodeJS.Timeout | null = null;
  private retryTimer: NodeJS.Timeout | null = null;

  constructor(private readonly o: SupervisorOptions) {
    this.now = o.now ?? Date.now;
    this.windowMs = o.heartbeatIntervalS * o.missedHeartbeats * 1000;
    this.startedAt = this.now();
  }

  /** A retained/birth/will message on `anxin/v1/{hub}/state`. */
  onState(hub: string, payload: Buffer): void {
    let state;
    try {
      const parsed = stateSchema.safeParse(JSON.parse(payload.toString("utf8")));
      if (!parsed.success) {
        this.o.log.warn({ hub, issues: parsed.error.issues.slice(0, 5).map((i) => `${i.path.join(".")}: ${i.code}`) }, "supervision: invalid state message ignored");
        return;
      }
      state = parsed.data;
    } catch {
      this.o.log.warn({ hub }, "supervision: state message is not JSON; ignored");
      return;
    }
    if (this.states.length >= MAX_PENDING_STATES) {
      this.o.log.error({ hub }, "supervision: state backlog full (store down?); state message dropped");
      return;
    }
    const at = this.now();
    // The will and a clean goodbye look the same on the wire; either way the hub is gone now.
    this.states.push(
      state.online
        ? { op: "online", hub, at, boot: state.boot, reason: "recovered" }
        : { op: "offline", hub, at, reason: "will: connection lost", boot: state.boot },
    );
    this.queueStates();
  }

  /** Any committed event counts as a sign of life (heartbeats included). */
  onSeen(hub: string, at: number): void {
    const prev = this.seen.get(hub);
    if (prev === undefined || at > prev) this.seen.set(hub, at);
  }

  start(): void {
    if (this.checkTimer) return;
    this.checkTimer = setInterval(() => void this.check(), this.o.checkEveryS * 1000);
    this.checkTimer.unref();
    this.seenTimer = setInterval(() => void this.run(() => this.flushSeen()), SEEN_FLUSH_MS);
    this.seenTimer.unref();
  }

  /** Stops the timers; the last sightings and state messages are still written (await `drain()` to wait for them). */
  stop(): void {
    if (this.checkTimer) clearInterval(this.checkTimer);
    if (this.seenTimer) clearInterval(this.seenTimer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.checkTimer = this.seenTimer = this.retryTimer = null;
    void this.drain();
  }

  /** Writes pending state changes and sightings now and waits for them (and for any pass under way). */
  async drain(): Promise<void> {
    this.queueStates();
    await this.run(() => this.flushSeen());
  }

  /** Runs one supervision pass now (tests drive it with a controlled clock). */
  async check(): Promise<void> {
    await this.drain();
    await this.run(async () => {
      const now = this.now();
      // After a (re)start, give hubs one full window to show up before calling anyone silent: the relay's
      // own absence is not theirs.
      if (now - this.startedAt >= this.windowMs) {
        const staleBefore = now - this.windowMs;
        const stale = await this.o.store.staleHubs(staleBefore);
        if (stale.length > 0) {
          const res = await this.o.store.applyTransitions(stale.map((hub) => ({ op: "offline", hub, at: now, reason: "missed heartbeats", staleBefore })));
          this.report(res, "missed heartbeats");
        }
      }
      this.o.metrics.hubsOnline.set(await this.o.store.countOnlineHubs());
    });
  }

  // ---- internals

  /** Serialises this instance's store work; a failure is logged, never thrown to the timer. */
  private run(task: () => Promise<void>): Promise<void> {
    const next = this.chain.then(task).catch((err: unknown) => this.o.log.error({ err }, "supervision: store work failed"));
    this.chain = next;
    return next;
  }

  private queueStates(): void {
    if (this.stateRunQueued || this.states.length === 0) return;
    this.stateRunQueued = true;
    void this.run(async () => {
      this.stateRunQueued = false;
      while (this.states.length > 0) {
        // Stable sort by hub: per-hub order is kept and the lock order matches the store's other
        // multi-hub transactions.
        const batch = this.states.splice(0, STATE_BATCH);
        const ordered = batch.map((t, i) => [t, i] as const).sort(([a, i], [b, j]) => (a.hub < b.hub ? -1 : a.hub > b.hub ? 1 : i - j)).map(([t]) => t);
        try {
          this.report(await this.o.store.applyTransitions(ordered), undefined, ordered);
        } catch (err) {
          this.states.unshift(...batch);
          this.retryLater();
          throw err;
        }
      }
    });
  }

  private async flushSeen(): Promise<void> {
    if (this.seen.size === 0) return;
    const seen = this.seen;
    this.seen = new Map();
    try {
      this.report(await this.o.store.recordSeen(seen), "recovered");
    } catch (err) {
      // Put them back, keeping the later sighting where one arrived meanwhile.
      for (const [hub, at] of seen) this.onSeen(hub, at);
      throw err;
    }
  }

  private retryLater(): void {
    if (this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.queueStates();
    }, RETRY_MS);
    this.retryTimer.unref();
  }

  private report(results: TransitionResult[], why?: string, sent?: HubTransition[]): void {
    results.forEach((r, i) => {
      if (!r.changed) return;
      const reason = why ?? (sent?.[i]?.op === "offline" ? (sent[i] as { reason: string }).reason : "birth");
      if (r.op === "offline") {
        if (r.incident === "opened") this.o.metrics.hubIncidents.inc({ type: HUB_OFFLINE });
        this.o.log.warn({ hub: r.hub, reason, incident: r.incident }, "supervision: hub offline");
      } else {
        this.o.log.info({ hub: r.hub, reason, incident: r.incident }, "supervision: hub back online");
      }
    });
  }
}
