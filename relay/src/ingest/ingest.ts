// Event ingest: check each message, group accepted events into batches, commit each batch in one
// transaction, and only then acknowledge (invariant 4: the hub deletes an event once acked).
//
// Replay protection rests on the signed event id plus dedupe: the id is inside the HMAC, so it cannot be
// changed without the hub's key, and an id already in the events table is a duplicate. A duplicate is
// acknowledged again (the hub may have missed the first ack and must be allowed to delete it) but never
// handed to onCommitted, so it cannot start a second call tree (invariant 5). This holds for as long as
// the events table keeps an id: the retention period must outlast any resend or replay horizon.
//
// The per-message checks (JSON, schema, hub, signature) may run in a pool of worker threads (verifyThreads):
// they need nothing but the message and the key the registry gives for its hub, and come back in the order
// handed in. Everything with state (keys, batches, commits, acks, backlog, metrics) stays on this thread.
import { availableParallelism } from "node:os";
import { performance } from "node:perf_hooks";
import type { Kysely } from "kysely";
import type { Logger } from "pino";
import type { Envelope } from "../../../protocol/envelope.js";
import type { Metrics } from "../metrics.js";
import type { Registry } from "../registry/registry.js";
import type { EventRow, RelayDb, Store } from "../store/store.js";
import { checkSignature, parseEnvelope, type Rejected } from "./verify-check.js";
import { VerifyPool, type VerifyJob, type VerifyOutcome } from "./verify-pool.js";

export type RejectReason = "too_large" | "not_json" | "schema" | "hub_mismatch" | "unknown_hub" | "bad_signature";

export interface IngestOptions {
  store: Store;
  registry: Registry;
  metrics: Metrics;
  log: Logger;
  batchMaxEvents: number;
  batchMaxWaitMs: number;
  maxPayloadBytes: number;
  clockSkewFlagMs: number;
  /** Called after a batch committed, once per hub, with every id of that hub in the batch (new and already known). */
  onAck: (hub: string, ids: string[], now: number) => void;
  /** Called for each newly committed event (never for a duplicate): the one trigger for escalation later. */
  onCommitted?: (hub: string, envelope: unknown) => void;
  /**
   * Runs inside the batch's transaction with the newly inserted events. Work that must happen exactly once
   * per new event even across a crash (e.g. creating an escalation row) belongs here: if it throws, the
   * batch rolls back and is retried. onCommitted alone is lost if the process dies right after the commit.
   */
  withinCommit?: (trx: Kysely<RelayDb>, inserted: Envelope[]) => Promise<void>;
  now?: () => number;
  /** Events held in memory (collecting, waiting or retrying) beyond which new messages are dropped unacked. Default 50,000. */
  maxBacklog?: number;
  /**
   * Worker threads for the per-message checks (JSON, schema, hub, signature); 0 runs them inline on this
   * thread. Default: none on two cores or fewer, else one fewer than the cores, at most 4. Batching, commits, acks and
   * their order stay on this thread either way.
   */
  verifyThreads?: number;
  /** @internal Tests: a turn with fewer messages than this (and none with the threads) is checked inline; default 8. */
  verifyInlineBelow?: number;
}

/** The verify threads used when none are configured: the cores beside the commit thread (at most 4) on 3+ cores. */
export function defaultVerifyThreads(): number {
  // On two cores or fewer the pool bought no throughput on our measurements (hub and relay shared the cores)
  // and cost CPU and a few ms of ack latency in bursts, so checks stay on the main thread there.
  const cores = availableParallelism();
  return cores <= 2 ? 0 : Math.min(4, cores - 1);
}

/** What a row, the batch and the acks need of an accepted event. */
type Facts = Pick<Envelope, "id" | "hub" | "boot" | "seq" | "ts" | "kind" | "type" | "severity" | "device" | "historical">;

/** A message handed to the verify pool, with what Ingest needs back when its outcome arrives. */
interface PoolJob extends VerifyJob {
  ticket: number;
  receivedAt: number;
}

const DEFAULT_MAX_BACKLOG = 50_000;
const RETRY_FIRST_MS = 100;
const RETRY_MAX_MS = 5_000;
/** ackSchema allows at most this many ids per message. */
const ACK_MAX_IDS = 5000;
const OVERLOAD_LOG_EVERY_MS = 10_000;

