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
//
// This class only wires the steps together, each in its own module:
//   intake.ts        the checks, inline or in verify threads, and key lookups
//   backlog.ts       the bound on events held in memory, with a reserve for urgent ones
//   tickets.ts       which messages are still in their checks (what a flush waits for)
//   accepted.ts      an accepted event as a row; the clock-skew judgement; which events are urgent
//   batches.ts       collecting events into batches in two lanes (urgent ones first, each taking the routine
//                    batch that is due along), sealed when full or when their wait is over; which events
//                    are held until their commit (a copy of one is dropped, its commit acks it)
//   commit-loop.ts   one commit at a time, each lane in batch order, retried with backoff
//   transaction.ts   the transaction: rows, and the in-transaction hook (escalation) over new events
//   after-commit.ts  acks per hub, hand-on of new events, metrics
//   verified.ts      an event verified on another path (SMS): stored in a transaction of its own
import { availableParallelism } from "node:os";
import type { Logger } from "pino";
import { BurstLog } from "../../../lib/log/burst-log.js";
import type { Envelope } from "../../../protocol/envelope.js";
import type { Metrics } from "../metrics.js";
import type { Registry } from "../registry/registry.js";
import type { EventPath, Store } from "../store/store.js";
import { accepted, skewToFlag, type Facts } from "./accepted.js";
import { afterCommit } from "./after-commit.js";
import { Backlog, DEFAULT_MAX_BACKLOG } from "./backlog.js";
import { BatchCollector, DEFAULT_ALARM_BURST } from "./batches.js";
import { CommitLoop } from "./commit-loop.js";
import { Intake } from "./intake.js";
import { Rejections } from "./rejections.js";
import { Tickets } from "./tickets.js";
import { storeBatch, type WithinCommit } from "./transaction.js";
import { storeVerified, type VerifiedOutcome } from "./verified.js";

export type { RejectReason } from "./rejections.js";
export type { VerifiedOutcome } from "./verified.js";

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
  withinCommit?: WithinCommit;
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

export class Ingest {
  private readonly now: () => number;
  private readonly rejections: Rejections;
  // A hub whose clock is off is off for every event: once per burst of each hub, not once per event.
  private readonly skewLog: BurstLog;
  private readonly backlog: Backlog;
  private readonly tickets = new Tickets();
  private readonly batches: BatchCollector;
  private readonly commits: CommitLoop;
  private readonly intake: Intake;
  private closed = false;

  constructor(private readonly o: IngestOptions) {
    this.now = o.now ?? Date.now;
    this.rejections = new Rejections(o.metrics, o.log, this.now);
    this.skewLog = new BurstLog(o.log, "ingest: hub clock far from the relay's; event kept and flagged", this.now, { level: "info" });
    this.backlog = new Backlog(o.maxBacklog ?? DEFAULT_MAX_BACKLOG, o.metrics, o.log, this.now);
    this.batches = new BatchCollector(o.batchMaxEvents, o.batchMaxWaitMs, () => this.commits.pump(), { ...DEFAULT_ALARM_BURST, now: this.now });
    const afterCommitDeps = { metrics: o.metrics, log: o.log, rejections: this.rejections, now: this.now, onAck: o.onAck, onCommitted: o.onCommitted };
    this.commits = new CommitLoop(
      this.batches,
      {
        store: (batch) => storeBatch(o.store, batch.items, o.withinCommit),
        afterCommit: (batch, stored, seconds) => afterCommit(afterCommitDeps, batch.items, stored, seconds),
      },
      this.backlog,
      o.log,
    );
    this.intake = new Intake({
      registry: o.registry,
      backlog: this.backlog,
      tickets: this.tickets,
      rejections: this.rejections,
      log: o.log,
      now: this.now,
      accept: (facts, parsed, text, receivedAt) => this.accept(facts, parsed, text, receivedAt),
      threads: o.verifyThreads ?? defaultVerifyThreads(),
      verifyInlineBelow: o.verifyInlineBelow,
    });
  }

  /** Events held in memory, not yet committed. */
  get pending(): number {
    return this.backlog.size;
  }

