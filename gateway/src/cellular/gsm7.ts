// The GSM 7-bit default alphabet (3GPP TS 23.038 §6.2.1) and what of it an SMS from the hub may carry. The
// modem is driven in text mode with AT+CSCS="GSM" (3GPP TS 27.007 §5.5): every character then travels to the
// module as one byte holding its septet value — `_` is 0x11, `@` is 0x00, `$` is 0x02 — so the hub encodes
// the text itself rather than trusting the bytes of an ASCII string.
//
// Refused even though they are in the alphabet: Ξ (0x1A is Ctrl-Z, which would end the text early), the
// extension table (its escape 0x1B is ESC, which cancels the message) and CR (text mode takes it as a new
// line prompt). Anxin's alarm texts need none of them.

/** The basic table in code order; index = septet value. 0x1B (escape to the extension table) is a placeholder. */
const BASIC =
  "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\u001bÆæßÉ" +
  " !\"#¤%&'()*+,-./0123456789:;<=>?" +
  "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§" +
  "¿abcdefghijklmnopqrstuvwxyzäöñüà";
/** Characters reachable only through the extension table (two septets each). */
const EXTENSION = "\f^{}\\[~]|€";

// 0x1B is the escape, not a character: text holding ESC is outside the alphabet.
const CODE = new Map<string, number>([...BASIC].flatMap((c, i): [string, number][] => (i === 0x1b ? [] : [[c, i]])));
/** Codes that collide with the control bytes of text-mode entry. */
const UNSENDABLE = new Set([0x1a, 0x0d]);

/** One SMS: 160 septets. */
export const SMS_MAX_SEPTETS = 160;

export class Gsm7Error extends Error {
  constructor(
    readonly reason: "outside_alphabet" | "control_collision" | "too_long" | "empty",
    message: string,
  ) {
    super(message);
    this.name = "Gsm7Error";
  }
}

/** Why `text` cannot go as one SMS from the hub, or null when it can. */
export function gsm7Problem(text: string): Gsm7Error | null {
  const chars = [...text];
  if (chars.length === 0) return new Gsm7Error("empty", "an empty SMS is not sent");
  for (const c of chars) {
    const code = CODE.get(c);
    const shown = JSON.stringify(c);
    if (code === undefined) {
      return EXTENSION.includes(c)
        ? new Gsm7Error("control_collision", `${shown} needs the GSM-7 extension table, whose escape byte would cancel the SMS in text mode`)
        : new Gsm7Error("outside_alphabet", `${shown} (U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0")}) is not in the GSM-7 default alphabet`);
    }
    if (UNSENDABLE.has(code)) return new Gsm7Error("control_collision", `${shown} collides with a control byte of SMS text entry`);
  }
  if (chars.length > SMS_MAX_SEPTETS) return new Gsm7Error("too_long", `${chars.length} characters is over one SMS (${SMS_MAX_SEPTETS})`);
  return null;
}

/** The bytes written to the modem for `text` (one septet value per byte); throws Gsm7Error when it cannot go. */
export function encodeGsm7Text(text: string): Buffer {
  const problem = gsm7Problem(text);
  if (problem) throw problem;
  return Buffer.from([...text].map((c) => CODE.get(c)!));
}
