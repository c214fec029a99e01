// Runs a command on a real pseudo-terminal, as an installer's shell would: its standard input, output and error
// are the slave side of a PTY (isTTY is true), with a window size the test chooses. Python's `pty` module holds
// the master side; the test reads everything the terminal received (the kernel's echo of typed keys included)
// and types keys into it. No native module is needed.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { StringDecoder } from "node:string_decoder";

const PYTHON = existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3";

// argv: rows cols command args... The child gets the PTY as its controlling terminal (pty.fork makes it a
// session leader), the window size set before exec. The runner relays master -> stdout and stdin -> master,
// dies with its parent (PR_SET_PDEATHSIG), passes a SIGTERM on to the child, and exits with the child's status
// (128 + n for a signal).
const RUNNER = String.raw`
import ctypes, errno, fcntl, os, pty, select, signal, struct, sys, termios
ctypes.CDLL(None).prctl(1, signal.SIGTERM)
rows, cols, argv = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
pid, fd = pty.fork()
if pid == 0:
    fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    os.execvp(argv[0], argv)
def forward(sig, _frame):
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
signal.signal(signal.SIGTERM, forward)
out = sys.stdout.buffer
stdin_open, status = True, None
def drain():
    while True:
        try:
            r, _, _ = select.select([fd], [], [], 0)
            data = os.read(fd, 65536) if r else b""
        except OSError:
            data = b""
        if not data:
            return
        out.write(data)
        out.flush()
while status is None:
    try:
        r, _, _ = select.select([fd] + ([0] if stdin_open else []), [], [], 0.05)
    except InterruptedError:
        r = []
    if fd in r:
        try:
            data = os.read(fd, 65536)
        except OSError as e:
            if e.errno != errno.EIO:
                raise
            data = b""
        if data:
            out.write(data)
            out.flush()
    if 0 in r:
        data = os.read(0, 65536)
        if data:
            os.write(fd, data)
        else:
            stdin_open = False
    done, st = os.waitpid(pid, os.WNOHANG)
    if done:
        status = st
drain()
code = os.waitstatus_to_exitcode(status)
sys.exit(code if code >= 0 else 128 - code)
`;

export interface PtyProcess {
  /** Everything the terminal has received so far (decoded as UTF-8). */
  readonly output: string;
  /** Types into the terminal (Enter is "\r", as a keyboard sends it). */
  type(keys: string): void;
  /** Resolves once `probe` holds on the output so far (checked on every chunk); rejects on timeout or exit. */
  waitFor(what: string, probe: (output: string) => boolean, timeoutMs?: number): Promise<void>;
  /** The command's exit status (128 + n when killed by signal n) and everything the terminal received. */
  readonly exited: Promise<{ code: number | null; output: string }>;
  kill(): void;
}

