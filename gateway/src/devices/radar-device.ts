// A radar on its own serial line: the profile, the byte stream, the codec's parser, settling after power-up
// and the check-in window. It hands on reports in the radar vocabulary with the time they arrived; what
// they mean for the elder is the rules' business.
//
// Power-up is the first byte since the port opened, or the first after a silence as long as the check-in
// window (the radar was offline: unplugged, or its supply cut) — not the port opening itself: a radar
// plugged in later, or one whose supply came back, is still settling then. A shorter gap is a radar that
// reports only on change, not a new power-up. A radar already running when the hub starts cannot be told
// apart, so it is given its settling time too.
import { EventEmitter } from "node:events";
import type { RadarProfile } from "../profiles/radar-schema.js";
import type { FrameCodec, ParseCounters, RadarReport, StreamParser } from "../transports/uart/codec.js";
import type { Reading } from "./device.js";
import type { HubCommand, HubDevice, HubRole } from "./hub-device.js";

/** What a radar reads from and writes to: a serial port, or a stand-in in tests and benchmarks. */
export interface ByteLine {
  start(): void;
  stop(): Promise<void>;
  write(frame: Buffer): boolean;
  on(event: "data", cb: (chunk: Buffer) => void): unknown;
  on(event: "up", cb: () => void): unknown;
  on(event: "down", cb: (reason: string) => void): unknown;
}

export interface RadarSpec {
  id: string;
  room?: string;
  profile: RadarProfile;
  codec: FrameCodec;
  line: ByteLine;
  settleMs: number;
  offlineAfterMs: number;
  now: () => number;
}

export interface RadarStats {
  online: boolean | null;
  bytesIn: number;
  frames: number;
  reports: number;
  ignoredWhileSettling: number;
  counters: Readonly<ParseCounters>;
  poweredAt: number | null;
  settledAt: number | null;
  lastFrameAt: number | null;
  queriesSent: number;
  product: Partial<Record<"model" | "id" | "hardware" | "firmware", string>>;
  portError: string | null;
}

type RadarEvents = {
  report: [report: RadarReport, at: number];
  /** online null → false/true; reason says why. */
  status: [online: boolean, reason: string];
  /** The line itself (the serial port) failed or came back. */
  line: [up: boolean, reason: string];
  /** A fall report arrived while the radar was still settling after power-up, and was ignored. */
  settlingFall: [at: number];
};

export class RadarDevice extends EventEmitter<RadarEvents> implements HubDevice {
  readonly transport = "uart" as const;
  readonly id: string;
  readonly room?: string;
  readonly profile: RadarProfile;
  private parser: StreamParser;
  private online: boolean | null = null;
  private startedAt = 0;
  private lastByteAt: number | null = null;
  private lastFrameAt: number | null = null;
  private lastQueryAt = 0;
  private poweredAt: number | null = null;
  private bytesIn = 0;
  private reports = 0;
  private ignored = 0;
  private queries = 0;
  private portError: string | null = null;
  private readonly product: RadarStats["product"] = {};
  /** The latest value of each reading, for `anxin-hub devices` and `test`. */
  readonly latest: RadarReport = {};

  constructor(private readonly spec: RadarSpec) {
    super();
    this.id = spec.id;
    this.room = spec.room;
    this.profile = spec.profile;
    this.parser = spec.codec.createParser();
    spec.line.on("data", (chunk) => this.onData(chunk));
    spec.line.on("up", () => {
      this.portError = null;
      this.emit("line", true, "port open");
      this.ask(true);
    });
    spec.line.on("down", (reason) => {
      this.portError = reason;
      this.emit("line", false, reason);
    });
  }

  get model(): string {
    return this.profile.id;
  }

  get roles(): readonly HubRole[] {
    return this.profile.roles;
  }

  has(role: HubRole): boolean {
    return (this.profile.roles as readonly HubRole[]).includes(role);
  }

  canDo(_command: HubCommand): boolean {
    return false;
  }

