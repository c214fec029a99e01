// The hub's durable journal and outbox. Every event is committed here and stays until the relay
// acknowledges it after its own commit (invariant 4). All SQLite work runs in a worker thread, so the
// thread that closes valves and sounds sirens never waits for the disk (invariant 1).
import type { Worker } from "node:worker_threads";
import { startModuleWorker } from "../../../lib/daemon/worker.js";
import { pooledRandom } from "../../../lib/ids/pooled-random.js";
import { decodeTime, monotonicFactory } from "ulid";
import { envelopeSchema, PROTOCOL_VERSION, SEVERITY_RANK } from "../../../protocol/envelope.js";
import type { Envelope, EventDraft } from "../../../protocol/envelope.js";
import type { EventRow, OpenResult, PendingRow, Reply, Request, RequestMessage, StoreStats, WireError } from "./messages.js";

export interface JournalOptions {
  path: string;
  hub: string;
  /** Above this many rows, readings and then heartbeats are thinned, oldest first. */
  maxRows?: number;
  clock?: () => number;
}

export interface StoredEvent {
  envelope: Envelope;
  attempts: number;
  nextAttemptAt: number;
}

export interface JournalStats {
  rows: number;
  alarms: number;
  oldestTs: number | null;
  /** Sum of the stored envelopes' JSON sizes. */
  bytes: number;
  /** Failed commit transactions in this run (first tries and retries). */
  commitFailures: number;
  /** Readings/heartbeats dropped to respect maxRows (lifetime of the database, plus any dropped from memory). */
  thinned: number;
  boot: number;
  /** Events whose commit failed and that are held in memory until a retry commits them. */
  retryQueued: number;
}

export class JournalError extends Error {
  override name = "JournalError";
  constructor(message: string, readonly code?: string) {
    super(message);
  }
}

/** A draft that can never become a valid envelope: a programming error, nothing was written. */
export class JournalDraftError extends JournalError {
  override name = "JournalDraftError";
  constructor(readonly field: string, detail: string) {
    super(`journal: invalid event draft: ${field}: ${detail}`);
  }
}

/** The commit failed; the events are kept in memory and their commit is retried. */
export class JournalCommitError extends JournalError {
  override name = "JournalCommitError";
  constructor(message: string, code: string | undefined, readonly ids: string[]) {
    super(message, code);
  }
}

export class JournalClosedError extends JournalError {
  override name = "JournalClosedError";
  constructor() {
    super("journal: closed");
  }
}

const DEFAULT_MAX_ROWS = 200_000;
const RETRY_MIN_MS = 250;
const RETRY_MAX_MS = 10_000;
/** Bound on events held in memory while the disk refuses commits; protected kinds are never dropped. */
const MAX_RETRY_ROWS = 50_000;
const THINNABLE_KINDS = ["reading", "heartbeat"] as const;
/** Fields the journal or the uplink assign; a producer setting them is a bug. */
const RESERVED = ["v", "hub", "boot", "seq", "id", "sig", "historical"] as const;
const PLACEHOLDER_ID = "0".repeat(26);

function startWorker(): Worker {
  return startModuleWorker(import.meta.url, "worker");
}

interface AppendEntry {
  rows: EventRow[];
  envelopes: Envelope[];
  resolve(envelopes: Envelope[]): void;
  reject(err: Error): void;
}

type Outstanding =
  | { kind: "call"; op: Request["op"]; resolve(value: unknown): void; reject(err: Error): void }
  /** `state`: the message also carried the rules' state. */
  | { kind: "append"; entries: AppendEntry[]; state: boolean }
  | { kind: "retry"; rows: EventRow[]; state: boolean; done(ok: boolean): void };

/**
 * Where the journal gets the rules' state to save: asked once per flush after `stateChanged()`, it returns the
 * document to write, or null when nothing worth writing changed. `done` hears how each write went.
 */
export interface StateSource {
  take(): string | null;
  done(err: Error | null): void;
}

