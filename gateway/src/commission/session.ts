// The commissioning engine: for each planned device, find it, have the installer trigger it for real, and
// prove the path (the test event journaled, sent and acknowledged by the relay after its commit). It runs in
// the daemon, which alone sees every event and every ack; the CLI only drives and displays it.
//
// Safety: marking is the only thing a test changes. The hub's rules, valve closes and sirens run exactly as for
// a real alarm; only the events of the device under test, during its test step, carry `test: true`, so the
// relay stores them without opening a call tree. Any other device's alarm stays real.
//
// A test must not leave a real emergency hidden behind it. When a step ends (whatever its outcome) the hub ends
// the device's test episode: the SOS button's repeat window is dropped, so the elder's next press raises a new,
// real alarm. A detector must recover from its test: if its test alarm has not cleared within the recovery time
// (a real leak or fire starting, or a stuck detector) the engine journals a real, unmarked alarm for it, so the
// relay opens an incident and calls. Neither delays or weakens a local action (the valve closed on the test alarm).
import type { Envelope, EventDraft } from "../../../protocol/envelope.js";
import type { CommissionedDevice, CommissioningReport, DeviceResult, PlanDeviceKind, Waiver } from "../../../protocol/commissioning.js";
import { commissioningReportSchema, COMMISSIONING_REPORT_TYPE, SECOND_PATH_TARGET, type SecondPathCheck } from "../../../protocol/commissioning.js";
import { reportPlanItems, slotsOf, type RelayPlan, type Slot } from "./plan.js";
import { FIND_TEXT, KINDS, RECOVER_TEXT, type Bilingual } from "./texts.js";
import { pickDevice } from "./matching.js";

/** A device as the engine sees it (the daemon adapts its registry to this). */
export interface DeviceView {
  id: string;
  transport: "modbus" | "zigbee" | "uart";
  model?: string;
  roles: readonly string[];
  room?: string;
  online: boolean;
  /** "rs485:<bus>#<unit>", the IEEE address, or "uart:<path>". */
  address?: string;
  signal?: number;
  battery?: number;
  /** Radars: someone seen now. */
  presence?: boolean;
  /** Valves: the read-back (limit switch or state); null when unknown. */
  valveClosed?: boolean | null;
}

export interface EngineDeps {
  hub: string;
  now(): number;
  sleep(ms: number): Promise<void>;
  devices(): DeviceView[];
  /** Journals through the hub's sink (so the test mark applies) and resolves with the committed envelope. */
  append(draft: EventDraft): Promise<Envelope>;
  /** False when the hub has no uplink: the path to the relay cannot be proven. */
  uplink: boolean;
  /** Configured Zigbee devices not yet on the network; pairing admits exactly these. */
  unpaired(): string[];
  pair?(expect: string[], seconds: number): Promise<void>;
  /** The device's test step is over: the hub ends its test episode (an SOS button's repeat window is dropped). */
  endEpisode(device: string): void;
  /**
   * The cellular second path's check (module status, the longest alarm text, a test SMS); absent when the hub
   * has no cellular module. `ok` false blocks commissioning unless waived (`second-path`).
   */
  secondPath?(): Promise<Omit<SecondPathCheck, "result" | "waiver"> & { ok: boolean }>;
}

export interface SessionOptions {
  plan: RelayPlan;
  household?: string;
  installer: string;
  /** Device id, slot key, kind or kind@room → reason. */
  waivers: Record<string, string>;
  stepTimeoutMs: number;
  /** How long the relay's ack may take after the trigger; default: the step timeout. */
  ackTimeoutMs?: number;
  /**
   * How long after its test alarm a detector may take to clear it (recover) before it is reported as a real
   * alarm; default 60 s (detectors recover within 60 s of test gas).
   */
  recoveryMs?: number;
}

export const DEFAULT_RECOVERY_MS = 60_000;

export type StepState = "pending" | "finding" | "waiting" | "proving" | DeviceResult;

export interface StepView {
  key: string;
  kind: PlanDeviceKind;
  room: string;
  device: string | null;
  state: StepState;
  instruction?: Bilingual;
  /** When the current wait ends (hub clock). */
  until?: number;
  detail?: string;
}

export type Progress =
  | { event: "step"; step: StepView; secondsLeft?: number }
  | { event: "find"; text: Bilingual; secondsLeft: number; missing: number }
  | { event: "second_path"; check: SecondPathCheck }
  | { event: "report"; eventId: string };

