// One pairing session: joining open for a bounded window with a countdown, only the expected devices
// admitted when a list is given, each joined device followed through its interview to a report (model,
// roles, link quality, battery) or a clear reason. Expected devices that never came are reported too.
import type { HubRole } from "../../devices/hub-device.js";

export interface PairRequest {
  seconds: number;
  expect?: string[];
}

export interface PairDeviceReport {
  ieee: string;
  outcome: "paired" | "unsupported" | "failed" | "rejected" | "absent";
  id?: string;
  model?: string;
  vendor?: string;
  description?: string;
  roles: HubRole[];
  linkquality: number | null;
  battery: number | null;
  power?: "battery" | "mains";
  checkIn?: { reportS: number | null; windowS: number };
  reason?: string;
  notes?: string[];
}

export type PairProgress =
  | { event: "open"; seconds: number; expect: string[] }
  | { event: "countdown"; secondsLeft: number }
  | { event: "joined"; ieee: string }
  | { event: "rejected"; ieee: string; reason: string }
  | { event: "interviewing"; ieee: string }
  | { event: "closed"; waitingFor: string[] }
  | { event: "result"; device: PairDeviceReport };

export interface PairResult {
  seconds: number;
  devices: PairDeviceReport[];
}

/** What a session needs of the Zigbee service. */
export interface PairingHost {
  permitJoin(seconds: number): Promise<void>;
}

export class PairingSession {
  readonly expect: Set<string> | null;
  private readonly pending = new Set<string>();
  private readonly reports = new Map<string, PairDeviceReport>();
  private closed = false;
  private finish?: () => void;
  private windowTimer?: NodeJS.Timeout;
  private tick?: NodeJS.Timeout;

  constructor(
    private readonly host: PairingHost,
    private readonly req: PairRequest,
    private readonly progress: (p: PairProgress) => void,
    private readonly interviewWaitMs: number,
  ) {
    this.expect = req.expect?.length ? new Set(req.expect.map((s) => s.toLowerCase())) : null;
  }

  get open(): boolean {
    return !this.closed;
  }

  /** The join filter while this session runs. */
  allows(ieee: string): boolean {
    return !this.closed && (this.expect === null || this.expect.has(ieee.toLowerCase()));
  }

  joined(ieee: string): void {
    if (this.reports.has(ieee)) return;
    this.pending.add(ieee);
    this.progress({ event: "joined", ieee });
  }

  rejected(ieee: string, reason: string): void {
    if (this.reports.has(ieee)) return;
    this.report({ ieee, outcome: "rejected", roles: [], linkquality: null, battery: null, reason });
    this.progress({ event: "rejected", ieee, reason });
  }

  interviewing(ieee: string): void {
    this.pending.add(ieee);
    this.progress({ event: "interviewing", ieee });
  }

  /** The final word on one device (paired, unsupported or failed). */
  report(r: PairDeviceReport): void {
    this.pending.delete(r.ieee);
    this.reports.set(r.ieee, r);
    if (r.outcome !== "rejected") this.progress({ event: "result", device: r });
    this.finish?.();
  }

  async run(): Promise<PairResult> {
    const seconds = this.req.seconds;
    await this.host.permitJoin(seconds);
    this.progress({ event: "open", seconds, expect: this.expect ? [...this.expect] : [] });
    this.progress({ event: "countdown", secondsLeft: seconds });
    const started = Date.now();
    await new Promise<void>((resolve) => {
      this.tick = setInterval(() => {
        const left = Math.max(0, Math.round(seconds - (Date.now() - started) / 1000));
        this.progress({ event: "countdown", secondsLeft: left });
      }, 1000);
      this.windowTimer = setTimeout(resolve, seconds * 1000);
      // Every expected device reported: no need to hold the network open any longer.
      this.finish = () => {
        if (this.closed || (this.expect && [...this.expect].every((i) => this.reports.has(i)) && this.pending.size === 0)) resolve();
      };
    });
    clearInterval(this.tick);
    clearTimeout(this.windowTimer);
    this.closed = true;
    await this.host.permitJoin(0).catch(() => {});
    this.progress({ event: "closed", waitingFor: [...this.pending] });
    if (this.pending.size) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, this.interviewWaitMs);
        this.finish = () => {
          if (this.pending.size) return;
          clearTimeout(t);
          resolve();
        };
      });
      for (const ieee of this.pending) this.report({ ieee, outcome: "failed", roles: [], linkquality: null, battery: null, reason: `joined but its interview did not finish within ${Math.round(this.interviewWaitMs / 1000)} s after the window closed` });
    }
    for (const ieee of this.expect ?? [])
      if (!this.reports.has(ieee)) this.report({ ieee, outcome: "absent", roles: [], linkquality: null, battery: null, reason: `did not join within ${seconds} s: reset it to pairing mode, bring it closer, and run pair again` });
    return { seconds, devices: [...this.reports.values()] };
  }

  /** Daemon stop during a session. */
  abort(): void {
    clearInterval(this.tick);
    clearTimeout(this.windowTimer);
    this.closed = true;
    this.pending.clear();
    this.finish?.();
  }
}