/** Told the ids the uplink sent (an attempt counted) or the relay acknowledged (rows deleted). */
export type DeliveryListener = (op: "sent" | "acked", ids: string[], at: number) => void;

interface Prepared {
  env: Envelope;
  rest: string;
  now: number;
}

export class Journal {
  private worker: Worker | null = null;
  private reffed = false;
  private terminating = false;
  private opened = false;
  private respawnTimer: NodeJS.Timeout | null = null;
  private rid = 0;
  private readonly outstanding = new Map<number, Outstanding>();
  /** Requests made while the worker is being restarted; posted after its open. */
  private backlog: RequestMessage[] = [];

  private bootNo = 0;
  private seq = 0;
  private idFloor = 0;
  private readonly ulid = monotonicFactory(pooledRandom);
  private buffered: AppendEntry[] = [];
  private flushQueued = false;

  private retryQueue: EventRow[] = [];
  private retryTimer: NodeJS.Timeout | null = null;
  private retryDelay = RETRY_MIN_MS;
  private retryInFlight: Promise<boolean> | null = null;
  private commitFailures = 0;
  private droppedInMemory = 0;

  private closing: Promise<void> | null = null;
  private idleWaiters: (() => void)[] = [];

  private stateSource: StateSource | null = null;
  private readonly deliveryListeners = new Set<DeliveryListener>();
  private stateWanted = false;
  private stateRetryTimer: NodeJS.Timeout | null = null;
  private savedStateAtOpen: string | null = null;
  private savedStateErrorAtOpen: string | null = null;

  private constructor(
    private readonly path: string,
    private readonly hub: string,
    private readonly maxRows: number,
    private readonly clock: () => number,
  ) {}

  /** This run's boot counter (1 on a fresh database). */
  get boot(): number {
    return this.bootNo;
  }

  /** The rules' state as it was committed when this journal opened (before this run wrote any), or null. */
  get savedState(): string | null {
    return this.savedStateAtOpen;
  }

  /** Why the saved state could not be read at open, if it could not (the journal itself opened). */
  get savedStateError(): string | null {
    return this.savedStateErrorAtOpen;
  }

  static async open(opts: JournalOptions): Promise<Journal> {
    if (typeof opts.path !== "string" || opts.path === "") throw new JournalError("journal: path is required");
    if (!envelopeSchema.shape.hub.safeParse(opts.hub).success) {
      throw new JournalError(`journal: hub id ${JSON.stringify(opts.hub)} is not a valid envelope hub id`);
    }
    const maxRows = opts.maxRows ?? DEFAULT_MAX_ROWS;
    if (!Number.isInteger(maxRows) || maxRows < 1) throw new JournalError("journal: maxRows must be a positive integer");

    const j = new Journal(opts.path, opts.hub, maxRows, opts.clock ?? Date.now);
    j.spawn();
    let opened: OpenResult;
    try {
      opened = (await j.request({ op: "open", path: j.path, maxRows, bumpBoot: true })) as OpenResult;
    } catch (err) {
      j.terminating = true;
      await j.worker?.terminate();
      const e = err as JournalError;
      throw new JournalError(`journal: cannot open ${opts.path}: ${e.message.replace(/^journal: open failed: /, "")}`, e.code);
    }
    j.opened = true;
    j.bootNo = opened.boot;
    j.savedStateAtOpen = opened.state;
    j.savedStateErrorAtOpen = opened.stateError ?? null;
    // Ids stay above everything committed before, even if the clock came back from a power cut behind.
    if (opened.lastId) j.idFloor = decodeTime(opened.lastId) + 1;
    return j;
  }

  /** Resolves once the event is durably committed. seq, id and ts are assigned now, in call order. */
  append(draft: EventDraft): Promise<Envelope> {
    return this.enqueue([draft], false).then((envs) => envs[0] as Envelope);
  }

  /**
   * The rules' state is saved from `source`: after each `stateChanged()` the next flush asks it for the document
   * and commits it in the same transaction as the events appended in the same tick, so an alarm event and the
   * state that knows of it are committed together or not at all. Nothing here ever blocks the caller: the
   * write runs in the worker like every append.
   */
  setStateSource(source: StateSource): void {
    this.stateSource = source;
  }