  /** One MQTT message from `anxin/v1/{hub}/evt`. Never throws; invalid input is counted, logged and dropped. */
  handle(hubFromTopic: string, payload: Buffer): void {
    try {
      this.o.metrics.eventsReceived.inc();
      if (this.closed) return; // not acked: the hub sends it again to whichever instance is up
      if (payload.length > this.o.maxPayloadBytes) return this.rejections.reject(hubFromTopic, "too_large", undefined, { bytes: payload.length });
      const text = payload.toString("utf8");
      // A copy of an event still waiting for its commit goes before any check: in a storm the hubs resend
      // faster than commits come, and checking every copy cost more than the backlog cap's drops it replaced.
      if (this.batches.holds(hubFromTopic, leadingEventId(text))) {
        this.o.metrics.eventsDuplicate.inc();
        return;
      }
      this.intake.check(hubFromTopic, text);
    } catch (err) {
      this.o.log.error({ err, hub: hubFromTopic }, "ingest: internal error");
    }
  }

  /**
   * An event another path verified (verified.ts): an SMS alarm checked with the hub's key, without the
   * envelope signature the MQTT path insists on. Resolves once committed (the incident opened, as for an
   * MQTT alarm); rejects when it could not be stored, so the sender's provider can retry.
   */
  async handleVerified(hub: string, env: Envelope, o: { path: Exclude<EventPath, "mqtt"> }): Promise<VerifiedOutcome> {
    if (this.closed) throw new Error("ingest is closed");
    if (env.hub !== hub) throw new Error("event of another hub");
    this.o.metrics.eventsReceived.inc();
    const deps = { store: this.o.store, withinCommit: this.o.withinCommit, clockSkewFlagMs: this.o.clockSkewFlagMs, metrics: this.o.metrics, log: this.o.log, rejections: this.rejections, onCommitted: this.o.onCommitted };
    return storeVerified(deps, env, o.path, this.now());
  }

  /** Commits what is buffered now and waits for it. */
  async flush(): Promise<void> {
    // Messages already handed in may still be waiting for their key or their checks: they belong to "now".
    await this.tickets.settled();
    const target = this.batches.sealForFlush();
    this.commits.pump();
    await this.commits.done(target);
  }

  /**
   * Commits what is buffered and stops. A commit that fails now is not retried: those events stay unacked
   * in their hubs' journals and come back (to this relay after a restart, or to another instance).
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.commits.close();
    await this.flush();
    this.batches.stopWait();
    await this.intake.close();
  }

  /** @internal Test hook: resolves once every message handed in so far is through its checks. */
  async _testChecked(): Promise<void> {
    await this.tickets.settled();
  }

  /** @internal Test hook: stop a verify worker as a crash would. */
  async _testKillVerifyWorker(i = 0): Promise<void> {
    await this.intake.pool?._testKillWorker(i);
  }

  /** @internal Tests and benches: resolves once every verify worker has loaded. */
  async _verifyThreadsReady(): Promise<void> {
    await this.intake.pool?.ready();
  }

  /** @internal Test hook: verify workers started so far (restarts included). */
  get _verifyWorkerStarts(): number {
    return this.intake.pool?.starts ?? 0;
  }

  /** An event through its checks joins the batch being collected, unless that batch has it already. */
  private accept(f: Facts, parsed: Envelope | undefined, text: string, receivedAt: number): void {
    const skewMs = skewToFlag(f, receivedAt, this.o.clockSkewFlagMs);
    if (!this.batches.add(accepted(f, parsed, text, receivedAt, skewMs))) {
      // The same event twice before its commit (a resend overtaking its ack): one row, one ack.
      this.backlog.release();
      this.o.metrics.eventsDuplicate.inc();
      return;
    }
    if (skewMs !== null) {
      this.o.metrics.eventsSkewed.inc();
      this.skewLog.note(f.hub, { hub: f.hub, id: f.id, skewMs });
    }
    this.commits.pump();
  }
}

const ID_KEY = '"id":"';
const ULID_LENGTH = 26;

/**
 * The first `"id":"…"` of a message, unchecked: a hub writes its envelope's id before `data`, so for a hub's
 * own messages this is the event id. Used only to drop a copy of an event already held; a message whose
 * first `"id"` is something else at worst waits for its hub's next resend.
 */
export function leadingEventId(text: string): string | undefined {
  const at = text.indexOf(ID_KEY);
  if (at < 0) return undefined;
  const from = at + ID_KEY.length;
  return text.charCodeAt(from + ULID_LENGTH) === 34 ? text.slice(from, from + ULID_LENGTH) : undefined;
}