interface Step extends StepView {
  found?: DeviceView;
  testedAt?: number;
  eventId?: string;
  sentAt?: number;
  ackedAt?: number;
  waiver?: Waiver;
  /** The test alarm as committed (what a real alarm reported in its place repeats). */
  alarm?: { type: string; severity: Envelope["severity"]; room?: string };
}

const TICK_MS = 200;

export class CommissionSession {
  readonly startedAt: number;
  private readonly steps: Step[];
  private underTest: { device: string; until: number; step: Step } | null = null;
  /** Test alarms raised: their clearing is part of the test too. */
  private readonly testAlarms = new Set<string>();
  /** Test alarms seen cleared (device:type → when). */
  private readonly testCleared = new Map<string, number>();
  private readonly sent = new Map<string, number>();
  private readonly acked = new Map<string, number>();
  private readonly valveClosedAt = new Map<string, number>();
  private readonly valveReopenedAt = new Map<string, number>();
  private finished: { report: CommissioningReport; eventId: string } | null = null;
  private cancelled = false;
  private cancelWhy = "";
  private secondPathWaiver: Waiver | undefined;
  private secondPath: SecondPathCheck | undefined;

  constructor(
    private readonly o: SessionOptions,
    private readonly d: EngineDeps,
    private readonly progress: (p: Progress) => void = () => {},
  ) {
    this.startedAt = d.now();
    this.steps = slotsOf(o.plan).map((s: Slot) => ({ key: s.key, kind: s.kind, room: s.room, device: null, state: "pending" }));
  }

  /** The daemon's event path calls this on every draft: the device under test, in its window, marks it. */
  mark(draft: EventDraft): EventDraft {
    if (!draft.device || draft.test) return draft;
    const t = this.underTest;
    if (t && t.device === draft.device && this.d.now() <= t.until) {
      if (draft.kind === "alarm") this.testAlarms.add(`${draft.device}:${draft.type}`);
      if (draft.kind === "alarm_cleared") this.testAlarms.delete(`${draft.device}:${draft.type}`);
      return { ...draft, test: true };
    }
    if (draft.kind === "alarm_cleared" && this.testAlarms.delete(`${draft.device}:${draft.type}`)) return { ...draft, test: true };
    return draft;
  }

  /** Every committed envelope: a test alarm of the device under test is its proof. */
  observe(env: Envelope): void {
    // A valve's verified close (limit switch / read-back) and the on-site reopen are the hub's own events;
    // seen here they cannot be missed between two looks at the valve's state.
    if (env.kind === "device" && env.type === "valve_closed" && env.device && env.actions?.every((a) => a.ok !== false)) this.valveClosedAt.set(env.device, env.ts);
    if (env.kind === "audit" && env.type === "valve_reopen") for (const a of env.actions ?? []) if (a.action === "valve_open" && a.ok && a.target) this.valveReopenedAt.set(a.target, env.ts);
    if (env.kind === "alarm_cleared" && env.test && env.device) this.testCleared.set(`${env.device}:${env.type}`, env.ts);
    const t = this.underTest;
    if (!t || !env.test || env.device !== t.device || env.kind !== "alarm" || t.step.eventId) return;
    const want = KINDS[t.step.kind].alarm;
    if (want && env.type !== want) return;
    t.step.eventId = env.id;
    t.step.testedAt = env.ts;
    t.step.alarm = { type: env.type, severity: env.severity, room: env.room };
  }

  /** The journal's sends and acks. */
  delivery(op: "sent" | "acked", ids: string[], at: number): void {
    const m = op === "sent" ? this.sent : this.acked;
    for (const id of ids) if (!m.has(id)) m.set(id, at);
  }

  /** A waiver given while the session runs (or before a step starts). */
  waive(target: string, reason: string, by: string): string[] {
    const hit = this.steps.filter((s) => matches(s, target) && s.state !== "passed");
    for (const s of hit) {
      s.waiver = { reason, by, at: this.d.now() };
      if (s.state === "failed" || s.state === "missing") this.settle(s, "waived");
    }
    return hit.map((s) => s.key);
  }

  /** Ends the session at the next check; steps not run are reported failed with `why`. */
  cancel(why = "the session was cancelled"): void {
    this.cancelled = true;
    this.cancelWhy = why;
  }

  status(): { startedAt: number; steps: StepView[]; report?: CommissioningReport; reportEventId?: string } {
    return { startedAt: this.startedAt, steps: this.steps.map(view), ...(this.finished ? { report: this.finished.report, reportEventId: this.finished.eventId } : {}) };
  }