  /** Something worth saving may have changed: the next flush (this tick) asks the source. Never throws. */
  stateChanged(): void {
    if (this.closing || !this.stateSource) return;
    this.stateWanted = true;
    this.queueFlush();
  }

  /** All drafts are validated first and committed in one transaction. */
  appendMany(drafts: EventDraft[]): Promise<Envelope[]> {
    if (!Array.isArray(drafts)) return Promise.reject(new JournalDraftError("drafts", "expected an array"));
    if (drafts.length === 0) return Promise.resolve([]);
    return this.enqueue(drafts, true);
  }

  /** Due rows, most urgent severity first, then oldest. */
  async pending(limit: number, now: number = this.clock()): Promise<StoredEvent[]> {
    this.assertOpen();
    if (!Number.isInteger(limit) || limit < 0) throw new JournalError("journal: pending limit must be a non-negative integer");
    if (limit === 0) return [];
    const rows = (await this.request({ op: "pending", limit, now })) as PendingRow[];
    return rows.map((r) => ({
      envelope: JSON.parse(r.payload) as Envelope,
      attempts: r.attempts,
      nextAttemptAt: r.nextAttemptAt,
    }));
  }

  /** Records a send (attempts + 1) and when the row is due again; `countAttempt: false` only reschedules. */
  async markSent(ids: string[], nextAttemptAt: number, countAttempt = true): Promise<void> {
    this.assertOpen();
    if (!Number.isFinite(nextAttemptAt)) throw new JournalError("journal: nextAttemptAt must be a number");
    if (ids.length === 0) return;
    await this.request({ op: "markSent", ids, nextAttemptAt, countAttempt });
    if (countAttempt) this.tellDelivery("sent", ids);
  }

  /**
   * Hears sends and acknowledgements (after the journal recorded them): commissioning proves a test event's
   * path with it. A listener must not throw; one that does is ignored, never the journal's problem.
   */
  onDelivery(listener: DeliveryListener): () => void {
    this.deliveryListeners.add(listener);
    return () => this.deliveryListeners.delete(listener);
  }

  private tellDelivery(op: "sent" | "acked", ids: string[]): void {
    const at = this.clock();
    for (const l of this.deliveryListeners) {
      try {
        l(op, ids, at);
      } catch {
        /* a listener's fault, never the journal's */
      }
    }
  }

  /** Deletes the acknowledged rows in one transaction; unknown ids are ignored. */
  async ack(ids: string[]): Promise<number> {
    this.assertOpen();
    if (ids.length === 0) return 0;
    const n = (await this.request({ op: "ack", ids })) as number;
    this.tellDelivery("acked", ids);
    return n;
  }

  async stats(): Promise<JournalStats> {
    this.assertOpen();
    const s = (await this.request({ op: "stats" })) as StoreStats;
    return {
      rows: s.rows,
      alarms: s.alarms,
      oldestTs: s.oldestTs,
      bytes: s.bytes,
      commitFailures: this.commitFailures,
      thinned: s.thinned + this.droppedInMemory,
      boot: this.bootNo,
      retryQueued: this.retryQueue.length,
    };
  }

  /**
   * Waits for every append made so far, tries once more to commit anything held for retry, then closes.
   * Rejects if events could still not be committed (they are lost with this process: the caller must log it).
   */
  close(): Promise<void> {
    return (this.closing ??= this.shutdown());
  }

  /** @internal Test hook: run a PRAGMA on the writer connection. */
  _testPragma(sql: string): Promise<unknown> {
    return this.request({ op: "pragma", sql });
  }

  /** @internal Test hook: stop the worker as a crash would. */
  async _testKillWorker(): Promise<void> {
    await this.worker?.terminate();
  }

  // --- appends -------------------------------------------------------------------------------------