  command(command: HubCommand): Promise<void> {
    return Promise.reject(new Error(`radar ${this.id} takes no '${command}' command`));
  }

  start(): void {
    this.startedAt = this.spec.now();
    this.spec.line.start();
  }

  stop(): Promise<void> {
    return this.spec.line.stop();
  }

  /** Supervision, run on the hub's clock tick: the check-in window and the quiet-time query. */
  check(now: number): void {
    const heard = this.lastFrameAt ?? this.startedAt;
    const quiet = now - heard;
    if (this.online !== false && quiet >= this.spec.offlineAfterMs) {
      this.online = false;
      this.emit("status", false, this.lastFrameAt === null ? `no valid frame since the hub started (${quiet} ms)` : `no valid frame for ${quiet} ms`);
    }
    if (quiet >= this.spec.offlineAfterMs / 2 && now - this.lastQueryAt >= this.spec.offlineAfterMs / 4) this.ask(false);
  }

  /** The liveness query, and every product-information query too when the radar (re)appears. */
  private ask(withProduct: boolean): void {
    this.lastQueryAt = this.spec.now();
    const c = this.spec.codec;
    for (const f of withProduct ? c.productInfoQueries() : [c.livenessQuery()]) if (this.spec.line.write(f)) this.queries++;
  }

  private onData(chunk: Buffer): void {
    const at = this.spec.now();
    this.bytesIn += chunk.length;
    if (this.lastByteAt === null || at - this.lastByteAt >= this.spec.offlineAfterMs) this.poweredAt = at;
    this.lastByteAt = at;
    const all = this.parser.push(chunk);
    // Our own queries heard back on a looped or half-duplex line prove nothing about the radar.
    const frames = all.some((f) => f.kind === "query") ? all.filter((f) => f.kind !== "query") : all;
    if (!frames.length) return;
    this.lastFrameAt = at;
    if (this.online !== true) {
      const reason = this.online === null ? "first frame" : "valid frames again";
      this.online = true;
      this.emit("status", true, reason);
      // Asked again on every return: the radar heard now may be a replacement, and one that was off when
      // the port opened never heard the first questions.
      this.ask(true);
    }
    const settling = at < (this.poweredAt ?? at) + this.spec.settleMs;
    for (const f of frames) {
      if (f.kind === "product") this.product[f.field] = f.value;
      if (f.kind !== "report") continue;
      if (settling) {
        this.ignored++;
        // Never dropped silently: a fall reported while the radar settles is at least in the log.
        if (f.report.fall === "fall") this.emit("settlingFall", at);
        continue;
      }
      this.reports++;
      Object.assign(this.latest, f.report);
      this.emit("report", f.report, at);
    }
  }

  stats(): RadarStats {
    return {
      online: this.online,
      bytesIn: this.bytesIn,
      frames: this.parser.counters.frames,
      reports: this.reports,
      ignoredWhileSettling: this.ignored,
      counters: { ...this.parser.counters },
      poweredAt: this.poweredAt,
      settledAt: this.poweredAt === null ? null : this.poweredAt + this.spec.settleMs,
      lastFrameAt: this.lastFrameAt,
      queriesSent: this.queries,
      product: { ...this.product },
      portError: this.portError,
    };
  }

  /** `anxin-hub test`: what the radar last said (a radar streams; there is nothing to ask it for). */
  async read(now: () => number): Promise<Reading> {
    const values: Record<string, number | boolean> = {};
    const labels: Record<string, string> = {};
    for (const [k, v] of Object.entries(this.latest)) {
      if (typeof v === "number" || typeof v === "boolean") values[k] = v;
      else if (typeof v === "string") labels[k] = v;
    }
    const problems = this.online === false ? ["offline: no valid frame within its check-in window"] : this.lastFrameAt === null ? ["nothing heard yet"] : [];
    return { device: this.id, at: now(), values, labels, problems, signals: this.latest.presence === undefined ? {} : { presence: this.latest.presence } };
  }
}