export function runOnPty(command: string, args: string[], o: { rows?: number; cols?: number; env?: NodeJS.ProcessEnv; cwd?: string } = {}): PtyProcess {
  const child = spawn(PYTHON, ["-c", RUNNER, String(o.rows ?? 24), String(o.cols ?? 80), command, ...args], { stdio: ["pipe", "pipe", "pipe"], env: o.env ?? process.env, cwd: o.cwd });
  const decoder = new StringDecoder("utf8");
  let output = "";
  let runnerErr = "";
  let ended = false;
  const listeners = new Set<() => void>();
  child.stdout.on("data", (b: Buffer) => {
    output += decoder.write(b);
    for (const l of [...listeners]) l();
  });
  child.stderr.on("data", (b: Buffer) => (runnerErr += b.toString()));
  const exited = new Promise<{ code: number | null; output: string }>((resolve) =>
    child.on("close", (code) => {
      output += decoder.end();
      ended = true;
      for (const l of [...listeners]) l();
      resolve({ code, output: runnerErr ? `${output}\n[pty runner: ${runnerErr}]` : output });
    }),
  );
  return {
    get output() {
      return output;
    },
    type(keys: string) {
      child.stdin.write(keys);
    },
    waitFor(what, probe, timeoutMs = 30_000) {
      return new Promise<void>((resolve, reject) => {
        const check = () => {
          if (probe(output)) return finish();
          if (ended) finish(new Error(`the command ended before ${what}; the terminal showed:\n${output}${runnerErr}`));
        };
        const timer = setTimeout(() => finish(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; the terminal showed:\n${output}`)), timeoutMs);
        const finish = (e?: Error) => {
          clearTimeout(timer);
          listeners.delete(check);
          if (e) reject(e);
          else resolve();
        };
        listeners.add(check);
        check();
      });
    },
    exited,
    kill() {
      if (child.exitCode === null) child.kill("SIGTERM");
    },
  };
}

/** A terminal's screen: its rows, and its lines (rows joined where the terminal wrapped a long line). */
export interface Screen {
  rows: string[];
  lines: string[];
}

/**
 * What a terminal `cols` wide shows after `output`: a small model of the terminal's screen (autowrap, wide CJK
 * characters, carriage return, line feed, backspace and the erase / cursor-movement sequences a command line
 * tool uses), with no scrolling limit, so every row ever written is kept. Colours are ignored; any other
 * control sequence throws, so a test notices output it cannot judge.
 */
export function renderScreen(output: string, cols = 80): Screen {
  const rows: string[][] = [[]];
  /** wrapped[i]: row i ran on into row i + 1 (the terminal wrapped it). */
  const wrapped: boolean[] = [];
  let r = 0;
  let c = 0;
  let wrapNext = false;
  const ensure = () => {
    while (rows.length <= r) rows.push([]);
  };
  for (let i = 0; i < output.length; ) {
    const cp = output.codePointAt(i)!;
    const ch = String.fromCodePoint(cp);
    i += ch.length;
    if (ch === "\r") {
      c = 0;
      wrapNext = false;
    } else if (ch === "\n") {
      r++;
      wrapNext = false;
      ensure();
    } else if (ch === "\b") {
      c = Math.max(0, c - 1);
      wrapNext = false;
    } else if (ch === "\x07") {
      // the bell
    } else if (ch === "\x1b") {
      const m = /^\[([0-9;?]*)([A-Za-z])/.exec(output.slice(i));
      if (!m) throw new Error(`renderScreen: unsupported escape at ${i}: ${JSON.stringify(output.slice(i - 1, i + 10))}`);
      i += m[0].length;
      const n = m[1] === "" ? undefined : Number(m[1]);
      const line = rows[r]!;
      switch (m[2]) {
        case "m":
          break;
        case "K":
          if ((n ?? 0) === 0) line.length = Math.min(line.length, c);
          else if (n === 1) for (let k = 0; k <= c && k < line.length; k++) line[k] = " ";
          else line.length = 0;
          wrapped[r] = false;
          break;
        case "J":
          if ((n ?? 0) !== 0) throw new Error(`renderScreen: unsupported erase ESC[${m[1]}J`);
          line.length = Math.min(line.length, c);
          rows.length = r + 1;
          wrapped.length = r;
          break;
        case "A":
          r = Math.max(0, r - (n ?? 1));
          wrapNext = false;
          break;
        case "B":
          r += n ?? 1;
          ensure();
          wrapNext = false;
          break;
        case "C":
          c = Math.min(cols - 1, c + (n ?? 1));
          wrapNext = false;
          break;
        case "D":
          c = Math.max(0, c - (n ?? 1));
          wrapNext = false;
          break;
        case "G":
          c = Math.min(cols - 1, (n ?? 1) - 1);
          wrapNext = false;
          break;
        default:
          throw new Error(`renderScreen: unsupported sequence ESC${m[0]}`);
      }
    } else if (cp < 0x20 || cp === 0x7f) {
      throw new Error(`renderScreen: unsupported control character 0x${cp.toString(16)} at ${i}`);
    } else {
      const w = cellWidth(cp);
      if (w === 0) continue;
      if (wrapNext || c + w > cols) {
        wrapped[r] = true;
        r++;
        c = 0;
        wrapNext = false;
        ensure();
      }
      const line = rows[r]!;
      while (line.length < c) line.push(" ");
      line[c] = ch;
      if (w === 2) line[c + 1] = "";
      c += w;
      if (c >= cols) {
        c = cols - 1;
        wrapNext = true;
      }
    }
  }
  const text = rows.map((x) => x.map((cell) => cell).join(""));
  const lines: string[] = [];
  let cur = "";
  text.forEach((t, k) => {
    cur += t;
    if (!wrapped[k]) {
      lines.push(cur.trimEnd());
      cur = "";
    }
  });
  return { rows: text.map((t) => t.trimEnd()), lines };
}

/** Columns a character takes on a terminal: East Asian wide and full-width characters two, combining marks none. */
function cellWidth(cp: number): number {
  if ((cp >= 0x300 && cp <= 0x36f) || (cp >= 0x200b && cp <= 0x200f) || cp === 0xfe0f) return 0;
  const wide =
    (cp >= 0x1100 && cp <= 0x115f) || (cp >= 0x2e80 && cp <= 0x303e) || (cp >= 0x3041 && cp <= 0x33ff) || (cp >= 0x3400 && cp <= 0x4dbf) ||
    (cp >= 0x4e00 && cp <= 0x9fff) || (cp >= 0xa000 && cp <= 0xa4cf) || (cp >= 0xac00 && cp <= 0xd7a3) || (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0xfe30 && cp <= 0xfe4f) || (cp >= 0xff00 && cp <= 0xff60) || (cp >= 0xffe0 && cp <= 0xffe6) || (cp >= 0x1f300 && cp <= 0x1f64f) ||
    (cp >= 0x1f900 && cp <= 0x1f9ff) || (cp >= 0x20000 && cp <= 0x3fffd);
  return wide ? 2 : 1;
}