interface Accepted {
  hub: string;
  id: string;
  kind: Envelope["kind"];
  /** The parsed envelope when the checks ran here; from a worker it is parsed again only if a callback needs it. */
  env: Envelope | undefined;
  row: EventRow;
}

function envelopeOf(a: Accepted): Envelope {
  // Already validated and verified: the stored text is exactly what was checked.
  return (a.env ??= JSON.parse(a.row.payload) as Envelope);
}

class Batch {
  readonly items: Accepted[] = [];
  readonly ids = new Set<string>();
  /** Its wait time is over (or a flush asked for it): commit as soon as nothing else is in flight. */
  due = false;
  constructor(readonly no: number) {}
}

export class Ingest {
  private readonly now: () => number;
  private readonly maxBacklog: number;
  private batchNo = 0;
  private current: Batch;
  private readonly waiting: Batch[] = []; // full batches (and one being retried, at the head), in order
  private inflight: Batch | null = null;
  private waitTimer: NodeJS.Timeout | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private retryDelay = RETRY_FIRST_MS;
  private failures = 0;
  private backlog = 0; // events held, including those whose signature check is still running
  private readonly pool: VerifyPool | null;
  private closedPool = false; // the pool is stopped: a key lookup that ends now has nowhere to go
  // Every message past the first checks gets a ticket until it is accepted or dropped, so flush() can wait
  // for exactly the messages handed in before it (not for a quiet moment, which a drain may never have).
  private ticketNo = 0;
  private readonly unsettled = new Set<number>(); // insertion order is ticket order
  private settleWaiters: Array<{ ticket: number; resolve: () => void }> = [];
  private doneNo = 0; // every batch numbered ≤ this is committed (or given up at close)
  private doneWaiters: Array<{ no: number; resolve: () => void }> = [];
  private closing = false;
  private closed = false;
  private lastOverloadLog = 0;
  private droppedSinceLog = 0;

  constructor(private readonly o: IngestOptions) {
    this.now = o.now ?? Date.now;
    this.maxBacklog = o.maxBacklog ?? DEFAULT_MAX_BACKLOG;
    this.current = new Batch(++this.batchNo);
    const threads = o.verifyThreads ?? defaultVerifyThreads();
    this.pool = threads > 0 ? new VerifyPool(threads, (job, outcome) => this.pooled(job as PoolJob, outcome), o.log, o.verifyInlineBelow) : null;
  }

  /** Events held in memory, not yet committed. */
  get pending(): number {
    return this.backlog;
  }

  /** One MQTT message from `anxin/v1/{hub}/evt`. Never throws; invalid input is counted, logged and dropped. */
  handle(hubFromTopic: string, payload: Buffer): void {
    try {
      this.o.metrics.eventsReceived.inc();
      if (this.closed) return; // not acked: the hub sends it again to whichever instance is up
      if (payload.length > this.o.maxPayloadBytes) return this.reject(hubFromTopic, "too_large", undefined, { bytes: payload.length });
      const text = payload.toString("utf8");
      if (this.pool) return this.handlePooled(hubFromTopic, text);
      const parsed = parseEnvelope(hubFromTopic, text);
      if (!parsed.ok) return this.rejected(hubFromTopic, parsed);
      const env = parsed.env;
      if (this.backlog >= this.maxBacklog) return this.overloaded(hubFromTopic);
      const receivedAt = this.now();
      this.backlog++;
      // Nearly always the key is cached: check it here, without a promise per event.
      const cached = this.o.registry.cachedSigningKey(env.hub);
      if (cached !== undefined) return this.verified(hubFromTopic, env, cached, text, receivedAt);
      const ticket = this.take();
      this.o.registry
        .signingKey(env.hub)
        .then(
          (key) => this.verified(hubFromTopic, env, key, text, receivedAt),
          (err: unknown) => this.keyUnavailable(hubFromTopic, err, env.id),
        )
        .catch((err: unknown) => this.o.log.error({ err, hub: hubFromTopic }, "ingest: internal error"))
        .finally(() => this.settle(ticket));
    } catch (err) {
      this.o.log.error({ err, hub: hubFromTopic }, "ingest: internal error");
    }
  }