  async run(): Promise<{ report: CommissioningReport; eventId: string }> {
    for (const [target, reason] of Object.entries(this.o.waivers)) {
      if (target === SECOND_PATH_TARGET && this.d.secondPath) {
        this.secondPathWaiver = { reason, by: this.o.installer, at: this.d.now() };
        continue;
      }
      if (this.waive(target, reason, this.o.installer).length === 0) throw new Error(`--waive ${target}: no planned device matches (use a device id, a kind, or kind@room${this.d.secondPath ? `, or ${SECOND_PATH_TARGET}` : ""})`);
    }
    await this.find();
    for (const s of this.steps) {
      if (this.cancelled) break;
      if (s.waiver) {
        this.settle(s, "waived");
        continue;
      }
      if (s.state === "missing") continue;
      await this.test(s);
    }
    if (!this.cancelled) await this.checkSecondPath();
    return this.finish();
  }

  /** The cellular module has its SIM and network, every alarm text fits one SMS, and a test SMS went out. */
  private async checkSecondPath(): Promise<void> {
    if (!this.d.secondPath) return;
    let check: SecondPathCheck;
    try {
      const { ok, ...c } = await this.d.secondPath();
      const waiver = ok ? undefined : this.secondPathWaiver;
      check = { ...c, detail: c.detail?.slice(0, 200), result: ok ? "passed" : waiver ? "waived" : "failed", ...(waiver ? { waiver } : {}) };
    } catch (e) {
      const waiver = this.secondPathWaiver;
      check = { longestSms: 0, detail: (e as Error).message.slice(0, 200), result: waiver ? "waived" : "failed", ...(waiver ? { waiver } : {}) };
    }
    this.secondPath = check;
    this.progress({ event: "second_path", check });
  }

  // --- find -------------------------------------------------------------------------------------------

  private assign(): void {
    const taken = new Set(this.steps.map((s) => s.device).filter((x): x is string => x !== null));
    const devs = this.d.devices();
    for (const s of this.steps) {
      if (s.device !== null || s.waiver || KINDS[s.kind].method === "none") continue;
      const pick = pickDevice(s.kind, s.room, devs, taken);
      if (pick) {
        s.device = pick.id;
        taken.add(pick.id);
      }
    }
  }

  private async find(): Promise<void> {
    const until = this.d.now() + this.o.stepTimeoutMs;
    for (const s of this.steps) if (!s.waiver) this.emitStep(s, "finding");
    const unpaired = this.d.unpaired();
    let pairing: Promise<void> | undefined;
    if (unpaired.length > 0 && this.d.pair) pairing = this.d.pair(unpaired, Math.max(1, Math.min(254, Math.round(this.o.stepTimeoutMs / 1000)))).catch(() => {});
    for (;;) {
      this.assign();
      const online = new Map(this.d.devices().map((x) => [x.id, x]));
      const open = this.steps.filter((s) => !s.waiver && KINDS[s.kind].method !== "none" && !(s.device && online.get(s.device)?.online));
      const left = until - this.d.now();
      if (open.length === 0 || left <= 0 || this.cancelled) break;
      this.progress({ event: "find", text: FIND_TEXT, secondsLeft: Math.ceil(left / 1000), missing: open.length });
      await this.d.sleep(TICK_MS);
    }
    void pairing; // runs on to its own end (all expected joined, or its window); the find does not wait on it
    const now = new Map(this.d.devices().map((x) => [x.id, x]));
    for (const s of this.steps) {
      if (s.waiver) continue;
      if (KINDS[s.kind].method === "none") {
        s.detail = `not installable by this hub: waive it with a reason`;
        this.settle(s, "missing");
      } else if (!s.device) {
        s.detail = `no ${KINDS[s.kind].name.en} configured or paired on this hub`;
        this.settle(s, "missing");
      } else if (!now.get(s.device)?.online) {
        s.detail = `${s.device} is configured but not answering`;
        this.settle(s, "missing");
      } else s.found = now.get(s.device);
    }
  }

  // --- test -------------------------------------------------------------------------------------------

  private async test(s: Step): Promise<void> {
    try {
      await this.trigger(s);
    } finally {
      // Whatever the outcome, the device's test episode ends with its step: the next SOS press is a new, real alarm.
      this.d.endEpisode(s.device!);
    }
  }