  private enqueue(drafts: unknown[], many: boolean): Promise<Envelope[]> {
    if (this.closing) return Promise.reject(new JournalClosedError());
    let prepared: Prepared[];
    try {
      prepared = drafts.map((d, i) => this.prepare(d, many ? `drafts[${i}].` : ""));
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    // Only valid drafts reach this point, so seq has no holes the relay would wait for.
    const envelopes: Envelope[] = [];
    const rows: EventRow[] = [];
    for (const p of prepared) {
      const seq = ++this.seq;
      const id = this.ulid(Math.max(p.now, this.idFloor));
      const env = { ...p.env, seq, id };
      const payload =
        `{"v":${PROTOCOL_VERSION},"hub":${JSON.stringify(this.hub)},"boot":${this.bootNo},"seq":${seq},` +
        `"id":"${id}","ts":${env.ts},${p.rest.slice(1)}`;
      envelopes.push(env);
      rows.push({
        id,
        boot: this.bootNo,
        seq,
        ts: env.ts,
        kind: env.kind,
        type: env.type,
        severity: env.severity,
        rank: SEVERITY_RANK[env.severity],
        payload,
        size: Buffer.byteLength(payload),
        createdAt: p.now,
      });
    }
    return new Promise<Envelope[]>((resolve, reject) => {
      this.buffered.push({ rows, envelopes, resolve, reject });
      this.queueFlush();
    });
  }

  private queueFlush(): void {
    if (this.flushQueued) return;
    // Appends made in the same tick travel as one message; no timer, so a lone append goes at once.
    this.flushQueued = true;
    queueMicrotask(() => this.flush());
  }

  /**
   * The state document to send with this message, if one is wanted and the source has one. While events are
   * held for a retry the state waits for that retry and goes with it: it may lag the events, never lead them.
   */
  private takeState(forRetry = false): string | undefined {
    if (!this.stateWanted || !this.stateSource) return undefined;
    if (!forRetry && (this.retryQueue.length > 0 || this.retryInFlight)) return undefined;
    this.stateWanted = false;
    try {
      return this.stateSource.take() ?? undefined;
    } catch (err) {
      this.stateDone(err instanceof Error ? err : new Error(String(err)));
      return undefined;
    }
  }

  private stateDone(err: Error | null): void {
    try {
      this.stateSource?.done(err);
    } catch {
      // the source's own bookkeeping failing is no reason to disturb the journal
    }
    if (err && !this.stateRetryTimer && !this.closing) {
      // Saved again after the same back-off as failed events; the source gives its whole state again.
      this.stateRetryTimer = setTimeout(() => {
        this.stateRetryTimer = null;
        this.stateChanged();
      }, this.retryDelay);
      this.stateRetryTimer.unref();
    }
  }

  private prepare(draft: unknown, prefix: string): Prepared {
    if (typeof draft !== "object" || draft === null || Array.isArray(draft)) {
      throw new JournalDraftError(prefix ? prefix.slice(0, -1) : "draft", "expected an object");
    }
    for (const k of RESERVED) {
      if (Object.hasOwn(draft, k)) throw new JournalDraftError(prefix + k, "is assigned by the hub, not by the producer");
    }
    const now = this.clock();
    const { ts, ...body } = draft as EventDraft;
    const env = { v: PROTOCOL_VERSION, hub: this.hub, boot: this.bootNo, seq: 1, id: PLACEHOLDER_ID, ts: ts ?? now, ...body };
    const parsed = envelopeSchema.safeParse(env);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      let field = issue?.path.map(String).join(".") ?? "";
      if (!field && issue?.code === "unrecognized_keys") field = issue.keys.join(",");
      throw new JournalDraftError(prefix + (field || "draft"), issue?.message ?? parsed.error.message);
    }
    let rest: string;
    try {
      rest = JSON.stringify(body);
    } catch (err) {
      const bad = Object.keys(body).find((k) => {
        try {
          JSON.stringify((body as Record<string, unknown>)[k]);
          return false;
        } catch {
          return true;
        }
      });
      throw new JournalDraftError(prefix + (bad ?? "draft"), `not serialisable as JSON: ${(err as Error).message}`);
    }
    return { env, rest, now };
  }

