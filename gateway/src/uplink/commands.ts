// Remote commands from the relay. Only what the wire contract lists is accepted (ping, siren test);
// everything else is logged and dropped. There is no path from here to a valve: reopening gas is an
// on-site act only (invariant 2).
import type { Logger } from "pino";
import type { EventDraft } from "../../../protocol/envelope.js";
import { commandSchema } from "../../../protocol/messages.js";

export type SirenTestResult = { ok: true } | { ok: false; reason: string };

export interface CommandOptions {
  append(draft: EventDraft): Promise<unknown>;
  /** Sounds the sirens for `seconds`, or says why not. Absent: siren tests are refused. */
  sirenTest?: (seconds: number) => SirenTestResult;
  log: Logger;
}

/** Recent command ids, so a QoS 1 redelivery does not run a command twice. */
const REMEMBER = 64;

export class Commands {
  private readonly seen: string[] = [];

  constructor(private readonly o: CommandOptions) {}

  handle(payload: Buffer, retained: boolean): void {
    // A retained command would run again on every reconnect.
    if (retained) {
      this.o.log.warn({ bytes: payload.length }, "uplink: retained command ignored");
      return;
    }
    let raw: unknown;
    try {
      raw = JSON.parse(payload.toString("utf8"));
    } catch {
      this.o.log.warn({ bytes: payload.length }, "uplink: command is not JSON; ignored");
      return;
    }
    const parsed = commandSchema.safeParse(raw);
    if (!parsed.success) {
      const name = typeof raw === "object" && raw !== null ? (raw as { cmd?: unknown }).cmd : undefined;
      this.o.log.warn(
        { cmd: typeof name === "string" ? name.slice(0, 64) : undefined, problem: parsed.error.issues[0]?.message },
        "uplink: command not accepted remotely (only ping and siren_test are); ignored",
      );
      return;
    }
    const c = parsed.data;
    if (this.seen.includes(c.id)) {
      this.o.log.info({ cmd: c.cmd, id: c.id }, "uplink: command already handled; ignored");
      return;
    }
    this.seen.push(c.id);
    if (this.seen.length > REMEMBER) this.seen.shift();

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
    }
  }

  private record(draft: EventDraft): void {
    this.o.append(draft).catch((err: Error) => this.o.log.error({ err: err.message, type: draft.type }, "uplink: journal append failed"));
  }
}