  private async trigger(s: Step): Promise<void> {
    const info = KINDS[s.kind];
    const until = this.d.now() + this.o.stepTimeoutMs;
    this.underTest = { device: s.device!, until, step: s };
    s.instruction = info.instruction;
    s.until = until;
    try {
      const seen = info.method === "alarm" ? await this.waitAlarm(s, until) : info.method === "valve" ? await this.waitValve(s, until) : await this.waitPresence(s, until);
      if (!seen) {
        s.detail = info.method === "valve" ? (s.detail ?? "the valve was not seen closed and reopened") : `no trigger seen from ${s.device} within ${Math.round(this.o.stepTimeoutMs / 1000)} s`;
        return this.settle(s, "failed");
      }
    } finally {
      // The window ends with the trigger: a later alarm of this device is real (a cleared test alarm stays a test).
      this.underTest = null;
    }
    const proven = await this.prove(s);
    // A detector's test alarm must clear: one still active is reported as real, whether or not the path was proven.
    if (info.recovers && s.alarm && !(await this.recover(s))) return this.settle(s, "failed");
    if (proven) this.settle(s, "passed");
  }

  private async waitFor(s: Step, until: number, ok: () => boolean): Promise<boolean> {
    for (;;) {
      if (ok()) return true;
      const left = until - this.d.now();
      if (left <= 0 || this.cancelled) return false;
      this.progress({ event: "step", step: view(s), secondsLeft: Math.ceil(left / 1000) });
      await this.d.sleep(TICK_MS);
    }
  }

  private async waitAlarm(s: Step, until: number): Promise<boolean> {
    this.emitStep(s, "waiting");
    return this.waitFor(s, until, () => s.eventId !== undefined);
  }

  private device(id: string): DeviceView | undefined {
    return this.d.devices().find((x) => x.id === id);
  }

  /** Presence is not an event the hub journals: the engine journals the observation as the test event. */
  private async waitPresence(s: Step, until: number): Promise<boolean> {
    this.emitStep(s, "waiting");
    if (!(await this.waitFor(s, until, () => this.device(s.device!)?.presence === true))) return false;
    await this.journalTest(s, { observed: "presence" });
    return true;
  }

  /** Closed (read-back) then open again: the reopen is the installer's own on-site act (valve_reopen). */
  private async waitValve(s: Step, until: number): Promise<boolean> {
    this.emitStep(s, "waiting");
    const id = s.device!;
    let closedAt: number | undefined;
    const ok = await this.waitFor(s, until, () => {
      closedAt = this.valveClosedAt.get(id);
      const reopened = this.valveReopenedAt.get(id);
      // Proven both ways: closed by its read-back, reopened on site, and the read-back open again.
      return closedAt !== undefined && reopened !== undefined && reopened >= closedAt && this.device(id)?.valveClosed === false;
    });
    if (!ok) {
      s.detail = closedAt === undefined ? "the valve's read-back never showed it closed" : "closed (read-back verified) but not reopened in time";
      return false;
    }
    await this.journalTest(s, { observed: "valve_closed_and_reopened", closedAt: closedAt!, reopenedAt: this.d.now() });
    return true;
  }

  private async journalTest(s: Step, data: Record<string, string | number>): Promise<void> {
    const env = await this.d.append({ kind: "device", type: "commission_test", severity: "info", device: s.device!, room: s.found?.room, data, test: true });
    s.eventId = env.id;
    s.testedAt = env.ts;
  }

  /** Whether the relay acknowledged the test event; a failure is settled here. */
  private async prove(s: Step): Promise<boolean> {
    if (!this.d.uplink) {
      s.detail = "this hub has no uplink: the path to the relay cannot be proven";
      this.settle(s, "failed");
      return false;
    }
    const until = this.d.now() + (this.o.ackTimeoutMs ?? this.o.stepTimeoutMs);
    this.emitStep(s, "proving");
    const id = s.eventId!;
    const ok = await this.waitFor(s, until, () => this.acked.has(id));
    s.sentAt = this.sent.get(id);
    s.ackedAt = this.acked.get(id);
    if (!ok) {
      s.detail = s.sentAt === undefined ? "the test event was journaled but never sent (uplink down?)" : "the test event was sent but the relay did not acknowledge it";
      this.settle(s, "failed");
      return false;
    }
    return true;
  }

