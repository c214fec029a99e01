// The per-message checks (JSON, schema, hub, signature) and the key lookups they need, either inline on
// this thread or in the verify threads. Checks of one hub's messages end in the order they were handed in,
// whichever road they took, so acceptance keeps each hub's order. Every message counts towards the backlog
// from the moment it is admitted, and holds a ticket while its checks run so a flush can wait for it.
import type { Logger } from "pino";
import type { Envelope } from "../../../protocol/envelope.js";
import type { Registry } from "../registry/registry.js";
import { factsFromWire, isUrgent, looksUrgent, type Facts } from "./accepted.js";
import type { Backlog } from "./backlog.js";
import type { Rejections } from "./rejections.js";
import type { Tickets } from "./tickets.js";
import { checkSignature, parseEnvelope } from "./verify-check.js";
import { VerifyPool, type VerifyJob, type VerifyOutcome } from "./verify-pool.js";

/** A message handed to the verify pool, with what is needed back when its outcome arrives. */
interface PoolJob extends VerifyJob {
  ticket: number;
  receivedAt: number;
}

export interface IntakeDeps {
  registry: Registry;
  backlog: Backlog;
  tickets: Tickets;
  rejections: Rejections;
  log: Logger;
  now: () => number;
  /** A message passed every check; `parsed` is there when it was checked on this thread. */
  accept: (facts: Facts, parsed: Envelope | undefined, text: string, receivedAt: number) => void;
  /** Worker threads for the checks; 0 checks inline. */
  threads: number;
  verifyInlineBelow?: number | undefined;
}

export class Intake {
  readonly pool: VerifyPool | null;
  private closedPool = false; // the pool is stopped: a key lookup that ends now has nowhere to go

  constructor(private readonly d: IntakeDeps) {
    this.pool = d.threads > 0 ? new VerifyPool(d.threads, (job, outcome) => this.pooled(job as PoolJob, outcome), d.log, d.verifyInlineBelow) : null;
  }

  /** One message's checks; the verdict comes to `accept` or the rejections, now or later. */
  check(hub: string, text: string): void {
    if (this.pool) return this.checkPooled(hub, text);
    this.checkInline(hub, text);
  }

  async close(): Promise<void> {
    this.closedPool = true;
    await this.pool?.close();
  }

  private checkInline(hub: string, text: string): void {
    const parsed = parseEnvelope(hub, text);
    if (!parsed.ok) return this.d.rejections.rejected(hub, parsed);
    const env = parsed.env;
    if (!this.d.backlog.admit(hub, isUrgent(env))) return;
    const receivedAt = this.d.now();
    // Nearly always the key is cached: check it here, without a promise per event.
    const cached = this.d.registry.cachedSigningKey(env.hub);
    if (cached !== undefined) return this.verify(hub, env, cached, text, receivedAt);
    const ticket = this.d.tickets.take();
    this.d.registry
      .signingKey(env.hub)
      .then(
        (key) => this.verify(hub, env, key, text, receivedAt),
        (err: unknown) => this.keyUnavailable(hub, err, env.id),
      )
      .catch((err: unknown) => this.d.log.error({ err, hub }, "ingest: internal error"))
      .finally(() => this.d.tickets.settle(ticket));
  }

  private verify(hub: string, env: Envelope, key: Buffer | null, text: string, receivedAt: number): void {
    const bad = checkSignature(env, key);
    if (bad) {
      this.d.backlog.release();
      return this.d.rejections.rejected(hub, bad);
    }
    this.d.accept(env, env, text, receivedAt);
  }

  private keyUnavailable(hub: string, err: unknown, id?: string): void {
    this.d.backlog.release();
    this.d.rejections.keyUnavailable(hub, err, id);
  }

  /**
   * With verify threads: the message goes to the pool with its hub's key, and is accepted when its outcome
   * comes back (in order). The backlog counts it from here, so the pool's queue is bounded too; under
   * overload a message is dropped before it is parsed, i.e. counted as backlog_full (unless its text looks
   * urgent, which admits it to the reserve).
   */
  private checkPooled(hub: string, text: string): void {
    if (!this.d.backlog.admit(hub, looksUrgent(text))) return;
    const job: PoolJob = { hub, text, key: null, ticket: this.d.tickets.take(), receivedAt: this.d.now() };
    // The registry stays the one authority on keys: each message takes the key it gives now.
    const cached = this.d.registry.cachedSigningKey(hub);
    if (cached !== undefined) {
      job.key = cached;
      return (this.pool as VerifyPool).submit(job);
    }
    // Later messages of this hub wait on the same lookup, so they reach the pool in order.
    this.d.registry.signingKey(hub).then(
      (key) => {
        job.key = key;
        if (this.pool && !this.closedPool) return this.pool.submit(job);
        this.d.backlog.release();
        this.d.tickets.settle(job.ticket);
      },
      (err: unknown) => {
        this.keyUnavailable(hub, err);
        this.d.tickets.settle(job.ticket);
      },
    );
  }

  /** An outcome from the pool, in the order messages were handed in. */
  private pooled(job: PoolJob, out: VerifyOutcome): void {
    try {
      if (Array.isArray(out)) {
        this.d.accept(factsFromWire(job.hub, out), undefined, job.text, job.receivedAt);
      } else if (out.reason === "worker_failed") {
        this.d.backlog.release();
        this.d.rejections.workerFailed();
      } else {
        this.d.backlog.release();
        this.d.rejections.rejected(job.hub, out);
      }
    } catch (err) {
      this.d.log.error({ err, hub: job.hub }, "ingest: internal error");
    } finally {
      this.d.tickets.settle(job.ticket);
    }
  }
}
