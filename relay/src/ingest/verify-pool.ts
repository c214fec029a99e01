// A small pool of worker threads for the per-message checks of ingest (JSON, schema, hub, signature), so
// they use the cores the commit thread does not. Results come back in the order jobs were submitted,
// whichever worker finished first, so per-hub order of acceptance is as with inline checks.
//
// A worker that dies takes its outstanding jobs with it: they come back as "worker_failed" and are
// dropped unacked (the hub resends them), and the worker is started again. With no worker running at all
// (still starting, or one that cannot start), jobs are checked inline instead of waiting: a lone alarm
// must not wait for a thread to load.
import type { Worker } from "node:worker_threads";
import { startModuleWorker } from "../../../lib/daemon/worker.js";
import type { Logger } from "pino";
import type { Rejected } from "./verify-check.js";
import { verifyOne, type Facts, type VerifyRequest, type VerifyResponse } from "./verify-wire.js";

export interface VerifyJob {
  hub: string;
  text: string;
  key: Buffer | null;
}

export type VerifyOutcome = Facts | Rejected | { ok: false; reason: "worker_failed" };

/**
 * A turn with fewer messages than this, while no worker holds any, is checked right here: it costs little,
 * and a lone alarm does not wait for a thread to be woken and scheduled (milliseconds on a busy machine).
 */
export const VERIFY_INLINE_BELOW = 8;
/** Below this many messages in a turn, they go to one worker: the message overhead would eat the split. */
const MIN_CHUNK = 32;
/** Jobs sent to one worker per message at most; a larger turn is split. */
const MAX_CHUNK = 1000;
const RESTART_MIN_MS = 100;
const RESTART_MAX_MS = 5_000;
/** A worker that lived this long is healthy again: its next crash restarts at once. */
const HEALTHY_AFTER_MS = 10_000;

function startWorker(): Worker {
  return startModuleWorker(import.meta.url, "verify-worker");
}

interface Chunk {
  no: number;
  jobs: VerifyJob[];
  out: VerifyOutcome[] | null;
}

interface Slot {
  worker: Worker | null;
  /** It said it is loaded; until then it is not given jobs. */
  ready: boolean;
  startedAt: number;
  outstanding: Map<number, Chunk>;
  jobs: number;
  restartDelay: number;
  restartTimer: NodeJS.Timeout | null;
  reffed: boolean;
}

export class VerifyPool {
  private readonly slots: Slot[] = [];
  private readonly order: Chunk[] = []; // every chunk not yet delivered, in submission order
  private pending: VerifyJob[] = [];
  private scheduled = false;
  private chunkNo = 0;
  private closed = false;

  constructor(
    threads: number,
    private readonly deliver: (job: VerifyJob, outcome: VerifyOutcome) => void,
    private readonly log: Logger,
    private readonly inlineBelow = VERIFY_INLINE_BELOW,
  ) {
    for (let i = 0; i < threads; i++) {
      const slot: Slot = { worker: null, ready: false, startedAt: 0, outstanding: new Map(), jobs: 0, restartDelay: 0, restartTimer: null, reffed: true };
      this.slots.push(slot);
      this.start(slot);
    }
  }