  /**
   * A detector's test alarm must clear within the recovery time of the test (the detector recovering). If it has
   * not, the alarm is real as far as anyone can tell (a leak or fire starting, or a stuck detector): a real,
   * unmarked alarm is journaled for the device, so the relay opens an incident and calls, and its later clear is
   * no longer marked a test. Bounded, so a cancel does not cut it short.
   */
  private async recover(s: Step): Promise<boolean> {
    const a = s.alarm!;
    const key = `${s.device!}:${a.type}`;
    const recoveryMs = this.o.recoveryMs ?? DEFAULT_RECOVERY_MS;
    const until = s.testedAt! + recoveryMs;
    const cleared = () => (this.testCleared.get(key) ?? -Infinity) >= s.testedAt!;
    if (!cleared()) {
      s.instruction = RECOVER_TEXT;
      s.until = until;
      this.emitStep(s, "waiting");
      for (;;) {
        if (cleared()) break;
        const left = until - this.d.now();
        if (left <= 0) break;
        this.progress({ event: "step", step: view(s), secondsLeft: Math.ceil(left / 1000) });
        await this.d.sleep(Math.min(TICK_MS, left));
      }
    }
    if (cleared()) return true;
    // From here on this device's alarm and its clear are real.
    this.testAlarms.delete(key);
    await this.d.append({ kind: "alarm", type: a.type, severity: a.severity, device: s.device!, room: a.room, data: { reason: "still_in_alarm_after_test", testEventId: s.eventId! } });
    const also = s.detail ? `; ${s.detail}` : ""; // the path not proven either
    s.detail = `still in alarm ${Math.round(recoveryMs / 1000)} s after its test: reported as a real alarm${also}`;
    return false;
  }

  // --- result -----------------------------------------------------------------------------------------

  private emitStep(s: Step, state: StepState): void {
    s.state = state;
    this.progress({ event: "step", step: view(s) });
  }

  private settle(s: Step, result: DeviceResult): void {
    // A waiver given earlier applies when the device then fails or is missing.
    if ((result === "failed" || result === "missing") && s.waiver) result = "waived";
    s.until = undefined;
    this.emitStep(s, result);
  }

  private async finish(): Promise<{ report: CommissioningReport; eventId: string }> {
    const devices: CommissionedDevice[] = this.steps.map((s) => {
      const f = s.found ?? (s.device ? this.device(s.device) : undefined);
      // A step still pending (the session was cancelled) counts as failed: it proved nothing.
      const result: DeviceResult = s.state === "passed" || s.state === "waived" || s.state === "missing" ? s.state : "failed";
      if (result === "failed" && this.cancelled && !s.detail) s.detail = `not tested: ${this.cancelWhy}`;
      return strip({
        id: s.device,
        kind: s.kind,
        model: f?.model?.slice(0, 64),
        address: f?.address?.slice(0, 64),
        room: (f?.room ?? s.room).slice(0, 32),
        signal: f?.signal,
        battery: f?.battery,
        result,
        testedAt: s.testedAt,
        eventId: s.eventId,
        ackedAt: s.ackedAt,
        detail: s.detail?.slice(0, 200),
        waiver: result === "waived" ? s.waiver : undefined,
      });
    });
    const state = devices.every((d) => d.result === "passed" || d.result === "waived") && this.secondPath?.result !== "failed" ? "commissioned" : "blocked";
    const report = commissioningReportSchema.parse(
      strip({
        v: 1,
        hub: this.d.hub,
        household: this.o.household,
        plan: { version: this.o.plan.version, level: this.o.plan.level, items: reportPlanItems(this.o.plan) },
        installer: this.o.installer,
        startedAt: this.startedAt,
        finishedAt: this.d.now(),
        state,
        devices,
        secondPath: this.secondPath,
      }),
    );
    const env = await this.d.append({ kind: "audit", type: COMMISSIONING_REPORT_TYPE, severity: "info", data: report });
    this.finished = { report, eventId: env.id };
    this.progress({ event: "report", eventId: env.id });
    return this.finished;
  }

  /** Whether the relay acknowledged an event (the report, after run()). */
  ackedAt(id: string): number | undefined {
    return this.acked.get(id);
  }
}

function matches(s: StepView, target: string): boolean {
  return target === s.device || target === s.key || target === s.kind || target === `${s.kind}@${s.room}`;
}

function view(s: Step): StepView {
  return strip({ key: s.key, kind: s.kind, room: s.room, device: s.device, state: s.state, instruction: s.instruction, until: s.until, detail: s.detail });
}

/** Drops undefined fields: the report's schema is strict and the JSON stays small. */
function strip<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
