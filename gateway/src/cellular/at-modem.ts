// The hub's driver for a USB cellular module (Quectel EC2x/EG9x, SIMCom SIM7600 class) spoken to in AT
// commands over its serial port: enough to know whether the cellular path could carry an alarm, and to send
// one alarm as one SMS when the broadband is down, and to find the data session's address (docs/cellular.md).
//
// Commands used, and where they are defined:
//   AT, ATE0                      echo off so answers are not mixed with our own text (ITU-T V.250 §6.2.4)
//   AT+CMEE=1                     numeric +CME ERROR: <n> instead of a bare ERROR (3GPP TS 27.007 §9.1)
//   AT+CPIN?                      SIM state: +CPIN: READY / SIM PIN / SIM PUK; +CME ERROR: 10 no SIM (TS 27.007 §8.3)
//   AT+CREG? / AT+CEREG?          CS / EPS registration <n>,<stat>: 1 home, 5 roaming, 2 searching, 3 denied,
//                                 0 not registered (TS 27.007 §7.2, §10.1.22); a 2G/3G-only module may refuse CEREG
//   AT+CSQ                        <rssi> 0–31 → -113 + 2·rssi dBm, 99 unknown (TS 27.007 §8.5)
//   AT+COPS=3,0 then AT+COPS?     the registered operator as its long alphanumeric name (TS 27.007 §7.3)
//   AT+CGPADDR=<cid>             the address of a PDP context the operating system brought up, if any
//                                 (TS 27.007 §10.1.14): the MQTT socket binds to it for the data session
//   AT+CMGF=1                     SMS text mode (3GPP TS 27.005 §3.2.3)
//   AT+CSCS="GSM"                 text in the GSM 7-bit default alphabet, one byte per septet (TS 27.007 §5.5)
//   AT+CMGS="<da>"                `> ` prompt, text, Ctrl-Z (0x1A) → +CMGS: <mr> then OK, or +CMS ERROR: <n>
//                                 (TS 27.005 §3.5.1; ESC 0x1B abandons the text)
// The Quectel EC2x&EG9x&EM05 Series AT Commands Manual and the SIMCom SIM7500/SIM7600 Series AT Command
// Manual describe the same commands; both give AT+CMGS up to 120 s to answer, hence the long SMS timeout.
import { AtChannel, AtCommandError, type AtLink } from "./at-channel.js";
import { isRegReadLine, parseCgpaddr, parseCmgs, parseCops, parseCpin, parseCsq, parseRegRead, simStateOfCme, type RegState, type Signal, type SimState } from "./at-parse.js";
import { encodeGsm7Text } from "./gsm7.js";
import type { ModemStatus } from "./status.js";

export interface AtModemOptions {
  /** Per command (default 5 s: modules answer status queries within 300 ms by their manuals). */
  commandTimeoutMs?: number;
  /** For AT+CMGS from the prompt to +CMGS: (default 120 s, the manuals' maximum response time). */
  smsTimeoutMs?: number;
  now?: () => number;
}

export interface SentSms {
  /** The message reference the network gave. */
  mr: number;
}

/** A destination number: international `+` and digits only (no quotes or commas can reach the command line). */
const NUMBER = /^\+?[0-9]{3,20}$/;

export class AtModem {
  readonly channel: AtChannel;
  private readonly smsTimeoutMs: number;
  private readonly now: () => number;

  constructor(link: AtLink, o: AtModemOptions = {}) {
    this.channel = new AtChannel(link, o.commandTimeoutMs ?? 5000);
    this.smsTimeoutMs = o.smsTimeoutMs ?? 120_000;
    this.now = o.now ?? Date.now;
  }

  /** Unsolicited codes (+CREG: 0, RING, +CMTI: …): the caller may re-check status when one comes. */
  onUrc(listener: (line: string) => void): void {
    this.channel.on("urc", listener);
  }

  /** AT (the module answers at all), ATE0 (echo off), AT+CMEE=1 (numeric errors). */
  async init(): Promise<void> {
    await this.channel.run({ line: "AT" });
    await this.channel.run({ line: "ATE0" });
    await this.channel.run({ line: "AT+CMEE=1" });
  }

  async sim(): Promise<SimState> {
    try {
      const r = await this.channel.run({ line: "AT+CPIN?", isAnswer: (l) => l.startsWith("+CPIN:") });
      return r.lines.map(parseCpin).find((s) => s !== null) ?? "other";
    } catch (e) {
      if (e instanceof AtCommandError && e.result.kind === "cme") return simStateOfCme(e.code);
      throw e;
    }
  }

