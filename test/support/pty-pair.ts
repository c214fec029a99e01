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

export async function startPtyPair(hubEnd: string, deviceEnd: string, timeoutMs = 5000): Promise<PtyPair> {
  const child: ChildProcess = spawn("socat", [`pty,raw,echo=0,link=${hubEnd}`, `pty,raw,echo=0,link=${deviceEnd}`], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  let exited = false;
  child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  const exit = new Promise<void>((resolve) => child.once("exit", () => ((exited = true), resolve())));
  const until = Date.now() + timeoutMs;
  while (!existsSync(hubEnd) || !existsSync(deviceEnd)) {
    if (exited) throw new Error(`socat exited before creating the PTYs: ${stderr.trim()}`);
    if (Date.now() > until) {
      child.kill("SIGTERM");
      throw new Error(`socat did not create ${hubEnd} and ${deviceEnd} within ${timeoutMs} ms`);
    }
    await new Promise((r) => setTimeout(r, 20));
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
