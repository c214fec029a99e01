// Reading a password for a command: from the terminal without echo (asked twice), or from stdin for scripts
// (`--password-stdin`, one line). Never from an argument, which other users see in the process list and the
// shell keeps in its history.

export class PasswordInputError extends Error {
  override name = "PasswordInputError";
}

/**
 * Lines typed at the terminal, not echoed: the terminal stays in raw mode from the first prompt to the last
 * (so nothing typed ahead of a prompt is echoed either), and keys typed ahead are kept for the next line.
 * Ctrl-C ends the command (exit 130); Ctrl-D on an empty line gives up.
 */
class HiddenLines {
  private pending: string[] = [];
  private current = "";
  private waiting: { resolve(line: string): void; reject(e: Error): void } | undefined;
  private failed: Error | undefined;
  private readonly onData = (chunk: string) => this.take(chunk);

  constructor(private readonly stdin: NodeJS.ReadStream) {
    stdin.setRawMode(true);
    stdin.setEncoding("utf8");
    stdin.on("data", this.onData);
    stdin.resume();
  }

  read(prompt: string): Promise<string> {
    process.stderr.write(prompt);
    if (this.failed) return Promise.reject(this.failed);
    const ready = this.pending.shift();
    if (ready !== undefined) {
      process.stderr.write("\n");
      return Promise.resolve(ready);
    }
    return new Promise((resolve, reject) => (this.waiting = { resolve, reject }));
  }

  close(): void {
    this.stdin.off("data", this.onData);
    this.stdin.setRawMode(false);
    this.stdin.pause();
  }

  private take(chunk: string): void {
    for (let i = 0; i < chunk.length; i++) {
      const ch = chunk[i]!;
      if (ch === "\r" || ch === "\n") this.endLine(this.current);
      else if (ch === "\u0003") {
        this.close();
        process.stderr.write("\n");
        process.exit(130);
      } else if (ch === "\u0004" && this.current === "") this.fail(new PasswordInputError("no password given"));
      else if (ch === "\u007f" || ch === "\b") this.current = [...this.current].slice(0, -1).join("");
      else if (ch === "\u0015") this.current = "";
      // An escape sequence (an arrow key) is not part of a password: its bytes come in one chunk, drop them.
      else if (ch === "\u001b") break;
      else if (ch >= " ") this.current += ch;
    }
  }

  private endLine(line: string): void {
    this.current = "";
    const w = this.waiting;
    this.waiting = undefined;
    if (!w) return void this.pending.push(line);
    process.stderr.write("\n");
    w.resolve(line);
  }

  private fail(e: Error): void {
    const w = this.waiting;
    this.waiting = undefined;
    process.stderr.write("\n");
    if (w) w.reject(e);
    else this.failed = e;
  }
}

async function readStdin(): Promise<string> {
  let text = "";
  process.stdin.setEncoding("utf8");
  for await (const chunk of process.stdin) text += chunk as string;
  return text;
}

/**
 * The new password: from stdin when `fromStdin` (one line; its line ending is not part of it), else typed
 * twice at the terminal. `check` says what is wrong with a password (null: nothing), before it is asked again.
 */
export async function readNewPassword(fromStdin: boolean, check: (password: string) => string | null): Promise<string> {
  if (fromStdin) {
    const text = (await readStdin()).replace(/\r?\n$/, "");
    if (/[\r\n]/.test(text)) throw new PasswordInputError("--password-stdin: expected the password on one line");
    const bad = check(text);
    if (bad) throw new PasswordInputError(bad);
    return text;
  }
  if (!process.stdin.isTTY) throw new PasswordInputError("no terminal to ask for the password on: give it on stdin with --password-stdin");
  const lines = new HiddenLines(process.stdin);
  try {
    const first = await lines.read("New password: ");
    const bad = check(first);
    if (bad) throw new PasswordInputError(bad);
    const again = await lines.read("Same password again: ");
    if (again !== first) throw new PasswordInputError("the two passwords differ; nothing changed");
    return first;
  } finally {
    lines.close();
  }
}
