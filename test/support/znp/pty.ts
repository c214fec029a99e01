/**
 * A PTY bridged to the ZNP emulator's TCP port with socat, so herdsman opens a serial device
 * (its native serialport bindings) instead of a socket:
 *   herdsman -> DIR/ttyZNP (pty) <=socat=> tcp:127.0.0.1:<port> <- ZnpEmulator
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";

const READY_TIMEOUT_MS = 5_000;

export interface PtyBridge {
  /** The PTY symlink to give herdsman as its serial path. */
  readonly path: string;
  stop(): Promise<void>;
}

export function socatAvailable(): { ok: true } | { ok: false; reason: string } {
  const probe = spawnSync("socat", ["-V"], { stdio: "ignore", timeout: 5_000 });
  return probe.error || probe.status !== 0 ? { ok: false, reason: "socat not found: apt-get install socat" } : { ok: true };
}

export async function startPtyBridge(port: number, link: string): Promise<PtyBridge> {
  const child: ChildProcess = spawn("socat", [`pty,raw,echo=0,link=${link}`, `tcp:127.0.0.1:${port}`], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  let exited = false;
  child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  const exit = new Promise<void>((resolve) =>
    child.once("exit", () => {
      exited = true;
      resolve();
    }),
  );
  const until = Date.now() + READY_TIMEOUT_MS;
  while (!existsSync(link)) {
    if (exited) throw new Error(`socat exited before creating ${link}: ${stderr.trim()}`);
    if (Date.now() > until) {
      child.kill("SIGTERM");
      throw new Error(`socat did not create ${link} within ${READY_TIMEOUT_MS} ms`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    path: link,
    async stop() {
      if (!exited) child.kill("SIGTERM");
      await exit;
    },
  };
}