  /**
   * With verify threads: the message goes to the pool with its hub's key, and is accepted when its outcome
   * comes back (in order). The backlog counts it from here, so the pool's queue is bounded too; under
   * overload a message is dropped before it is parsed, i.e. counted as backlog_full whatever it holds.
   */
  private handlePooled(hub: string, text: string): void {
    if (this.backlog >= this.maxBacklog) return this.overloaded(hub);
    const job: PoolJob = { hub, text, key: null, ticket: this.take(), receivedAt: this.now() };
    this.backlog++;
    // The registry stays the one authority on keys: each message takes the key it gives now.
    const cached = this.o.registry.cachedSigningKey(hub);
    if (cached !== undefined) {
      job.key = cached;
      return (this.pool as VerifyPool).submit(job);
    }
    // Later messages of this hub wait on the same lookup, so they reach the pool in order.
    this.o.registry.signingKey(hub).then(
      (key) => {
        job.key = key;
        if (this.pool && !this.closedPool) return this.pool.submit(job);
        this.backlog--;
        this.settle(job.ticket);
      },
      (err: unknown) => {
        this.keyUnavailable(hub, err);
        this.settle(job.ticket);
      },
    );
  }

  /** An outcome from the pool, in the order messages were handed in. */
  private pooled(job: PoolJob, out: VerifyOutcome): void {
    try {
      if (Array.isArray(out)) {
        const [id, boot, seq, ts, kind, type, severity, device, historical] = out;
        const facts: Facts = { id, hub: job.hub, boot, seq, ts, kind, type, severity, ...(device === null ? {} : { device }), ...(historical ? { historical: true } : {}) };
        this.accept(facts, undefined, job.text, job.receivedAt);
      } else if (out.reason === "worker_failed") {
        this.backlog--;
        this.o.metrics.eventsRejected.inc({ reason: "worker_failed" });
      } else {
        this.backlog--;
        this.rejected(job.hub, out);
      }
    } catch (err) {
      this.o.log.error({ err, hub: job.hub }, "ingest: internal error");
    } finally {
      this.settle(job.ticket);
    }
  }

  private take(): number {
    const t = ++this.ticketNo;
    this.unsettled.add(t);
    return t;
  }

  private settle(ticket: number): void {
    this.unsettled.delete(ticket);
    if (this.settleWaiters.length === 0) return;
    const lowest = this.unsettled.size > 0 ? (this.unsettled.values().next().value as number) : Infinity;
    this.settleWaiters = this.settleWaiters.filter((w) => {
      if (w.ticket >= lowest) return true;
      w.resolve();
      return false;
    });
  }

  /** Commits what is buffered now and waits for it. */
  async flush(): Promise<void> {
    // Messages already handed in may still be waiting for their key or their checks: they belong to "now".
    await this.checked();
    const target = this.current.items.length > 0 ? this.current.no : this.current.no - 1;
    if (this.current.items.length > 0) this.current.due = true;
    this.pump();
    if (this.doneNo >= target) return;
    await new Promise<void>((resolve) => this.doneWaiters.push({ no: target, resolve }));
  }

  /**
   * Commits what is buffered and stops. A commit that fails now is not retried: those events stay unacked
   * in their hubs' journals and come back (to this relay after a restart, or to another instance).
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.closing = true;
    if (this.retryTimer) {
      clearTimeout(this.retryTimer);
      this.retryTimer = null;
    }
    await this.flush();
    if (this.waitTimer) clearTimeout(this.waitTimer);
    this.waitTimer = null;
    this.closedPool = true;
    await this.pool?.close();
  }

  /** Resolves once every message handed in so far is through its checks (accepted into a batch or dropped). */
  private async checked(): Promise<void> {
    if (this.unsettled.size === 0) return;
    const ticket = this.ticketNo;
    await new Promise<void>((resolve) => this.settleWaiters.push({ ticket, resolve }));
  }

  /** @internal Test hook: see checked(). */
  async _testChecked(): Promise<void> {
    await this.checked();
  }

  /** @internal Test hook: stop a verify worker as a crash would. */
  async _testKillVerifyWorker(i = 0): Promise<void> {
    await this.pool?._testKillWorker(i);
  }

  /** @internal Tests and benches: resolves once every verify worker has loaded. */
  async _verifyThreadsReady(): Promise<void> {
    await this.pool?.ready();
  }

  /** @internal Test hook: verify workers started so far (restarts included). */
  get _verifyWorkerStarts(): number {
    return this.pool?.starts ?? 0;
  }

