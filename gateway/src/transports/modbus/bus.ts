// One Bus per physical RS-485 line: a single queue so two requests are never on the wire at once,
// a timeout on every request, a quiet period and flush after any error, reconnect with backoff.
import { EventEmitter } from "node:events";
import { BusError, LINE_DIRTY, classify, type BusErrorKind } from "./errors.js";
import type { ModbusLink, ReadFc, WriteFc } from "./link.js";

export type Priority = "safety" | "normal";

export interface BusOptions {
  name: string;
  /** Wait this long after an error before the next request, then discard stray input. */
  quietMs: number;
  reconnectMinMs: number;
  reconnectMaxMs: number;
  now?: () => number;
}

export interface RequestTiming {
  timeoutMs: number;
  /** Minimum gap between the end of the previous transaction and this request (slow slaves). */
  gapMs: number;
}

export interface UnitCounters {
  ok: number;
  timeout: number;
  crc: number;
  exception: number;
  framing: number;
  port_closed: number;
  other: number;
  consecutiveFailures: number;
  lastOkAt: number | null;
  lastError: string | null;
}

type BusEvents = {
  up: [];
  down: [reason: string];
  frameOut: [frame: Buffer, at: number];
};

interface Job {
  unit: number;
  timing: RequestTiming;
  run: (link: ModbusLink) => Promise<unknown>;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

/** Serial drivers are known to wedge after hours; many silent requests in a row earn a fresh open. */
const REOPEN_AFTER_TIMEOUTS = 20;
/** Between requests to different units: above t3.5 at 9600 baud is not needed, the reply itself ended the frame. */
const MIN_GAP_MS = 2;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class Bus extends EventEmitter<BusEvents> {
  private readonly queues: Record<Priority, Job[]> = { safety: [], normal: [] };
  private busy = false;
  private jobStartedAt = 0;
  /** Timeouts in a row on this line, whatever the unit: a wedged port is reopened after too many. */
  private timeoutsInARow = 0;
  private lastEndAt = 0;
  private lastUnit = -1;
  private up = false;
  private downAnnounced = false;
  private stopped = false;
  private reconnectTimer?: NodeJS.Timeout;
  private backoffMs: number;
  private readonly counters = new Map<number, UnitCounters>();
  private readonly now: () => number;
  requests = 0;
  reopens = 0;

  constructor(
    private readonly link: ModbusLink,
    private readonly opts: BusOptions,
  ) {
    super();
    this.now = opts.now ?? Date.now;
    this.backoffMs = opts.reconnectMinMs;
    link.onClose(() => this.lost("serial port closed"));
    link.onFrameOut((f) => this.emit("frameOut", f, performance.now()));
  }

  get name(): string {
    return this.opts.name;
  }

  get isUp(): boolean {
    return this.up;
  }

  /** Opens the line; if it is not there yet, keeps trying in the background. */
  async start(): Promise<void> {
    this.stopped = false;
    await this.tryOpen();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    for (const q of Object.values(this.queues)) for (const j of q.splice(0)) j.reject(new BusError("port_closed", `bus ${this.name} stopped`));
    this.up = false;
    await this.link.close().catch(() => {});
  }

  read(unit: number, fc: ReadFc, address: number, count: number, timing: RequestTiming, priority: Priority = "normal"): Promise<number[]> {
    return this.enqueue(unit, timing, priority, (l) => l.read(unit, fc, address, count, timing.timeoutMs)) as Promise<number[]>;
  }

  /** Several blocks of one device back to back, as one turn on the line: a device's reading is never split by others' polls. */
  readBlocks(unit: number, blocks: ReadonlyArray<{ fc: ReadFc; address: number; count: number }>, timing: RequestTiming, priority: Priority = "normal"): Promise<number[][]> {
    return this.enqueue(unit, timing, priority, async (l) => {
      const out: number[][] = [];
      for (const b of blocks) {
        if (out.length) {
          await sleep(timing.gapMs);
          await l.discardInput();
        }
        out.push(await l.read(unit, b.fc, b.address, b.count, timing.timeoutMs));
      }
      return out;
    }) as Promise<number[][]>;
  }

  write(unit: number, fc: WriteFc, address: number, value: number | boolean, timing: RequestTiming, priority: Priority = "normal"): Promise<void> {
    return this.enqueue(unit, timing, priority, (l) => l.write(unit, fc, address, value, timing.timeoutMs)) as Promise<void>;
  }

  unitCounters(unit: number): UnitCounters {
    let c = this.counters.get(unit);
    if (!c) {
      c = { ok: 0, timeout: 0, crc: 0, exception: 0, framing: 0, port_closed: 0, other: 0, consecutiveFailures: 0, lastOkAt: null, lastError: null };
      this.counters.set(unit, c);
    }
    return c;
  }

  /** How long the current request has been running: a liveness check for the watchdog. */
  get busyForMs(): number {
    return this.busy ? performance.now() - this.jobStartedAt : 0;
  }

  get queued(): number {
    return this.queues.safety.length + this.queues.normal.length;
  }

  private enqueue(unit: number, timing: RequestTiming, priority: Priority, run: Job["run"]): Promise<unknown> {
    if (!this.up) {
      this.count(unit, new BusError("port_closed", `bus ${this.name} is down`));
      return Promise.reject(new BusError("port_closed", `bus ${this.name} is down`));
    }
    return new Promise((resolve, reject) => {
      this.queues[priority].push({ unit, timing, run, resolve, reject });
      this.pump();
    });
  }

  private peek(): Job | undefined {
    return this.queues.safety[0] ?? this.queues.normal[0];
  }

  private next(): Job | undefined {
    return this.queues.safety.shift() ?? this.queues.normal.shift();
  }

  private pump(): void {
    if (this.busy) return;
    this.busy = true;
    void this.drain().finally(() => {
      this.busy = false;
      if (this.queued) this.pump();
    });
  }

  /** The silence owed before a request: the profile's gap after the same unit answered, else a short one. */
  private gapFor(job: Job): number {
    const gap = job.unit === this.lastUnit ? job.timing.gapMs : MIN_GAP_MS;
    return this.lastEndAt + gap - performance.now();
  }

  private async drain(): Promise<void> {
    for (let head = this.peek(); head; head = this.peek()) {
      // Wait out the gap first and only then choose: a valve command queued meanwhile still goes next.
      let wait = this.gapFor(head);
      if (wait > 0) await sleep(wait);
      const job = this.next();
      if (!job) break; // the line went down while we waited: the queue was emptied
      wait = this.gapFor(job);
      if (wait > 0) await sleep(wait);
      this.jobStartedAt = performance.now();
      await this.execute(job);
    }
  }

  private async execute(job: Job): Promise<void> {
    if (!this.up) {
      job.reject(new BusError("port_closed", `bus ${this.name} is down`));
      return;
    }
    this.requests++;
    try {
      // Anything still buffered is not an answer to this request.
      await this.link.discardInput();
      const v = await job.run(this.link);
      this.count(job.unit);
      this.timeoutsInARow = 0;
      job.resolve(v);
    } catch (e) {
      const err = classify(e);
      this.count(job.unit, err);
      if (LINE_DIRTY.has(err.kind)) {
        // A late reply must never be read as the next request's answer: wait for quiet, then discard.
        await sleep(this.opts.quietMs);
        await this.link.discardInput().catch(() => {});
      }
      if (err.kind === "port_closed") this.lost(err.message);
      job.reject(err);
      if (err.kind === "timeout" && ++this.timeoutsInARow >= REOPEN_AFTER_TIMEOUTS) await this.reopenQuietly();
    } finally {
      this.lastEndAt = performance.now();
      this.lastUnit = job.unit;
    }
  }

  private count(unit: number, err?: BusError): void {
    const c = this.unitCounters(unit);
    if (!err) {
      c.ok++;
      c.consecutiveFailures = 0;
      c.lastOkAt = this.now();
      return;
    }
    const k: BusErrorKind = err.kind;
    if (k === "timeout" || k === "crc" || k === "exception" || k === "framing" || k === "port_closed") c[k]++;
    else c.other++;
    c.consecutiveFailures++;
    c.lastError = `${k}: ${err.message}`;
  }

  private lost(reason: string): void {
    if (this.stopped || !this.up) return;
    this.up = false;
    this.announceDown(reason);
    for (const q of Object.values(this.queues)) for (const j of q.splice(0)) j.reject(new BusError("port_closed", `bus ${this.name} is down: ${reason}`));
    void this.link.close().catch(() => {});
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.stopped) return;
    clearTimeout(this.reconnectTimer);
    const jitter = 0.8 + Math.random() * 0.4;
    this.reconnectTimer = setTimeout(() => void this.tryOpen(), Math.round(this.backoffMs * jitter));
    this.backoffMs = Math.min(this.backoffMs * 2, this.opts.reconnectMaxMs);
  }

  private async tryOpen(): Promise<void> {
    if (this.stopped) return;
    try {
      await this.link.open();
      if (this.stopped) {
        await this.link.close();
        return;
      }
      this.up = true;
      this.downAnnounced = false;
      this.backoffMs = this.opts.reconnectMinMs;
      this.emit("up");
    } catch (e) {
      if (this.up) return;
      this.announceDown(classify(e).message);
      this.scheduleReconnect();
    }
  }

  /** Close and open the port again without announcing an outage; if it will not open, it is one. */
  private async reopenQuietly(): Promise<void> {
    this.timeoutsInARow = 0;
    this.reopens++;
    await this.link.close().catch(() => {});
    try {
      await this.link.open();
    } catch (e) {
      this.up = true; // so that lost() announces it and starts the backoff
      this.lost(classify(e).message);
    }
  }

  /** One `down` per outage, however many reconnect attempts fail. */
  private announceDown(reason: string): void {
    if (this.downAnnounced) return;
    this.downAnnounced = true;
    this.emit("down", reason);
  }
}
