// Remote commands from the relay. Only what the wire contract lists is accepted (ping, siren test, retiring
// a vital-sign radar whose consent was withdrawn, an announcement for the elder);
// everything else is logged and dropped. A command runs only when the relay signed it with this hub's key
// (verifyCommand), its `ts` is within COMMAND_MAX_AGE_MS of the relay's clock as this hub knows it, and its
// id has not run yet: nobody on the path can forge one, nor replay a recorded one. There is no path from
// here to a valve: reopening gas is an on-site act only (invariant 2).
import type { Logger } from "pino";
import type { EventDraft } from "../../../protocol/envelope.js";
import { COMMAND_MAX_AGE_MS, commandSchema, verifyCommand } from "../../../protocol/messages.js";
import { Refusals } from "./refusals.js";
import type { RetireResult } from "../retire/retire-device.js";
import type { AnnounceRequest, AnnounceResult } from "../voice/triggers.js";

export type SirenTestResult = { ok: true } | { ok: false; reason: string };

export interface CommandOptions {
  /** This hub's id and key: a command must be signed for this hub with this key. */
  hub: string;
  key: Buffer;
  /** The relay's clock as this hub knows it (its own clock plus the offset learned from verified acks). */
  relayNow(): number;
  /** This hub's clock (for how long ids are remembered); default Date.now. */
  clock?: () => number;
  append: (draft: EventDraft) => Promise<unknown>;
  /** Sounds the sirens for `seconds`, or says why not. Absent: siren tests are refused. */
  sirenTest?: (seconds: number) => SirenTestResult;
  /** Retires a device whose consent was withdrawn (retire/retire-device.ts). Absent: refused. */
  retire?: (device: string, reason: string, command: string) => Promise<RetireResult>;
  /** Speaks an announcement if the hub can verify it (voice/triggers.ts). Absent: not spoken. */
  announce?: (a: AnnounceRequest) => AnnounceResult;
  log: Logger;
}

/**
 * Ids of commands run, kept for as long as a command with that id could still pass the age check (its `ts`
 * may be up to COMMAND_MAX_AGE_MS ahead or behind): a QoS 1 redelivery or a replay within the window does
 * not run twice, and after it the age check refuses it.
 */
const REMEMBER_MS = 2 * COMMAND_MAX_AGE_MS + 5_000;
/** At most this many remembered ids; while full, new commands are refused rather than forgetting one. */
const REMEMBER_MAX = 1024;

export class Commands {
  /** Command id → when it may be forgotten (this hub's clock). */
  private readonly seen = new Map<string, number>();
  private readonly clock: () => number;
  readonly refusals: Refusals;

  constructor(private readonly o: CommandOptions) {
    this.clock = o.clock ?? Date.now;
    this.refusals = new Refusals(o.log, "uplink: command refused (retained, malformed, not taken remotely, unsigned, wrongly signed, stale or too many); ignored", this.clock);
  }

  /** Commands refused: retained, malformed or not taken remotely, unsigned, badly signed (or for another hub), stale, or while the id memory was full. */
  get refused(): number {
    return this.refusals.count;
  }

