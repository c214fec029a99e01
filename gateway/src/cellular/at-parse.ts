// Reading the lines an AT modem answers with (3GPP TS 27.007 / 27.005 result and information responses).
// Pure functions: the command channel and the tests use them alike.
import { isIP } from "node:net";

export type FinalResult =
  | { ok: true }
  | { ok: false; kind: "error" }
  | { ok: false; kind: "cme" | "cms"; code: number | null; text: string };

/** The final result code a line is (ends a command), or null when it is not one (V1 verbose responses). */
export function parseFinal(line: string): FinalResult | null {
  if (line === "OK") return { ok: true };
  if (line === "ERROR" || line === "NO CARRIER" || line === "BUSY" || line === "NO ANSWER" || line === "NO DIALTONE") return { ok: false, kind: "error" };
  const m = /^\+(CME|CMS) ERROR:\s*(.*)$/.exec(line);
  if (!m) return null;
  const kind = m[1] === "CME" ? "cme" : "cms";
  const rest = m[2]!.trim();
  // AT+CMEE=1 gives numbers; a module left at AT+CMEE=2 gives the text, which is kept as it is.
  const code = /^\d+$/.test(rest) ? Number(rest) : null;
  return { ok: false, kind, code, text: code === null ? rest : (kind === "cme" ? CME_TEXT : CMS_TEXT)[code] ?? "unknown error" };
}

/** +CME ERROR codes the hub meets (TS 27.007 §9.2). */
export const CME_TEXT: Record<number, string> = {
  0: "phone failure", 3: "operation not allowed", 4: "operation not supported", 10: "SIM not inserted",
  11: "SIM PIN required", 12: "SIM PUK required", 13: "SIM failure", 14: "SIM busy", 15: "SIM wrong",
  16: "incorrect password", 30: "no network service", 31: "network timeout", 100: "unknown",
};

/** +CMS ERROR codes of sending (TS 27.005 §3.2.5). */
export const CMS_TEXT: Record<number, string> = {
  300: "ME failure", 301: "SMS service of ME reserved", 302: "operation not allowed", 303: "operation not supported",
  304: "invalid PDU mode parameter", 305: "invalid text mode parameter", 310: "SIM not inserted", 311: "SIM PIN required",
  313: "SIM failure", 314: "SIM busy", 320: "memory failure", 322: "memory full", 330: "SMSC address unknown",
  331: "no network service", 332: "network timeout", 340: "no +CNMA acknowledgement expected", 500: "unknown error",
};

/** The comma-separated fields after `+NAME: `, quotes kept off; null when the line is not that response. */
export function fieldsOf(line: string, name: string): string[] | null {
  const head = `+${name}:`;
  if (!line.startsWith(head)) return null;
  const body = line.slice(head.length).trim();
  if (body === "") return [];
  const out: string[] = [];
  // Quoted fields may hold commas (an operator's name); split outside quotes only.
  let cur = "";
  let quoted = false;
  for (const c of body) {
    if (c === '"') quoted = !quoted;
    else if (c === "," && !quoted) {
      out.push(cur.trim());
      cur = "";
    }
    else cur += c;
  }
  out.push(cur.trim());
  return out;
}

export interface Signal {
  /** 0–31, or null for 99 "not known or not detectable". */
  rssi: number | null;
  /** -113 + 2·rssi dBm (0 → ≤ -113, 31 → ≥ -51), null when unknown. */
  dbm: number | null;
  ber: number | null;
}

/** `+CSQ: <rssi>,<ber>` (TS 27.007 §8.5). */
export function parseCsq(line: string): Signal | null {
  const f = fieldsOf(line, "CSQ");
  if (!f || f.length < 2 || !/^\d+$/.test(f[0]!) || !/^\d+$/.test(f[1]!)) return null;
  const r = Number(f[0]);
  const b = Number(f[1]);
  if (r > 31 && r !== 99) return null;
  const rssi = r === 99 ? null : r;
  return { rssi, dbm: rssi === null ? null : -113 + 2 * rssi, ber: b === 99 || b > 7 ? null : b };
}

export type RegState = "not_registered" | "home" | "searching" | "denied" | "unknown" | "roaming";
/** <stat> 0–5 of +CREG / +CEREG (TS 27.007 §7.2, §10.1.22); 6–10 are SMS-only / emergency variants. */
const REG_STAT: Record<number, RegState> = { 0: "not_registered", 1: "home", 2: "searching", 3: "denied", 4: "unknown", 5: "roaming", 6: "home", 7: "roaming" };

