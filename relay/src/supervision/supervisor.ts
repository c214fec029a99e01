// Hub supervision (invariant 6): a hub that loses its connection (the MQTT will) or falls silent past its
// heartbeat window opens a `hub_offline` incident; seeing it again closes it.
//
// A hub that stops on purpose (a restart, an update) says so last, with a planned stop signed with its key.
// That opens nothing: the hub has `plannedStopGraceS` (or less, if it said it would be back sooner) to come
// back with a birth of the same or a later boot. If it does, nothing happened; if not, the incident opens then,
// its reason saying it was a planned stop that did not come back. An unsigned or badly signed planned stop is
// ignored and counted (`events_rejected_total{reason="state_..."}`), so nobody on the path can silence
// supervision by forging one; the will and the heartbeats then decide as for any hub.
//
// Every transition is a conditional update in the store (`... WHERE online = 1`), so with several relay
// instances on one PostgreSQL exactly one records it, and the partial unique index on open incidents is the
// backstop. Pending planned stops live in the store too (planned-stops.ts), for the same reason. All of this
// instance's store work runs one piece at a time, in arrival order.
import type { Kysely } from "kysely";
import type { Logger } from "pino";
import { BurstLog } from "../../../lib/log/burst-log.js";
import { stateSchema, verifyState, type HubState } from "../../../protocol/messages.js";
import type { Metrics } from "../metrics.js";
import { HUB_OFFLINE, type HubTransition, type Store, type TransitionResult } from "../store/store.js";
import { duePlannedStops, plannedStopsOf, putPlannedStop, removePlannedStop, supervisionDb, type PlannedStop, type SupervisionDb } from "./planned-stops.js";

export interface SupervisorOptions {
  store: Store;
  metrics: Metrics;
  log: Logger;
  heartbeatIntervalS: number;
  missedHeartbeats: number;
  checkEveryS: number;
  /** How long a signed planned stop is waited out before a hub_offline incident opens (less if the hub says so); default 300. */
  plannedStopGraceS?: number;
  /** The hub's signing key (the registry opens sealed keys); default: the store's row read as a clear key. */
  signingKey?: (hub: string) => Promise<Buffer | null>;
  now?: () => number;
}

export const DEFAULT_PLANNED_STOP_GRACE_S = 300;

/** A state message waiting for the store: a birth or a will as a transition, or a planned stop still to verify. */
type PendingState = { kind: "transition"; t: HubTransition } | { kind: "planned"; hub: string; at: number; state: HubState };

/** Why a planned stop was not taken: counted in events_rejected_total under these reasons. */
type PlannedReject = "state_unsigned" | "state_bad_signature" | "state_unknown_hub";

/** Sightings are written at most this often: they come with every event. */
export const SEEN_FLUSH_MS = 1000;
const STATE_BATCH = 500;
const MAX_PENDING_STATES = 100_000;
const RETRY_MS = 1000;
/** Planned stops expired per pass at most (the rest wait for the next pass). */
const EXPIRE_BATCH = 500;

export class Supervisor {
  private readonly now: () => number;
  private readonly windowMs: number;
  private readonly graceMs: number;
  private readonly startedAt: number;
  private readonly db: Kysely<SupervisionDb>;
  private seen = new Map<string, number>();
  private states: PendingState[] = [];
  private chain: Promise<void> = Promise.resolve();
  private stateRunQueued = false;
  private checkTimer: NodeJS.Timeout | null = null;
  private seenTimer: NodeJS.Timeout | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  /** After stop(): the store is about to close, so nothing new is started on it. */
  private stopped = false;
  // A hub (or whoever holds its topic) sending bad planned stops again and again: once per burst of each hub.
  private readonly plannedRefusals: BurstLog;

  constructor(private readonly o: SupervisorOptions) {
    this.now = o.now ?? Date.now;
    this.plannedRefusals = new BurstLog(o.log, "supervision: planned stop refused; ignored (the will and heartbeats decide)", this.now);
    this.windowMs = o.heartbeatIntervalS * o.missedHeartbeats * 1000;
    this.graceMs = (o.plannedStopGraceS ?? DEFAULT_PLANNED_STOP_GRACE_S) * 1000;
    this.startedAt = this.now();
    this.db = supervisionDb(o.store.db);
  }