  // ---- intake

  private reject(hub: string, reason: RejectReason, id?: string, extra?: Record<string, unknown>): void {
    this.o.metrics.eventsRejected.inc({ reason });
    // Never the envelope's data: it may hold personal data.
    this.o.log.warn({ hub, reason, ...(id ? { id } : {}), ...extra }, "ingest: message rejected");
  }

  private rejected(hub: string, r: Rejected): void {
    this.reject(hub, r.reason, r.id, r.extra);
  }

  private verified(hub: string, env: Envelope, key: Buffer | null, text: string, receivedAt: number): void {
    const bad = checkSignature(env, key);
    if (bad) {
      this.backlog--;
      return this.rejected(hub, bad);
    }
    this.accept(env, env, text, receivedAt);
  }

  /** The store could not be asked for the key: dropped unacked, the hub will send it again. */
  private keyUnavailable(hub: string, err: unknown, id?: string): void {
    this.backlog--;
    this.o.metrics.eventsRejected.inc({ reason: "key_unavailable" });
    this.o.log.error({ err, hub, ...(id ? { id } : {}) }, "ingest: signing key lookup failed; event left unacked");
  }

  private overloaded(hub: string): void {
    this.o.metrics.eventsRejected.inc({ reason: "backlog_full" });
    this.droppedSinceLog++;
    const now = this.now();
    if (now - this.lastOverloadLog >= OVERLOAD_LOG_EVERY_MS) {
      this.o.log.error({ hub, dropped: this.droppedSinceLog, backlog: this.backlog }, "ingest: backlog full (store not keeping up or down); dropping events unacked, hubs will resend");
      this.lastOverloadLog = now;
      this.droppedSinceLog = 0;
    }
  }

  private accept(env: Facts, parsed: Envelope | undefined, text: string, receivedAt: number): void {
    let b = this.current;
    if (b.ids.has(env.id)) {
      // The same event twice in one batch (a resend overtaking its ack): one row, one ack.
      this.backlog--;
      this.o.metrics.eventsDuplicate.inc();
      return;
    }
    const skew = env.ts - receivedAt;
    // Invariant 8: a wrong clock never costs an alarm; the event is kept with the relay's time beside it.
    // A historical event is old by nature (sent late from the hub's journal), so its age says nothing
    // about the hub's clock; only events sent as they happen are judged.
    const flagged = !env.historical && Math.abs(skew) > this.o.clockSkewFlagMs;
    if (flagged) {
      this.o.metrics.eventsSkewed.inc();
      this.o.log.info({ hub: env.hub, id: env.id, skewMs: skew }, "ingest: hub clock far from the relay's; event kept and flagged");
    }
    b.items.push({
      hub: env.hub,
      id: env.id,
      kind: env.kind,
      env: parsed,
      row: {
        id: env.id,
        hub: env.hub,
        boot: env.boot,
        seq: env.seq,
        ts: env.ts,
        receivedAt,
        kind: env.kind,
        type: env.type,
        severity: env.severity,
        device: env.device ?? null,
        payload: text,
        skewMs: flagged ? skew : null,
        historical: env.historical === true,
      },
    });
    b.ids.add(env.id);
    if (b.items.length === 1) {
      // The wait counts from the batch's first event, so a lone alarm waits at most batchMaxWaitMs.
      this.waitTimer = setTimeout(() => {
        this.waitTimer = null;
        b.due = true;
        this.pump();
      }, this.o.batchMaxWaitMs);
    }
    if (b.items.length >= this.o.batchMaxEvents) {
      b.due = true;
      this.waiting.push(b);
      if (this.waitTimer) clearTimeout(this.waitTimer);
      this.waitTimer = null;
      b = this.current = new Batch(++this.batchNo);
    }
    this.pump();
  }

  // ---- commit

  /** Starts the next commit if none is in flight. Commits stay in batch order. */
  private pump(): void {
    if (this.inflight || this.retryTimer) return;
    let b = this.waiting.shift();
    if (!b && this.current.due && this.current.items.length > 0) {
      b = this.current;
      if (this.waitTimer) clearTimeout(this.waitTimer);
      this.waitTimer = null;
      this.current = new Batch(++this.batchNo);
    }
    if (!b) return;
    const batch = b;
    this.inflight = batch;
    void this.commit(batch).then((ok) => this.committed(batch, ok));
  }

