// A stand-in for a USB cellular module (Quectel EC2x / SIMCom SIM7600 class) on the device end of a PTY
// pair, written from 3GPP TS 27.007 / 27.005 and the Quectel and SIMCom AT manuals rather than from the
// hub's driver: its own line handling and its own GSM 03.38 table. It echoes until ATE0, reports errors as
// +CME ERROR: <n> after AT+CMEE=1 (bare ERROR before; SMS errors are always +CMS ERROR), answers SIM, registration, signal and operator
// queries from a state a test sets, takes SMS text after the `> ` prompt until Ctrl-Z (ESC abandons it),
// records what was sent, and can stay silent or speak unsolicited.
//
// As a demo: node --import tsx test/support/modem-emulator.ts <pty path> [no-sim|searching|denied|home]
import { SerialPort } from "serialport";
import { pathToFileURL } from "node:url";

export type EmulatedSim = "ready" | "pin" | "absent";
/** <stat> of +CREG / +CEREG: 0 not registered, 1 home, 2 searching, 3 denied, 5 roaming. */
export type EmulatedStat = 0 | 1 | 2 | 3 | 5;

export interface EmulatorState {
  sim: EmulatedSim;
  stat: EmulatedStat;
  /** Also registered on LTE (+CEREG); a 2G-only module answers ERROR to AT+CEREG? when `lte` is false. */
  lte: boolean;
  /** <rssi> of +CSQ, 0–31 or 99. */
  rssi: number;
  operator: string;
  /** When set, the module reads everything and answers nothing (a hung module, a wrong port). */
  silent: boolean;
  /** The +CMS ERROR the next send fails with regardless of state (330 SMSC unknown, 500 unknown …). */
  failNextSend: number | null;
  /**
   * The address of PDP context 1 as AT+CGPADDR reports it once the operating system brought the data session
   * up; null: no data session (the module answers with an empty address).
   */
  dataAddress: string | null;
  /** How long the module takes from Ctrl-Z to +CMGS (a real one takes a few seconds on a busy cell); default 0. */
  sendDelayMs: number;
}

export interface ReceivedSms {
  number: string;
  /** The bytes between the prompt and Ctrl-Z, as they came. */
  raw: Buffer;
  /** Those bytes read as GSM 7-bit default alphabet codes. */
  text: string;
  mr: number;
}

export interface ModemEmulator {
  readonly state: EmulatorState;
  readonly sent: ReceivedSms[];
  /** Every command line the module received, in order. */
  readonly commands: string[];
  /** Told of each SMS the module sent, as it is sent (a test may carry it on to the relay's inbound webhook). */
  onSms(listener: (sms: ReceivedSms) => void): void;
  /** Writes an unsolicited result code (`+CREG: 0`, `RING`, `+CMTI: "SM",3`). */
  urc(line: string): void;
  stop(): Promise<void>;
}

/** GSM 03.38 codes 0x00–0x1F; from 0x20 the table is ASCII except at the codes below. */
const LOW = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\u001bÆæßÉ";
const HIGH_DIFF: Record<number, string> = {
  0x24: "¤", 0x40: "¡", 0x5b: "Ä", 0x5c: "Ö", 0x5d: "Ñ", 0x5e: "Ü", 0x5f: "§", 0x60: "¿",
  0x7b: "ä", 0x7c: "ö", 0x7d: "ñ", 0x7e: "ü", 0x7f: "à",
};
function gsmDecode(raw: Buffer): string {
  return [...raw].map((b) => (b < 0x20 ? LOW[b]! : (HIGH_DIFF[b] ?? String.fromCharCode(b)))).join("");
}

const CTRL_Z = 0x1a;
const ESC = 0x1b;
const CR = 0x0d;

