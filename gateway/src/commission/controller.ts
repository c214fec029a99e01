// The daemon's side of commissioning: at most one session at a time, the hook in the hub's event path that
// marks the device under test, and the control-socket commands that start, watch and waive.
import type { Envelope, EventDraft } from "../../../protocol/envelope.js";
import { parsePlan } from "./plan.js";
import { CommissionSession, type EngineDeps, type Progress } from "./session.js";

export interface StartRequest {
  plan: unknown;
  household?: string;
  installer: string;
  waivers: Record<string, string>;
  stepTimeoutS: number;
  ackTimeoutS?: number;
}

export class Commissioning {
  private session: CommissionSession | null = null;
  private watchers = new Set<(p: Progress) => void>();

  constructor(private readonly deps: () => EngineDeps) {}

  /** The hub's event path: a no-op unless a device is under test. */
  mark(draft: EventDraft): EventDraft {
    return this.session ? this.session.mark(draft) : draft;
  }

  observe(env: Envelope): void {
    this.session?.observe(env);
  }

  delivery(op: "sent" | "acked", ids: string[], at: number): void {
    this.session?.delivery(op, ids, at);
  }

  get running(): boolean {
    return this.session !== null;
  }

  /** Runs a session to its report; progress goes to the starter and to anyone watching (commission_status). */
  async start(req: StartRequest, progress: (p: Progress) => void): Promise<unknown> {
    if (this.session) throw new Error("a commissioning session is already running on this hub");
    const plan = parsePlan(req.plan, "plan");
    const fan = (p: Progress) => {
      progress(p);
      for (const w of this.watchers) w(p);
    };
    const s = new CommissionSession({ plan, household: req.household, installer: req.installer, waivers: req.waivers, stepTimeoutMs: req.stepTimeoutS * 1000, ackTimeoutMs: req.ackTimeoutS !== undefined ? req.ackTimeoutS * 1000 : undefined }, this.deps(), fan);
    this.session = s;
    try {
      const { report, eventId } = await s.run();
      // The report is delivered with the journal's guarantees; wait a little for the relay's ack to say so.
      const d = this.deps();
      const until = d.now() + req.stepTimeoutS * 1000;
      while (d.uplink && s.ackedAt(eventId) === undefined && d.now() < until) await d.sleep(200);
      return { report, reportEventId: eventId, reportAckedAt: s.ackedAt(eventId) ?? null, steps: s.status().steps };
    } finally {
      this.session = null;
    }
  }

  status(): unknown {
    return this.session ? { running: true, ...this.session.status() } : { running: false };
  }

  waive(target: string, reason: string, by: string): string[] {
    if (!this.session) throw new Error("no commissioning session is running");
    const hit = this.session.waive(target, reason, by);
    if (hit.length === 0) throw new Error(`no planned device matches '${target}' (a device id, a kind, or kind@room)`);
    return hit;
  }

  /** Streams progress until the session ends or the caller goes away. */
  watch(progress: (p: Progress) => void): () => void {
    this.watchers.add(progress);
    return () => this.watchers.delete(progress);
  }
}