  private flush(): void {
    this.flushQueued = false;
    const state = this.takeState();
    if (this.buffered.length === 0 && state === undefined) return;
    const entries = this.buffered;
    this.buffered = [];
    const rows = entries.length === 1 ? (entries[0] as AppendEntry).rows : entries.flatMap((e) => e.rows);
    this.post(state === undefined ? { op: "append", rows } : { op: "append", rows, state }, { kind: "append", entries, state: state !== undefined });
  }

  private commitFailed(entries: AppendEntry[], error: WireError): void {
    this.commitFailures++;
    for (const e of entries) {
      this.holdForRetry(e.rows);
      e.reject(
        new JournalCommitError(
          `journal: commit failed (${error.message}); ${e.rows.length} event(s) held in memory, commit will be retried`,
          error.code,
          e.rows.map((r) => r.id),
        ),
      );
    }
    this.scheduleRetry();
  }

  private holdForRetry(rows: EventRow[], front = false): void {
    if (front) this.retryQueue = rows.concat(this.retryQueue);
    else for (const r of rows) this.retryQueue.push(r);
    // Same policy as the table: over the bound, drop readings then heartbeats, oldest first, never the rest.
    for (const kind of THINNABLE_KINDS) {
      while (this.retryQueue.length > MAX_RETRY_ROWS) {
        const i = this.retryQueue.findIndex((r) => r.kind === kind);
        if (i < 0) break;
        this.retryQueue.splice(i, 1);
        this.droppedInMemory++;
      }
    }
  }