  handle(payload: Buffer, retained: boolean): void {
    // A retained command would run again on every reconnect.
    if (retained) {
      this.refusals.note("retained", { bytes: payload.length });
      return;
    }
    let raw: unknown;
    try {
      raw = JSON.parse(payload.toString("utf8"));
    } catch {
      this.refusals.note("not_json", { bytes: payload.length });
      return;
    }
    const parsed = commandSchema.safeParse(raw);
    if (!parsed.success) {
      // Only ping, siren_test, retire_device and announce are taken remotely.
      const name = typeof raw === "object" && raw !== null ? (raw as { cmd?: unknown }).cmd : undefined;
      this.refusals.note("not_accepted", { cmd: typeof name === "string" ? name.slice(0, 64) : undefined, problem: parsed.error.issues[0]?.message });
      return;
    }
    const c = parsed.data;
    // Checked on the message as received: commandSchema's output fills in defaults that were not signed.
    if (!verifyCommand(this.o.hub, raw as Record<string, unknown>, this.o.key)) {
      this.refusals.note(c.sig === undefined ? "unsigned" : "bad_signature", { cmd: c.cmd, id: c.id.slice(0, 64) });
      return;
    }
    const relayNow = this.o.relayNow();
    const ageMs = relayNow - c.ts;
    if (Math.abs(ageMs) > COMMAND_MAX_AGE_MS) {
      this.refusals.note(ageMs > 0 ? "stale" : "from_the_future", { cmd: c.cmd, id: c.id, ageMs, maxAgeMs: COMMAND_MAX_AGE_MS });
      return;
    }
    const now = this.clock();
    for (const [id, until] of this.seen) if (until <= now) this.seen.delete(id);
    if (this.seen.has(c.id)) {
      this.o.log.info({ cmd: c.cmd, id: c.id }, "uplink: command already handled; ignored");
      return;
    }
    if (this.seen.size >= REMEMBER_MAX) {
      this.refusals.note("too_many", { cmd: c.cmd, id: c.id, remembered: this.seen.size });
      return;
    }
    this.seen.set(c.id, now + REMEMBER_MS);

    switch (c.cmd) {
      case "ping":
        this.record({ kind: "audit", type: "ping_reply", severity: "info", data: { id: c.id } });
        break;
      case "siren_test": {
        const r: SirenTestResult = this.o.sirenTest ? this.o.sirenTest(c.seconds) : { ok: false, reason: "this hub has no siren control" };
        this.o.log.info({ id: c.id, seconds: c.seconds, ok: r.ok, reason: r.ok ? undefined : r.reason }, "uplink: remote siren test");
        this.record(
          r.ok
            ? { kind: "audit", type: "siren_test", severity: "info", data: { id: c.id, seconds: c.seconds, by: "relay" } }
            : { kind: "audit", type: "siren_test_refused", severity: "info", data: { id: c.id, seconds: c.seconds, by: "relay", reason: r.reason } },
        );
        break;
      }
      case "retire_device": {
        const refused = (why: string) => ({ kind: "audit", type: "device_retire_refused", severity: "warning", device: c.device, data: { device: c.device, reason: why, command: c.id } }) as const;
        const run = this.o.retire ? this.o.retire(c.device, c.reason, c.id) : Promise.resolve<RetireResult>({ ok: false, reason: "this hub cannot retire devices" });
        void run.then(
          (r) => {
            this.o.log.info({ id: c.id, device: c.device, ok: r.ok }, "uplink: remote device retirement");
            this.record(r.ok ? { kind: "audit", type: "device_retired", severity: "info", device: c.device, data: { device: c.device, reason: c.reason, command: c.id, ...(r.already ? { already: true } : {}) } } : refused(r.reason));
          },
          (e: Error) => this.record(refused(`could not record the retirement: ${e.message}`)),
        );
        break;
      }
      case "announce": {
        // A fixed announcement id, never text; spoken only while a local alarm of that kind is open.
        const a = { announcement: c.announcement, alarm: c.alarm, incident: c.incident };
        const r: AnnounceResult = this.o.announce ? this.o.announce(a) : { spoken: false, reason: "voice prompts are off" };
        this.o.log.info({ id: c.id, ...a, spoken: r.spoken, reason: r.spoken ? undefined : r.reason }, "uplink: announcement");
        this.record({ kind: "audit", type: "announcement", severity: "info", data: { id: c.id, ...a, spoken: r.spoken, ...(r.spoken ? {} : { reason: r.reason }) } });
        break;
      }
    }
  }

  private record(draft: EventDraft): void {
    this.o.append(draft).catch((err: Error) => this.o.log.error({ err: err.message, type: draft.type }, "uplink: journal append failed"));
  }
}
