// The demo's telephony: nobody is called. Each call is printed (number masked) and answered by a script,
// e.g. "the first call is answered with key 1 after 2 s", so the whole escalation runs on one machine.
import type { ConsoleScriptRule } from "./config.js";
import { maskNumber } from "./provider-http.js";
import { newCounters, NO_CALLBACKS, type CallbackRoute, type CallOutcome, type CallRequest, type Telephony, type TelephonyCounters, type TelephonyLog } from "./types.js";

export type ConsoleAnswer = Omit<ConsoleScriptRule, "to" | "call">;

export interface ConsoleTelephonyOptions {
  script: ConsoleScriptRule[];
  otherwise: ConsoleAnswer;
  /** Print the message text (it may name the elder: demo data only). */
  showMessage?: boolean;
  log: TelephonyLog;
  onOutcome(o: CallOutcome): Promise<void>;
  /** A human-readable line per call and outcome (the demo passes console.log). */
  print?: (line: string) => void;
  now?: () => number;
  /** Runs `fn` after `ms`; returns a cancel function. Tests pass a manual scheduler. */
  schedule?: (fn: () => void, ms: number) => () => void;
}

const defaultSchedule = (fn: () => void, ms: number): (() => void) => {
  const t = setTimeout(fn, ms);
  return () => clearTimeout(t);
};

export class ConsoleTelephony implements Telephony {
  readonly name = "console";
  readonly counters: TelephonyCounters = newCounters();
  /** The callbacks come from inside the process: no HTTP route. */
  readonly callbackRoute: CallbackRoute = NO_CALLBACKS;
  private calls = 0;
  private readonly placed = new Map<string, string>();
  private readonly pending = new Set<() => void>();
  private readonly now: () => number;
  private readonly schedule: NonNullable<ConsoleTelephonyOptions["schedule"]>;
  private closed = false;

  constructor(private readonly o: ConsoleTelephonyOptions) {
    this.now = o.now ?? Date.now;
    this.schedule = o.schedule ?? defaultSchedule;
  }

  async place(req: CallRequest): Promise<{ providerRef: string }> {
    const known = this.placed.get(req.attemptId);
    if (known) return { providerRef: known }; // the same attempt again: one call, as a real provider would do
    const n = ++this.calls;
    const providerRef = `console-${n}`;
    this.placed.set(req.attemptId, providerRef);
    if (this.placed.size > 10_000) this.placed.delete(this.placed.keys().next().value as string);
    const rule = this.o.script.find((r) => (r.to === undefined || r.to === req.to) && (r.call === undefined || r.call === n)) ?? this.o.otherwise;
    const masked = maskNumber(req.to);
    this.counters.placed++;
    this.o.log.info({ attemptId: req.attemptId, channel: req.channel, number: masked, providerRef }, "console telephony: placing");
    const keys = req.gatherDigits?.length ? ` (keys ${req.gatherDigits.join("/")})` : "";
    this.o.print?.(`☎  ${req.channel === "sms" ? "SMS to" : "calling"} ${masked}${keys}${this.o.showMessage ? `: “${req.message}”` : ""}`);
    let cancel: () => void = () => {};
    cancel = this.schedule(() => {
      this.pending.delete(cancel);
      if (this.closed) return;
      const outcome: CallOutcome = { attemptId: req.attemptId, status: rule.status, providerRef, at: this.now(), ...(rule.digits !== undefined ? { digits: rule.digits } : {}) };
      this.o.print?.(`☎  ${masked}: ${rule.status}${rule.digits ? `, pressed ${rule.digits}` : ""}`);
      this.o.onOutcome(outcome).then(
        () => this.counters.callbacks++,
        (err: Error) => this.o.log.error({ attemptId: req.attemptId, err: err.message }, "console telephony: outcome not recorded"),
      );
    }, rule.afterMs);
    this.pending.add(cancel);
    return { providerRef };
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const c of this.pending) c();
    this.pending.clear();
  }
}