  /** A retained/birth/will message on `anxin/v1/{hub}/state`. */
  onState(hub: string, payload: Buffer): void {
    // Births and wills are retained: the instance that takes over reads this one again.
    if (this.stopped) return;
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
    if (state.planned && state.online) {
      this.o.log.warn({ hub }, "supervision: a planned stop that says online; ignored");
      return;
    }
    if (this.states.length >= MAX_PENDING_STATES) {
      this.o.log.error({ hub }, "supervision: state backlog full (store down?); state message dropped");
      return;
    }
    const at = this.now();
    if (state.planned) {
      // Verified in turn with the hub's other state messages (its key comes from the store).
      this.states.push({ kind: "planned", hub, at, state });
    } else {
      // A plain offline (the will, or an older hub's goodbye) means the hub is gone now.
      this.states.push({
        kind: "transition",
        t: state.online ? { op: "online", hub, at, boot: state.boot, reason: "recovered" } : { op: "offline", hub, at, reason: "will: connection lost", boot: state.boot },
      });
    }
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
    this.stopped = true;
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
    // A pass the timer started just before a stop: stop's own drain is the last store work.
    if (this.stopped) return;
    await this.run(async () => {
      const now = this.now();
      // After a (re)start, give hubs one full window to show up before calling anyone silent: the relay's
      // own absence is not theirs.
      const settled = now - this.startedAt >= this.windowMs;
      // The same for planned stops recorded before this instance started: the hub may have come back while no
      // relay was listening. Those that arrived since are due at their deadline.
      await this.expirePlannedStops(now, settled ? undefined : this.startedAt);
      if (settled) {
        const staleBefore = now - this.windowMs;
        let stale = await this.o.store.staleHubs(staleBefore);
        if (stale.length > 0) {
          // A hub waiting out a planned stop is silent on purpose; its grace decides, not its heartbeats.
          const waiting = await plannedStopsOf(this.db, stale);
          if (waiting.size > 0) stale = stale.filter((hub) => !waiting.has(hub));
        }
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
        const hubOf = (p: PendingState) => (p.kind === "planned" ? p.hub : p.t.hub);
        const ordered = batch
          .map((p, i) => [p, i] as const)
          .sort(([a, i], [b, j]) => (hubOf(a) < hubOf(b) ? -1 : hubOf(a) > hubOf(b) ? 1 : i - j))
          .map(([p]) => p);
        try {
          // Runs of births and wills go to the store together; a planned stop is verified and recorded where
          // it stands, so each hub's messages take effect in the order they came.
          let run: HubTransition[] = [];
          for (const p of ordered) {
            if (p.kind === "transition") {
              run.push(p.t);
              continue;
            }
            await this.applyTransitions(run);
            run = [];
            await this.plannedStop(p.hub, p.at, p.state);
          }
          await this.applyTransitions(run);
        } catch (err) {
          this.states.unshift(...batch);
          this.retryLater();
          throw err;
        }
      }
    });
  }

