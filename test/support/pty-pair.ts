// Two PTYs joined by socat: a real serial line on one machine. The hub opens one end as its radar's port;
// a radar emulator writes to the other.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";

export interface PtyPair {
  /** The end the hub opens. */
  readonly hubEnd: string;
  /** The end the device (emulator) uses. */
  readonly deviceEnd: string;
  stop(): Promise<void>;
}

export interface PtyPairOptions {
  /** run `socat -d -d` (its notices end up in the error message when it fails); default false */
  debug?: boolean;
  /** ms between checks for the two links; default 20 */
  pollMs?: number;
}

export async function startPtyPair(hubEnd: string, deviceEnd: string, timeoutMs = 5000, o: PtyPairOptions = {}): Promise<PtyPair> {
  const args = [`pty,raw,echo=0,link=${hubEnd}`, `pty,raw,echo=0,link=${deviceEnd}`];
  const child: ChildProcess = spawn("socat", o.debug ? ["-d", "-d", ...args] : args, { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  let exited = false;
  child.stderr?.on("data", (d: Buffer) => {
    // only kept for an error message; bounded so a chatty socat costs nothing
    if (stderr.length < 4000) stderr += d.toString();
  });
  const exit = new Promise<void>((resolve) => child.once("exit", () => ((exited = true), resolve())));
  const until = Date.now() + timeoutMs;
  while (!existsSync(hubEnd) || !existsSync(deviceEnd)) {
    if (exited) throw new Error(`socat exited before creating the PTYs: ${stderr.trim()}`);
    if (Date.now() > until) {
      child.kill("SIGTERM");
      throw new Error(`socat did not create ${hubEnd} and ${deviceEnd} within ${timeoutMs} ms`);
    }
    await new Promise((r) => setTimeout(r, o.pollMs ?? 20));
  }
  return {
    hubEnd,
    deviceEnd,
    async stop() {
      if (!exited) child.kill("SIGTERM");
      await exit;
    },
  };
}
