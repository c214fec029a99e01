// Event ingest: check each message, group accepted events into batches, commit each batch in one
// transaction, and only then acknowledge (invariant 4: the hub deletes an event once acked).
//
// Replay protection rests on the signed event id plus dedupe: the id is inside the HMAC, so it cannot be
// changed without the hub's key, and an id already in the events table is a duplicate. A duplicate is
// acknowledged again (the hub may have missed the first ack and must be allowed to delete it) but never
// handed to onCommitted, so it cannot start a second call tree (invariant 5). This holds for as long as
// the events table keeps an id: the retention period must outlast any resend or replay horizon.
import { performance } from "node:perf_hooks";
import type { Kysely } from "kysely";
import type { Logger } from "pino";
import { envelopeSchema, type Envelope } from "../../../protocol/envelope.js";
import { verifyEnvelope } from "../../../protocol/signing.js";
import type { Metrics } from "../metrics.js";
import type { Registry } from "../registry/registry.js";
import type { EventRow, RelayDb, Store } from "../store/store.js";

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
}

const DEFAULT_MAX_BACKLOG = 50_000;
const RETRY_FIRST_MS = 100;
const RETRY_MAX_MS = 5_000;
/** ackSchema allows at most this many ids per message. */
const ACK_MAX_IDS = 5000;
const OVERLOAD_LOG_EVERY_MS = 10_000;

interface Accepted {
  hub: string;
  env: Envelope;
  row: EventRow;
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
  private verifying = 0;
  private verifyWaiters: Array<() => void> = [];
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
      let raw: unknown;
      try {
        raw = JSON.parse(text);
      } catch {
        return this.reject(hubFromTopic, "not_json");
      }
      const parsed = envelopeSchema.safeParse(raw);
      if (!parsed.success) {
        // Paths and codes only: values may be personal data.
        const issues = parsed.error.issues.slice(0, 5).map((i) => `${i.path.join(".")}: ${i.code}`);
        return this.reject(hubFromTopic, "schema", idOf(raw), { issues });
      }
      const env = parsed.data;
      // The broker's ACL already keeps a hub to its own topics; this is defence in depth.
      if (env.hub !== hubFromTopic) return this.reject(hubFromTopic, "hub_mismatch", env.id, { envelopeHub: env.hub });
      if (this.backlog >= this.maxBacklog) return this.overloaded(hubFromTopic);
      const receivedAt = this.now();
      this.backlog++;
      // Nearly always the key is cached: check it here, without a promise per event.
      const cached = this.o.registry.cachedSigningKey(env.hub);
      if (cached !== undefined) return this.verified(hubFromTopic, env, cached, text, receivedAt);
      this.verifying++;
      this.o.registry
        .signingKey(env.hub)
        .then(
          (key) => this.verified(hubFromTopic, env, key, text, receivedAt),
          (err: unknown) => {
            // The store could not be asked: dropped unacked, the hub will send it again.
            this.backlog--;
            this.o.metrics.eventsRejected.inc({ reason: "key_unavailable" });
            this.o.log.error({ err, hub: hubFromTopic, id: env.id }, "ingest: signing key lookup failed; event left unacked");
          },
        )
        .catch((err: unknown) => this.o.log.error({ err, hub: hubFromTopic }, "ingest: internal error"))
        .finally(() => {
          if (--this.verifying === 0) for (const w of this.verifyWaiters.splice(0)) w();
        });
    } catch (err) {
      this.o.log.error({ err, hub: hubFromTopic }, "ingest: internal error");
    }
  }

  /** Commits what is buffered now and waits for it. */
  async flush(): Promise<void> {
    // Messages already handed in may still be waiting for their key: they belong to "now".
    if (this.verifying > 0) await new Promise<void>((r) => this.verifyWaiters.push(r));
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
  }

  // ---- intake

  private reject(hub: string, reason: RejectReason, id?: string, extra?: Record<string, unknown>): void {
    this.o.metrics.eventsRejected.inc({ reason });
    // Never the envelope's data: it may hold personal data.
    this.o.log.warn({ hub, reason, ...(id ? { id } : {}), ...extra }, "ingest: message rejected");
  }

  private verified(hub: string, env: Envelope, key: Buffer | null, text: string, receivedAt: number): void {
    if (!key) return this.dropVerified(hub, "unknown_hub", env.id);
    if (!verifyEnvelope(env, key)) return this.dropVerified(hub, "bad_signature", env.id);
    this.accept(env, text, receivedAt);
  }

  private dropVerified(hub: string, reason: RejectReason, id: string): void {
    this.backlog--;
    this.reject(hub, reason, id);
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

  private accept(env: Envelope, text: string, receivedAt: number): void {
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
      env,
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
      const byId = within ? new Map(batch.items.map((a) => [a.env.id, a.env])) : undefined;
      const res = await this.o.store.insertEvents(
        rows,
        within && byId ? { withinCommit: (trx, ids) => within(trx, ids.map((id) => byId.get(id) as Envelope)) } : {},
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
      if (foreign.has(a.env.id)) {
        // Another hub's event already has this id. Not acked: it stays in this hub's journal for an
        // operator to see, rather than being deleted as if it were stored.
        m.eventsRejected.inc({ reason: "id_collision" });
        this.o.log.error({ hub: a.hub, id: a.env.id }, "ingest: event id already stored for another hub; not acknowledged");
        continue;
      }
      let ids = perHub.get(a.hub);
      if (!ids) perHub.set(a.hub, (ids = []));
      ids.push(a.env.id);
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
      if (foreign.has(a.env.id)) continue;
      if (!inserted.has(a.env.id)) {
        m.eventsDuplicate.inc();
        continue;
      }
      m.eventsCommitted.inc({ kind: a.env.kind });
      if (!this.o.onCommitted) continue;
      try {
        this.o.onCommitted(a.hub, a.env);
      } catch (err) {
        this.o.log.error({ err, hub: a.hub, id: a.env.id }, "ingest: onCommitted failed");
      }
    }
  }
}

/** An id worth logging from an unvalidated message (short and plain, or nothing). */
function idOf(raw: unknown): string | undefined {
  if (raw === null || typeof raw !== "object") return undefined;
  const id = (raw as { id?: unknown }).id;
  return typeof id === "string" && /^[A-Za-z0-9_-]{1,40}$/.test(id) ? id : undefined;
}