/** The read response `+CREG: <n>,<stat>[,...]` (or +CEREG / +CGREG): the stat is the second field. */
export function parseRegRead(line: string, name: "CREG" | "CEREG" | "CGREG" = "CREG"): RegState | null {
  const f = fieldsOf(line, name);
  if (!f || f.length < 2 || !/^\d+$/.test(f[0]!) || !/^\d+$/.test(f[1]!)) return null;
  return REG_STAT[Number(f[1])] ?? "unknown";
}

/** The unsolicited form `+CREG: <stat>[,<lac>,<ci>...]`: the stat is the first field. */
export function parseRegUrc(line: string): { name: string; state: RegState } | null {
  const m = /^\+(CREG|CEREG|CGREG):/.exec(line);
  if (!m) return null;
  const f = fieldsOf(line, m[1]!)!;
  // A read response has <n>,<stat> — two bare numbers — where the URC's second field is a quoted area code or absent.
  if (f.length === 0 || !/^\d+$/.test(f[0]!)) return null;
  return { name: m[1]!, state: REG_STAT[Number(f[0])] ?? "unknown" };
}

/** Whether a +CREG:/+CEREG: line is a read response (vs an unsolicited report). */
export function isRegReadLine(line: string): boolean {
  const m = /^\+(CREG|CEREG|CGREG):\s*(\d+)\s*,\s*(\d+)/.exec(line);
  return m !== null;
}

/** `+COPS: <mode>[,<format>,"<oper>"[,<AcT>]]` (TS 27.007 §7.3): the operator's name, or null when none. */
export function parseCops(line: string): string | null {
  const f = fieldsOf(line, "COPS");
  if (!f || f.length < 3) return null;
  return f[2]! === "" ? null : f[2]!;
}

export type SimState = "ready" | "pin" | "puk" | "absent" | "failure" | "other";

/** `+CPIN: <code>` (TS 27.007 §8.3). */
export function parseCpin(line: string): SimState | null {
  const f = fieldsOf(line, "CPIN");
  if (!f || f.length < 1) return null;
  const code = f[0]!;
  if (code === "READY") return "ready";
  if (code === "SIM PIN" || code === "PH-SIM PIN") return "pin";
  if (code === "SIM PUK") return "puk";
  return "other";
}

/** The SIM state a +CME ERROR on AT+CPIN? stands for. */
export function simStateOfCme(code: number | null): SimState {
  if (code === 10) return "absent";
  if (code === 11) return "pin";
  if (code === 12) return "puk";
  return "failure";
}

/** `+CMGS: <mr>` (TS 27.005 §3.5.1): the message reference. */
export function parseCmgs(line: string): number | null {
  const f = fieldsOf(line, "CMGS");
  if (!f || f.length < 1 || !/^\d+$/.test(f[0]!)) return null;
  return Number(f[0]);
}

/**
 * `+CGPADDR: <cid>,"<address>"` (TS 27.007 §10.1.14): the address the network gave a PDP context, when it is
 * active. Only an IPv4 or IPv6 address in its usual text form is taken (the socket binds to it); 0.0.0.0 or an
 * empty field means the context has none.
 */
export function parseCgpaddr(line: string, cid: number): string | null {
  const f = fieldsOf(line, "CGPADDR");
  if (!f || f.length < 2 || f[0] !== String(cid)) return null;
  const addr = f[1]!;
  if (addr === "" || addr === "0.0.0.0" || addr === "::") return null;
  return isIP(addr) === 0 ? null : addr;
}

/** Lines a module sends on its own (TS 27.007 / 27.005, Quectel and SIMCom extras), never a command's answer. */
export function isUrc(line: string): boolean {
  return /^(RING|\+CRING:|\+CLIP:|\+CMTI:|\+CMT:|\+CDS:|\+CDSI:|\+CBM:|\+CUSD:|\+CIEV:|\+QIND:|\+QUSIM:|\+CPIN:|\+CFUN:|\+PACSP|RDY|SMS DONE|PB DONE|POWERED DOWN|NORMAL POWER DOWN|UNDER-VOLTAGE|OVER-VOLTAGE)/.test(line) || (parseRegUrc(line) !== null && !isRegReadLine(line));
}