  private scheduleRetry(): void {
    if (this.retryTimer || this.retryInFlight || this.retryQueue.length === 0 || this.closing) return;
    // Keeps the process alive on purpose: these events exist nowhere else yet.
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.retryNow();
    }, this.retryDelay);
  }

  private retryNow(): Promise<boolean> {
    if (this.retryInFlight) return this.retryInFlight;
    if (this.retryQueue.length === 0) return Promise.resolve(true);
    const rows = this.retryQueue;
    this.retryQueue = [];
    const state = this.takeState(true);
    const attempt = new Promise<boolean>((done) =>
      this.post(state === undefined ? { op: "append", rows } : { op: "append", rows, state }, { kind: "retry", rows, state: state !== undefined, done }),
    );
    this.retryInFlight = attempt;
    return attempt;
  }

  private retryDone(o: Extract<Outstanding, { kind: "retry" }>, ok: boolean): void {
    this.retryInFlight = null;
    if (o.state) this.stateDone(ok ? null : new JournalError("journal: state not saved: the retried commit failed"));
    if (ok) {
      this.retryDelay = RETRY_MIN_MS;
    } else {
      this.commitFailures++;
      this.holdForRetry(o.rows, true);
      this.retryDelay = Math.min(this.retryDelay * 2, RETRY_MAX_MS);
    }
    o.done(ok);
    this.scheduleRetry();
    // A state that waited for this retry goes now that no event is held any more.
    if (this.stateWanted && this.retryQueue.length === 0 && !this.closing) this.queueFlush();
  }

  // --- worker plumbing -----------------------------------------------------------------------------

  private spawn(): void {
    const w = startWorker();
    w.on("message", (replies: Reply[]) => this.onReplies(replies));
    w.on("error", (err) => this.onWorkerDown(w, err));
    w.on("exit", (code) => this.onWorkerDown(w, new Error(`exited with code ${code}`)));
    this.worker = w;
    this.reffed = true;
  }

  private request(req: Request): Promise<unknown> {
    this.flush(); // appends made earlier are committed before this request runs
    return new Promise((resolve, reject) => this.post(req, { kind: "call", op: req.op, resolve, reject }));
  }

  private post(req: Request, o: Outstanding): void {
    const msg: RequestMessage = { ...req, rid: ++this.rid };
    this.outstanding.set(msg.rid, o);
    if (this.worker) this.worker.postMessage(msg);
    else this.backlog.push(msg);
    this.updateRef();
  }

  private onReplies(replies: Reply[]): void {
    for (const r of replies) {
      const o = this.outstanding.get(r.rid);
      if (!o) continue;
      this.outstanding.delete(r.rid);
      if (o.kind === "call") {
        if (r.ok) o.resolve(r.value);
        else o.reject(new JournalError(`journal: ${o.op} failed: ${r.error.message}`, r.error.code));
      } else if (o.kind === "append") {
        if (r.ok) for (const e of o.entries) e.resolve(e.envelopes);
        else if (o.entries.length) this.commitFailed(o.entries, r.error);
        if (o.state) this.stateDone(r.ok ? null : new JournalError(`journal: state not saved: ${r.error.message}`, r.error.code));
      } else {
        this.retryDone(o, r.ok);
      }
    }
    this.settled();
  }

  private onWorkerDown(w: Worker, err: Error): void {
    if (w !== this.worker || this.terminating) return;
    this.worker = null;
    this.reffed = false;
    const lost = [...this.outstanding.values()];
    this.outstanding.clear();
    const error: WireError = { message: `journal worker stopped: ${err.message}` };
    // A batch may have committed just before the stop; its retry is then a no-op (ids are unique).
    for (const o of lost) {
      if (o.kind === "call") o.reject(new JournalError(`journal: ${o.op} failed: ${error.message}`));
      else if (o.kind === "append") {
        if (o.entries.length) this.commitFailed(o.entries, error);
        if (o.state) this.stateDone(new JournalError(`journal: state not saved: ${error.message}`));
      } else this.retryDone(o, false);
    }
    if (this.opened) this.respawnTimer = setTimeout(() => this.respawn(), this.retryDelay);
    this.settled();
  }

  private respawn(): void {
    this.respawnTimer = null;
    this.spawn();
    const w = this.worker as Worker;
    const backlog = this.backlog;
    this.backlog = [];
    // The open goes first; what queued up meanwhile follows it in order.
    const reopened = new Promise((resolve, reject) =>
      this.post({ op: "open", path: this.path, maxRows: this.maxRows, bumpBoot: false }, { kind: "call", op: "open", resolve, reject }),
    );
    for (const m of backlog) w.postMessage(m);
    reopened.catch(() => {
      this.retryDelay = Math.min(this.retryDelay * 2, RETRY_MAX_MS);
      void w.terminate(); // handled as another stop: requests fail over and a later respawn tries again
    });
  }

  private updateRef(): void {
    // Referenced only while work is in flight: pending commits keep the process alive, an idle journal does not.
    const busy = this.outstanding.size > 0;
    if (this.worker && busy !== this.reffed) {
      if (busy) this.worker.ref();
      else this.worker.unref();
      this.reffed = busy;
    }
  }

  private settled(): void {
    this.updateRef();
    if (this.idleWaiters.length > 0 && !this.appendsInFlight()) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  private appendsInFlight(): boolean {
    if (this.buffered.length > 0) return true;
    for (const o of this.outstanding.values()) if (o.kind !== "call") return true;
    return false;
  }

  private assertOpen(): void {
    if (this.closing) throw new JournalClosedError();
  }

  private async shutdown(): Promise<void> {
    this.flush();
    if (this.appendsInFlight()) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    if (this.stateRetryTimer) clearTimeout(this.stateRetryTimer);
    this.stateRetryTimer = null;
    if (this.retryQueue.length > 0) await this.retryNow();
    const unsaved = this.retryQueue.length;
    if (this.worker) {
      try {
        await this.request({ op: "close" });
      } catch {
        // the worker is going away regardless
      }
    }
    this.terminating = true;
    if (this.respawnTimer) clearTimeout(this.respawnTimer);
    await this.worker?.terminate();
    this.worker = null;
    if (unsaved > 0) {
      throw new JournalCommitError(
        `journal: closed with ${unsaved} event(s) that could not be committed`,
        undefined,
        this.retryQueue.map((r) => r.id),
      );
    }
  }
}