  /** Checked soon (this event-loop turn's messages go together); the outcome comes through `deliver`. */
  submit(job: VerifyJob): void {
    this.pending.push(job);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.dispatch());
  }

  /** Stops the workers; jobs not yet delivered come back as worker_failed. */
  async close(): Promise<void> {
    this.dispatch();
    this.closed = true;
    const running: Promise<number>[] = [];
    for (const s of this.slots) {
      if (s.restartTimer) clearTimeout(s.restartTimer);
      const w = s.worker;
      s.worker = null;
      this.fail(s);
      if (w) running.push(w.terminate());
    }
    await Promise.all(running);
  }

  /** @internal Test hook: stop a worker as a crash would. */
  async _testKillWorker(i = 0): Promise<void> {
    await this.slots[i]?.worker?.terminate();
  }

  /** @internal Test hook: how many times workers were started. */
  starts = 0;

  /** @internal Tests and benches: resolves once every worker has loaded (so jobs go to threads, not inline). */
  async ready(): Promise<void> {
    while (!this.closed && this.slots.some((s) => !s.ready)) await new Promise((r) => setTimeout(r, 5));
  }

  private dispatch(): void {
    this.scheduled = false;
    const jobs = this.pending;
    if (jobs.length === 0) return;
    this.pending = [];
    const live = this.slots.filter((s) => s.worker !== null && s.ready).sort((a, b) => a.jobs - b.jobs);
    if (live.length === 0 || (jobs.length < this.inlineBelow && this.order.length === 0)) {
      // Nothing to hand them to (check them here rather than hold them for a worker that may never come),
      // or too few to be worth a hand-off.
      const chunk: Chunk = { no: ++this.chunkNo, jobs, out: jobs.map((j) => verifyOne(j.hub, j.text, j.key)) };
      this.order.push(chunk);
      this.drain();
      return;
    }
    const size = Math.min(MAX_CHUNK, Math.max(MIN_CHUNK, Math.ceil(jobs.length / live.length)));
    for (let i = 0, k = 0; i < jobs.length; i += size, k++) this.send(live[k % live.length] as Slot, jobs.slice(i, i + size));
  }

  private send(slot: Slot, jobs: VerifyJob[]): void {
    const chunk: Chunk = { no: ++this.chunkNo, jobs, out: null };
    const req: VerifyRequest = { chunk: chunk.no, hubs: [], texts: [], keys: [], keyHubs: [], keyTable: [] };
    const keyIndex = new Map<string, number>();
    for (const j of jobs) {
      req.hubs.push(j.hub);
      req.texts.push(j.text);
      let k = keyIndex.get(j.hub);
      if (k === undefined) {
        keyIndex.set(j.hub, (k = req.keyTable.length));
        req.keyHubs.push(j.hub);
        req.keyTable.push(j.key);
      }
      req.keys.push(k);
    }
    this.order.push(chunk);
    slot.outstanding.set(chunk.no, chunk);
    slot.jobs += jobs.length;
    this.reref(slot);
    (slot.worker as Worker).postMessage(req);
  }

  private received(slot: Slot, res: VerifyResponse): void {
    const chunk = slot.outstanding.get(res.chunk);
    if (!chunk) return;
    slot.outstanding.delete(res.chunk);
    slot.jobs -= chunk.jobs.length;
    chunk.out = res.out;
    this.reref(slot);
    this.drain();
  }

  /** Hands out finished chunks from the head, so outcomes leave in submission order. */
  private drain(): void {
    while (this.order.length > 0 && (this.order[0] as Chunk).out !== null) {
      const chunk = this.order.shift() as Chunk;
      const out = chunk.out as VerifyOutcome[];
      for (let i = 0; i < chunk.jobs.length; i++) this.deliver(chunk.jobs[i] as VerifyJob, out[i] as VerifyOutcome);
    }
  }

  /** Its outstanding chunks are lost with the worker: they come back failed (unacked; the hubs resend). */
  private fail(slot: Slot): void {
    let lost = 0;
    for (const chunk of slot.outstanding.values()) {
      chunk.out = chunk.jobs.map(() => ({ ok: false, reason: "worker_failed" }) as const);
      lost += chunk.jobs.length;
    }
    slot.outstanding.clear();
    slot.jobs = 0;
    if (lost > 0 && !this.closed) this.log.error({ events: lost }, "ingest: verify worker stopped; its events are left unacked and will be resent");
    this.drain();
  }

  private start(slot: Slot): void {
    slot.restartTimer = null;
    if (this.closed) return;
    const w = startWorker();
    this.starts++;
    slot.worker = w;
    slot.ready = false;
    slot.startedAt = Date.now();
    slot.reffed = true;
    w.on("message", (res: VerifyResponse | "ready") => {
      if (slot.worker !== w) return;
      if (res === "ready") slot.ready = true;
      else this.received(slot, res);
    });
    const down = (err: Error): void => {
      if (slot.worker !== w || this.closed) return;
      slot.worker = null;
      slot.ready = false;
      this.log.error({ err }, "ingest: verify worker stopped; starting it again");
      this.fail(slot);
      // One that keeps dying at once (e.g. cannot load) is started again more and more slowly.
      slot.restartDelay = Date.now() - slot.startedAt > HEALTHY_AFTER_MS ? 0 : Math.min(RESTART_MAX_MS, Math.max(RESTART_MIN_MS, slot.restartDelay * 2));
      slot.restartTimer = setTimeout(() => this.start(slot), slot.restartDelay);
      slot.restartTimer.unref();
    };
    w.on("error", down);
    w.on("exit", (code) => down(new Error(`exited with code ${code}`)));
    this.reref(slot);
  }

  /** A worker keeps the process alive only while it holds jobs, as a pending I/O would. */
  private reref(slot: Slot): void {
    const busy = slot.jobs > 0;
    if (!slot.worker || busy === slot.reffed) return;
    if (busy) slot.worker.ref();
    else slot.worker.unref();
    slot.reffed = busy;
  }
}