export async function startModemEmulator(path: string, initial: Partial<EmulatorState> = {}): Promise<ModemEmulator> {
  const state: EmulatorState = { sim: "ready", stat: 1, lte: true, rssi: 20, operator: "CHINA MOBILE", silent: false, failNextSend: null, dataAddress: null, sendDelayMs: 0, ...initial };
  const smsListeners: Array<(sms: ReceivedSms) => void> = [];
  const sent: ReceivedSms[] = [];
  const commands: string[] = [];
  let echo = true;
  let cmee = 0;
  let textMode = false;
  let copsFormat = 0;
  let mr = 0;
  let line: number[] = [];
  /** Set while SMS text is being entered. */
  let entry: { number: string; bytes: number[] } | null = null;

  const port = new SerialPort({ path, baudRate: 115200, autoOpen: false, xon: false, xoff: false });
  await new Promise<void>((resolve, reject) => port.open((e) => (e ? reject(e) : resolve())));
  port.on("error", () => {});

  const out = (s: string) => void port.write(Buffer.from(s, "latin1"));
  const respond = (...lines: string[]) => out(lines.map((l) => `\r\n${l}\r\n`).join(""));
  const ok = (...info: string[]) => respond(...info, "OK");
  const cmeError = (n: number) => respond(cmee === 0 ? "ERROR" : `+CME ERROR: ${n}`);
  // TS 27.005 §3.2.5: SMS commands end in +CMS ERROR whatever AT+CMEE says.
  const cmsError = (n: number) => respond(`+CMS ERROR: ${n}`);
  const registered = () => state.stat === 1 || state.stat === 5;

  function command(raw: string): void {
    commands.push(raw);
    const cmd = raw.trim().toUpperCase();
    // V.250: every command line starts with AT; anything else is ignored by a real module too.
    if (!cmd.startsWith("AT")) return;
    const rest = raw.trim().slice(2);
    const up = rest.toUpperCase();
    let m: RegExpExecArray | null;
    if (up === "") return ok();
    if ((m = /^E([01]?)$/.exec(up))) return ((echo = m[1] === "1"), ok());
    if ((m = /^\+CMEE=([012])$/.exec(up))) return ((cmee = Number(m[1])), ok());
    if (up === "+CPIN?") {
      if (state.sim === "absent") return cmeError(10);
      return ok(`+CPIN: ${state.sim === "pin" ? "SIM PIN" : "READY"}`);
    }
    if (up === "+CREG?") return ok(`+CREG: 0,${state.sim === "ready" ? state.stat : 0}`);
    if (up === "+CEREG?") return state.lte ? ok(`+CEREG: 0,${state.sim === "ready" ? state.stat : 0}`) : respond("ERROR");
    if ((m = /^\+C(E)?REG=([0-2])$/.exec(up))) return ok();
    if (up === "+CSQ") return ok(`+CSQ: ${state.rssi},99`);
    if ((m = /^\+COPS=3,([012])$/.exec(up))) return ((copsFormat = Number(m[1])), ok());
    if (up === "+COPS?") {
      if (state.sim !== "ready" || !registered()) return ok("+COPS: 0");
      const name = copsFormat === 2 ? "46000" : copsFormat === 1 ? state.operator.slice(0, 8) : state.operator;
      return ok(`+COPS: 0,${copsFormat},"${name}",7`);
    }
    // TS 27.007 §10.1.14: +CGPADDR: <cid>,<PDP_addr>; an inactive context has no address.
    if ((m = /^\+CGPADDR=(\d+)$/.exec(up))) return ok(`+CGPADDR: ${m[1]},"${m[1] === "1" && state.dataAddress && registered() ? state.dataAddress : "0.0.0.0"}"`);
    if ((m = /^\+CMGF=([01])$/.exec(up))) return ((textMode = m[1] === "1"), ok());
    if (up === "+CMGF?") return ok(`+CMGF: ${textMode ? 1 : 0}`);
    if (/^\+CSCS="(GSM|IRA|UCS2)"$/.test(up)) return ok();
    if ((m = /^\+CMGS="(\+?[0-9]+)"(,\d+)?$/.exec(up))) {
      if (!textMode) return cmsError(304);
      if (state.sim === "absent") return cmsError(310);
      if (state.sim === "pin") return cmsError(311);
      entry = { number: m[1]!, bytes: [] };
      return out("\r\n> ");
    }
    respond("ERROR");
  }

  function endEntry(submit: boolean): void {
    const e = entry!;
    entry = null;
    if (!submit) return ok();
    if (state.failNextSend !== null) {
      const n = state.failNextSend;
      state.failNextSend = null;
      return cmsError(n);
    }
    if (!registered()) return cmsError(331);
    mr = (mr + 1) % 256;
    const raw = Buffer.from(e.bytes);
    const sms = { number: e.number, raw, text: gsmDecode(raw), mr };
    const deliver = () => {
      sent.push(sms);
      for (const l of smsListeners) l(sms);
      ok(`+CMGS: ${sms.mr}`);
    };
    if (state.sendDelayMs > 0) setTimeout(deliver, state.sendDelayMs);
    else deliver();
  }

  port.on("data", (chunk: Buffer) => {
    if (state.silent) return;
    for (const b of chunk) {
      if (entry) {
        if (b === CTRL_Z || b === ESC) endEntry(b === CTRL_Z);
        else {
          entry.bytes.push(b);
          if (echo) port.write(Buffer.from([b]));
        }
        continue;
      }
      if (echo) port.write(Buffer.from([b]));
      if (b === CR) {
        const l = Buffer.from(line).toString("latin1");
        line = [];
        command(l);
      } else if (b !== 0x0a) line.push(b);
    }
  });

  return {
    state,
    sent,
    commands,
    onSms: (l) => void smsListeners.push(l),
    urc: (l) => respond(l),
    stop: () => new Promise<void>((resolve) => (port.isOpen ? port.close(() => resolve()) : resolve())),
  };
}

// The demo: a module on a PTY end for trying the driver by hand (e.g. with `socat` and `picocom`).
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [path, mode] = process.argv.slice(2);
  if (!path) {
    console.error("usage: modem-emulator.ts <pty path> [no-sim|searching|denied|home]");
    process.exit(2);
  }
  const initial: Partial<EmulatorState> =
    mode === "no-sim" ? { sim: "absent" } : mode === "searching" ? { stat: 2 } : mode === "denied" ? { stat: 3 } : {};
  const emu = await startModemEmulator(path, initial);
  console.log(`modem emulator on ${path} (${mode ?? "home"}); Ctrl-C to stop`);
  process.on("SIGINT", () => void emu.stop().then(() => process.exit(0)));
}