  private committed(batch: Batch, ok: boolean): void {
    this.inflight = null;
    if (ok) {
      this.finished(batch);
    } else if (this.closing) {
      this.backlog -= batch.items.length;
      this.o.log.warn({ events: batch.items.length }, "ingest: closing with a failed commit; those events stay unacked and will be resent");
      this.finished(batch);
    } else {
      this.waiting.unshift(batch);
      this.retryTimer = setTimeout(() => {
        this.retryTimer = null;
        this.pump();
      }, this.retryDelay);
      this.retryDelay = Math.min(this.retryDelay * 2, RETRY_MAX_MS);
    }
    this.pump();
  }

  private finished(batch: Batch): void {
    this.doneNo = batch.no;
    this.doneWaiters = this.doneWaiters.filter((w) => {
      if (w.no > this.doneNo) return true;
      w.resolve();
      return false;
    });
  }

  /** True once committed (acks and callbacks done); false if the transaction failed. Never throws. */
  private async commit(batch: Batch): Promise<boolean> {
    const rows = batch.items.map((a) => a.row);
    const t0 = performance.now();
    let inserted: Set<string>;
    let foreign: Set<string>;
    try {
      const within = this.o.withinCommit;
      const byId = within ? new Map(batch.items.map((a) => [a.id, a])) : undefined;
      const res = await this.o.store.insertEvents(
        rows,
        within && byId ? { withinCommit: (trx, ids) => within(trx, ids.map((id) => envelopeOf(byId.get(id) as Accepted))) } : {},
      );
      inserted = new Set(res.inserted);
      foreign = new Set(res.foreign);
    } catch (err) {
      this.failures++;
      // Not acked: the events stay in the hubs' journals whatever happens to this process.
      this.o.log.error(
        { err, events: rows.length, backlog: this.backlog, attempt: this.failures, retryInMs: this.closing ? null : this.retryDelay },
        "ingest: batch commit failed; not acknowledged, will retry",
      );
      return false;
    }
    if (this.failures > 0) this.o.log.warn({ afterFailures: this.failures }, "ingest: commits succeed again");
    this.failures = 0;
    this.retryDelay = RETRY_FIRST_MS;
    this.backlog -= batch.items.length;
    try {
      this.afterCommit(batch, inserted, foreign, (performance.now() - t0) / 1000);
    } catch (err) {
      // Committed is committed: an error here must not send the batch round again.
      this.o.log.error({ err }, "ingest: internal error after commit");
    }
    return true;
  }

  private afterCommit(batch: Batch, inserted: Set<string>, foreign: Set<string>, seconds: number): void {
    const rows = batch.items;
    const m = this.o.metrics;
    m.commitSeconds.observe(seconds);
    m.batchSize.observe(rows.length);

    const now = this.now();
    const perHub = new Map<string, string[]>();
    for (const a of batch.items) {
      if (foreign.has(a.id)) {
        // Another hub's event already has this id. Not acked: it stays in this hub's journal for an
        // operator to see, rather than being deleted as if it were stored.
        m.eventsRejected.inc({ reason: "id_collision" });
        this.o.log.error({ hub: a.hub, id: a.id }, "ingest: event id already stored for another hub; not acknowledged");
        continue;
      }
      let ids = perHub.get(a.hub);
      if (!ids) perHub.set(a.hub, (ids = []));
      ids.push(a.id);
    }
    for (const [hub, ids] of perHub) {
      for (let i = 0; i < ids.length; i += ACK_MAX_IDS) {
        try {
          this.o.onAck(hub, ids.slice(i, i + ACK_MAX_IDS), now);
        } catch (err) {
          this.o.log.error({ err, hub }, "ingest: onAck failed");
        }
      }
    }
    for (const a of batch.items) {
      if (foreign.has(a.id)) continue;
      if (!inserted.has(a.id)) {
        m.eventsDuplicate.inc();
        continue;
      }
      m.eventsCommitted.inc({ kind: a.kind });
      if (!this.o.onCommitted) continue;
      try {
        this.o.onCommitted(a.hub, envelopeOf(a));
      } catch (err) {
        this.o.log.error({ err, hub: a.hub, id: a.id }, "ingest: onCommitted failed");
      }
    }
  }
}
