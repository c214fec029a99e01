// One AT command at a time over a byte link to the modem (3GPP TS 27.007 §4/§5 command line, V1 verbose
// responses). Commands wait in a queue; each gets the information lines it asked for and ends at a final result
// code or its own timeout, after which the next one goes. Lines the module sends on its own (unsolicited result
// codes) are passed to `urc` listeners and never taken for an answer. Echo is expected to be off (ATE0 at init)
// but a line that repeats the command just sent is skipped, so the first commands before ATE0 read right too.
import { EventEmitter } from "node:events";
import { isUrc, parseFinal, type FinalResult } from "./at-parse.js";

/** The byte link to the module: a serial port in the hub, anything byte-shaped in a test. */
export interface AtLink {
  write(data: Buffer): void;
  onData(listener: (chunk: Buffer) => void): void;
  close(): Promise<void>;
}

export interface AtCommand {
  /** The command line without the trailing CR, e.g. `AT+CSQ`. */
  line: string;
  /** Which information lines belong to this command (default: any line that is not an unsolicited code). */
  isAnswer?: (line: string) => boolean;
  /** Sent after the `> ` prompt (AT+CMGS text entry); the prompt is waited for only when this is set. */
  afterPrompt?: Buffer;
  timeoutMs?: number;
}

export interface AtResponse {
  command: string;
  lines: string[];
}

export class AtTimeoutError extends Error {
  constructor(readonly command: string, readonly timeoutMs: number, stage: string) {
    super(`the modem did not answer ${command} within ${timeoutMs} ms (${stage})`);
    this.name = "AtTimeoutError";
  }
}

export class AtCommandError extends Error {
  constructor(readonly command: string, readonly result: Exclude<FinalResult, { ok: true }>, readonly lines: string[]) {
    super(
      result.kind === "error"
        ? `${command} failed: ERROR`
        : `${command} failed: +${result.kind.toUpperCase()} ERROR: ${result.code ?? result.text} (${result.text})`,
    );
    this.name = "AtCommandError";
  }
  /** The +CME / +CMS error number, when the module gave one. */
  get code(): number | null {
    return this.result.kind === "error" ? null : this.result.code;
  }
}

export class AtClosedError extends Error {
  constructor(command: string) {
    super(`the modem link is closed; ${command} was not sent`);
    this.name = "AtClosedError";
  }
}

const CTRL_Z = 0x1a;
const ESC = 0x1b;

interface Pending {
  cmd: AtCommand;
  resolve: (r: AtResponse) => void;
  reject: (e: Error) => void;
}

interface Active extends Pending {
  lines: string[];
  awaitingPrompt: boolean;
  echoSeen: boolean;
  timer: NodeJS.Timeout;
}

type ChannelEvents = {
  /** An unsolicited result code (+CREG:, RING, +CMTI: …). */
  urc: [line: string];
  /** A line that came with no command waiting and is no known unsolicited code. */
  stray: [line: string];
};

export class AtChannel extends EventEmitter<ChannelEvents> {
  private buf = "";
  private readonly queue: Pending[] = [];
  private active: Active | null = null;
  private closed = false;

  /** Per command when the command names none; may be changed between commands. */
  constructor(private readonly link: AtLink, public defaultTimeoutMs = 5000) {
    super();
    // latin1 keeps every byte one char: the module's answers are ASCII, and nothing is lost on odd bytes.
    link.onData((chunk) => this.receive(chunk.toString("latin1")));
  }

  /** Queues a command; resolves with its information lines on OK, rejects on an error result or timeout. */
  run(cmd: AtCommand): Promise<AtResponse> {
    if (this.closed) return Promise.reject(new AtClosedError(cmd.line));
    return new Promise<AtResponse>((resolve, reject) => {
      this.queue.push({ cmd, resolve, reject });
      this.next();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    const err = (line: string) => new AtClosedError(line);
    if (this.active) this.finish(err(this.active.cmd.line));
    for (const p of this.queue.splice(0)) p.reject(err(p.cmd.line));
    await this.link.close();
  }

  private next(): void {
    if (this.active || this.closed) return;
    const p = this.queue.shift();
    if (!p) return;
    const timeoutMs = p.cmd.timeoutMs ?? this.defaultTimeoutMs;
    const timer = setTimeout(() => this.timedOut(), timeoutMs);
    this.active = { ...p, lines: [], awaitingPrompt: p.cmd.afterPrompt !== undefined, echoSeen: false, timer };
    this.link.write(Buffer.from(`${p.cmd.line}\r`, "latin1"));
  }

  private timedOut(): void {
    const a = this.active;
    if (!a) return;
    const timeoutMs = a.cmd.timeoutMs ?? this.defaultTimeoutMs;
    // A module left in SMS text entry would take the next command as message text: ESC leaves it unsent.
    if (a.cmd.afterPrompt) this.link.write(Buffer.from([ESC]));
    // A half line left from the silent command belongs to nobody.
    this.buf = "";
    this.finish(new AtTimeoutError(a.cmd.line, timeoutMs, a.awaitingPrompt ? "no > prompt" : "no final result code"));
  }

  private finish(outcome: AtResponse | Error): void {
    const a = this.active;
    if (!a) return;
    clearTimeout(a.timer);
    this.active = null;
    if (outcome instanceof Error) a.reject(outcome);
    else a.resolve(outcome);
    this.next();
  }

  private receive(text: string): void {
    this.buf += text;
    for (;;) {
      const m = /\r\n|\r|\n/.exec(this.buf);
      if (!m) break;
      const line = this.buf.slice(0, m.index).trim();
      this.buf = this.buf.slice(m.index + m[0].length);
      if (line !== "") this.line(line);
    }
    // The text-entry prompt `> ` ends no line (TS 27.005 §3.5.1): it is what is left once the lines are read.
    const a = this.active;
    if (a?.awaitingPrompt && /^> ?$/.test(this.buf)) {
      this.buf = "";
      a.awaitingPrompt = false;
      this.link.write(Buffer.concat([a.cmd.afterPrompt!, Buffer.from([CTRL_Z])]));
    }
  }

  private line(line: string): void {
    const a = this.active;
    if (!a) {
      if (isUrc(line)) this.emit("urc", line);
      else this.emit("stray", line);
      return;
    }
    if (!a.echoSeen && line === a.cmd.line) {
      a.echoSeen = true;
      return;
    }
    const final = parseFinal(line);
    if (final) {
      // An error before the prompt (no SIM, bad number) ends text entry before it began.
      if (final.ok && a.awaitingPrompt) return;
      this.finish(final.ok ? { command: a.cmd.line, lines: a.lines } : new AtCommandError(a.cmd.line, final, a.lines));
      return;
    }
    if (a.cmd.isAnswer ? a.cmd.isAnswer(line) : !isUrc(line)) a.lines.push(line);
    else if (isUrc(line)) this.emit("urc", line);
    // Anything else while a command runs (the echo of the SMS text with echo on) is not its answer.
  }
}