  /**
   * Births and wills, in order. A birth of the boot that announced a planned stop (or a later one) ends the
   * wait: the hub is back and nothing happened. A will of that boot is the tail of the planned stop (its
   * clean disconnect did not complete), so the grace still decides.
   */
  private async applyTransitions(list: HubTransition[]): Promise<void> {
    if (list.length === 0) return;
    const pending = await plannedStopsOf(this.db, list.map((t) => t.hub));
    let apply = list;
    const back: Array<{ stop: PlannedStop; boot: number | undefined; at: number }> = [];
    if (pending.size > 0) {
      apply = [];
      for (const t of list) {
        const stop = pending.get(t.hub);
        if (stop && t.op === "online" && (t.boot === undefined || t.boot >= stop.boot)) {
          pending.delete(t.hub);
          back.push({ stop, boot: t.boot, at: t.at });
        } else if (stop && t.op === "offline" && t.boot !== undefined && t.boot <= stop.boot) {
          this.o.log.info({ hub: t.hub, boot: t.boot }, "supervision: will after a planned stop of the same boot; the planned stop's grace still runs");
          continue;
        }
        apply.push(t);
      }
    }
    // The wait ends before the birth is written: should the store fail now, the birth is retried on its own.
    for (const b of back) {
      if (await removePlannedStop(this.db, b.stop))
        this.o.log.info({ hub: b.stop.hub, boot: b.boot, stoppedForMs: b.at - b.stop.stoppedAt, reason: b.stop.reason }, "supervision: hub back from a planned stop");
      // Unlike a retained birth replayed to a restarted relay, this one is news: the hub was seen now.
      this.onSeen(b.stop.hub, b.at);
    }
    if (apply.length > 0) this.report(await this.o.store.applyTransitions(apply), undefined, apply);
  }

  /**
   * A planned stop: taken only with a good signature from the hub's own key (invariant 11), for the boot the
   * relay knows or a later one, while the hub is online. Anything else changes nothing.
   */
  private async plannedStop(hub: string, at: number, state: HubState): Promise<void> {
    const auth = await this.o.store.getHubAuth(hub);
    const key = !auth || auth.status !== "active" ? null : this.o.signingKey ? await this.o.signingKey(hub) : auth.keyB64 ? Buffer.from(auth.keyB64, "base64") : null;
    if (!key) return this.rejectPlanned(hub, state, "state_unknown_hub");
    if (!state.sig) return this.rejectPlanned(hub, state, "state_unsigned");
    if (!verifyState(state, key)) return this.rejectPlanned(hub, state, "state_bad_signature");
    if (!auth!.online) {
      this.o.log.info({ hub, boot: state.boot }, "supervision: planned stop of a hub already offline; nothing to wait for");
      return;
    }
    if (auth!.lastBoot !== null && state.boot < auth!.lastBoot) {
      this.plannedRefusals.note(hub, { hub, boot: state.boot, lastBoot: auth!.lastBoot, reason: "earlier_boot" });
      return;
    }
    const graceMs = Math.min(this.graceMs, state.expectBackWithinS !== undefined ? state.expectBackWithinS * 1000 : this.graceMs);
    await putPlannedStop(this.db, {
      hub,
      boot: state.boot,
      stoppedAt: at,
      until: at + graceMs,
      reason: state.reason ?? "stopping",
      expectBackS: state.expectBackWithinS ?? null,
    });
    this.o.log.info({ hub, boot: state.boot, reason: state.reason, graceS: graceMs / 1000 }, "supervision: planned stop; waiting for the hub to come back");
  }

  private rejectPlanned(hub: string, state: HubState, reason: PlannedReject): void {
    this.o.metrics.eventsRejected.inc({ reason });
    this.plannedRefusals.note(hub, { hub, boot: state.boot, reason });
  }

  /** Planned stops whose grace ran out: the hub did not come back, so it is offline with an incident. */
  private async expirePlannedStops(now: number, recordedSince: number | undefined): Promise<void> {
    const due = await duePlannedStops(this.db, now, recordedSince, EXPIRE_BATCH);
    if (due.length === 0) return;
    const offline: HubTransition[] = due.map((stop) => ({
      op: "offline",
      hub: stop.hub,
      at: now,
      boot: stop.boot,
      reason: `planned stop (${stop.reason}) at ${new Date(stop.stoppedAt).toISOString()}, not back within ${Math.round((stop.until - stop.stoppedAt) / 1000)} s`,
    }));
    // The transition first, the row after: while the row is there no instance's heartbeat check takes the hub
    // for merely silent, and the transition is conditional, so of several instances expiring it one wins.
    // Should the delete fail, the next pass finds the hub offline already and only deletes.
    this.report(await this.o.store.applyTransitions(offline), undefined, offline);
    for (const stop of due) await removePlannedStop(this.db, stop);
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
    if (this.retryTimer || this.stopped) return;
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
