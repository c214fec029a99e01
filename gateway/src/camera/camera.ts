// The alarm camera: when the hub journals a new alarm it reads a few stills from the home's camera and sends
// them, signed, to the relay. It is told of the alarm after the valve and siren commands already went out and
// the event is in the journal, and it never makes anyone wait: `alarm()` returns at once, the reads and uploads
// run on their own timers and deadlines, and any failure stays here (logged, counted). It reads the camera
// for nothing but an alarm — no stream, no preview, no periodic check — and holds the stills in memory only,
// until the relay has them or they are given up.
import type { Logger } from "pino";
import { ulid } from "ulid";
import { SnapshotError, type SnapshotReader } from "./snapshot.js";
import { uploadStill, type StillToSend, type UploadOutcome, type UploadTarget } from "./uploader.js";

/** What the camera needs to know of a journaled event. */
export interface JournaledEvent {
  id: string;
  kind: string;
  type: string;
  test?: boolean;
}

export interface AlarmCameraOptions {
  /** A fresh digest session for each burst. */
  reader: () => SnapshotReader;
  target: UploadTarget;
  stills: number;
  intervalMs: number;
  attempts: number;
  retryMs: number;
  log: Logger;
  now?: () => number;
  /** The relay's clock minus ours, as the uplink learnt it from signed acks; null while unknown. */
  relayClockOffset?: () => number | null;
  /** Upload function (tests). */
  upload?: typeof uploadStill;
}

export interface CameraCounters {
  bursts: number;
  read: number;
  readFailed: number;
  uploaded: number;
  dropped: number;
}

/** Alarms waiting for their burst beyond the one being read: more are not read (each would be seconds late). */
const MAX_QUEUED = 3;

export class AlarmCamera {
  readonly counters: CameraCounters = { bursts: 0, read: 0, readFailed: 0, uploaded: 0, dropped: 0 };
  private readonly stopper = new AbortController();
  private readonly queue: string[] = [];
  private running: Promise<void> | null = null;
  private readonly uploads = new Set<Promise<void>>();
  private noConsent = false;
  /** The relay's clock minus ours, from a `stale` refusal (it carries the relay's clock). */
  private clockFix: number | null = null;
  private readonly now: () => number;
  private readonly said = new Set<string>();

  constructor(private readonly o: AlarmCameraOptions) {
    this.now = o.now ?? Date.now;
  }

  /** A journaled event: a new alarm starts a burst. Returns at once and never throws. */
  alarm(e: JournaledEvent): void {
    try {
      if (e.kind !== "alarm" || e.test || this.stopper.signal.aborted) return;
      if (this.noConsent) return this.once("no_consent_relay", () => this.o.log.info("camera: not read: the relay holds no recorded consent to the camera for this home"));
      if (this.queue.length >= MAX_QUEUED) return this.o.log.warn({ event: e.id, type: e.type }, "camera: too many alarms at once; no stills for this one");
      this.queue.push(e.id);
      this.running ??= this.pump().finally(() => (this.running = null));
    } catch (err) {
      this.o.log.error({ err: (err as Error).message }, "camera: could not start the stills of an alarm");
    }
  }

  /** Stops reading and uploading (a still not yet at the relay is dropped); resolves once everything settled. */
  async stop(): Promise<void> {
    this.stopper.abort();
    await this.running;
    await Promise.allSettled([...this.uploads]);
  }

  /** Resolves when nothing is being read or uploaded (tests). */
  async idle(): Promise<void> {
    while (this.running || this.uploads.size) {
      await this.running;
      await Promise.allSettled([...this.uploads]);
    }
  }

  private async pump(): Promise<void> {
    // Nothing of the camera's work runs in the caller's turn of the event loop (not even building the request).
    await new Promise<void>((r) => setImmediate(r));
    for (let event = this.queue.shift(); event !== undefined && !this.stopper.signal.aborted; event = this.queue.shift()) {
      try {
        await this.burst(event);
      } catch (err) {
        this.o.log.error({ err: (err as Error).message, event }, "camera: a burst failed");
      }
    }
  }

  /** Reads the stills of one alarm, `intervalMs` apart; each goes off to the relay as soon as it is read. */
  private async burst(event: string): Promise<void> {
    this.counters.bursts++;
    const reader = this.o.reader();
    const start = this.now();
    let failures = 0;
    for (let index = 1; index <= this.o.stills && !this.stopper.signal.aborted && !this.noConsent; index++) {
      if (index > 1) await sleep(start + (index - 1) * this.o.intervalMs - this.now(), this.stopper.signal);
      if (this.stopper.signal.aborted) return;
      let bytes: Buffer;
      const takenAt = this.now();
      try {
        bytes = await reader.read(this.stopper.signal);
      } catch (err) {
        this.counters.readFailed++;
        failures++;
        const reason = err instanceof SnapshotError ? err.reason : "error";
        this.o.log.warn({ event, index, reason, err: (err as Error).message }, "camera: a still could not be read");
        // A wrong password or an unreachable camera will not change within the burst.
        if (reason === "unauthorized" || reason === "no_digest" || failures >= 2) return;
        continue;
      }
      this.counters.read++;
      const still: StillToSend = { event, still: ulid(takenAt), index, takenAt, bytes };
      const p = this.deliver(still).finally(() => this.uploads.delete(p));
      this.uploads.add(p);
    }
  }

  /** Sends one still with retries (doubling waits); gives it up after `attempts` tries or a final refusal. */
  private async deliver(s: StillToSend): Promise<void> {
    const upload = this.o.upload ?? uploadStill;
    let wait = this.o.retryMs;
    let last = "";
    for (let attempt = 1; attempt <= this.o.attempts && !this.stopper.signal.aborted; attempt++) {
      const out: UploadOutcome = await upload(this.o.target, s, this.now() + this.offset(), this.stopper.signal);
      switch (out.kind) {
        case "stored":
          this.counters.uploaded++;
          return;
        case "clock":
          // Sign again with the relay's clock (a hub without a real-time clock after a power cut), at once.
          this.clockFix = out.relayNow - this.now();
          last = "stale";
          continue;
        case "no_consent":
          this.noConsent = true;
          this.counters.dropped++;
          this.once("no_consent_relay", () => this.o.log.warn("camera: the relay refused the stills: it holds no recorded consent to the camera for this home; the camera is not read again until the hub restarts"));
          return;
        case "refused":
          this.counters.dropped++;
          this.o.log.warn({ event: s.event, index: s.index, reason: out.reason }, "camera: the relay refused a still; it is dropped");
          return;
        case "retry":
          last = out.reason;
          if (attempt < this.o.attempts) await sleep(wait, this.stopper.signal);
          wait = Math.min(wait * 2, 300_000);
      }
    }
    this.counters.dropped++;
    this.o.log.warn({ event: s.event, index: s.index, reason: last || "stopped" }, "camera: a still could not be delivered; it is dropped");
  }

  private offset(): number {
    return this.clockFix ?? this.o.relayClockOffset?.() ?? 0;
  }

  private once(key: string, say: () => void): void {
    if (this.said.has(key)) return;
    this.said.add(key);
    say();
  }
}

/** Waits `ms` (nothing if ≤ 0); resolves early, without error, when `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (ms <= 0 || signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}