  /** Registration of one kind: CREG (circuit-switched, which SMS over 2G/3G needs) or CEREG (LTE). */
  async registrationOf(name: "CREG" | "CEREG"): Promise<RegState> {
    const r = await this.channel.run({ line: `AT+${name}?`, isAnswer: (l) => l.startsWith(`+${name}:`) && isRegReadLine(l) });
    return r.lines.map((l) => parseRegRead(l, name)).find((s) => s !== null) ?? "unknown";
  }

  /** The better of CS and LTE registration: SMS goes over either (SMS over SGs/IMS on LTE-only networks). */
  async registration(): Promise<RegState> {
    const cs = await this.registrationOf("CREG");
    let eps: RegState = "unknown";
    try {
      eps = await this.registrationOf("CEREG");
    } catch (e) {
      // A module without LTE answers ERROR: CS registration alone then decides.
      if (!(e instanceof AtCommandError)) throw e;
    }
    return betterRegistration(cs, eps);
  }

  async signal(): Promise<Signal> {
    const r = await this.channel.run({ line: "AT+CSQ", isAnswer: (l) => l.startsWith("+CSQ:") });
    const s = r.lines.map(parseCsq).find((x) => x !== null);
    if (!s) throw new Error(`AT+CSQ gave no +CSQ: line (${JSON.stringify(r.lines)})`);
    return s;
  }

  /** The operator's long name, or null when the module is registered nowhere. */
  async operator(): Promise<string | null> {
    await this.channel.run({ line: "AT+COPS=3,0" });
    const r = await this.channel.run({ line: "AT+COPS?", isAnswer: (l) => l.startsWith("+COPS:") });
    return r.lines.map(parseCops).find((x) => x !== null) ?? null;
  }

  /** The address of PDP context `cid`, or null when it has none (not brought up, or the module refused). */
  async dataAddress(cid: number): Promise<string | null> {
    const r = await refusedAs(this.channel.run({ line: `AT+CGPADDR=${cid}`, isAnswer: (l) => l.startsWith("+CGPADDR:") }), null);
    return r?.lines.map((l) => parseCgpaddr(l, cid)).find((a) => a !== null) ?? null;
  }

  /**
   * All of it, for the maintenance events (status.ts). Without a SIM or service some modules refuse the
   * registration and operator queries (+CME ERROR: 3, 10, 30): that is an answer too, not a failure.
   */
  async status(): Promise<ModemStatus> {
    const sim = await this.sim();
    const registration = await refusedAs(this.registration(), "not_registered" as const);
    const signal = await this.signal();
    const operator = await refusedAs(this.operator(), null);
    return { sim, registration, rssiDbm: signal.dbm, operator, checkedAt: this.now() };
  }

  /**
   * Sends `text` as one SMS in text mode. The text is checked first (GSM-7 default alphabet, at most 160
   * characters) and nothing reaches the module when it fails. Rejects with AtCommandError (+CMS ERROR: 330
   * SMSC address unknown, 331 no network service, 500 unknown …) or AtTimeoutError.
   */
  async sendSms(number: string, text: string): Promise<SentSms> {
    const body = encodeGsm7Text(text);
    if (!NUMBER.test(number)) throw new Error(`not a phone number for AT+CMGS: ${JSON.stringify(number)}`);
    await this.channel.run({ line: "AT+CMGF=1" });
    await this.channel.run({ line: 'AT+CSCS="GSM"' });
    const r = await this.channel.run({ line: `AT+CMGS="${number}"`, afterPrompt: body, timeoutMs: this.smsTimeoutMs, isAnswer: (l) => l.startsWith("+CMGS:") });
    const mr = r.lines.map(parseCmgs).find((x) => x !== null);
    if (mr === undefined) throw new Error(`AT+CMGS ended OK without +CMGS: <mr> (${JSON.stringify(r.lines)})`);
    return { mr };
  }

  async close(): Promise<void> {
    await this.channel.close();
  }
}

/** The value of a query, or `fallback` when the module refused it with an error result (timeouts still throw). */
async function refusedAs<T, F>(query: Promise<T>, fallback: F): Promise<T | F> {
  try {
    return await query;
  } catch (e) {
    if (e instanceof AtCommandError) return fallback;
    throw e;
  }
}

const REG_RANK: Record<RegState, number> = { home: 5, roaming: 4, searching: 3, denied: 2, not_registered: 1, unknown: 0 };

export function betterRegistration(a: RegState, b: RegState): RegState {
  return REG_RANK[a] >= REG_RANK[b] ? a : b;
}

