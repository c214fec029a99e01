// The daemon's side of commissioning: at most one session at a time, the hook in the hub's event path that
// marks the device under test, and the control-socket commands that start, watch and waive.
import type { Envelope, EventDraft } from "../../../protocol/envelope.js";
import { kitSchema } from "./kit.js";
import { parsePlan } from "./plan.js";
import { planSetup, type SetupDeps, type SetupProgress, type SetupResult } from "./setup.js";
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
  private ended = new Set<() => void>();

  private settingUp = false;

  constructor(
    private readonly deps: () => EngineDeps,
    private readonly setupDeps?: () => SetupDeps,
  ) {}

  /** Finds the planned devices the configuration lacks (see setup.ts); changes nothing on the hub. */
  async setup(req: { plan: unknown; kit: unknown; pairSeconds: number }, progress: (p: SetupProgress) => void): Promise<SetupResult> {
    if (!this.setupDeps) throw new Error("set-up from the plan is not available in this daemon");
    if (this.session) throw new Error("a commissioning session is running on this hub");
    if (this.settingUp) throw new Error("a set-up from the plan is already running on this hub");
    const plan = parsePlan(req.plan, "plan");
    const kit = kitSchema.safeParse(req.kit);
    if (!kit.success) {
      const i = kit.error.issues[0]!;
      throw new Error(`kit: ${i.path.join(".") || "(top)"}: ${i.message}`);
    }
    this.settingUp = true;
    try {
      return await planSetup(plan, kit.data, this.setupDeps(), { pairSeconds: req.pairSeconds }, progress);
    } finally {
      this.settingUp = false;
    }
  }

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
  async start(req: StartRequest, progress: (p: Progress) => void, gone?: AbortSignal): Promise<unknown> {
    if (this.session) throw new Error("a commissioning session is already running on this hub");
    if (this.settingUp) throw new Error("a set-up from the plan is running on this hub");
    const plan = parsePlan(req.plan, "plan");
    const fan = (p: Progress) => {
      progress(p);
      for (const w of this.watchers) w(p);
    };
    const s = new CommissionSession({ plan, household: req.household, installer: req.installer, waivers: req.waivers, stepTimeoutMs: req.stepTimeoutS * 1000, ackTimeoutMs: req.ackTimeoutS !== undefined ? req.ackTimeoutS * 1000 : undefined }, this.deps(), fan);
    this.session = s;
    // The installer's command went away (Ctrl-C, a dropped SSH session): nobody is there to trigger devices
    // or read the result, so the session ends now and its report says so, instead of running on unseen.
    const cancel = () => s.cancel("the installer's command disconnected");
    if (gone?.aborted) cancel();
    gone?.addEventListener("abort", cancel, { once: true });
    try {
      const { report, eventId } = await s.run();
      // The report is delivered with the journal's guarantees; wait a little for the relay's ack to say so.
      const d = this.deps();
      const until = d.now() + req.stepTimeoutS * 1000;
      while (d.uplink && s.ackedAt(eventId) === undefined && d.now() < until) await d.sleep(200);
      return { report, reportEventId: eventId, reportAckedAt: s.ackedAt(eventId) ?? null, uplink: d.uplink, steps: s.status().steps };
    } finally {
      gone?.removeEventListener("abort", cancel);
      this.session = null;
      for (const w of this.ended) w();
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

  /**
   * Streams a running session's progress to another caller (a second terminal, a supervisor's screen) until
   * the session ends or that caller goes away; resolves with the status at the end.
   */
  async watch(progress: (p: Progress) => void, gone?: AbortSignal): Promise<unknown> {
    if (!this.session || gone?.aborted) return this.status();
    const last = this.session;
    await new Promise<void>((resolve) => {
      const done = () => {
        this.watchers.delete(progress);
        this.ended.delete(done);
        gone?.removeEventListener("abort", done);
        resolve();
      };
      this.watchers.add(progress);
      this.ended.add(done);
      gone?.addEventListener("abort", done, { once: true });
    });
    return { running: this.session !== null, ...last.status() };
  }
}
